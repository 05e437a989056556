// manygil.Lock, Event, Semaphore and Barrier: Python faces of the primitives in sync.hpp, heap types
// created once per interpreter (like SharedBuffer and Channel). GIL held.
#pragma once

#include <Python.h>

#include <optional>

#include "manygil/sync.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

// The type of each primitive in the current interpreter (borrowed), by name: "Lock", "Event",
// "Semaphore", "Barrier". Throws PythonError.
PyTypeObject* sync_type(const char* name);

PyRef wrap_sync(const SyncPrimitive& primitive);
std::optional<SyncPrimitive> unwrap_sync(PyObject* obj);

}  // namespace manygil::detail
