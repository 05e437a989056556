// DecodeCache: what one interpreter reuses when it decodes payloads, so that the objects a task
// receives cost less than allocating them one by one.
//
// - Dict keys: records crossing interpreters repeat the same keys ({"id": ..., "name": ...} again
//   and again). Short ASCII keys are kept (2-way set-associative; a new key evicts the older of two)
//   and handed out again, already hashed. orjson does the same.
// - Spare floats: when a task's arguments and result are released in the worker (the cleanup that
//   follows settling its Future), floats nobody else holds are kept instead of freed, and the next
//   decoded float reuses one: a worker that receives lists of floats stops allocating them. This
//   is CPython's own float free list, made large enough for a payload; bounded by kMaxSpareFloats.
//
// One per interpreter (its objects belong to that interpreter), released with the interpreter.
// Use with the interpreter's GIL held. CPython builds with the GIL only (refcounts are read).
#pragma once

#include <Python.h>

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

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

    // A new float: new reference, or null with a Python error set.
    PyObject* new_float(double v) {
        if (spare_floats_.empty()) return PyFloat_FromDouble(v);
        PyObject* f = spare_floats_.back();
        spare_floats_.pop_back();
        reinterpret_cast<PyFloatObject*>(f)->ob_fval = v;  // ours alone: refcount 1, held by no one else
        return f;
    }

    // Call just before releasing the last reference to `obj` (the caller's must be its only one):
    // keeps the floats inside it (lists and tuples, nested a few levels) that nothing else holds.
    void recycle(PyObject* obj);

    std::size_t spare_floats() const noexcept { return spare_floats_.size(); }

private:
    void recycle_items(PyObject* seq, int depth);

    struct Key {
        std::uint64_t hash = 0;
        PyObject* str = nullptr;  // strong
    };
    static constexpr std::size_t kKeySets = 2048;  // a power of two; 2 ways each
    std::array<std::array<Key, 2>, kKeySets> keys_{};
    std::vector<PyObject*> spare_floats_;  // strong, refcount 1
};

// A new str from bytes known to be ASCII: no decoding, one copy.
PyObject* new_ascii_str(std::string_view ascii);

}  // namespace manygil::detail
