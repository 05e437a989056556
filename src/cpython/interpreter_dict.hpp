// What manygil keeps per interpreter (its Python types, caches, helpers) lives in that interpreter's
// own dict (PyInterpreterState_GetDict): created on first use there, gone when the interpreter ends,
// never shared with another interpreter. Call with the GIL held.
#pragma once

#include <Python.h>

#include "manygil/errors.hpp"
#include "cpython/py_ref.hpp"
#include "cpython/python_error.hpp"

namespace manygil::detail {

// The entry `key` of the current interpreter's dict, created by make() (a new reference, or null
// with a Python error) on first use. Borrowed: the interpreter's dict holds it. Throws PythonError.
template <class Make>
PyObject* per_interpreter(const char* key, Make make) {
    PyObject* state = PyInterpreterState_GetDict(PyInterpreterState_Get());
    if (!state) throw PythonError("SystemError", "manygil: the interpreter has no state dict", "");
    if (PyObject* value = PyDict_GetItemString(state, key)) return value;
    PyRef value(make());
    if (!value || PyDict_SetItemString(state, key, value.get()) < 0) throw_python_error();
    return value.get();
}

}  // namespace manygil::detail
