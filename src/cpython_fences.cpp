#include "cpython_fences.hpp"

#include "py_ref.hpp"

namespace manygil::detail {

namespace {

// _datetime keeps its types in static storage shared by every interpreter. When a sub-interpreter
// initialises them first and the main interpreter imports the module afterwards, or several
// interpreters end while holding them, the heap is corrupted at shutdown (CPython gh-136421,
// gh-136423; 3.12 and 3.13, and 3.13.15 still crashes). With the main interpreter owning them from
// the start, sub-interpreters only ever add to what main set up, and those crashes are gone.
// 3.14 initialises these types at interpreter start-up (gh-136421's fix), so there is nothing to do.
constexpr bool kImportDatetimeInMain = PY_VERSION_HEX < 0x030E0000;

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
            // The exception being handled: the innermost non-empty item of the exception stack, as
            // CPython's _PyErr_GetTopmostException() finds it.
            _PyErr_StackItem* item = t->exc_info;
            if (!item) continue;
            while ((!item->exc_value || item->exc_value == Py_None) && item->previous_item) item = item->previous_item;
            value = PyRef::borrow(item->exc_value ? item->exc_value : Py_None);
        }
        PyRef id(PyLong_FromUnsignedLong(t->thread_id));
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
    if (kImportDatetimeInMain) {
        PyRef datetime(PyImport_ImportModule("_datetime"));  // a lookup in sys.modules once imported
        if (!datetime) PyErr_Clear();  // a CPython built without it cannot hit the bug
    }
    fence_thread_walks();
}

void fence_sub_interpreter() noexcept { fence_thread_walks(); }

}  // namespace manygil::detail
