// _core._call_in_main: what manygil.call_in_main does from a worker (python/manygil/_main_call.py).
// The worker encodes the callable and arguments into payloads (C++ data), posts a PyMainCall to the
// core's main-side threads (src/runtime/main_calls.hpp) and waits with its GIL released; a main-side
// thread resolves and calls it in the main interpreter, encodes the result or the error, tells the
// worker, then releases the objects it made there. The worker decodes the outcome into its own
// objects, or raises the error rebuilt as its own type with main's traceback.
#pragma once

#include <Python.h>

namespace manygil::ext {

// _call_in_main(spec, args: tuple, kwargs: dict | None, timeout: float | None) -> result
PyObject* py_call_in_main(PyObject* module, PyObject* const* argv, Py_ssize_t argc);

// _main_side_threads() -> int: the threads that run calls in main now (tests, diagnostics).
PyObject* py_main_side_threads(PyObject* module, PyObject* unused);

}  // namespace manygil::ext
