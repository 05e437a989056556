#include "pytypes/shared_dict_type.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec/payload_python.hpp"
#include "cpython/interpreter_dict.hpp"
#include "cpython/python_error.hpp"
#include "pytypes/handle_type.hpp"
#include "shared/shared_dict_access.hpp"

namespace manygil::detail {

namespace {

using DictType = HandleType<SharedDict>;
using Access = SharedDictAccess;

SharedDict& dict_of(PyObject* op) { return DictType::of(op); }


// The C++ errors a SharedDict call can end in, as Python exceptions (null returned for convenience).
PyObject* raise_from(const std::exception& e) {
    if (auto* c = dynamic_cast<const ConversionError*>(&e)) return raise_not_shareable(*c);
    if (dynamic_cast<const NotAnInteger*>(&e)) {
        PyErr_SetString(PyExc_TypeError, e.what());
    } else if (dynamic_cast<const InvalidArgument*>(&e)) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } else if (dynamic_cast<const std::bad_alloc*>(&e)) {
        PyErr_NoMemory();
    } else {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

constexpr const char* kKeyTypes = "a SharedDict key is None, bool, int, float, str, bytes or a tuple of those";

// Whether obj may be a key (exact types only: a subclass could define its own == and hash).
bool is_key(PyObject* obj, int depth = 0) {
    PyTypeObject* t = Py_TYPE(obj);
    if (t == &PyUnicode_Type || t == &PyLong_Type || t == &PyBytes_Type || t == &PyFloat_Type || t == &PyBool_Type ||
        obj == Py_None) {
        return true;
    }
    if (t != &PyTuple_Type || depth >= kMaxDepth) return false;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(obj); ++i) {
        if (!is_key(PyTuple_GET_ITEM(obj, i), depth + 1)) return false;
    }
    return true;
}

// A key's bytes (its payload), or nullopt with NotShareableError set.
std::optional<std::string> key_of(PyObject* key) {
    if (!is_key(key)) {
        raise_not_shareable(ConversionError(Py_TYPE(key)->tp_name, "<a key>", kKeyTypes));
        return std::nullopt;
    }
    try {
        Payload p = encode_python(key);
        return std::string(p.bytes.view());
    } catch (const std::exception& e) {
        raise_from(e);
        return std::nullopt;
    }
}

// A value's payload (native types; SharedBuffer, Channel and sync objects by reference), or nullopt
// with NotShareableError set: nothing is pickled, since a store outlives the classes of the process.
std::optional<Payload> value_of(PyObject* value) {
    try {
        return encode_python(value);
    } catch (const std::exception& e) {
        raise_from(e);
        return std::nullopt;
    }
}

PyObject* decode(const Payload& payload) {
    try {
        return decode_python(payload, /*allow_pickled=*/false).release();
    } catch (const std::exception& e) {
        return raise_from(e);
    }
}
PyObject* decode(const Access::Stored& stored) { return decode(*stored); }

// ttl: None or a positive number of seconds.
bool parse_ttl(PyObject* arg, SharedDict::Ttl& ttl) {
    if (!arg || arg == Py_None) {
        ttl.reset();
        return true;
    }
    double s = PyFloat_AsDouble(arg);
    if (s == -1.0 && PyErr_Occurred()) return false;
    if (!(s > 0)) {
        PyErr_Format(PyExc_ValueError, "ttl must be a positive number of seconds or None, not %R", arg);
        return false;
    }
    ttl = std::chrono::duration<double>(s);
    return true;
}

PyObject* raise_key_error(PyObject* key) {
    PyErr_SetObject(PyExc_KeyError, key);
    return nullptr;
}

// -- the mapping ------------------------------------------------------------------------------------

PyObject* dict_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    Py_ssize_t max_bytes = 0;
    static const char* kw[] = {"max_bytes", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:SharedDict", const_cast<char**>(kw), &max_bytes)) return nullptr;
    if (max_bytes < 0) return PyErr_Format(PyExc_ValueError, "max_bytes must be >= 0 (0: no budget), not %zd", max_bytes);
    return DictType::make(type, SharedDict({.max_bytes = static_cast<std::size_t>(max_bytes)}));
}

PyObject* dict_named(PyObject* cls, PyObject* args, PyObject* kwargs) {
    const char* name;
    PyObject* max_bytes_arg = Py_None;
    static const char* kw[] = {"name", "max_bytes", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|O:named", const_cast<char**>(kw), &name, &max_bytes_arg)) {
        return nullptr;
    }
    std::optional<SharedDictOptions> options;
    if (max_bytes_arg != Py_None) {
        Py_ssize_t max_bytes = PyNumber_AsSsize_t(max_bytes_arg, PyExc_OverflowError);
        if (max_bytes == -1 && PyErr_Occurred()) return nullptr;
        if (max_bytes < 0) {
            return PyErr_Format(PyExc_ValueError, "max_bytes must be >= 0 (0: no budget), not %zd", max_bytes);
        }
        options = SharedDictOptions{.max_bytes = static_cast<std::size_t>(max_bytes)};
    }
    try {
        return DictType::make(reinterpret_cast<PyTypeObject*>(cls), SharedDict::named(name, options));
    } catch (const std::exception& e) {
        return raise_from(e);
    }
}

PyObject* dict_subscript(PyObject* self, PyObject* key) {
    auto k = key_of(key);
    if (!k) return nullptr;
    Access::Read v = Access::get(dict_of(self), *k);
    return v ? decode(v.payload()) : raise_key_error(key);
}

int dict_ass_subscript(PyObject* self, PyObject* key, PyObject* value) {
    auto k = key_of(key);
    if (!k) return -1;
    if (!value) {  // del d[key]
        if (Access::erase(dict_of(self), *k)) return 0;
        raise_key_error(key);
        return -1;
    }
    auto v = value_of(value);
    if (!v) return -1;
    try {
        Access::set(dict_of(self), std::move(*k), std::move(*v), std::nullopt);
        return 0;
    } catch (const std::exception& e) {
        raise_from(e);
        return -1;
    }
}

int dict_contains(PyObject* self, PyObject* key) {
    auto k = key_of(key);
    if (!k) return -1;
    return Access::contains(dict_of(self), *k) ? 1 : 0;
}

Py_ssize_t dict_length(PyObject* self) { return static_cast<Py_ssize_t>(dict_of(self).size()); }

PyObject* dict_get(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) return PyErr_Format(PyExc_TypeError, "get() takes 1 or 2 arguments (%zd given)", nargs);
    auto k = key_of(args[0]);
    if (!k) return nullptr;
    if (Access::Read v = Access::get(dict_of(self), *k)) return decode(v.payload());
    PyObject* dflt = nargs > 1 ? args[1] : Py_None;
    return Py_NewRef(dflt);
}

// A write's arguments, checked and encoded: false with the Python error set.
struct Write {
    std::string key;
    Payload value;
    SharedDict::Ttl ttl;
};
bool parse_write(PyObject* key, PyObject* value, PyObject* ttl_arg, Write& out) {
    if (!parse_ttl(ttl_arg, out.ttl)) return false;
    auto k = key_of(key);
    if (!k) return false;
    auto v = value_of(value);
    if (!v) return false;
    out.key = std::move(*k);
    out.value = std::move(*v);
    return true;
}

// set(key, value, ttl=None), add(key, value, ttl=None) -> bool
PyObject* store(PyObject* self, PyObject* args, PyObject* kwargs, bool only_if_absent) {
    PyObject *key, *value, *ttl_arg = nullptr;
    static const char* kw[] = {"key", "value", "ttl", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, only_if_absent ? "OO|O:add" : "OO|O:set", const_cast<char**>(kw),
                                     &key, &value, &ttl_arg)) {
        return nullptr;
    }
    Write w;
    if (!parse_write(key, value, ttl_arg, w)) return nullptr;
    try {
        if (only_if_absent) return PyBool_FromLong(Access::add(dict_of(self), std::move(w.key), std::move(w.value), w.ttl));
        Access::set(dict_of(self), std::move(w.key), std::move(w.value), w.ttl);
        Py_RETURN_NONE;
    } catch (const std::exception& e) {
        return raise_from(e);
    }
}
PyObject* dict_set(PyObject* self, PyObject* args, PyObject* kwargs) { return store(self, args, kwargs, false); }
PyObject* dict_add(PyObject* self, PyObject* args, PyObject* kwargs) { return store(self, args, kwargs, true); }

