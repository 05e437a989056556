// manygil::Pool: N own-GIL interpreters, one per worker thread, fed from one task queue. An idle
// worker watches the queue for MANYGIL_SPIN_US microseconds (default 50; up to 1 ms while its recent
// idle spells were that short) before it sleeps, so a stream of short tasks needs no kernel wake-up.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "manygil/job.hpp"
#include "manygil/runtime.hpp"
#include "manygil/value.hpp"

namespace manygil {

// What each worker runs once, after creating its interpreter and before taking tasks.
class Initializer {
public:
    // Python source executed in the worker's __main__ (it may define functions tasks then call as
    // "__main__:name").
    static Initializer source(std::string code);
    // A call of "module:function" with these arguments.
    static Initializer call(std::string target, Args args = {}, Kwargs kwargs = {});

    bool is_source() const noexcept { return is_source_; }
    const std::string& text() const noexcept { return text_; }  // the source, or the target
    const Args& args() const noexcept { return args_; }
    const Kwargs& kwargs() const noexcept { return kwargs_; }

private:
    bool is_source_ = true;
    std::string text_;
    Args args_;
    Kwargs kwargs_;
};

// A task running on a worker, as stats() sees it.
struct RunningTask {
    std::string what;                // e.g. "module:function"
    double running_seconds = 0;
    bool interruptible = false;      // inside a call that an interrupt or a timeout can stop
    // Set when an interrupt was sent and the task still runs (it is in C code that does not return
    // to Python bytecode): how long ago.
    std::optional<double> interrupt_pending_seconds;
};

struct WorkerStats {
    std::size_t index = 0;
    std::int64_t interpreter_id = -1;
    std::uint64_t tasks_done = 0, tasks_failed = 0;
    double busy_seconds = 0;
    std::optional<RunningTask> current;  // nullopt: idle
};

struct PoolStats {
    std::vector<WorkerStats> workers;
    std::size_t queued = 0;  // tasks waiting for a worker
};

struct PoolOptions {
    // Number of worker interpreters; 0 means default_workers().
    std::size_t workers = 0;
    std::optional<Initializer> initializer;
    // Names the pool in its threads' names and in error messages ("pool is broken: ...").
    std::string name = "pool";
};

class Pool {
public:
    // Starts the workers, which create their interpreters in parallel; returns at once (tasks
    // submitted meanwhile wait in the queue). If a worker cannot start (its interpreter cannot be
    // created or the initializer raises), the pool breaks: every pending and later task fails with
    // BrokenPoolError carrying the original error.
    Pool(Runtime& runtime, PoolOptions options = {});

    // shutdown(wait=true, cancel_pending=false): queued tasks still run.
    ~Pool();

    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    Pool(Pool&&) noexcept;
    Pool& operator=(Pool&&) noexcept;

    // Queues a call of "module:function". The future yields the result or throws what the call threw
    // (PythonError, UnknownFunctionError, ConversionError, CancelledError, BrokenPoolError).
    // Throws ShutdownError after shutdown(), BrokenPoolError once broken.
    std::future<Value> submit(std::string_view target, Args args = {}, Kwargs kwargs = {});

    // Queues Python source to run in some worker's __main__; the future yields None.
    std::future<Value> submit_exec(std::string_view source);

    // Queues a custom job (see job.hpp). Same errors as submit().
    void post(std::unique_ptr<Job> job);

    // Stops accepting work. cancel_pending: queued tasks that have not started fail with
    // CancelledError instead of running; with wait too, each worker first takes its first task
    // (tasks submitted right after the pool was created are not all cancelled because the
    // interpreters were still starting). wait: block until running (and, without cancel_pending,
    // queued) tasks are done and every interpreter has ended. Idempotent.
    void shutdown(bool wait = true, bool cancel_pending = false);

    // Blocks until every worker has created its interpreter, run the initializer and taken its first
    // task if one was queued: a shutdown(cancel_pending=true) after it cancels only tasks no worker
    // could have started. Throws BrokenPoolError if a worker failed to start.
    void wait_ready();

    // Why the pool is broken (BrokenPoolError's message), or nullopt while it is not. Thread-safe.
    std::optional<std::string> broken() const;

    std::size_t size() const noexcept;

    // True once every worker has ended its interpreter (after shutdown, or when the pool broke):
    // destroying the pool then does not block.
    bool finished() const noexcept;

    // Per-worker numbers and what runs now.
    PoolStats stats() const;
    // Each worker's current Python stack (innermost call last), or nullopt for a worker whose GIL
    // could not be had within `timeout` (it runs C code that keeps it).
    std::vector<std::optional<std::string>> dump_stacks(std::chrono::milliseconds timeout = std::chrono::seconds(1)) const;
    // Blocks until every worker has ended its interpreter (after shutdown()), or `timeout` passes.
    // True if they have.
    bool wait_finished(std::chrono::milliseconds timeout);
    // Interrupts: a running interruptible call (a job marks its Python calls so; the Python
    // package's tasks do) gets TimeoutError(reason) at its next bytecode. interrupt() targets the
    // call of one task id if it runs now (true), interrupt_running() every running call (returning
    // how many) and, with later_calls_too, every call that starts afterwards (for a pool that is
    // shutting down and must stop). See stats() for calls that do not return to bytecode.
    bool interrupt(std::uint64_t task, const std::string& reason);
    std::size_t interrupt_running(const std::string& reason, bool later_calls_too = false);
    // A callable that does interrupt(task, reason) for as long as the pool exists (and then returns
    // false): for handles that may outlive the pool.
    std::function<bool(const std::string& reason)> interrupter(std::uint64_t task) const;
    // Ids of the workers' interpreters (after wait_ready()).
    std::vector<std::int64_t> interpreter_ids() const;

    // The CPUs this process may run on (sched_getaffinity), at least 1.
    static std::size_t default_workers();

private:
    std::shared_ptr<detail::WorkerGroup> group_;
};

}  // namespace manygil
