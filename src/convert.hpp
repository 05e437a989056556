// Value <-> Python objects. Runs on the thread holding the target/source interpreter's GIL.
#pragma once

#include <Python.h>

#include "manygil/value.hpp"
#include "py_ref.hpp"

namespace manygil::detail {

// Builds a new Python object from a Value. Throws ConversionError (path relative to `value`, e.g.
// "[2]['k']") for what Python cannot represent: invalid UTF-8 in a str, an unhashable dict key.
PyRef to_python(const Value& value);

// Converts an object of an exact built-in type (None, bool, int, float, str, bytes, tuple, list,
// dict). Throws ConversionError naming the type and the path of the first object that is not.
Value from_python(PyObject* obj);

// How deep containers may nest before conversion refuses (this also catches self-containing lists).
inline constexpr int kMaxDepth = 200;

}  // namespace manygil::detail
