// Every private or version-dependent CPython API manygil uses, the CPython versions it is known to
// work on, and what happens elsewhere. Each private symbol is named here and nowhere else (except
// dict_fill.c, which is C: its gate, MANYGIL_HAVE_DICT_FILL, is in dict_fill.h, included below).
//
// Supported: CPython 3.12 and 3.13 with the GIL. Built and tested on 3.13.5 and 3.13.15; the 3.12
// rows were checked against 3.12's headers. "Unknown" below means any other version (3.14+).
// Free-threaded builds (Py_GIL_DISABLED) are refused at build time, here and in CMakeLists.txt:
// several rows assume the GIL (a refcount of 1 means "ours alone", struct fields read without
// atomics), and own-GIL interpreters are the point of the project.
//
// | what (this header's wrapper)              | used in (file: function)                          | known   | elsewhere                          |
// |-------------------------------------------|---------------------------------------------------|---------|------------------------------------|
// | CPython's private dict layout, through    | cpython/dict_fill.c: manygil_fill_dict_copy       | 3.12,   | unknown: returns 0, the caller     |
// | Py_BUILD_CORE + internal/pycore_dict.h    | (codec/decode_cache.cpp: DecodeCache::dict_from_  | 3.13    | fills through PyDict_SetItem       |
// | (fill_template_copy, dict_fill_available) | run, via fill_template_copy)                      |         | (same dict, slower)                |
// | _PyDict_NewPresized (new_presized_dict)   | codec/payload_python.cpp: Decoder::dict           | 3.12,   | unknown: PyDict_New() (same dict,  |
// |                                           |                                                   | 3.13    | it grows while filled)             |
// | _PyThreadState_UncheckedGet (3.12 name of | runtime/thread_interpreter.cpp, ext/main_         | 3.12    | 3.13+: the public                  |
// | public PyThreadState_GetUnchecked)        | interpreter.hpp                                   |         | PyThreadState_GetUnchecked         |
// | _Py_IsFinalizing (3.12 name of public     | runtime/main_calls.cpp: MainCalls::serve          | 3.12    | 3.13+: the public Py_IsFinalizing  |
// | Py_IsFinalizing)                          |                                                   |         |                                    |
// | ob_item of PyTupleObject / PyListObject,  | codec/payload_python.cpp: Decoder::sequence;      | 3.12,   | all GIL versions (the fields are   |
// | raw (tuple_items, list_items)             | codec/decode_cache.cpp: recycle_items             | 3.13    | decades old; a change breaks the   |
// |                                           |                                                   |         | build here, not silently)          |
// | Py_REFCNT(o) == 1 as "nobody else holds   | codec/decode_cache.cpp: recycle, recycle_items;   | 3.12,   | unknown: recycling is off (3.14's  |
// | it", and writing PyFloatObject::ob_fval   | codec/decode_cache.hpp: new_float                 | 3.13    | interpreter may borrow references  |
// | (sole_reference, set_float_value,         |                                                   |         | without counting them); floats are |
// | MANYGIL_HAVE_FLOAT_RECYCLING)             |                                                   |         | allocated as usual                 |
// | PyThreadState::thread_id and ::exc_info   | cpython/crash_fences.cpp: walk_threads;           | 3.12,   | all GIL versions: no public way    |
// | (cpython/pystate.h; _PyErr_StackItem)     | runtime/interpreter_threads.cpp: other_threads,   | 3.13    | exists to read another thread's OS |
// | (thread_ident, handled_exception)         | describe_thread                                   |         | id or handled exception; a moved   |
// |                                           |                                                   |         | field breaks the build here        |
// | PyUnstable_Long_IsCompact / _CompactValue | codec/payload_python.cpp: Encoder::is_number,     | 3.12,   | all versions (PyUnstable_: may     |
// | (compact_long)                            | encode_number                                     | 3.13    | change in a minor release; a       |
// |                                           |                                                   |         | change breaks the build here)      |
// | PyThreadState_SetAsyncExc (public, but:   | runtime/worker_monitor.cpp: deliver_interrupt,    | all     | all versions. Acts on threads of   |
// | raised at the next bytecode only; needs a | call_finished; runtime/interpreter_threads.cpp:   |         | the *current* interpreter, so the  |
// | thread state of the target interpreter;   | raise_system_exit; pytypes/blocking_call.cpp:     |         | caller attaches one of the worker's|
// | an exception type, not an instance)       | raise_if_wait_interrupted                         |         | (runtime/worker_monitor.hpp)       |
// | PyInterpreterConfig, Py_NewInterpreter-   | runtime/thread_interpreter.cpp                    | 3.12+   | < 3.12: refused below              |
// | FromConfig (public, non-limited, 3.12+)   |                                                   |         |                                    |
//
// Notes. Float recycling: from 3.14 the interpreter pushes borrowed, uncounted references
// (LOAD_FAST_BORROW, gh-130704), so a refcount of 1 no longer proves an object is ours alone (what
// gh-133164's PyUnstable_Object_IsUniqueReferencedTemporary is for); manygil only recycles after a
// task's frames are gone, but keeps it to the versions checked. 3.14+ was read from CPython's
// sources and discussions, never built here: the rows that have a public path take it there.
//
// To add a row: wrap the symbol here, name the wrapper at the call site, include this header there
// (so that the checks below run for that translation unit), and say what happens on unknown versions.
#pragma once

