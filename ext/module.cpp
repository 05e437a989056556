// manygil._core: the extension module behind the manygil Python package. Multi-phase init, heap types,
// per-module state: it loads in the main interpreter and in every worker interpreter.
#include <Python.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "manygil/errors.hpp"
#include "manygil/pool.hpp"
#include "manygil/shared_buffer.hpp"
#include "codec/payload_python.hpp"
#include "cpython/interpreter_dict.hpp"
#include "cpython/private_api.hpp"
#include "cpython/py_ref.hpp"
#include "udf_map.hpp"
#include "deferred_result.hpp"
#include "exception_translation.hpp"
#include "http_server_object.hpp"
#include "call_in_main.hpp"
#include "module_state.hpp"
#include "pool_object.hpp"
#include "pytypes/shared_types.hpp"
#include "task_handle.hpp"
#include "without_gil.hpp"

namespace manygil::ext {

namespace {

std::mutex g_runtime_mu;
Runtime* g_runtime = nullptr;  // deliberately never destroyed: it only closes, at interpreter exit
bool g_finalized = false;
std::atomic<bool> g_forked_child{false};

ModuleState* state_of(PyObject* module) { return static_cast<ModuleState*>(PyModule_GetState(module)); }

// _finalize(): shut every pool down and end its interpreters. Registered by manygil to run at exit,
// before Python finalises (workers must not outlive it).
PyObject* py_finalize(PyObject*, PyObject*) {
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        PyErr_SetString(PyExc_RuntimeError, "_finalize() belongs to the main interpreter");
        return nullptr;
    }
    if (forked_child()) Py_RETURN_NONE;  // the runtime's threads live in the parent
    Runtime* runtime = nullptr;
    {
        std::lock_guard lock(g_runtime_mu);
        g_finalized = true;
        runtime = g_runtime;
    }
    if (!runtime) Py_RETURN_NONE;
    if (!without_gil([] { finalize_pools(); })) return nullptr;
    Py_RETURN_NONE;
}

// Module __getattr__ (PEP 562): the attributes made on first use.
PyObject* py_module_getattr(PyObject* module, PyObject* name) {
    const char* s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : nullptr;
    if (!s) return nullptr;
    if (PyObject* exc = detail::add_channel_exception(module, s)) return exc;
    if (PyErr_Occurred()) return nullptr;
    return PyErr_Format(PyExc_AttributeError, "module 'manygil._core' has no attribute '%U'", name);
}

// _set_package_hooks(provider): what the package lends the core in this interpreter (its pickler,
// its exception factories), asked by name on first use (cpython/interpreter_dict.hpp: package_hook).
PyObject* py_set_package_hooks(PyObject*, PyObject* provider) {
    if (!PyCallable_Check(provider)) return PyErr_Format(PyExc_TypeError, "_set_package_hooks() needs a callable");
    try {
        detail::set_package_hooks(provider);
    } catch (const std::exception& e) {
        return raise_error(e);
    }
    Py_RETURN_NONE;
}

PyObject* py_in_main_interpreter(PyObject*, PyObject*) {
    return PyBool_FromLong(PyInterpreterState_Get() == PyInterpreterState_Main());
}

PyObject* py_worker_index(PyObject*, PyObject*) {
    auto index = Pool::current_worker_index();
    if (!index) Py_RETURN_NONE;
    return PyLong_FromSize_t(*index);
}

PyObject* py_note_jobs_on_fatal_signals(PyObject*, PyObject*) {
    Runtime::note_jobs_on_fatal_signals();
    Py_RETURN_NONE;
}

PyObject* py_dropped_pools(PyObject*, PyObject*) { return PyLong_FromSize_t(dropped_pools()); }

PyObject* py_live_buffers(PyObject*, PyObject*) { return PyLong_FromSize_t(SharedBuffer::live_blocks()); }

// _codec_roundtrip(obj): obj encoded into a payload and decoded back, as a task argument travels one
// way (diagnostics: the codec's cost without any dispatch).
PyObject* py_codec_roundtrip(PyObject*, PyObject* obj) {
    try {
        return detail::decode_python(detail::encode_python(obj)).release();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_TypeError, e.what());
        return nullptr;
    }
}

// _dict_fill_available() -> bool: whether decoded dicts from a template are filled in place (the fast
// path of src/cpython/dict_fill.c) on this build, or through the public API (other CPython versions).
PyObject* py_dict_fill_available(PyObject*, PyObject*) { return PyBool_FromLong(detail::dict_fill_available()); }

