#include "convert.hpp"

#include <string>

#include "buffer_object.hpp"
#include "channel_object.hpp"
#include "sync_objects.hpp"
#include "manygil/errors.hpp"
#include "python_error.hpp"

namespace manygil::detail {

namespace {

const char* const kSupported =
    "not one of the types a manygil::Value holds (None, bool, int, float, str, bytes, tuple, list, "
    "dict, manygil.SharedBuffer, Channel, Lock, Event, Semaphore, Barrier; subclasses are refused rather than silently losing their type)";

std::string index_path(Py_ssize_t i) { return "[" + std::to_string(i) + "]"; }

// Wraps a Python error raised while building a container element into a ConversionError.
[[noreturn]] void conversion_failed(const Value& value) {
    PythonError e = fetch_python_error();
    throw ConversionError(value.type_name(), "", e.what());
}

Value pickle(PyObject* obj, PyObject* pickler) {
    PyRef data(PyObject_CallOneArg(pickler, obj));
    if (!data || !PyBytes_Check(data.get())) {
        std::string why = data ? "the pickler did not return bytes" : fetch_python_error().what();
        throw ConversionError(type_qualname(Py_TYPE(obj)), "", "cannot be pickled: " + why);
    }
    return Value(Pickled{std::string(PyBytes_AS_STRING(data.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(data.get())))});
}

PyRef unpickle(const Pickled& pickled) {
    PyRef pickle_module(PyImport_ImportModule("pickle"));
    if (!pickle_module) throw_python_error();
    PyRef data(PyBytes_FromStringAndSize(pickled.data.data(), static_cast<Py_ssize_t>(pickled.data.size())));
    if (!data) throw_python_error();
    PyRef obj(PyObject_CallMethod(pickle_module.get(), "loads", "O", data.get()));
    if (!obj) {
        PythonError e = fetch_python_error();
        throw ConversionError("pickled object", "", std::string("cannot be unpickled here: ") + e.what());
    }
    return obj;
}

PyRef to_python_at(const Value& value, int depth);

PyRef sequence_to_python(const std::vector<Value>& items, bool tuple, int depth) {
    auto n = static_cast<Py_ssize_t>(items.size());
    PyRef seq(tuple ? PyTuple_New(n) : PyList_New(n));
    if (!seq) throw_python_error();
    for (Py_ssize_t i = 0; i < n; ++i) {
        try {
            PyObject* item = to_python_at(items[static_cast<std::size_t>(i)], depth + 1).release();
            if (tuple) PyTuple_SET_ITEM(seq.get(), i, item);
            else PyList_SET_ITEM(seq.get(), i, item);
        } catch (ConversionError& e) {
            e.prepend_path(index_path(i));
            throw;
        }
    }
    return seq;
}

PyRef dict_to_python(const Value& value, int depth) {
    PyRef dict(PyDict_New());
    if (!dict) throw_python_error();
    for (const auto& [key, item] : value.as_dict()) {
        PyRef k, v;
        try {
            k = to_python_at(key, depth + 1);
        } catch (ConversionError& e) {
            e.prepend_path("<key " + key.repr() + ">");
            throw;
        }
        try {
            v = to_python_at(item, depth + 1);
        } catch (ConversionError& e) {
            e.prepend_path("[" + key.repr() + "]");
            throw;
        }
        if (PyDict_SetItem(dict.get(), k.get(), v.get()) < 0) {
            PythonError err = fetch_python_error();
            throw ConversionError(key.type_name(), "<key " + key.repr() + ">", err.what());
        }
    }
    return dict;
}

PyRef to_python_at(const Value& value, int depth) {
    if (depth > kMaxDepth) {
        throw ConversionError(value.type_name(), "", "nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    PyRef out;
    switch (value.kind()) {
        case Value::Kind::None: return PyRef::borrow(Py_None);
        case Value::Kind::Bool: return PyRef::borrow(value.as_bool() ? Py_True : Py_False);
        case Value::Kind::Int: out = PyRef(PyLong_FromLongLong(value.as_int())); break;
        case Value::Kind::BigInt: out = PyRef(PyLong_FromString(value.as_bigint().hex.c_str(), nullptr, 16)); break;
        case Value::Kind::Float: out = PyRef(PyFloat_FromDouble(value.as_float())); break;
        case Value::Kind::Str: {
            const std::string& s = value.as_str();
            // surrogatepass: a str holding lone surrogates survives the round trip.
            out = PyRef(PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "surrogatepass"));
            break;
        }
        case Value::Kind::Bytes: {
            const std::string& b = value.as_bytes().data;
            out = PyRef(PyBytes_FromStringAndSize(b.data(), static_cast<Py_ssize_t>(b.size())));
            break;
        }
        case Value::Kind::Tuple: return sequence_to_python(value.as_tuple(), true, depth);
        case Value::Kind::List: return sequence_to_python(value.as_list(), false, depth);
        case Value::Kind::Dict: return dict_to_python(value, depth);
        case Value::Kind::Pickled: return unpickle(value.as_pickled());
        case Value::Kind::Buffer: return wrap_buffer(value.as_buffer());
        case Value::Kind::Channel: return wrap_channel(value.as_channel());
        case Value::Kind::Sync: return wrap_sync(value.as_sync());
    }
    if (!out) conversion_failed(value);
    return out;
}

Value from_python_at(PyObject* obj, PyObject* pickler, int depth);

std::vector<Value> items_from_python(PyObject* seq, bool tuple, PyObject* pickler, int depth) {
    Py_ssize_t n = tuple ? PyTuple_GET_SIZE(seq) : PyList_GET_SIZE(seq);
    std::vector<Value> items;
    items.reserve(static_cast<std::size_t>(n));
    // A pickler runs arbitrary code (__reduce__) that may shrink the list: hold each item and
    // re-check the length.
    for (Py_ssize_t i = 0; i < (tuple ? n : PyList_GET_SIZE(seq)); ++i) {
        PyRef item = PyRef::borrow(tuple ? PyTuple_GET_ITEM(seq, i) : PyList_GET_ITEM(seq, i));
        try {
            items.push_back(from_python_at(item.get(), pickler, depth + 1));
        } catch (ConversionError& e) {
            e.prepend_path(index_path(i));
            throw;
        }
    }
    return items;
}

Value from_python_at(PyObject* obj, PyObject* pickler, int depth) {
    PyTypeObject* type = Py_TYPE(obj);
    if (depth > kMaxDepth) {
        throw ConversionError(type_qualname(type), "", "nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    if (obj == Py_None) return Value();
    if (type == &PyBool_Type) return Value(obj == Py_True);
    if (type == &PyLong_Type) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (!overflow) return Value(static_cast<std::int64_t>(v));
        PyRef hex(PyNumber_ToBase(obj, 16));  // base 16: exempt from the int<->str digit limit
        if (!hex) throw_python_error();
        return Value(BigInt{PyUnicode_AsUTF8(hex.get())});
    }
    if (type == &PyFloat_Type) return Value(PyFloat_AS_DOUBLE(obj));
    if (type == &PyUnicode_Type) {
        Py_ssize_t n = 0;
        if (const char* utf8 = PyUnicode_AsUTF8AndSize(obj, &n)) return Value(std::string(utf8, static_cast<std::size_t>(n)));
        PyErr_Clear();  // lone surrogates: keep them, as Python's own "surrogatepass" does
        PyRef encoded(PyUnicode_AsEncodedString(obj, "utf-8", "surrogatepass"));
        if (!encoded) throw_python_error();
        return Value(std::string(PyBytes_AS_STRING(encoded.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(encoded.get()))));
    }
    if (type == &PyBytes_Type) {
        return Value(Bytes{std::string(PyBytes_AS_STRING(obj), static_cast<std::size_t>(PyBytes_GET_SIZE(obj)))});
    }
    if (type == &PyTuple_Type) return Value(Tuple{items_from_python(obj, true, pickler, depth)});
    if (type == &PyList_Type) return Value(List{items_from_python(obj, false, pickler, depth)});
    if (type == &PyDict_Type) {
        Dict dict;
        dict.items.reserve(static_cast<std::size_t>(PyDict_GET_SIZE(obj)));
        Py_ssize_t pos = 0, size = PyDict_GET_SIZE(obj);
        PyObject *borrowed_key, *borrowed_item;
        while (PyDict_Next(obj, &pos, &borrowed_key, &borrowed_item)) {
            // Held, and the size re-checked: a pickler runs arbitrary code that may mutate the dict.
            PyRef key = PyRef::borrow(borrowed_key), item = PyRef::borrow(borrowed_item);
            Value k;
            try {
                k = from_python_at(key.get(), pickler, depth + 1);
            } catch (ConversionError& e) {
                e.prepend_path("<a key>");
                throw;
            }
            try {
                Value v = from_python_at(item.get(), pickler, depth + 1);
                dict.items.emplace_back(std::move(k), std::move(v));
            } catch (ConversionError& e) {
                e.prepend_path("[" + k.repr() + "]");
                throw;
            }
            if (PyDict_GET_SIZE(obj) != size) {
                throw ConversionError("dict", "", "changed size while being converted (a pickled value mutated it)");
            }
        }
        return Value(std::move(dict));
    }
    if (const SharedBuffer* buffer = unwrap_buffer(obj)) return Value(*buffer);  // by reference
    if (const Channel* channel = unwrap_channel(obj)) return Value(*channel);     // by reference
    if (auto primitive = unwrap_sync(obj)) return Value(std::move(*primitive));   // by reference
    if (pickler) return pickle(obj, pickler);
    throw ConversionError(type_qualname(type), "", kSupported);
}

}  // namespace

PyRef to_python(const Value& value) { return to_python_at(value, 0); }

Value from_python(PyObject* obj, PyObject* pickler) { return from_python_at(obj, pickler, 0); }

}  // namespace manygil::detail
