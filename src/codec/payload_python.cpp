#include "codec/payload_python.hpp"

#include <string>

#include "codec/crossing.hpp"
#include "codec/decode_cache.hpp"
#include "cpython/private_api.hpp"
#include "cpython/python_error.hpp"

namespace manygil::detail {

namespace {

const char* const kSupported =
    "not one of the types a manygil::Value holds (None, bool, int, float, str, bytes, tuple, list, "
    "dict, manygil.SharedBuffer, Channel, Lock, Event, Semaphore, Barrier; subclasses are refused rather than "
    "silently losing their type)";

std::string index_path(std::size_t i) { return "[" + std::to_string(i) + "]"; }

// repr() for an error path; never throws, never leaves an exception set.
std::string repr_for_path(PyObject* obj) {
    PyRef r(PyObject_Repr(obj));
    Py_ssize_t n = 0;
    const char* s = r ? PyUnicode_AsUTF8AndSize(r.get(), &n) : nullptr;
    if (!s) {
        PyErr_Clear();
        return "<" + type_qualname(Py_TYPE(obj)) + ">";
    }
    return std::string(s, static_cast<std::size_t>(n));
}

// ---- encoding ------------------------------------------------------------------------------------

class Encoder {
public:
    Encoder(PayloadWriter& w, std::vector<Value>& handles, PyObject* pickler) : w_(w), handles_(handles), pickler_(pickler) {}

    void encode(PyObject* obj, int depth) {
        PyTypeObject* type = Py_TYPE(obj);
        // Scalars first: they are most of the items, and they run no Python code.
        if (encode_number(obj)) return;
        if (type == &PyLong_Type) return encode_int(obj);
        if (type == &PyUnicode_Type) return encode_str(obj);
        if (obj == Py_None) return w_.tag(Tag::None);
        if (type == &PyBool_Type) return w_.tag(obj == Py_True ? Tag::True : Tag::False);
        if (type == &PyBytes_Type) {
            return w_.tagged_bytes(Tag::Bytes, PyBytes_AS_STRING(obj), static_cast<std::size_t>(PyBytes_GET_SIZE(obj)));
        }
        if (depth > kMaxDepth) {
            throw ConversionError(type_qualname(type), "", "nested deeper than " + std::to_string(kMaxDepth) + " levels");
        }
        if (type == &PyList_Type) return encode_sequence(obj, Tag::List, depth);
        if (type == &PyTuple_Type) return encode_sequence(obj, Tag::Tuple, depth);
        if (type == &PyDict_Type) return encode_dict(obj, depth);
        // A shared object (SharedBuffer, Channel, ...): by reference, through the types' registry.
        if (std::size_t at = handles_.size(); unwrap_crossing(obj, handles_)) return w_.tagged_count(Tag::Handle, at);
        if (pickler_) return pickle(obj);
        throw ConversionError(type_qualname(type), "", kSupported);
    }

private:
    // A float, or an int that fits a machine word: the commonest items of big payloads, written
    // inline by the loops over lists and dicts (true), or not one of them (false, nothing written).
    static bool is_number(PyObject* obj) noexcept {
        PyTypeObject* type = Py_TYPE(obj);
        return type == &PyFloat_Type || (type == &PyLong_Type && is_compact_long(obj));
    }
    [[gnu::always_inline]] bool encode_number(PyObject* obj) {
        PyTypeObject* type = Py_TYPE(obj);
        if (type == &PyFloat_Type) {
            w_.tagged_float(PyFloat_AS_DOUBLE(obj));
            return true;
        }
        std::int64_t v;
        if (type == &PyLong_Type && compact_long(obj, &v)) {
            w_.tagged_int(v);
            return true;
        }
        return false;
    }

    void encode_int(PyObject* obj) {  // not compact (encode_number() takes those)
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (!overflow) return w_.tagged_int(v);
        PyRef hex(PyNumber_ToBase(obj, 16));  // base 16: exempt from the int<->str digit limit
        Py_ssize_t n = 0;
        const char* s = hex ? PyUnicode_AsUTF8AndSize(hex.get(), &n) : nullptr;
        if (!s) throw_python_error();
        w_.tagged_bytes(Tag::BigInt, s, static_cast<std::size_t>(n));
    }

    void encode_ascii(PyObject* obj) {
        w_.tagged_bytes(Tag::Ascii, PyUnicode_DATA(obj), static_cast<std::size_t>(PyUnicode_GET_LENGTH(obj)));
    }