PyObject* dict_setdefault(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject *key, *dflt = Py_None, *ttl_arg = nullptr;
    static const char* kw[] = {"key", "default", "ttl", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO:setdefault", const_cast<char**>(kw), &key, &dflt, &ttl_arg)) {
        return nullptr;
    }
    Write w;
    if (!parse_write(key, dflt, ttl_arg, w)) return nullptr;
    try {
        Access::Stored existing = Access::setdefault(dict_of(self), std::move(w.key), std::move(w.value), w.ttl);
        return existing ? decode(existing) : Py_NewRef(dflt);
    } catch (const std::exception& e) {
        return raise_from(e);
    }
}

PyObject* dict_pop(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) return PyErr_Format(PyExc_TypeError, "pop() takes 1 or 2 arguments (%zd given)", nargs);
    auto k = key_of(args[0]);
    if (!k) return nullptr;
    if (Access::Stored v = Access::pop(dict_of(self), *k)) return decode(v);
    return nargs > 1 ? Py_NewRef(args[1]) : raise_key_error(args[0]);
}

PyObject* dict_incr(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject *key, *initial_arg = Py_None;
    long long delta = 1;
    static const char* kw[] = {"key", "delta", "initial", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|LO:incr", const_cast<char**>(kw), &key, &delta, &initial_arg)) {
        return nullptr;
    }
    std::optional<std::int64_t> initial;
    if (initial_arg != Py_None) {
        long long i = PyLong_AsLongLong(initial_arg);
        if (i == -1 && PyErr_Occurred()) return nullptr;
        initial = i;
    }
    auto k = key_of(key);
    if (!k) return nullptr;
    try {
        return PyLong_FromLongLong(Access::incr(dict_of(self), std::move(*k), delta, initial));
    } catch (const KeyNotFound&) {
        return raise_key_error(key);
    } catch (const std::exception& e) {
        return raise_from(e);
    }
}

