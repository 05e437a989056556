// Value <-> Python objects. Runs on the thread holding the target/source interpreter's GIL.
#pragma once

#include <Python.h>

#include "manygil/value.hpp"
#include "codec/payload.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

// Builds a new Python object from a Value. Throws ConversionError (path relative to `value`, e.g.
// "[2]['k']") for what Python cannot represent: invalid UTF-8 in a str, an unhashable dict key.
PyRef to_python(const Value& value);

// Converts an object of an exact built-in type (None, bool, int, float, str, bytes, tuple, list,
// dict). Anything else becomes Pickled through `pickler` (a callable obj -> bytes, e.g.
// cloudpickle.dumps) when one is given; without one, or if it raises, throws ConversionError naming
// the type and the path of the object.
Value from_python(PyObject* obj, PyObject* pickler = nullptr);

// A call's arguments as Python objects: a tuple, and a dict (null when there are none). Throws
// ConversionError with the path of the culprit ("args[1]", "kwargs['name']").
PyRef args_to_python(const Args& args);
PyRef kwargs_to_python(const Kwargs& kwargs);

}  // namespace manygil::detail
