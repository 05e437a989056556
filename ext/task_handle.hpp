// _core.TaskHandle: the Python binding over one task's runtime state (runtime/task_state.hpp, the
// same state a C++ host's manygil::Task shares). The package's Future holds it as future._handle:
// cancel(), interrupt() and started() forward to the state; spin() watches for delivery without the GIL.
#pragma once

#include <Python.h>

#include <memory>

#include "runtime/task_state.hpp"

namespace manygil::ext {

// The TaskHandle type: its spec, and a constructor for the module's own use.
extern PyType_Spec task_handle_spec;
PyObject* new_task_handle(PyTypeObject* type, std::shared_ptr<detail::TaskState> state);

}  // namespace manygil::ext