// compare_and_set(key, expected, value, ttl=None) -> bool: replaces key's value with value if the
// value stored now == expected (Python's ==, run with no lock held; the write happens only if nobody
// wrote the key in between, else it reads again).
PyObject* dict_compare_and_set(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject *key, *expected, *value, *ttl_arg = nullptr;
    static const char* kw[] = {"key", "expected", "value", "ttl", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|O:compare_and_set", const_cast<char**>(kw), &key, &expected,
                                     &value, &ttl_arg)) {
        return nullptr;
    }
    Write w;
    if (!parse_write(key, value, ttl_arg, w)) return nullptr;
    try {
        for (;;) {
            Access::Versioned now = Access::get_versioned(dict_of(self), w.key);
            if (!now.value) Py_RETURN_FALSE;
            PyRef current(decode(now.value));
            if (!current) return nullptr;
            int same = PyObject_RichCompareBool(current.get(), expected, Py_EQ);
            if (same < 0) return nullptr;
            if (!same) Py_RETURN_FALSE;
            Payload attempt{ByteBuffer(w.value.bytes.view()), w.value.handles};  // w kept for a retry
            if (Access::set_if_version(dict_of(self), w.key, std::move(attempt), now.version, w.ttl)) Py_RETURN_TRUE;
        }
    } catch (const std::exception& e) {
        return raise_from(e);
    }
}