// _payload_bytes(obj) -> bytes: obj's encoded payload (diagnostics, and the fuzzers' seed corpus).
PyObject* py_payload_bytes(PyObject*, PyObject* obj) {
    try {
        detail::Payload p = detail::encode_python(obj);
        return PyBytes_FromStringAndSize(p.bytes.data(), static_cast<Py_ssize_t>(p.bytes.size()));
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_TypeError, e.what());
        return nullptr;
    }
}

// _after_fork_in_child(): registered with os.register_at_fork.
PyObject* py_after_fork_in_child(PyObject*, PyObject*) {
    mark_forked_child();
    Pool::forget_idle_interpreters_after_fork();  // the child's own pools may park theirs
    Py_RETURN_NONE;
}

// _end_idle_interpreters(): ends the interpreters parked by pools that shut down (a fork() child of a
// process with sub-interpreters dies, gh-139759), and keeps new ones from parking until
// _resume_idle_interpreters(). Waits without the GIL (they drop their main thread states).
PyObject* py_end_idle_interpreters(PyObject*, PyObject*) {
    if (forked_child()) Py_RETURN_NONE;
    if (!without_gil([] { Pool::end_idle_interpreters(); })) return nullptr;
    Py_RETURN_NONE;
}

PyObject* py_resume_idle_interpreters(PyObject*, PyObject*) {
    Pool::resume_idle_interpreters();
    Py_RETURN_NONE;
}

PyObject* py_idle_interpreters(PyObject*, PyObject*) {
    return PyLong_FromSize_t(Pool::idle_interpreters());
}

PyMethodDef module_methods[] = {
    {"__getattr__", py_module_getattr, METH_O, nullptr},
    {"_after_fork_in_child", py_after_fork_in_child, METH_NOARGS,
     "Mark this process as a fork child: inherited pools refuse work and are never joined."},
    {"_set_package_hooks", py_set_package_hooks, METH_O,
     "_set_package_hooks(provider): provider(name) -> the package's object for the core ('errors.rebuild', "
     "'worker.dumps', ...), asked once per name and interpreter."},
    {"live_buffers", py_live_buffers, METH_NOARGS,
     "How many SharedBuffer memory blocks are alive in this process, across all interpreters."},
    {"_payload_bytes", py_payload_bytes, METH_O, "obj -> its payload's bytes (diagnostics, fuzzing seeds)."},
    {"_arrow_result_format", py_arrow_result_format, METH_O,
     "_arrow_result_format(arrow_type) -> the result_format of _udf_map for an object with __arrow_c_schema__ "
     "(TypeError for a type it does not support)"},
    {"_udf_map", reinterpret_cast<PyCFunction>(reinterpret_cast<void*>(py_udf_map)), METH_FASTCALL,
     "_udf_map(pool, function, columns, result_format, skip_null_rows, batch[, stop]) -> ArrowResult "
     "(manygil.duckdb); "
     "function: 'module:qualname' or (pickle, description)"},
    {"_decode_result", py_decode_result, METH_O, "capsule -> the task's result, decoded here (see _pool._Future)."},
    {"_codec_roundtrip", py_codec_roundtrip, METH_O, "obj -> payload -> a new obj (codec diagnostics)."},
    {"_dict_fill_available", py_dict_fill_available, METH_NOARGS,
     "Whether dicts decoded from a template are filled in place on this CPython (else via the public API)."},
    {"_dropped_pools", py_dropped_pools, METH_NOARGS,
     "How many pools collected without shutdown are not yet joined (diagnostics)."},
    {"_finalize", py_finalize, METH_NOARGS, "Shut every pool down and end its interpreters (interpreter exit)."},
    {"_end_idle_interpreters", py_end_idle_interpreters, METH_NOARGS,
     "End the interpreters parked for reuse, and park no more until _resume_idle_interpreters() (before fork)."},
    {"_resume_idle_interpreters", py_resume_idle_interpreters, METH_NOARGS,
     "Park the interpreters of pools that shut down again (after fork, in the parent)."},
    {"_idle_interpreters", py_idle_interpreters, METH_NOARGS,
     "How many interpreters are parked for reuse by the next pool (diagnostics, tests)."},
    {"_call_in_main", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_call_in_main)), METH_FASTCALL,
     "_call_in_main(spec, args, kwargs, timeout) -> the result of the call, made in the main interpreter "
     "(from a worker; see manygil.call_in_main)"},
    {"_main_side_threads", py_main_side_threads, METH_NOARGS,
     "How many threads run calls into the main interpreter now (diagnostics, tests)."},
    {"worker_index", py_worker_index, METH_NOARGS,
     "This worker's index in its pool (0 .. max_workers-1), or None outside a worker thread."},
    {"in_main_interpreter", py_in_main_interpreter, METH_NOARGS,
     "True in the main interpreter, False in a manygil worker."},
    {"_note_jobs_on_fatal_signals", py_note_jobs_on_fatal_signals, METH_NOARGS,
     "On SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT, write which worker and job it hit to stderr, then "
     "hand the signal to the handler installed before (call after faulthandler.enable())."},
    {nullptr, nullptr, 0, nullptr},
};

