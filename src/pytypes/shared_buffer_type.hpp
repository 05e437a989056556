// manygil.SharedBuffer, the Python face of manygil::SharedBuffer: a heap type created once per
// interpreter (cached in the interpreter's dict), whose instances wrap a shared block through the
// buffer protocol. Each interpreter has its own wrappers; the block is shared. Call with the GIL held.
#pragma once

#include <Python.h>

#include "manygil/shared_buffer.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

// The SharedBuffer type of the current interpreter (borrowed). Throws PythonError.
PyTypeObject* buffer_type();

// A new wrapper over the same memory, in the current interpreter.
PyRef wrap_buffer(const SharedBuffer& buffer);

// The buffer behind obj if it is a SharedBuffer wrapper of the current interpreter, else nullptr.
const SharedBuffer* unwrap_buffer(PyObject* obj);

}  // namespace manygil::detail