    void encode_str(PyObject* obj) {
        if (PyUnicode_IS_ASCII(obj)) return encode_ascii(obj);
        Py_ssize_t n = 0;
        if (const char* utf8 = PyUnicode_AsUTF8AndSize(obj, &n)) {
            return w_.tagged_bytes(Tag::Str, utf8, static_cast<std::size_t>(n));
        }
        PyErr_Clear();  // lone surrogates: keep them, as Python's own "surrogatepass" does
        PyRef encoded(PyUnicode_AsEncodedString(obj, "utf-8", "surrogatepass"));
        if (!encoded) throw_python_error();
        w_.tagged_bytes(Tag::Str, PyBytes_AS_STRING(encoded.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(encoded.get())));
    }

    static bool runs_no_code(PyObject* obj) {
        PyTypeObject* t = Py_TYPE(obj);
        return t == &PyFloat_Type || t == &PyLong_Type || t == &PyUnicode_Type || t == &PyBytes_Type ||
               t == &PyBool_Type || obj == Py_None;
    }

    void encode_sequence(PyObject* seq, Tag tag, int depth) {
        const bool tuple = tag == Tag::Tuple;
        const Py_ssize_t n = Py_SIZE(seq);
        w_.tagged_count(tag, static_cast<std::uint64_t>(n));
        w_.expect(9 * static_cast<std::size_t>(n));  // enough for scalar items
        // The bound is re-read: a pickler runs arbitrary code that may shrink the list (checked below).
        for (Py_ssize_t i = 0; i < n && i < Py_SIZE(seq); ++i) {
            PyObject* item = tuple ? PyTuple_GET_ITEM(seq, i) : PyList_GET_ITEM(seq, i);
            if (encode_number(item)) continue;
            try {
                if (runs_no_code(item)) {
                    encode(item, depth + 1);
                } else {
                    PyRef held = PyRef::borrow(item);  // Python code may drop the list's reference
                    encode(held.get(), depth + 1);
                }
            } catch (ConversionError& e) {
                e.prepend_path(index_path(static_cast<std::size_t>(i)));
                throw;
            }
        }
        if (Py_SIZE(seq) != n) {
            throw ConversionError("list", "", "changed size while being converted (a pickled value mutated it)");
        }
    }

    void encode_dict(PyObject* dict, int depth) {
        Py_ssize_t size = PyDict_GET_SIZE(dict), pos = 0;
        w_.tagged_count(Tag::Dict, static_cast<std::uint64_t>(size));
        w_.expect(16 * static_cast<std::size_t>(size));  // enough for short keys and scalar values
        PyObject *key, *item;
        while (PyDict_Next(dict, &pos, &key, &item)) {
            if (Py_IS_TYPE(key, &PyUnicode_Type) && PyUnicode_IS_ASCII(key) && is_number(item)) {
                encode_ascii(key);  // the commonest item of records, written inline
                encode_number(item);
                continue;
            }
            if (runs_no_code(key) && runs_no_code(item)) {  // records: nothing can mutate the dict
                encode(key, depth + 1);
                encode(item, depth + 1);
                continue;
            }
            // Held, and the size re-checked: a pickler runs arbitrary code that may mutate the dict.
            PyRef held_key = PyRef::borrow(key), held_item = PyRef::borrow(item);
            try {
                encode(key, depth + 1);
            } catch (ConversionError& e) {
                e.prepend_path("<a key>");
                throw;
            }
            try {
                encode(item, depth + 1);
            } catch (ConversionError& e) {
                e.prepend_path("[" + repr_for_path(key) + "]");
                throw;
            }
            if (PyDict_GET_SIZE(dict) != size) {
                throw ConversionError("dict", "", "changed size while being converted (a pickled value mutated it)");
            }
        }
    }

    void pickle(PyObject* obj) {
        PyRef data(PyObject_CallOneArg(pickler_, obj));
        if (!data || !PyBytes_Check(data.get())) {
            std::string why = data ? "the pickler did not return bytes" : fetch_python_error().what();
            throw ConversionError(type_qualname(Py_TYPE(obj)), "", "cannot be pickled: " + why);
        }
        w_.tagged_bytes(Tag::Pickled, PyBytes_AS_STRING(data.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(data.get())));
    }

    PayloadWriter& w_;
    std::vector<Value>& handles_;
    PyObject* pickler_;
};

// ---- decoding ------------------------------------------------------------------------------------

class Decoder {
public:
    Decoder(const Payload& p, bool allow_pickled) : r_(p.bytes), handles_(p.handles), allow_pickled_(allow_pickled) {}

