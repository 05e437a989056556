// manygil._core's per-interpreter module state, and the process-wide runtime the module uses.
#pragma once

#include <Python.h>

#include "manygil/runtime.hpp"

namespace manygil::ext {

struct ModuleState {
    PyTypeObject* pool_type = nullptr;
    PyTypeObject* task_handle_type = nullptr;
    PyTypeObject* arrow_result_type = nullptr;
    PyTypeObject* udf_stop_type = nullptr;
};

extern PyModuleDef module_def;

// The state of the _core module that defined `type`.
ModuleState* state_of_type(PyTypeObject* type);

// The Runtime attached to this process's Python, created on first use. Throws ShutdownError once
// finalize() has run.
Runtime& runtime();

// True in a child process forked while pools existed: their threads stayed in the parent (and a
// mutex may have been held at the fork), so nothing of theirs may be touched, joined or waited for.
bool forked_child() noexcept;
void mark_forked_child() noexcept;

// The runtime regardless of finalisation (for closing it at exit).
Runtime& runtime_for_exit();

}  // namespace manygil::ext
