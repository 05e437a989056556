// DecodeCache: what one interpreter reuses when it decodes payloads, so that the objects a task
// receives cost less than allocating them one by one.
//
// - Dict keys: records crossing interpreters repeat the same keys ({"id": ..., "name": ...} again
//   and again). Short ASCII keys are kept (2-way set-associative; a new key evicts the older of two)
//   and handed out again, already hashed. orjson does the same. Before that table, the keys of the
//   last dict decoded at each nesting depth are tried in order: the i-th key of a record is most
//   likely the i-th key of the record before it, and comparing it costs no hashing and no random
//   memory access.
// - Dict templates: when a dict's keys are all, in order, the keys of the dict before it at its
//   depth, the next such dict is a copy of a template of those keys (each mapped to None), its values
//   put in place without a lookup per key (dict_fill.c).
// - Spare floats: when a task's arguments and result are released in the worker (the cleanup that
//   follows settling its Future), floats nobody else holds are kept instead of freed, and the next
//   decoded float reuses one: a worker that receives lists of floats stops allocating them. This
//   is CPython's own float free list, made large enough for a payload; bounded by kMaxSpareFloats.
//   On the CPython versions where reading a refcount of 1 as "ours alone" was checked
//   (MANYGIL_HAVE_FLOAT_RECYCLING, private_api.hpp); elsewhere nothing is kept.
//
// One per interpreter (its objects belong to that interpreter), released with the interpreter.
// Use with the interpreter's GIL held.
#pragma once

#include <Python.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "cpython/private_api.hpp"

namespace manygil::detail {

class DecodeCache {
public:
    static constexpr std::size_t kMaxKeyLength = 64;
    static constexpr std::size_t kMaxSpareFloats = 1 << 16;

    // The current interpreter's cache, created on first use. Throws PythonError.
    static DecodeCache& current();

    DecodeCache() = default;
    DecodeCache(const DecodeCache&) = delete;
    DecodeCache& operator=(const DecodeCache&) = delete;
    ~DecodeCache();

    // A str equal to `ascii` (ASCII, at most kMaxKeyLength long): new reference, or null with a
    // Python error set.
    PyObject* key(std::string_view ascii);

    // The `index`-th key of the previous dict decoded `depth` levels deep, if it holds exactly these
    // bytes (which are then ASCII): new reference. Null, with no error set, if it does not.
    PyObject* key_in_run(int depth, std::size_t index, std::string_view bytes) noexcept {
        if (depth >= kKeyRunDepths) return nullptr;
        const std::vector<PyObject*>& keys = key_runs_[static_cast<std::size_t>(depth)].keys;
        if (index < keys.size() && same_key(keys[index], bytes)) return Py_NewRef(keys[index]);
        return nullptr;
    }

    // key(ascii), remembered as the `index`-th key of the dict being decoded `depth` levels deep.
    PyObject* key_at(int depth, std::size_t index, std::string_view ascii) {
        if (depth < kKeyRunDepths && index < kMaxKeyRun) {
            return remember_key(key_runs_[static_cast<std::size_t>(depth)], index, ascii);
        }
        return key(ascii);
    }

    // A dict of the n keys of the key run at `depth` (each found by key_in_run()), with the
    // values at values[0], values[stride], ...: a new reference, or null if there is no template of
    // that size yet (one is made for the next time), or with a Python error set.
    PyObject* dict_from_run(int depth, std::size_t n, PyObject* const* values, std::size_t stride);

    // A new float: new reference, or null with a Python error set.
    PyObject* new_float(double v) {
        if (spare_floats_.empty()) return PyFloat_FromDouble(v);
        PyObject* f = spare_floats_.back();
        spare_floats_.pop_back();
        set_float_value(f, v);  // ours alone: refcount 1, held by no one else
        return f;
    }

    // Call just before releasing the last reference to `obj` (the caller's must be its only one):
    // keeps the floats inside it (lists and tuples, nested a few levels) that nothing else holds.
    void recycle(PyObject* obj);

    std::size_t spare_floats() const noexcept { return spare_floats_.size(); }

    // True if `str` (an exact ASCII str) holds exactly the bytes of `ascii`.
    static bool same_key(PyObject* str, std::string_view ascii) noexcept {
        return static_cast<std::size_t>(PyUnicode_GET_LENGTH(str)) == ascii.size() &&
               std::memcmp(PyUnicode_DATA(str), ascii.data(), ascii.size()) == 0;
    }

private:
    static constexpr int kKeyRunDepths = 8;
    static constexpr std::size_t kMaxKeyRun = 4096;

    struct KeyRun {
        std::vector<PyObject*> keys;  // strong
        PyObject* tmpl = nullptr;     // strong, or null: {keys[i]: None for i < its size}
    };
    PyObject* remember_key(KeyRun& run, std::size_t index, std::string_view ascii);
    void recycle_items(PyObject* seq, int depth);

    struct Key {
        std::uint64_t hash = 0;
        PyObject* str = nullptr;  // strong
    };
    static constexpr std::size_t kKeySets = 2048;  // a power of two; 2 ways each
    std::array<std::array<Key, 2>, kKeySets> keys_{};
    std::array<KeyRun, kKeyRunDepths> key_runs_;  // recent keys by depth, in order
    std::vector<PyObject*> spare_floats_;  // strong, refcount 1
};

// A new str from bytes known to be ASCII: no decoding, one copy.
PyObject* new_ascii_str(std::string_view ascii);

}  // namespace manygil::detail