    PyRef run() {
        PyRef obj = decode(0);
        if (!r_.at_end()) PayloadReader::malformed("bytes after the value");
        return obj;
    }

private:
    static PyRef checked(PyObject* obj) {
        if (!obj) throw_python_error();  // out of memory
        return PyRef(obj);
    }

    PyRef decode(int depth) {
        switch (r_.tag()) {
            case Tag::None: return PyRef::borrow(Py_None);
            case Tag::False: return PyRef::borrow(Py_False);
            case Tag::True: return PyRef::borrow(Py_True);
            case Tag::Int: return PyRef(new_int(r_.int64()));
            case Tag::Float: return PyRef(new_float(r_.f64()));
            case Tag::Ascii: return ascii(r_.sized());
            case Tag::Str: {
                std::string_view s = r_.sized();
                PyRef str(PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "surrogatepass"));
                if (!str) throw ConversionError("str", "", fetch_python_error().what());
                return str;
            }
            case Tag::Bytes: {
                std::string_view b = r_.sized();
                return checked(PyBytes_FromStringAndSize(b.data(), static_cast<Py_ssize_t>(b.size())));
            }
            case Tag::BigInt: {
                std::string hex(r_.sized());  // PyLong_FromString wants a NUL-terminated string
                PyRef i(PyLong_FromString(hex.c_str(), nullptr, 16));
                if (!i) throw ConversionError("int", "", fetch_python_error().what());
                return i;
            }
            case Tag::Tuple: return sequence(true, depth);
            case Tag::List: return sequence(false, depth);
            case Tag::Dict: return dict(depth);
            case Tag::Pickled: return unpickle(r_.sized());
            case Tag::Handle: return handle();
        }
        PayloadReader::malformed("unknown tag");
    }

    PyObject* new_int(std::int64_t v) { return checked(PyLong_FromLongLong(v)).release(); }
    PyObject* new_float(double v) { return checked(cache_ ? cache_->new_float(v) : PyFloat_FromDouble(v)).release(); }

    // A float or an int, the commonest items of big payloads, decoded inline by the loops over lists
    // and dicts: a new reference, or null (nothing read) when the next value is something else.
    [[gnu::always_inline]] PyObject* number() {
        switch (r_.peek_tag()) {
            case Tag::Float: r_.tag(); return new_float(r_.f64());
            case Tag::Int: r_.tag(); return new_int(r_.int64());
            default: return nullptr;
        }
    }

    PyRef ascii(std::string_view s) {
        if (!is_ascii(s.data(), s.size())) PayloadReader::malformed("non-ASCII byte in an ASCII str");
        return checked(new_ascii_str(s));
    }

