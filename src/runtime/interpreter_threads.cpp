#include "runtime/interpreter_threads.hpp"

#include <string>
#include <thread>
#include <vector>

#include "cpython/private_api.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

namespace {

using Clock = std::chrono::steady_clock;

// sys.modules[name], or null (no error set) when it is not imported.
PyRef imported_module(const char* name) {
    PyRef key(PyUnicode_FromString(name));
    return PyRef(key ? PyImport_GetModule(key.get()) : nullptr);
}

// Calls module.name() if the module is imported (or importable, with import_it); reports errors as
// unraisable, the way Py_EndInterpreter() reports the same calls' errors.
void call_if_present(const char* module, const char* name, bool import_it) {
    PyRef mod(import_it ? PyImport_ImportModule(module) : imported_module(module).release());
    if (!mod) {
        if (PyErr_Occurred()) PyErr_WriteUnraisable(nullptr);
        return;
    }
    PyRef done(PyObject_CallMethod(mod.get(), name, nullptr));
    if (!done) PyErr_WriteUnraisable(mod.get());
}

// The identifiers of the interpreter's threads other than `self`. No Python code runs here, so the
// list cannot change under us (threads of this interpreter add and remove their states with its GIL).
std::vector<unsigned long> other_threads(PyThreadState* self) {
    std::vector<unsigned long> ids;
    for (PyThreadState* t = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(self)); t;
         t = PyThreadState_Next(t)) {
        if (t != self) ids.push_back(thread_ident(t));
    }
    return ids;
}

std::string text(PyObject* obj) {
    PyRef s(obj ? PyObject_Str(obj) : nullptr);
    const char* p = s ? PyUnicode_AsUTF8(s.get()) : nullptr;
    if (!p) PyErr_Clear();
    return p ? p : "?";
}

// "'Thread-1 (serve)' (ident 1234) in socket.py:295 recv_into"
std::string describe_thread(PyThreadState* self, unsigned long id) {
    std::string out = "ident " + std::to_string(id);
    if (PyRef threading = imported_module("threading")) {
        PyRef active(PyObject_GetAttrString(threading.get(), "_active"));
        PyRef key(PyLong_FromUnsignedLong(id));
        PyObject* thread = active && key && PyDict_Check(active.get()) ? PyDict_GetItemWithError(active.get(), key.get()) : nullptr;
        if (thread) out = "'" + text(PyRef(PyObject_GetAttrString(thread, "name")).get()) + "' (" + out + ")";
    }
    PyErr_Clear();
    for (PyThreadState* t = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(self)); t; t = PyThreadState_Next(t)) {
        if (thread_ident(t) != id) continue;
        PyRef frame(reinterpret_cast<PyObject*>(PyThreadState_GetFrame(t)));
        if (!frame) return out + ", not running Python code";
        PyRef code(reinterpret_cast<PyObject*>(PyFrame_GetCode(reinterpret_cast<PyFrameObject*>(frame.get()))));
        PyRef file(PyObject_GetAttrString(code.get(), "co_filename"));
        PyRef name(PyObject_GetAttrString(code.get(), "co_name"));
        out += " in " + text(file.get()) + ":" +
               std::to_string(PyFrame_GetLineNumber(reinterpret_cast<PyFrameObject*>(frame.get()))) + " " + text(name.get());
        PyErr_Clear();
        break;
    }
    return out;
}

void raise_system_exit(const std::vector<unsigned long>& ids) {
    for (unsigned long id : ids) PyThreadState_SetAsyncExc(id, PyExc_SystemExit);
}

}  // namespace

void stop_interpreter_threads(PyThreadState* self) noexcept {
    call_if_present("threading", "_shutdown", /*import_it=*/false);
    call_if_present("atexit", "_run_exitfuncs", /*import_it=*/true);

    std::vector<unsigned long> ids = other_threads(self);
    if (ids.empty()) return;
    raise_system_exit(ids);
    auto began = Clock::now(), last_raise = began;
    bool warned = false;
    auto pause = std::chrono::microseconds(200);
    while (!(ids = other_threads(self)).empty()) {
        auto now = Clock::now();
        if (!warned && now - began >= kDaemonGrace) {
            std::string list;
            for (unsigned long id : ids) list += "\n  " + describe_thread(self, id);
            PyRef interp_id(PyLong_FromLongLong(PyInterpreterState_GetID(PyThreadState_GetInterpreter(self))));
            PySys_FormatStderr(
                "manygil: interpreter %S cannot end while its threads run, and %zd of them ignored SystemExit "
                "for %d s (blocked in C code?). Waiting for them:%s\n",
                interp_id.get(), static_cast<Py_ssize_t>(ids.size()),
                static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(kDaemonGrace).count()), list.c_str());
            PyErr_Clear();
            warned = true;
        }
        if (now - last_raise >= kDaemonRetry) {  // it may have caught SystemExit and gone on
            raise_system_exit(ids);
            last_raise = now;
        }
        // Their code needs our GIL to leave: let go of it while we wait.
        PyEval_SaveThread();
        std::this_thread::sleep_for(pause);
        pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
        PyEval_RestoreThread(self);
    }
}

}  // namespace manygil::detail
