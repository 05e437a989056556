// What tasks do inside a worker: resolve "module:function", call it, run source. Each function runs
// with the worker's interpreter attached and reports failure as a C++ exception (never a pending
// Python exception).
#pragma once

#include <string_view>

#include "manygil/value.hpp"
#include "py_ref.hpp"

namespace manygil::detail {

// Imports the module and walks the qualname. Throws InvalidArgument, UnknownFunctionError.
PyRef resolve_target(std::string_view target);

// Calls target ("module:qualname") with the arguments and returns the Python result.
PyRef invoke_target(std::string_view target, const Args& args, const Kwargs& kwargs);

// invoke_target(), with the result converted to a Value.
Value call_target(std::string_view target, const Args& args, const Kwargs& kwargs);

// Executes source in the interpreter's __main__ module.
void exec_source(std::string_view source);

// Checks the form "module:qualname" without importing anything. Throws InvalidArgument.
void check_target(std::string_view target);

}  // namespace manygil::detail
