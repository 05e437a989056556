// How long a blocking manygil call may wait: nullopt waits as long as needed.
#pragma once

#include <chrono>
#include <optional>

namespace manygil {

using Timeout = std::optional<std::chrono::duration<double>>;

}  // namespace manygil