// update(mapping_or_pairs=(), /, ttl=None, **kwargs): every pair stored at once, or none (as
// dict.update takes them: a mapping, or an iterable of pairs, then the keyword arguments).
PyObject* dict_update(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject* source = nullptr;
    if (!PyArg_UnpackTuple(args, "update", 0, 1, &source)) return nullptr;
    std::vector<std::pair<std::string, Payload>> items;
    auto take = [&](PyObject* key, PyObject* value) {
        auto k = key_of(key);
        if (!k) return false;
        auto v = value_of(value);
        if (!v) return false;
        items.emplace_back(std::move(*k), std::move(*v));
        return true;
    };
    if (source && PyDict_Check(source)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(source, &pos, &key, &value)) {
            if (!take(key, value)) return nullptr;
        }
    } else if (source && PyObject_HasAttrString(source, "keys")) {
        PyRef keys(PyMapping_Keys(source));
        if (!keys) return nullptr;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys.get()); ++i) {
            PyObject* key = PyList_GET_ITEM(keys.get(), i);
            PyRef value(PyObject_GetItem(source, key));
            if (!value || !take(key, value.get())) return nullptr;
        }
    } else if (source) {
        PyRef it(PyObject_GetIter(source));
        if (!it) return nullptr;
        while (PyRef pair{PyIter_Next(it.get())}) {
            PyRef fast(PySequence_Fast(pair.get(), "update: each item must be a (key, value) pair"));
            if (!fast) return nullptr;
            if (PySequence_Fast_GET_SIZE(fast.get()) != 2) {
                return PyErr_Format(PyExc_ValueError, "update: a pair has %zd elements, not 2",
                                    PySequence_Fast_GET_SIZE(fast.get()));
            }
            if (!take(PySequence_Fast_GET_ITEM(fast.get(), 0), PySequence_Fast_GET_ITEM(fast.get(), 1))) return nullptr;
        }
        if (PyErr_Occurred()) return nullptr;
    }
    PyObject* ttl_arg = nullptr;
    if (kwargs) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(kwargs, &pos, &key, &value)) {
            if (PyUnicode_CompareWithASCIIString(key, "ttl") == 0) {
                ttl_arg = value;
            } else if (!take(key, value)) {
                return nullptr;
            }
        }
    }
    SharedDict::Ttl ttl;
    if (!parse_ttl(ttl_arg, ttl)) return nullptr;
    try {
        Access::update(dict_of(self), std::move(items), ttl);
        Py_RETURN_NONE;
    } catch (const std::exception& e) {
        return raise_from(e);
    }
}

PyObject* dict_touch(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject *key, *ttl_arg = Py_None;
    static const char* kw[] = {"key", "ttl", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:touch", const_cast<char**>(kw), &key, &ttl_arg)) return nullptr;
    SharedDict::Ttl ttl;
    if (!parse_ttl(ttl_arg, ttl)) return nullptr;
    auto k = key_of(key);
    if (!k) return nullptr;
    try {
        return PyBool_FromLong(Access::touch(dict_of(self), *k, ttl));
    } catch (const std::exception& e) {
        return raise_from(e);
    }
}

PyObject* dict_get_many(PyObject* self, PyObject* keys) {
    PyRef out(PyDict_New());
    PyRef it(PyObject_GetIter(keys));
    if (!out || !it) return nullptr;
    while (PyRef key{PyIter_Next(it.get())}) {
        auto k = key_of(key.get());
        if (!k) return nullptr;
        if (Access::Read v = Access::get(dict_of(self), *k)) {
            PyRef value(decode(v.payload()));
            if (!value || PyDict_SetItem(out.get(), key.get(), value.get()) < 0) return nullptr;
        }
    }
    if (PyErr_Occurred()) return nullptr;
    return out.release();
}

PyObject* dict_clear(PyObject* self, PyObject*) {
    dict_of(self).clear();
    Py_RETURN_NONE;
}

PyObject* decode_key(const std::string& k) { return decode(Payload{ByteBuffer(k), {}}); }

PyObject* dict_keys(PyObject* self, PyObject*) {
    std::vector<std::string> keys = Access::keys(dict_of(self));
    PyRef out(PyList_New(static_cast<Py_ssize_t>(keys.size())));
    if (!out) return nullptr;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        PyObject* key = decode_key(keys[i]);
        if (!key) return nullptr;
        PyList_SET_ITEM(out.get(), static_cast<Py_ssize_t>(i), key);
    }
    return out.release();
}

