// What a task runs in a worker when it is not a Python object: a call named by "module:qualname"
// (C++ hosts' Pool::submit/call, initializers; check the form, resolve it, call it), or source text
// (Pool::exec, initializers given as source). Each function runs with the worker's interpreter attached and reports failure
// as a C++ exception (never a pending Python exception).
#pragma once

#include <string_view>

#include "manygil/value.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

class TaskState;

// Imports the module and walks the qualname. Throws InvalidArgument, UnknownFunctionError.
PyRef resolve_target(std::string_view target);

// Calls target ("module:qualname") with the arguments and returns the Python result. The call is
// interruptible; as `task`'s call (task_state.hpp), with that task's id, timeout and early interrupt.
PyRef invoke_target(std::string_view target, const Args& args, const Kwargs& kwargs, const TaskState* task = nullptr);

// invoke_target(), with the result converted to a Value.
Value call_target(std::string_view target, const Args& args, const Kwargs& kwargs, const TaskState* task = nullptr);

// Checks the form "module:qualname" without importing anything. Throws InvalidArgument.
void check_target(std::string_view target);

// Executes source in the current interpreter's __main__ module, its GIL held. Throws PythonError.
void exec_source(std::string_view source);

}  // namespace manygil::detail
