#include "cpython/crash_fences.hpp"

#include "cpython/private_api.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

namespace {

// Extension modules whose state outlives the interpreter that first initialised it, so that a
// sub-interpreter must never be the first to import them; the main interpreter imports them before
// any sub-interpreter exists (it keeps them until the process ends):
//  - _datetime keeps its types in static storage shared by every interpreter. Initialised or torn
//    down by a sub-interpreter first, then by main, they corrupt the heap at shutdown (gh-136421,
//    gh-136423). Every 3.13 release up to 3.13.15 crashes; the fix (gh-136583) is on 3.14's line, in
//    a release not verified here, and the import costs main under a millisecond: it is done on
//    every version.
//  - On 3.12, a single-phase extension's init function runs in the sub-interpreter before its import
//    is refused (gh-117953, fixed in 3.13.0): _datetime and _decimal, initialised there, then crash
//    when main imports them.
constexpr const char* kImportInMainFirst[] = {"_datetime", PY_VERSION_HEX < 0x030D0000 ? "_decimal" : nullptr};

// Frames and exceptions of the calling interpreter's threads only. CPython's sys._current_frames()
// walks every interpreter and builds frame objects for frames that belong to other interpreters with
// this one's allocator, while those run on their own GILs: the process aborts. Here only threads
// of the calling interpreter are visited, all of them stopped: we hold their GIL.
//
// The list of thread states is walked without CPython's private HEAD lock. Threads of this
// interpreter add or remove their states with our GIL held, so they wait; C code may add a state
// without it (PyThreadState_New), which CPython links in at the head, behind our walk. To keep our
// GIL for the whole walk, nothing here may run Python code: automatic garbage collection (whose
// finalisers could run Python, and let the GIL switch) is paused meanwhile.
enum class Collect { frames, exceptions };

PyObject* walk_threads(Collect what) {
    if (PySys_Audit(what == Collect::frames ? "sys._current_frames" : "sys._current_exceptions", nullptr) < 0) {
        return nullptr;
    }
    PyRef result(PyDict_New());
    if (!result) return nullptr;
    int gc_was_enabled = PyGC_Disable();
    bool ok = true;
    PyInterpreterState* interp = PyInterpreterState_Get();
    for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t && ok; t = PyThreadState_Next(t)) {
        PyRef value;
        if (what == Collect::frames) {
            value = PyRef(reinterpret_cast<PyObject*>(PyThreadState_GetFrame(t)));  // null: no Python frame
            if (!value) continue;
        } else {
            PyObject* handled = handled_exception(t);  // borrowed; null: no exception stack
            if (!handled) continue;
            value = PyRef::borrow(handled);
        }
        PyRef id(PyLong_FromUnsignedLong(thread_ident(t)));
        ok = id && PyDict_SetItem(result.get(), id.get(), value.get()) == 0;
    }
    if (gc_was_enabled) PyGC_Enable();
    return ok ? result.release() : nullptr;
}

PyObject* current_frames(PyObject*, PyObject*) { return walk_threads(Collect::frames); }
PyObject* current_exceptions(PyObject*, PyObject*) { return walk_threads(Collect::exceptions); }

// Static, process-wide: a PyMethodDef is plain data; each interpreter makes its own function object.
PyMethodDef g_current_frames = {
    "_current_frames", current_frames, METH_NOARGS,
    "Return a dict mapping each thread's identifier to the topmost stack frame currently active in that\n"
    "thread at the time the function is called.\n\n"
    "manygil: only the threads of the calling interpreter (CPython's version crashes the process while\n"
    "other interpreters run Python); a manygil pool's dump_stacks() shows its workers' stacks."};
PyMethodDef g_current_exceptions = {
    "_current_exceptions", current_exceptions, METH_NOARGS,
    "Return a dict mapping each thread's identifier to its current raised exception.\n\n"
    "manygil: only the threads of the calling interpreter (see sys._current_frames)."};

// Puts our version of sys.<def.ml_name> in place, unless it already is (identity of the C function).
void replace_sys_function(PyMethodDef& def) {
    PyObject* present = PySys_GetObject(def.ml_name);  // borrowed, may be null
    if (present && PyCFunction_Check(present) && PyCFunction_GetFunction(present) == def.ml_meth) return;
    PyRef fn(PyCFunction_NewEx(&def, nullptr, nullptr));
    if (!fn || PySys_SetObject(def.ml_name, fn.get()) < 0) PyErr_Clear();
}

void fence_thread_walks() {
    replace_sys_function(g_current_frames);
    replace_sys_function(g_current_exceptions);
}

}  // namespace

void fence_main_interpreter() noexcept {
    for (const char* name : kImportInMainFirst) {
        if (!name) continue;
        PyRef module(PyImport_ImportModule(name));  // a lookup in sys.modules once imported
        if (!module) PyErr_Clear();  // a CPython built without it cannot hit the bug
    }
    fence_thread_walks();
}

void fence_sub_interpreter() noexcept { fence_thread_walks(); }

std::string why_creation_is_unsafe() {
    if (Py_Version >= 0x030C0000 && Py_Version < 0x030C0400) {
        return "CPython " + std::string(Py_GetVersion()).substr(0, std::string(Py_GetVersion()).find(' ')) +
               " corrupts memory when a sub-interpreter ends (gh-119213, fixed in 3.12.4): use CPython >= 3.12.4";
    }
    PyRef tracemalloc(PyImport_ImportModule("_tracemalloc"));  // built in: no file to find
    PyRef tracing(tracemalloc ? PyObject_CallMethod(tracemalloc.get(), "is_tracing", nullptr) : nullptr);
    if (!tracing) {
        PyErr_Clear();
        return {};
    }
    if (tracing.get() == Py_True) {
        return "tracemalloc is tracing memory allocations: with own-GIL interpreters it corrupts the heap and "
               "the process dies at exit (CPython gh-144172); stop it (tracemalloc.stop(), no -X tracemalloc or "
               "PYTHONTRACEMALLOC) before starting manygil workers";
    }
    return {};
}

}  // namespace manygil::detail
