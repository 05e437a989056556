// For test binaries that share one Runtime (created before the first test, destroyed after the last).
#pragma once

#include "manygil/runtime.hpp"

namespace manygil::testing {

Runtime& runtime();

}  // namespace manygil::testing
