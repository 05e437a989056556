// _core.Pool: the Python-facing handle of a manygil::Pool, driven by manygil/_pool.py.
#pragma once

#include <Python.h>

namespace manygil {
class Pool;
}

namespace manygil::ext {

struct CallableSpec;

extern PyType_Spec pool_spec;

// The callable as _shipping.callable_spec() gives it into `out`; false with TypeError set if it is
// none of the forms (tasks and call_in_main share it).
bool parse_spec(PyObject* spec, CallableSpec& out);

// The manygil::Pool behind a _core.Pool object (`pool_type`: the module's Pool type), or null with
// TypeError when `op` is not one.
Pool* pool_of(PyObject* op, PyTypeObject* pool_type);

// Ends every pool's interpreters and joins their threads (the GIL released meanwhile), including
// pools whose Python object was collected without shutdown. For interpreter exit.
void finalize_pools();

// How many collected pools are still running (finished ones are joined first; for tests and diagnostics).
std::size_t dropped_pools();

}  // namespace manygil::ext