// values() and items(): 0 values, 1 items
PyObject* entries(PyObject* self, bool with_keys) {
    auto items = Access::items(dict_of(self));
    PyRef out(PyList_New(static_cast<Py_ssize_t>(items.size())));
    if (!out) return nullptr;
    for (std::size_t i = 0; i < items.size(); ++i) {
        PyObject* value = decode(items[i].second);
        if (!value) return nullptr;
        PyObject* item = value;
        if (with_keys) {
            PyObject* key = decode_key(items[i].first);
            item = key ? PyTuple_Pack(2, key, value) : nullptr;
            Py_XDECREF(key);
            Py_DECREF(value);
            if (!item) return nullptr;
        }
        PyList_SET_ITEM(out.get(), static_cast<Py_ssize_t>(i), item);
    }
    return out.release();
}
PyObject* dict_values(PyObject* self, PyObject*) { return entries(self, false); }
PyObject* dict_items(PyObject* self, PyObject*) { return entries(self, true); }

PyObject* dict_iter(PyObject* self) {
    PyRef keys(dict_keys(self, nullptr));
    return keys ? PyObject_GetIter(keys.get()) : nullptr;
}

PyObject* dict_stats(PyObject* self, PyObject*) {
    SharedDictStats s = dict_of(self).stats();
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:n,s:n,s:n}", "hits", static_cast<unsigned long long>(s.hits), "misses",
                         static_cast<unsigned long long>(s.misses), "evictions",
                         static_cast<unsigned long long>(s.evictions), "expirations",
                         static_cast<unsigned long long>(s.expirations), "entries", static_cast<Py_ssize_t>(s.entries),
                         "bytes", static_cast<Py_ssize_t>(s.bytes), "max_bytes", static_cast<Py_ssize_t>(s.max_bytes));
}

PyObject* dict_get_max_bytes(PyObject* self, void*) { return PyLong_FromSize_t(dict_of(self).options().max_bytes); }

PyObject* dict_repr(PyObject* self) {
    SharedDictStats s = dict_of(self).stats();
    if (s.max_bytes) return PyUnicode_FromFormat("<manygil.SharedDict: %zu entries, %zu of %zu bytes>", s.entries, s.bytes, s.max_bytes);
    return PyUnicode_FromFormat("<manygil.SharedDict: %zu entries>", s.entries);
}

constexpr char kNotPicklable[] =
    "a SharedDict cannot be pickled: it travels by reference to manygil workers and through channels";

#define MG_KW(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f)), METH_VARARGS | METH_KEYWORDS
#define MG_FAST(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f)), METH_FASTCALL

