// manygil::call_in_main: a call of "module:function" in the MAIN interpreter, made from anywhere: a
// worker's job, a Python task's C code, any C++ thread. For what only the main interpreter can do:
// modules that refuse own-GIL interpreters (NumPy, PyTorch, readline, ...), objects the host keeps
// there. The Python package's manygil.call_in_main is the same call for Python code in workers.
//
// Where it runs. On one of a few threads manygil keeps for calls into main (never the host's own
// threads): started on demand, one per call in flight, up to 16; more calls wait in FIFO order. They
// share the main interpreter's GIL, so pure-Python calls run one at a time; while another thread
// runs Python holding that GIL, a call waits for it (CPython's switch interval, 5 ms by default,
// bounds how long a busy holder keeps it). A thread blocked in a wait that releases the GIL does not
// delay calls.
//
// Blocking and GILs. It blocks until the call returns, spinning briefly first (timeout.hpp):
// - on a thread with a worker's interpreter attached (a Job::run(), a C function a task calls), that
//   GIL is released while it waits and taken again before it returns, so the worker's other Python
//   threads run meanwhile;
// - on a thread holding no GIL, it just waits;
// - on a thread with the MAIN interpreter attached, the call is made right there, on this thread
//   (no hand-over, no timeout: a call from main to main is a plain call).
// Thread-safe: any number of threads may call at once.
//
// Timeouts and interrupts. `timeout` bounds the wait (nullopt: as long as it takes); inside an
// interruptible call on a worker (Pool::submit's calls, the Python package's tasks), an interrupt of
// that call (Pool::interrupt_running, a task timeout) ends the wait too; the interrupt also still
// lands in that Python call. Either way TimeoutError is thrown and the call is withdrawn: if it has
// not started in main it never runs; if it has, it runs to completion and its result is dropped.
//
// Values. Arguments and the result are Values, converted to and from Python objects in main
// (SharedBuffer, Channel and the sync objects by reference: main sees the same memory). Every
// Python object made for the call is made and released in main, on the thread that ran it.
//
// Errors: InvalidArgument (malformed target), UnknownFunctionError, PythonError (what the call
// raised, with its traceback), ConversionError (a result Python-only), TimeoutError, ShutdownError
// (no Runtime, or Runtime::close() has begun: a queued call is then refused).
//
// Lifetime: needs an open Runtime (runtime.hpp); Runtime::close() waits for calls running in main,
// then ends the threads, before Python finalises.
#pragma once

#include <string_view>

#include "manygil/timeout.hpp"
#include "manygil/value.hpp"

namespace manygil {

Value call_in_main(std::string_view target, Args args = {}, Kwargs kwargs = {}, Timeout timeout = std::nullopt);

}  // namespace manygil
