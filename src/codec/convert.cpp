// Value <-> Python objects, through the payload codec: one implementation of what crosses and how,
// whether it comes from a C++ host (Value) or from another interpreter (Payload).
#include "codec/convert.hpp"

#include <string>

#include "manygil/errors.hpp"
#include "codec/payload_python.hpp"
#include "cpython/python_error.hpp"

namespace manygil::detail {

PyRef to_python(const Value& value) { return decode_python(encode(value)); }

Value from_python(PyObject* obj, PyObject* pickler) { return decode_value(encode_python(obj, pickler)); }

PyRef args_to_python(const Args& args) {
    PyRef tuple(PyTuple_New(static_cast<Py_ssize_t>(args.size())));
    if (!tuple) throw_python_error();
    for (std::size_t i = 0; i < args.size(); ++i) {
        try {
            PyTuple_SET_ITEM(tuple.get(), static_cast<Py_ssize_t>(i), to_python(args[i]).release());
        } catch (ConversionError& e) {
            e.prepend_path("args[" + std::to_string(i) + "]");
            throw;
        }
    }
    return tuple;
}

PyRef kwargs_to_python(const Kwargs& kwargs) {
    if (kwargs.empty()) return PyRef();
    PyRef dict(PyDict_New());
    if (!dict) throw_python_error();
    for (const auto& [name, value] : kwargs) {
        std::string path = "kwargs['" + name + "']";
        PyRef v;
        try {
            v = to_python(value);
        } catch (ConversionError& e) {
            e.prepend_path(path);
            throw;
        }
        if (PyDict_SetItemString(dict.get(), name.c_str(), v.get()) < 0) {
            throw ConversionError("str", path, fetch_python_error().what());
        }
    }
    return dict;
}

}  // namespace manygil::detail
