// Value <-> Python objects, through the payload codec: one implementation of what crosses and how,
// whether it comes from a C++ host (Value) or from another interpreter (Payload).
#include "convert.hpp"

#include "payload_python.hpp"

namespace manygil::detail {

PyRef to_python(const Value& value) { return decode_python(encode(value)); }

Value from_python(PyObject* obj, PyObject* pickler) { return decode_value(encode_python(obj, pickler)); }

}  // namespace manygil::detail
