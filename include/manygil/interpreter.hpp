// manygil::Interpreter: one isolated sub-interpreter with its own GIL (OWN_GIL, own obmalloc,
// multi-phase-only extensions, no fork/exec), living on its own OS thread for its whole life; every
// call runs there, one at a time, in the order queued.
//
// Thread safety: every member may be called from any thread (not from the interpreter's own thread
// where stated). Move and destruction are not thread-safe against other calls on the same object.
//
// GILs: the calling thread needs none. The constructor, exec(), call() and close() block; the
// interpreter's thread takes the MAIN interpreter's GIL to create and to end the interpreter, so hold
// the main GIL across none of them (and release any other GIL you hold, see timeout.hpp). Results
// come back as Values, never as Python objects.
//
// Lifetime: the Runtime must outlive the constructor; Runtime::close() closes every Interpreter. The
// object may outlive the Runtime, closed (later calls throw ShutdownError).
#pragma once

#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <string_view>

#include "manygil/job.hpp"
#include "manygil/runtime.hpp"
#include "manygil/value.hpp"

namespace manygil {

class Interpreter {
public:
    // Starts the thread and blocks until the interpreter exists on it (daemon threads it starts are
    // stopped with SystemExit when it ends). Throws InterpreterError if creation fails, ShutdownError
    // if the runtime is closed.
    explicit Interpreter(Runtime& runtime);

    // close(); from the interpreter's own thread (a job that owned it), it does not wait.
    ~Interpreter();

    Interpreter(const Interpreter&) = delete;
    Interpreter& operator=(const Interpreter&) = delete;
    // The moved-from object may only be destroyed or assigned to. Assigning closes the target first.
    Interpreter(Interpreter&&) noexcept;
    Interpreter& operator=(Interpreter&&) noexcept;

    // Runs Python source in the interpreter's __main__ module and waits for it. Throws PythonError,
    // ShutdownError after close(), Error from the interpreter's own thread (it would wait for itself).
    void exec(std::string_view source);

    // Calls "module:function" (or "module:Class.method", or "__main__:name" for something exec()
    // defined) and waits for its result. Throws InvalidArgument, UnknownFunctionError,
    // ConversionError, PythonError, ShutdownError after close(), Error from the interpreter's own
    // thread.
    Value call(std::string_view target, Args args = {}, Kwargs kwargs = {});

    // Queues a call without waiting; the future yields what call() would return or throw. Allowed
    // from the interpreter's own thread (do not wait on the future there). Throws InvalidArgument
    // (malformed target) and ShutdownError at once.
    std::future<Value> submit(std::string_view target, Args args = {}, Kwargs kwargs = {});

    // Queues a custom job (job.hpp). Throws InvalidArgument for null, ShutdownError after close().
    void post(std::unique_ptr<Job> job);

    // Stops accepting work, lets what was already queued run, ends the interpreter on its thread and
    // joins the thread (from that thread itself: returns without waiting). Idempotent.
    void close();
    bool closed() const noexcept;

    // The interpreter's id (PyInterpreterState_GetID); still answers after close().
    std::int64_t id() const;

private:
    std::shared_ptr<detail::WorkerGroup> group_;
};

}  // namespace manygil
