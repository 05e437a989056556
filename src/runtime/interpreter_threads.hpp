// The Python threads a worker's code starts inside its interpreter, daemon threads included, and how
// they end with it.
//
// Py_EndInterpreter() joins non-daemon threads, runs the atexit callbacks, then aborts the process
// ("not the last thread") if any other thread of the interpreter is still alive. That is why
// CPython's isolated configuration refuses daemon threads. manygil allows them (logging's
// QueueListener, socketserver's daemon_threads, SDKs with background threads need them) and stops
// them before Py_EndInterpreter() looks.
#pragma once

#include <Python.h>

#include <chrono>

namespace manygil::detail {

// How long daemon threads get to leave after SystemExit was raised in them before a warning names the
// ones still there; SystemExit is raised again each kDaemonRetry afterwards.
inline constexpr std::chrono::milliseconds kDaemonGrace{2000};
inline constexpr std::chrono::milliseconds kDaemonRetry{1000};

// Called on the interpreter's own thread, `self` attached, right before Py_EndInterpreter(self).
// Returns, with `self` attached, once `self` is the interpreter's only thread state. In order:
//  1. threading._shutdown(): joins non-daemon threads, as Py_EndInterpreter() would;
//  2. the atexit callbacks run (and are cleared, so they run once), as Py_EndInterpreter() would,
//     but while daemon threads still live: a callback can stop one cleanly (QueueListener.stop);
//  3. every other thread of the interpreter still alive gets SystemExit raised asynchronously (it
//     ends quietly, as threading's excepthook ignores SystemExit) and is waited for.
// A thread blocked in C code that never returns to Python bytecode (a socket read, a lock without
// timeout) cannot be stopped: CPython cannot end an interpreter while one of its threads lives, and
// freeing it under that thread would crash the process later. So this waits for it, as it waits for a
// task stuck in C: after kDaemonGrace a warning on stderr names each such thread and where it is
// blocked, and SystemExit is raised again every kDaemonRetry, until the thread returns.
void stop_interpreter_threads(PyThreadState* self) noexcept;

}  // namespace manygil::detail