PyMethodDef dict_methods[] = {
    {"named", MG_KW(dict_named) | METH_CLASS,
     "named(name, max_bytes=None): the process-wide SharedDict of that name, created on first use (by any "
     "interpreter; max_bytes None: 0) and kept until the process ends; a later call that gives max_bytes must give "
     "the same"},
    {"get", MG_FAST(dict_get), "get(key, default=None): the value of key, or default"},
    {"set", MG_KW(dict_set), "set(key, value, ttl=None): store value under key, expiring after ttl seconds"},
    {"add", MG_KW(dict_add), "add(key, value, ttl=None) -> bool: store only if key is absent"},
    {"setdefault", MG_KW(dict_setdefault),
     "setdefault(key, default=None, ttl=None): the value of key; if absent, store default and return it"},
    {"pop", MG_FAST(dict_pop), "pop(key[, default]): remove key and return its value (KeyError without default)"},
    {"incr", MG_KW(dict_incr),
     "incr(key, delta=1, initial=None) -> int: add delta to the int under key, atomically; an absent key starts at "
     "initial (KeyError if None); TypeError for a value that is not an int; keeps the key's ttl"},
    {"compare_and_set", MG_KW(dict_compare_and_set),
     "compare_and_set(key, expected, value, ttl=None) -> bool: replace key's value with value if it == expected, "
     "atomically (False if absent or different)"},
    {"update", MG_KW(dict_update),
     "update(mapping_or_pairs=(), /, ttl=None, **kwargs): store every pair at once; a bad key or value stores none"},
    {"touch", MG_KW(dict_touch), "touch(key, ttl=None) -> bool: give key a new time to live (None: never expires)"},
    {"get_many", reinterpret_cast<PyCFunction>(dict_get_many), METH_O,
     "get_many(keys) -> dict: the keys that are present, with their values"},
    {"clear", dict_clear, METH_NOARGS, "clear(): remove every key"},
    {"keys", dict_keys, METH_NOARGS, "keys() -> list: a snapshot of the keys, in no particular order"},
    {"values", dict_values, METH_NOARGS, "values() -> list: a snapshot of the values"},
    {"items", dict_items, METH_NOARGS, "items() -> list of (key, value): a snapshot"},
    {"stats", dict_stats, METH_NOARGS,
     "stats() -> dict: hits, misses, evictions, expirations, entries, bytes, max_bytes"},
    {"__reduce__", refuse_pickle<kNotPicklable>, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

#undef MG_KW
#undef MG_FAST

PyGetSetDef dict_getset[] = {
    {"max_bytes", dict_get_max_bytes, nullptr, "the byte budget (0: none, nothing is evicted)", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot dict_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(dict_new)},
    {Py_tp_methods, dict_methods},
    {Py_tp_getset, dict_getset},
    {Py_tp_iter, reinterpret_cast<void*>(dict_iter)},
    {Py_tp_repr, reinterpret_cast<void*>(dict_repr)},
    {Py_tp_richcompare, reinterpret_cast<void*>(DictType::richcompare)},
    {Py_tp_hash, reinterpret_cast<void*>(PyObject_HashNotImplemented)},
    {Py_mp_subscript, reinterpret_cast<void*>(dict_subscript)},
    {Py_mp_ass_subscript, reinterpret_cast<void*>(dict_ass_subscript)},
    {Py_mp_length, reinterpret_cast<void*>(dict_length)},
    {Py_sq_contains, reinterpret_cast<void*>(dict_contains)},
    {Py_tp_doc, const_cast<char*>(
                    "SharedDict(max_bytes=0): a dict every interpreter of the process reads and writes.\n\n"
                    "Keys: None, bool, int, float, str, bytes and tuples of those, compared by value and type\n"
                    "(1, 1.0 and True are three keys). Values: what a task argument may be without pickle (native\n"
                    "types; SharedBuffer, Channel and the sync objects by reference); a read returns new objects.\n"
                    "Every call is atomic. With max_bytes, a cache: entries are evicted by CLOCK (second chance)\n"
                    "to stay within the budget; set(key, value, ttl=seconds) expires a key. It travels by\n"
                    "reference (task arguments, channels); workers also find one by name: SharedDict.named(name).")},
    {0, nullptr},
};

constexpr DictType kDictType{"manygil.SharedDict", dict_slots};

}  // namespace

PyTypeObject* shared_dict_type() { return kDictType.type(); }

PyRef wrap_shared_dict(const SharedDict& dict) { return kDictType.wrap(dict); }

const SharedDict* unwrap_shared_dict(PyObject* obj) { return kDictType.unwrap(obj); }

}  // namespace manygil::detail
