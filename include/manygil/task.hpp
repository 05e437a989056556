// manygil::Task: one task submitted to a Pool (Pool::submit, Pool::submit_exec), as its submitter
// holds it: its id, cancel() while it waits in the queue, interrupt() while it runs, a timeout given
// at submit (TaskOptions), and its outcome (a Value, or what the call threw). The Python package's
// Future is a binding over the same task (the extension settles a concurrent.futures.Future instead of
// recording a Value, and cancels, interrupts and times out through this same state).
//
// The decision that matters is made once, without any GIL, by one atomic: a task moves from PENDING to
// exactly one of RUNNING (a worker took it), CANCELLED (cancel() won) or ABANDONED (the pool failed it:
// shutdown with cancel_pending, or broken). Whichever of cancel() and the worker comes first wins;
// the other sees it lost.
//
// Thread safety: every member may be called from any thread, concurrently. GIL: none needed, and the
// waits (wait(), wait_for(), get()) must not hold the MAIN interpreter's GIL (see pool.hpp). Lifetime:
// a Task is a cheap handle (copies share one task); it may outlive the Pool and the Runtime: interrupt()
// then returns false, and an unfinished task's outcome is the CancelledError or BrokenPoolError the
// pool failed it with.
#pragma once

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "manygil/value.hpp"

namespace manygil {

namespace detail {
class TaskState;
}

// How one task runs (Pool::submit).
struct TaskOptions {
    // The call is interrupted (TimeoutError at its next bytecode, reported as PythonError
    // "TimeoutError") once it has run this long; nullopt: no limit. The time in the queue does not
    // count.
    std::optional<std::chrono::duration<double>> timeout;
};

class Task {
public:
    // An empty handle (valid() false): every other member throws Error.
    Task() = default;
    explicit Task(std::shared_ptr<detail::TaskState> state) noexcept : state_(std::move(state)) {}

    bool valid() const noexcept { return static_cast<bool>(state_); }

    // Unique in the process (never 0): Pool::interrupt(id) reaches this task's call too.
    std::uint64_t id() const;

    // True if the task will never run: it was still queued (it is CANCELLED now, and get() throws
    // CancelledError at once), or was cancelled or abandoned before. False once a worker started it
    // (use interrupt()). Never blocks.
    bool cancel();

    // Asks the task's call to stop: TimeoutError(reason) at its next bytecode, and a manygil wait it
    // is in ends (timeout.hpp); get() then throws PythonError "TimeoutError" with this reason. A task
    // still queued is interrupted as soon as its call starts. True if it runs now. Calls in C code
    // that never return to bytecode (time.sleep) are not stopped. Never blocks.
    bool interrupt(const std::string& reason = "manygil: the task was interrupted (Task::interrupt())");

    // True once a worker has started it (it ran or runs; it was not cancelled).
    bool started() const;
    // True once its outcome is known (get() will not block).
    bool done() const;

    // Block until done (see GILs above).
    void wait() const;
    template <class Rep, class Period>
    std::future_status wait_for(const std::chrono::duration<Rep, Period>& timeout) const {
        return wait_until(std::chrono::steady_clock::now() +
                          std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
    }
    std::future_status wait_until(std::chrono::steady_clock::time_point deadline) const;

    // Waits, then returns the result or throws what the task threw: PythonError (TimeoutError for an
    // interrupted or timed-out call), UnknownFunctionError, ConversionError, CancelledError,
    // BrokenPoolError. May be called again, from any thread; the Value lives as long as a handle.
    const Value& get() const;

    // For the runtime and the Python extension: the state this handle shares.
    const std::shared_ptr<detail::TaskState>& state() const noexcept { return state_; }

private:
    detail::TaskState& live() const;
    std::shared_ptr<detail::TaskState> state_;
};

}  // namespace manygil
