// How shared objects cross interpreters: the codec's registry of the Python types whose objects
// travel by reference. An object of such a type is written into a payload as a handle (a Value that
// shares the C++ object: a SharedBuffer, a Channel, a sync primitive) and read back, in whichever
// interpreter decodes the payload, as a new wrapper of that interpreter sharing the same object.
// The codec knows no such type: each registers itself (pytypes/crossing_types.hpp), as CPython's
// cross-interpreter data lets a type register how it crosses (Python/crossinterp.c). A new shared
// type (a shared container, say) adds an entry and a Value kind; the codec does not change.
//
// Contract:
// - One entry per handle kind (Value::Kind::Buffer, Channel, Sync, ...). register_crossing_type()
//   may run on any thread, any number of times: registering the entry a kind already has does
//   nothing; another entry for that kind replaces it. Entries live as long as the process (`type`
//   must have static storage duration) and are never removed.
// - Registration must happen before the first payload holding such a handle is decoded, and before
//   the first such object is encoded (manygil::Runtime's constructor and the creation of each type
//   in an interpreter do it). An object of a type not registered yet is not recognised (it is
//   pickled if a pickler is given, else refused), and a handle of a kind without an entry is refused.
// - Lookups take no lock: one atomic load per registered entry. The hooks run with the current
//   interpreter's GIL held.
// - The encoder looks here only for objects that are none of the native types (None, bool, int,
//   float, str, bytes, tuple, list, dict), just before pickling: the common values never pay for it.
#pragma once

#include <Python.h>

#include <vector>

#include "manygil/value.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

struct CrossingType {
    Value::Kind kind;  // the kind of the handles this entry encodes and decodes
    // Encoding: when obj is a wrapper of this type of the current interpreter, appends the handle
    // behind it to `handles` and returns true; else false, `handles` unchanged. May throw PythonError.
    bool (*unwrap)(PyObject* obj, std::vector<Value>& handles);
    // Decoding: a new wrapper, in the current interpreter, sharing the object of `handle` (of `kind`).
    // Throws PythonError.
    PyRef (*wrap)(const Value& handle);
};

void register_crossing_type(const CrossingType& type);

// Appends the handle behind obj to `handles` if a registered type wraps one (for the encoder).
bool unwrap_crossing(PyObject* obj, std::vector<Value>& handles);

// The entry for handles of `kind`, or nullptr (for the decoder).
const CrossingType* crossing_type(Value::Kind kind) noexcept;

}  // namespace manygil::detail