#include <Python.h>

#include <cstddef>
#include <cstdint>

#if PY_VERSION_HEX < 0x030C0000
#error "manygil needs CPython >= 3.12 (per-interpreter GIL, PEP 684)"
#endif

#ifdef Py_GIL_DISABLED
#error "manygil does not support free-threaded CPython (Py_GIL_DISABLED): build it against a CPython with the GIL (see src/cpython/private_api.hpp)"
#endif

#include "cpython/dict_fill.h"  // MANYGIL_HAVE_DICT_FILL, manygil_fill_dict_copy (C)

// The CPython versions whose private details below were checked: 3.12 and 3.13.
#define MANYGIL_CPYTHON_KNOWN (PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000)

#if MANYGIL_CPYTHON_KNOWN
#define MANYGIL_HAVE_PRESIZED_DICT 1
#define MANYGIL_HAVE_FLOAT_RECYCLING 1
#else
#define MANYGIL_HAVE_PRESIZED_DICT 0
#define MANYGIL_HAVE_FLOAT_RECYCLING 0
#endif

#if PY_VERSION_HEX < 0x030D0000
// Public from 3.13 on; the same function under its 3.12 name.
inline PyThreadState* PyThreadState_GetUnchecked() { return _PyThreadState_UncheckedGet(); }
// Public from 3.13 on; the same function under its 3.12 name.
inline int Py_IsFinalizing() { return _Py_IsFinalizing(); }
#endif

namespace manygil::detail {

// ---- dicts -----------------------------------------------------------------------------------------

// True if manygil_fill_dict_copy() fills dicts on this build (the probe the tests use).
inline bool dict_fill_available() noexcept { return manygil_dict_fill_available() != 0; }

// A new empty dict with room for n items: new reference, or null with a Python error set.
inline PyObject* new_presized_dict(std::size_t n) {
#if MANYGIL_HAVE_PRESIZED_DICT
    if (n > 5) return _PyDict_NewPresized(static_cast<Py_ssize_t>(n));  // no growing while filling
#endif
    (void)n;
    return PyDict_New();
}

// Sets copy[keys[i]] = values[i * stride] for i < n through the public API (the path every CPython has).
// 0, or -1 with a Python error set.
inline int fill_dict_public(PyObject* copy, PyObject* const* keys, PyObject* const* values, Py_ssize_t n,
                            Py_ssize_t stride) {
    for (Py_ssize_t i = 0; i < n; ++i) {
        if (PyDict_SetItem(copy, keys[i], values[i * stride]) < 0) return -1;
    }
    return 0;
}

// `copy` is a fresh PyDict_Copy() of a template {keys[0]: None, ..., keys[n-1]: None}: puts the values
// in place of the Nones, without a lookup per key where dict_fill_available(), through the public API
// otherwise. 0, or -1 with a Python error set.
inline int fill_template_copy(PyObject* copy, PyObject* const* keys, PyObject* const* values, Py_ssize_t n,
                              Py_ssize_t stride) {
    if (manygil_fill_dict_copy(copy, values, n, stride)) return 0;
    return fill_dict_public(copy, keys, values, n, stride);
}

// ---- tuples, lists, ints, floats -------------------------------------------------------------------

// The item array of an exact tuple / list: read and written in place (a fresh one's slots are null).
inline PyObject** tuple_items(PyObject* tuple) noexcept { return reinterpret_cast<PyTupleObject*>(tuple)->ob_item; }
inline PyObject** list_items(PyObject* list) noexcept { return reinterpret_cast<PyListObject*>(list)->ob_item; }

// An exact int that fits a machine word: true, with its value in *v.
inline bool compact_long(PyObject* obj, std::int64_t* v) noexcept {
    auto* l = reinterpret_cast<PyLongObject*>(obj);
    if (!PyUnstable_Long_IsCompact(l)) return false;
    *v = PyUnstable_Long_CompactValue(l);
    return true;
}
inline bool is_compact_long(PyObject* obj) noexcept { return PyUnstable_Long_IsCompact(reinterpret_cast<PyLongObject*>(obj)); }

// True if the caller's reference to `obj` is the only one (with the GIL, on the known versions).
inline bool sole_reference(PyObject* obj) noexcept { return Py_REFCNT(obj) == 1; }

// Gives a float held by us alone a new value (a float is immutable to everyone else).
inline void set_float_value(PyObject* f, double v) noexcept { reinterpret_cast<PyFloatObject*>(f)->ob_fval = v; }

// ---- thread states ---------------------------------------------------------------------------------

// The OS thread identifier (threading.get_ident()) of a thread state of the current interpreter.
inline unsigned long thread_ident(PyThreadState* t) noexcept { return t->thread_id; }

// The exception thread state `t` is handling (sys.exception() in that thread): borrowed, Py_None if
// none, or null if it has no exception stack. As CPython's _PyErr_GetTopmostException() finds it:
// the innermost non-empty item.
inline PyObject* handled_exception(PyThreadState* t) noexcept {
    _PyErr_StackItem* item = t->exc_info;
    if (!item) return nullptr;
    while ((!item->exc_value || item->exc_value == Py_None) && item->previous_item) item = item->previous_item;
    return item->exc_value ? item->exc_value : Py_None;
}

}  // namespace manygil::detail
