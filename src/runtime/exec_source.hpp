// Running source text in a worker (Pool::exec, initializers given as source).
#pragma once

#include <string_view>

namespace manygil::detail {

// Executes source in the current interpreter's __main__ module, its GIL held. Throws PythonError.
void exec_source(std::string_view source);

}  // namespace manygil::detail
