// manygil.SharedDict, the Python face of manygil::SharedDict (include/manygil/shared_dict.hpp): a heap
// type created once per interpreter and cached in the interpreter's dict, like SharedBuffer and
// Channel. Each interpreter has its own wrappers; the store is shared. GIL held in every function.
//
// A read takes the shard's shared lock only to take a reference to the stored payload, then decodes
// it into new objects of the caller's interpreter with the lock released; a write encodes first,
// then takes the shard's exclusive lock to swap the entry in. No lock is held while Python code runs
// (== in compare_and_set, a key's __eq__ never runs: keys are compared as encoded bytes).
#pragma once

#include <Python.h>

#include "manygil/shared_dict.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

// The SharedDict type of the current interpreter (borrowed). Throws PythonError.
PyTypeObject* shared_dict_type();

PyRef wrap_shared_dict(const SharedDict& dict);
const SharedDict* unwrap_shared_dict(PyObject* obj);

}  // namespace manygil::detail
