#include "codec/decode_cache.hpp"

#include <cstring>

#include "cpython/interpreter_dict.hpp"
#include "cpython/private_api.hpp"

namespace manygil::detail {

namespace {

const char* const kCapsuleName = "manygil.decode_cache";

void destroy_cache(PyObject* capsule) {
    // Runs when the interpreter's dict is cleared at its end, still in that interpreter.
    delete static_cast<DecodeCache*>(PyCapsule_GetPointer(capsule, kCapsuleName));
}

// The bytes of s from i on (fewer than 8), as one little-endian word, without a memcpy call.
std::uint64_t tail_word(std::string_view s, std::size_t i) noexcept {
    std::uint64_t w = 0;
    for (std::size_t shift = 0; i < s.size(); ++i, shift += 8) w |= std::uint64_t{static_cast<unsigned char>(s[i])} << shift;
    return w;
}

// Keys are short: mix 8 bytes at a time (the length seeds it, so "a" and "a\0" differ).
std::uint64_t hash_key(std::string_view s) noexcept {
    constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull;
    std::uint64_t h = s.size() * k;
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    if (i < s.size()) h = (h ^ tail_word(s, i)) * k;
    // MurmurHash3's finaliser: every input bit reaches the low bits that pick the set.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

}  // namespace

PyObject* new_ascii_str(std::string_view ascii) {
    PyObject* s = PyUnicode_New(static_cast<Py_ssize_t>(ascii.size()), 127);
    if (s && !ascii.empty()) std::memcpy(PyUnicode_DATA(s), ascii.data(), ascii.size());
    return s;
}

DecodeCache& DecodeCache::current() {
    PyObject* capsule = per_interpreter(kCapsuleName, [] {
        auto* cache = new DecodeCache();
        PyObject* c = PyCapsule_New(cache, kCapsuleName, destroy_cache);
        if (!c) delete cache;
        return c;
    });
    return *static_cast<DecodeCache*>(PyCapsule_GetPointer(capsule, kCapsuleName));
}

DecodeCache::~DecodeCache() {
    for (auto& set : keys_) {
        for (Key& k : set) Py_CLEAR(k.str);
    }
    for (KeyRun& run : key_runs_) {
        Py_CLEAR(run.tmpl);
        for (PyObject* k : run.keys) Py_DECREF(k);
    }
    for (PyObject* f : spare_floats_) Py_DECREF(f);
}

PyObject* DecodeCache::key(std::string_view ascii) {
    std::uint64_t h = hash_key(ascii);
    auto& set = keys_[h & (kKeySets - 1)];
    for (Key& k : set) {
        if (k.str && k.hash == h && same_key(k.str, ascii)) return Py_NewRef(k.str);
    }
    PyObject* s = new_ascii_str(ascii);
    if (!s) return nullptr;
    // Hash it now, once: every dict it goes into reuses the cached hash.
    if (PyObject_Hash(s) == -1) {
        Py_DECREF(s);
        return nullptr;
    }
    // The newer key goes first; the older of the two is evicted.
    Py_XDECREF(set[1].str);
    set[1] = set[0];
    set[0] = Key{h, Py_NewRef(s)};
    return s;
}

PyObject* DecodeCache::remember_key(KeyRun& run, std::size_t index, std::string_view ascii) {
    PyObject* k = key(ascii);
    if (!k) return nullptr;
    if (index < run.keys.size()) {
        Py_SETREF(run.keys[index], Py_NewRef(k));
        // The template holds exactly keys[0, its size): one of them changed.
        if (run.tmpl && index < static_cast<std::size_t>(PyDict_GET_SIZE(run.tmpl))) Py_CLEAR(run.tmpl);
    } else if (index == run.keys.size()) {
        run.keys.push_back(Py_NewRef(k));
    }  // else the run is shorter than this dict: not worth a gap
    return k;
}

PyObject* DecodeCache::dict_from_run(int depth, std::size_t n, PyObject* const* values, std::size_t stride) {
    KeyRun& run = key_runs_[static_cast<std::size_t>(depth)];
    if (n < 2 || n > run.keys.size()) return nullptr;
    if (!run.tmpl || static_cast<std::size_t>(PyDict_GET_SIZE(run.tmpl)) != n) {
        // Seen twice now: worth a template for the third time.
        Py_CLEAR(run.tmpl);
        PyObject* tmpl = PyDict_New();
        for (std::size_t i = 0; tmpl && i < n; ++i) {
            if (PyDict_SetItem(tmpl, run.keys[i], Py_None) < 0) Py_CLEAR(tmpl);
        }
        if (!tmpl) PyErr_Clear();  // no template, no harm: the caller builds this dict itself
        // Only for n distinct keys (a payload from C++ may repeat one): a template then holds exactly
        // keys[0, n), which remember_key() relies on.
        if (tmpl && static_cast<std::size_t>(PyDict_GET_SIZE(tmpl)) != n) Py_CLEAR(tmpl);
        run.tmpl = tmpl;
        return nullptr;
    }
    PyObject* d = PyDict_Copy(run.tmpl);
    if (!d) return nullptr;
    // In place where the dict layout is known; through the public API elsewhere (each key is then
    // found by identity).
    if (fill_template_copy(d, run.keys.data(), values, static_cast<Py_ssize_t>(n), static_cast<Py_ssize_t>(stride)) < 0) {
        Py_DECREF(d);
        return nullptr;
    }
    return d;
}

void DecodeCache::recycle(PyObject* obj) {
    if (MANYGIL_HAVE_FLOAT_RECYCLING && sole_reference(obj)) recycle_items(obj, 0);
}

void DecodeCache::recycle_items(PyObject* seq, int depth) {
    const bool list = PyList_CheckExact(seq);
    if (!list && !PyTuple_CheckExact(seq)) return;
    Py_ssize_t n = list ? PyList_GET_SIZE(seq) : PyTuple_GET_SIZE(seq);
    PyObject** items = list ? list_items(seq) : tuple_items(seq);
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* item = items[i];
        if (!item || !sole_reference(item)) continue;  // shared with someone else: leave it alone
        if (Py_IS_TYPE(item, &PyFloat_Type)) {
            if (spare_floats_.size() >= kMaxSpareFloats) return;
            spare_floats_.push_back(item);  // the container's reference becomes ours
            items[i] = nullptr;             // which its dealloc (Py_XDECREF) then skips
        } else if (depth < 3) {
            recycle_items(item, depth + 1);
        }
    }
}

}  // namespace manygil::detail