    void enter(int depth) {
        if (depth > kMaxDepth) PayloadReader::malformed("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }

    PyRef sequence(bool tuple, int depth) {
        enter(depth);
        auto n = static_cast<Py_ssize_t>(r_.count(1));
        if (n >= 16 && !cache_) cache_ = &DecodeCache::current();  // worth its lookup from here on
        PyRef seq = checked(tuple ? PyTuple_New(n) : PyList_New(n));  // NULL slots are fine if we fail
        PyObject** items = tuple ? tuple_items(seq.get()) : list_items(seq.get());
        for (Py_ssize_t i = 0; i < n; ++i) {
            if ((items[i] = number())) continue;
            try {
                items[i] = decode(depth + 1).release();
            } catch (ConversionError& e) {
                e.prepend_path(index_path(static_cast<std::size_t>(i)));
                throw;
            }
        }
        return seq;
    }

    PyRef dict_key(int depth, std::size_t index, bool& in_run) {
        in_run = false;
        // Short ASCII keys come from this interpreter's cache, already hashed.
        if (r_.peek_tag() == Tag::Ascii) {
            r_.tag();
            std::string_view s = r_.sized();
            if (s.size() > DecodeCache::kMaxKeyLength) return ascii(s);
            if (!cache_) cache_ = &DecodeCache::current();
            if (PyObject* key = cache_->key_in_run(depth, index, s)) {
                in_run = true;
                return PyRef(key);
            }
            if (!is_ascii(s.data(), s.size())) PayloadReader::malformed("non-ASCII byte in an ASCII str");
            return checked(cache_->key_at(depth, index, s));
        }
        try {
            return decode(depth + 1);
        } catch (ConversionError& e) {
            e.prepend_path("<a key>");
            throw;
        }
    }

    // Keys and values are decoded onto pending_ (key, value, key, value, ...), then made a dict:
    // a copy of a template when the keys are the ones the cache expected (decode_cache.hpp).
    PyRef dict(int depth) {
        enter(depth);
        std::size_t n = r_.count(2);
        const std::size_t base = pending_.size();
        PendingScope scope(pending_, base);
        bool all_in_run = true;
        for (std::size_t i = 0; i < n; ++i) {
            bool in_run = false;
            PyRef key = dict_key(depth, i, in_run);
            all_in_run = all_in_run && in_run;
            PyRef value;
            try {
                PyObject* number_value = number();
                value = number_value ? PyRef(number_value) : decode(depth + 1);
            } catch (ConversionError& e) {
                e.prepend_path("[" + repr_for_path(key.get()) + "]");
                throw;
            }
            pending_.push_back(key.get());
            key.release();
            pending_.push_back(value.get());
            value.release();
        }
        PyObject* const* items = pending_.data() + base;
        if (all_in_run && n > 0) {
            PyObject* d = cache_->dict_from_run(depth, n, items + 1, 2);
            if (d) return PyRef(d);
            if (PyErr_Occurred()) throw_python_error();
        }
        PyRef d = checked(new_presized_dict(n));
        for (std::size_t i = 0; i < n; ++i) {
            PyObject* key = items[2 * i];
            if (PyDict_SetItem(d.get(), key, items[2 * i + 1]) < 0) {
                PythonError err = fetch_python_error();  // unhashable (a list key from a C++ host)
                throw ConversionError(type_qualname(Py_TYPE(key)), "<key " + repr_for_path(key) + ">", err.what());
            }
        }
        return d;
    }

    // Releases what a dict() left on pending_ above `base`, however it ends.
    struct PendingScope {
        PendingScope(std::vector<PyObject*>& p, std::size_t b) noexcept : pending(p), base(b) {}
        PendingScope(const PendingScope&) = delete;
        PendingScope& operator=(const PendingScope&) = delete;
        std::vector<PyObject*>& pending;
        std::size_t base;
        ~PendingScope() {
            while (pending.size() > base) {
                Py_XDECREF(pending.back());
                pending.pop_back();
            }
        }
    };

    PyRef unpickle(std::string_view data) {
        if (!allow_pickled_) PayloadReader::malformed("a pickled item where none is allowed");
        if (!loads_) {
            PyRef pickle(PyImport_ImportModule("pickle"));
            loads_ = PyRef(pickle ? PyObject_GetAttrString(pickle.get(), "loads") : nullptr);
            if (!loads_) throw_python_error();
        }
        PyRef bytes = checked(PyBytes_FromStringAndSize(data.data(), static_cast<Py_ssize_t>(data.size())));
        PyRef obj(PyObject_CallOneArg(loads_.get(), bytes.get()));
        if (!obj) {
            PythonError e = fetch_python_error();
            throw ConversionError("pickled object", "", std::string("cannot be unpickled here: ") + e.what());
        }
        return obj;
    }

    PyRef handle() {
        std::uint64_t index = r_.varint();
        if (index >= handles_.size()) PayloadReader::malformed("a handle index out of range");
        const Value& v = handles_[index];
        if (const CrossingType* type = crossing_type(v.kind())) return type->wrap(v);
        PayloadReader::malformed(std::string("a handle to a ") + v.type_name() + " (no Python type is registered for it)");
    }

    PayloadReader r_;
    const std::vector<Value>& handles_;
    bool allow_pickled_;
    DecodeCache* cache_ = nullptr;
    std::vector<PyObject*> pending_;  // strong: the keys and values of the dicts being decoded
    PyRef loads_;
};

}  // namespace

void encode_python_into(PayloadWriter& w, std::vector<Value>& handles, PyObject* obj, PyObject* pickler) {
    Encoder(w, handles, pickler).encode(obj, 0);
}

Payload encode_python(PyObject* obj, PyObject* pickler) {
    Payload p;
    PayloadWriter w;
    encode_python_into(w, p.handles, obj, pickler);
    p.bytes = w.take();
    return p;
}

PyRef decode_python(const Payload& payload, bool allow_pickled) { return Decoder(payload, allow_pickled).run(); }

void release_decoded(std::vector<PyRef>& objects) noexcept {
    DecodeCache* cache = nullptr;
    try {
        cache = &DecodeCache::current();
    } catch (const std::exception&) {
        PyErr_Clear();  // no cache (the interpreter is ending): the objects are simply released
    }
    while (!objects.empty()) {
        if (cache && objects.back()) cache->recycle(objects.back().get());
        objects.pop_back();
    }
}

}  // namespace manygil::detail
