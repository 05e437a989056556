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

// What the Python package lends the core in this interpreter: its pickler, how it rebuilds a worker's
// error as its own exception type, its exception factories. The package registers one provider when it
// is imported here (manygil/__init__.py: _core._set_package_hooks); package_hook("errors.rebuild") asks
// it once for that name and keeps the answer in this interpreter's dict. No C++ file imports a module
// of the package by name: a C++ host that never imported the package gets null (no Python error set)
// and its caller's plain fallback, and behaves as a Python user would without those hooks.
// Borrowed. Throws PythonError if the provider raises.
PyObject* package_hook(const char* name);

// Raises `e` as the package's NotShareableError (a TypeError: its "errors.not_shareable" hook), or as a
// plain TypeError where the package lends none. Returns nullptr, for `return raise_not_shareable(e);`.
PyObject* raise_not_shareable(const ConversionError& e);

// Registers `provider` (a callable: name -> object) for the current interpreter, replacing any earlier
// one and what it answered.
void set_package_hooks(PyObject* provider);

}  // namespace manygil::detail
