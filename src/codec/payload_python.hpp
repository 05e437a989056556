// Python objects <-> Payload: the hot path of every task argument, result and channel message.
// Objects are written straight into the payload's bytes and read straight back into new objects,
// with no tree in between. Runs on the thread holding the interpreter's GIL (each side its own).
#pragma once

#include <Python.h>

#include <vector>

#include "codec/payload.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

// Writes an object of an exact built-in type (None, bool, int, float, str, bytes, tuple, list, dict;
// SharedBuffer, Channel and sync primitives by reference). Anything else is pickled through
// `pickler` (a callable obj -> bytes, e.g. cloudpickle.dumps) when one is given; without one, or if
// it raises, throws ConversionError naming the type and the path of the object (e.g. "[2]['k']").
Payload encode_python(PyObject* obj, PyObject* pickler = nullptr);

// Appends one object to `w` and `handles` (for callers that build a container item by item).
// Throws as encode_python; `w` may then hold part of the object: truncate it.
void encode_python_into(PayloadWriter& w, std::vector<Value>& handles, PyObject* obj, PyObject* pickler);

// Builds new objects in the current interpreter. Throws ConversionError for what cannot be
// rebuilt here (invalid UTF-8 from a C++ host, an unhashable dict key, a pickle that does not
// load) and for malformed payloads. Without allow_pickled, pickled items are refused too (the
// fuzzer's setting: pickle.loads runs arbitrary code by design).
PyRef decode_python(const Payload& payload, bool allow_pickled = true);

// Releases objects that decode_python made (a task's arguments, its result), newest first, emptying
// `objects`; the floats of those nobody else holds go to this interpreter's decode cache
// (decode_cache.hpp), so the next payloads decoded here reuse them. Never throws; the GIL held, in
// the interpreter that decoded them.
void release_decoded(std::vector<PyRef>& objects) noexcept;

}  // namespace manygil::detail
