// Turning the current Python exception into a C++ exception. Call with the GIL held.
#pragma once

#include <Python.h>

#include <string>

#include "manygil/errors.hpp"

namespace manygil::detail {

// Fetches (and clears) the raised exception and describes it. Requires an exception to be set.
PythonError fetch_python_error();

// Describes an exception object without touching the error indicator.
PythonError describe_exception(PyObject* exc);

// fetch_python_error(), thrown.
[[noreturn]] void throw_python_error();

// "Py_NewInterpreterFromConfig: <message>": what a failed PyStatus says, for error messages.
std::string describe_status(const PyStatus& status);

// "module.QualName" of a type, or just "QualName" for builtins.
std::string type_qualname(PyTypeObject* type);

}  // namespace manygil::detail
