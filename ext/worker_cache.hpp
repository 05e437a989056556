// What a worker keeps between tasks, stored in its interpreter's own dict (PyInterpreterState_GetDict)
// so that it lives and dies with that interpreter: resolved callables, and the helpers from
// manygil._worker. Called with the worker's interpreter attached.
#pragma once

#include <Python.h>

#include <optional>
#include <string>

#include "cpython/py_ref.hpp"
#include "py_task_job.hpp"

namespace manygil::ext {

// The function to call: imported by reference, or unpickled (by value); cached per interpreter
// (except "__main__:" references, which exec() may redefine). Throws UnknownFunctionError, PythonError.
detail::PyRef resolve_callable(const CallableSpec& spec);

// manygil._worker.dumps (borrowed): the pickler for results of non-native types.
PyObject* worker_pickler();

// The exception pickled, or nothing if it cannot be (its error is swallowed).
std::optional<std::string> pickle_exception(PyObject* exc);

}  // namespace manygil::ext
