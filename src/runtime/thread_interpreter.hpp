// ThreadInterpreter: an isolated own-GIL interpreter bound to the OS thread that created it. That thread
// creates it, attaches and detaches it around work, and ends it; no other thread ever touches it.
#pragma once

#include <Python.h>

#include <cstdint>

namespace manygil::detail {

class ThreadInterpreter {
public:
    // Creates the interpreter on the calling thread, which must have no thread state attached.
    // Returns with the new interpreter attached. Throws InterpreterError.
    ThreadInterpreter();
    // Ends the interpreter if end() was not called (on the same thread).
    ~ThreadInterpreter();

    ThreadInterpreter(const ThreadInterpreter&) = delete;
    ThreadInterpreter& operator=(const ThreadInterpreter&) = delete;

    // Take / release the interpreter's own GIL around work.
    void attach() noexcept { PyEval_RestoreThread(tstate_); }
    void detach() noexcept { PyEval_SaveThread(); }

    // Take / release the MAIN interpreter's GIL with this thread's main-interpreter state (between
    // detach() and attach() only).
    void attach_main() noexcept { PyEval_RestoreThread(main_tstate_); }
    void detach_main() noexcept { PyEval_SaveThread(); }

    // Ends the interpreter: joins its non-daemon threads, runs its atexit callbacks, stops its
    // daemon threads (waiting for any blocked in C: interpreter_threads.hpp). Must be attached.
    // Returns with no thread state attached.
    void end() noexcept;

    std::int64_t id() const noexcept { return id_; }
    PyThreadState* tstate() const noexcept { return tstate_; }

private:
    PyThreadState* tstate_ = nullptr;       // ours, in the new interpreter
    PyThreadState* main_tstate_ = nullptr;  // this thread's state in the main interpreter
    std::int64_t id_ = -1;
};

}  // namespace manygil::detail
