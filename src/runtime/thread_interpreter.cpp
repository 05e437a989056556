#include "runtime/thread_interpreter.hpp"

#include <string>

#include "cpython/crash_fences.hpp"
#include "cpython/ownership.hpp"
#include "cpython/private_api.hpp"
#include "cpython/python_error.hpp"
#include "runtime/interpreter_threads.hpp"

#include "manygil/errors.hpp"

namespace manygil::detail {

namespace {

// What PEP 684 calls "isolated": own GIL and allocator, only extensions that declare support for
// per-interpreter GILs, no fork/exec (they would copy or replace every worker). Unlike CPython's
// preset, daemon threads are allowed: end() stops them before Py_EndInterpreter would find them
// (interpreter_threads.hpp).
constexpr PyInterpreterConfig kIsolated = {
    .use_main_obmalloc = 0,
    .allow_fork = 0,
    .allow_exec = 0,
    .allow_threads = 1,
    .allow_daemon_threads = 1,
    .check_multi_interp_extensions = 1,
    .gil = PyInterpreterConfig_OWN_GIL,
};

// Leaves the main-interpreter thread state of this thread attached-then-deleted: the main GIL is
// released on return.
void delete_main_tstate(PyThreadState* main_tstate) noexcept {
    if (PyThreadState_GetUnchecked() != main_tstate) PyEval_RestoreThread(main_tstate);
    PyThreadState_Clear(main_tstate);
    PyThreadState_DeleteCurrent();
}

}  // namespace

ThreadInterpreter::ThreadInterpreter() {
    // Creating an interpreter needs an attached thread state; this thread's own state in the main
    // interpreter serves, and is kept until end() (deleting it needs the main GIL, which we should
    // not wait for twice).
    main_tstate_ = PyThreadState_New(PyInterpreterState_Main());
    if (!main_tstate_) throw InterpreterError("cannot create a thread state in the main interpreter");
    PyEval_RestoreThread(main_tstate_);
    if (std::string unsafe = why_creation_is_unsafe(); !unsafe.empty()) {
        delete_main_tstate(main_tstate_);
        throw InterpreterError("cannot create an own-GIL interpreter: " + unsafe);
    }
    fence_main_interpreter();
    // Detaches main_tstate_ (releasing the main GIL) early, so workers create interpreters in parallel.
    PyStatus status = Py_NewInterpreterFromConfig(&tstate_, &kIsolated);
    if (PyStatus_Exception(status) || !tstate_) {
        // On failure CPython re-attaches main_tstate_ (except on one early path: handled inside).
        delete_main_tstate(main_tstate_);
        throw InterpreterError("cannot create an own-GIL interpreter: " + describe_status(status));
    }
    id_ = PyInterpreterState_GetID(PyThreadState_GetInterpreter(tstate_));
    fence_sub_interpreter();
}

void ThreadInterpreter::end() noexcept {
    if (!tstate_) return;
    expect_attached(PyThreadState_GetInterpreter(tstate_), "an interpreter is ended by its own thread, attached");
    stop_interpreter_threads(tstate_);
    Py_EndInterpreter(tstate_);  // destroys tstate_, leaves nothing attached
    tstate_ = nullptr;
    delete_main_tstate(main_tstate_);
    main_tstate_ = nullptr;
}

ThreadInterpreter::~ThreadInterpreter() {
    if (tstate_) {
        attach();
        end();
    }
}

}  // namespace manygil::detail
