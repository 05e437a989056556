// manygil::Interpreter: one isolated sub-interpreter with its own GIL, living on its own OS thread for
// its whole life. Calls block the calling thread until the interpreter's thread has run them.
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
    // Starts the thread and creates the interpreter on it (OWN_GIL, own obmalloc, multi-phase-only
    // extensions, no fork/exec; daemon threads are stopped with SystemExit when it ends). Throws
    // InterpreterError if creation fails.
    explicit Interpreter(Runtime& runtime);

    // close().
    ~Interpreter();

    Interpreter(const Interpreter&) = delete;
    Interpreter& operator=(const Interpreter&) = delete;
    Interpreter(Interpreter&&) noexcept;
    Interpreter& operator=(Interpreter&&) noexcept;

    // Runs Python source in the interpreter's __main__ module. Throws PythonError.
    void exec(std::string_view source);

    // Calls "module:function" (or "module:Class.method", or "__main__:name" for something exec()
    // defined) and returns its result. Throws InvalidArgument, UnknownFunctionError, ConversionError,
    // PythonError.
    Value call(std::string_view target, Args args = {}, Kwargs kwargs = {});

    // Queues a call without waiting for it.
    std::future<Value> submit(std::string_view target, Args args = {}, Kwargs kwargs = {});

    // Runs a custom job on the interpreter's thread. Throws ShutdownError after close().
    void post(std::unique_ptr<Job> job);

    // Runs what was already queued, ends the interpreter on its thread and joins the thread.
    // Idempotent; later calls to exec/call/submit/post throw ShutdownError.
    void close();
    bool closed() const noexcept;

    // The interpreter's id (PyInterpreterState_GetID).
    std::int64_t id() const;

private:
    std::shared_ptr<detail::WorkerGroup> group_;
};

}  // namespace manygil