int module_exec(PyObject* module) {
    ModuleState* state = state_of(module);
    state->pool_type = reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &pool_spec, nullptr));
    if (!state->pool_type || PyModule_AddType(module, state->pool_type) < 0) return -1;
    state->task_handle_type =
        reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &task_handle_spec, nullptr));
    if (!state->task_handle_type || PyModule_AddType(module, state->task_handle_type) < 0) return -1;
    state->arrow_result_type =
        reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &arrow_result_spec, nullptr));
    if (!state->arrow_result_type || PyModule_AddType(module, state->arrow_result_type) < 0) return -1;
    state->udf_stop_type =
        reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &udf_stop_spec, nullptr));
    if (!state->udf_stop_type || PyModule_AddType(module, state->udf_stop_type) < 0) return -1;
    PyObject* server_type = PyType_FromModuleAndSpec(module, &http_server_spec, nullptr);
    int added = server_type ? PyModule_AddType(module, reinterpret_cast<PyTypeObject*>(server_type)) : -1;
    Py_XDECREF(server_type);
    if (added < 0) return -1;
    if (PyModule_AddStringConstant(module, "python_version", Runtime::python_version().c_str()) < 0) return -1;
    // What a Future holds while its large result waits to be decoded (ext/deferred_result.hpp).
    if (PyModule_AddObjectRef(module, "_EncodedResult", reinterpret_cast<PyObject*>(&PyCapsule_Type)) < 0) return -1;
    // The channel exceptions subclass queue.Empty/queue.Full: importing queue (and threading) costs a
    // worker ~2 ms at start, so they are made on first use (module __getattr__, below).
    // the core's per-interpreter types: SharedBuffer, Channel, SharedDict, the sync objects
    if (detail::add_shared_types(module) < 0) return -1;
    return 0;
}

int module_traverse(PyObject* module, visitproc visit, void* arg) {
    ModuleState* state = state_of(module);
    Py_VISIT(state->pool_type);
    Py_VISIT(state->task_handle_type);
    Py_VISIT(state->arrow_result_type);
    Py_VISIT(state->udf_stop_type);
    return 0;
}

int module_clear(PyObject* module) {
    ModuleState* state = state_of(module);
    Py_CLEAR(state->pool_type);
    Py_CLEAR(state->task_handle_type);
    Py_CLEAR(state->arrow_result_type);
    Py_CLEAR(state->udf_stop_type);
    return 0;
}

void module_free(void* module) { module_clear(static_cast<PyObject*>(module)); }

PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(module_exec)},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    // No Py_mod_gil slot: the pool object relies on the GIL, so free-threaded builds keep it on.
    {0, nullptr},
};

}  // namespace

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "manygil._core", "The native core of manygil: own-GIL worker pools.",
    sizeof(ModuleState), module_methods, module_slots, module_traverse, module_clear, module_free,
};

ModuleState* state_of_type(PyTypeObject* type) {
    PyObject* module = PyType_GetModuleByDef(type, &module_def);
    return module ? state_of(module) : nullptr;
}

bool forked_child() noexcept { return g_forked_child.load(); }

void mark_forked_child() noexcept {
    // Not under g_runtime_mu: it may have been held by another thread at the moment of the fork.
    g_forked_child = true;
}

Runtime& runtime() {
    if (forked_child()) throw ShutdownError("manygil pools cannot be started in a process forked from one with pools");
    std::lock_guard lock(g_runtime_mu);
    if (g_finalized) throw ShutdownError("manygil is shut down: the interpreter is exiting");
    if (!g_runtime) g_runtime = new Runtime();  // attaches to the running Python
    return *g_runtime;
}

Runtime& runtime_for_exit() {
    std::lock_guard lock(g_runtime_mu);
    if (!g_runtime) g_runtime = new Runtime();
    return *g_runtime;
}

}  // namespace manygil::ext

PyMODINIT_FUNC PyInit__core(void) { return PyModuleDef_Init(&manygil::ext::module_def); }
