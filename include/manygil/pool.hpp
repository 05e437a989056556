// manygil::Pool: N own-GIL interpreters, one per worker thread, fed from one FIFO task queue. Idle
// workers wait as timeout.hpp says (spin, then sleep).
//
// Thread safety: every member may be called from any thread, including the pool's own workers
// (except where stated: a worker cannot wait for its own pool). Move and destruction are not
// thread-safe against other calls on the same object.
//
// GILs: the calling thread needs none, and must not hold the MAIN interpreter's GIL across a call that
// waits for workers (wait_ready(), shutdown(wait=true), wait_finished(), the destructor, the
// constructor when it fails, and a Task's wait() and get()): workers take that GIL to create and to end
// their interpreters, and for jobs' run_in_main(). submit(), post() and shutdown(wait=false) never
// wait for a worker.
//
// Lifetime: the Runtime must outlive the constructor; Runtime::close() shuts every Pool down. A Pool
// may outlive the Runtime, shut down (submit() then throws ShutdownError). Tasks (task.hpp) and
// interrupter()s may outlive the Pool.
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
#include "manygil/task.hpp"
#include "manygil/value.hpp"

namespace manygil {

namespace detail {
class WorkerGroup;
struct PoolAccess;
}  // namespace detail

// What each worker runs once, after creating its interpreter and before taking tasks. If it raises,
// the pool breaks (BrokenPoolError, with its error as cause()).
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

// stats(): a snapshot, each worker's numbers read under that worker's lock (not one instant for all).
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
    std::size_t index = 0;           // for a stuck worker: the index it had (a new worker has it now)
    std::int64_t interpreter_id = -1;
    std::uint64_t tasks_done = 0, tasks_failed = 0;
    double busy_seconds = 0;
    std::optional<RunningTask> current;  // nullopt: idle
};

struct PoolStats {
    std::vector<WorkerStats> workers;
    std::size_t queued = 0;  // tasks waiting for a worker
    // Workers replaced because they were stuck (PoolOptions::replace_stuck_after), since the start,
    // and those among them whose call still runs (they end when it returns).
    std::size_t replaced = 0;
    std::vector<WorkerStats> stuck;
    // Workers replaced because they had run PoolOptions::max_tasks_per_worker tasks, since the start.
    std::size_t recycled = 0;
};

// A worker found stuck and replaced (PoolOptions::replace_stuck_after), as reported to on_stuck.
struct StuckWorker {
    std::string pool;                  // PoolOptions::name
    std::size_t index = 0;             // the index it had; its replacement has it now
    std::int64_t interpreter_id = -1;
    std::string what;                  // the job it runs, e.g. "module:function" or "WSGI GET /path"
    double interrupt_pending_seconds = 0;
    // Its Python stack, innermost call last; nullopt when its GIL could not be had (C code that keeps
    // it).
    std::optional<std::string> stack;
};

struct PoolOptions {
    // Number of worker interpreters; 0 means default_workers().
    std::size_t workers = 0;
    std::optional<Initializer> initializer;
    // Names the pool in its threads' names and in error messages ("pool is broken: ...").
    std::string name = "pool";
    // Start workers on the interpreters of earlier pools' workers, parked when those pools shut down,
    // and park this pool's when it shuts down (up to the number of usable CPUs in the process), instead
    // of creating and ending interpreters (~5-8 ms each). A reused interpreter keeps what earlier tasks
    // imported, and the modules' state; it runs this pool's initializer. Only interpreters whose tasks
    // left no thread running and no atexit callback park. Runtime::close() ends parked interpreters.
    bool reuse_interpreters = false;
    // Stuck workers: a worker whose call still runs this long after an interrupt was sent to it (a
    // timeout, interrupt(), interrupt_running()) is stuck in code that never returns to Python
    // bytecode (time.sleep, a blocking read in C). It is replaced by a new worker (a new interpreter,
    // the initializer run again) so the pool keeps its size; the stuck one finishes its call, which
    // settles its task as usual, and then ends its interpreter instead of taking more work. stats()
    // lists it under `stuck` until then. shutdown(wait=true) and Runtime::close() still wait for it.
    // Checked by a watchdog thread of the pool (about 10 times a second). nullopt: never replaced.
    std::optional<std::chrono::milliseconds> replace_stuck_after;
    // Told about each replacement, on the watchdog thread, without any GIL (it must not block long;
    // it must not call back into this pool's shutdown()). Unset: a message to stderr with the stack.
    std::function<void(const StuckWorker&)> on_stuck;
    // Recycling (ProcessPoolExecutor's max_tasks_per_child, gunicorn's --max-requests): a worker that
    // has run this many jobs (plus up to max_tasks_jitter more, chosen at random per worker, so
    // workers do not all recycle at once) starts its successor (a new interpreter, the initializer
    // run again) and goes on serving until the successor is ready, then finishes its job in hand and
    // ends its interpreter: no job is dropped and the pool never has fewer ready workers. 0: never.
    // A job whose Job::counts_as_task() is false does not count (AsgiHandler's event loops).
    std::size_t max_tasks_per_worker = 0;
    std::size_t max_tasks_jitter = 0;
    // Pins worker i to one CPU: the (i mod n)-th of the n CPUs the process may run on when the pool
    // starts (its main thread's affinity). Its successors (recycling, stuck replacement) take the
    // same CPU; a parked thread reused by a pool that does not pin gets the process's CPUs back.
    // Why: workers that are always busy (an event loop under load) look like CPU hogs to the
    // scheduler, which may leave two of them taking turns of a tick (4 ms at HZ=250) on one CPU while
    // lighter threads run on another; every request of the one waiting then waits those 4 ms (manygil
    // serve's ASGI p99 doubled so). Worth it only when the workers are as many as the CPUs and are the
    // machine's main load: pinned fewer workers than CPUs would all crowd the first CPUs, and several
    // pinned pools on one machine the same ones. Best effort: a CPU that cannot be set is left to the
    // kernel. False (default): the kernel places the workers.
    bool pin_workers = false;
};

class Pool {
public:
    // Starts the workers, which create their interpreters in parallel; returns without waiting for
    // them (tasks submitted meanwhile wait in the queue). Throws InvalidArgument (a malformed
    // initializer target), ShutdownError (the runtime is closed). If a worker cannot start (its
    // interpreter cannot be created or the initializer raises), the pool breaks: every pending and
    // later task fails with BrokenPoolError carrying the original error.
    Pool(Runtime& runtime, PoolOptions options = {});

    // shutdown(wait=true, cancel_pending=false): queued tasks still run, and it waits for them, except
    // on one of the pool's own workers (a job that owned the pool), where it does not wait.
    ~Pool();

    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    // The moved-from pool may only be destroyed or assigned to (other calls throw Error). Assigning
    // shuts the target down first, as its destructor would.
    Pool(Pool&&) noexcept;
    Pool& operator=(Pool&&) noexcept;

    // Queues a call of "module:function" and returns its Task (task.hpp): cancel it while it is
    // queued, interrupt it while it runs, wait for it; get() yields the result or throws what the call
    // threw (PythonError, UnknownFunctionError, ConversionError, CancelledError, BrokenPoolError).
    // options.timeout interrupts the call once it has run that long. Throws InvalidArgument
    // (malformed target, a timeout <= 0), ShutdownError after shutdown(), BrokenPoolError once broken.
    // Never blocks. The call is interruptible (Task::interrupt(), interrupt(), interrupt_running()).
    Task submit(std::string_view target, Args args = {}, Kwargs kwargs = {}, TaskOptions options = {});

    // Queues Python source to run in some worker's __main__; get() yields None. Cancellable while
    // queued; not interruptible. Same errors as submit().
    Task submit_exec(std::string_view source);

    // Queues a custom job (job.hpp). InvalidArgument for null; otherwise as submit().
    void post(std::unique_ptr<Job> job);

    // Stops accepting work (later submits throw ShutdownError). cancel_pending: queued tasks that
    // have not started are abandoned (their futures throw CancelledError) on this thread; with wait
    // too, each worker first takes its first task (tasks submitted right after the pool was created
    // are not all cancelled because the interpreters were still starting). wait: block until running
    // (and, without cancel_pending, queued) tasks are done and every interpreter has ended; throws
    // Error on one of the pool's own workers (it would wait for itself). Running tasks are never
    // stopped (see interrupt_running()). Idempotent.
    void shutdown(bool wait = true, bool cancel_pending = false);

    // Blocks until every worker has created its interpreter, run the initializer and taken its first
    // task if one was queued: a shutdown(cancel_pending=true) after it cancels only tasks no worker
    // could have started. Throws BrokenPoolError if a worker failed to start.
    void wait_ready();

    // Why the pool is broken (BrokenPoolError's message), or nullopt while it is not.
    std::optional<std::string> broken() const;

    // The number of workers (0 for a moved-from pool).
    std::size_t size() const noexcept;

    // True once every worker has ended its interpreter (after shutdown, or when the pool broke):
    // destroying the pool then does not block.
    bool finished() const noexcept;

    // Per-worker numbers and what runs now. Never waits for a worker's GIL.
    PoolStats stats() const;
    // Each worker's current Python stack (innermost call last), or nullopt for a worker whose GIL
    // could not be had in time (it runs C code that keeps it). Blocks up to `timeout` in all.
    std::vector<std::optional<std::string>> dump_stacks(std::chrono::milliseconds timeout = std::chrono::seconds(1)) const;
    // Blocks until every worker has ended its interpreter (after shutdown()), or `timeout` passes.
    // True if they have. Unlike shutdown(wait=true) it does not join the threads.
    bool wait_finished(std::chrono::milliseconds timeout);
    // Interrupts: a running interruptible call gets TimeoutError(reason) at its next bytecode, and a
    // manygil wait it is in ends (timeout.hpp). Calls that never return to bytecode (C code, e.g.
    // time.sleep) are not stopped; stats() shows the interrupt pending. These only ask each worker's
    // monitor thread, which delivers under that worker's GIL: they never wait for the call to stop.
    // interrupt(): the call of one task id if it runs now (true): Task::id() of a task of this pool
    // (Task::interrupt() does this and also reaches a call that has not started yet), or of a task
    // the Python package submitted.
    bool interrupt(std::uint64_t task, const std::string& reason);
    // Every running call (returning how many) and, with later_calls_too, every call that starts
    // afterwards (for a pool that is shutting down and must stop).
    std::size_t interrupt_running(const std::string& reason, bool later_calls_too = false);
    // A callable that does interrupt(task, reason) for as long as the pool's workers exist (then
    // returns false): for handles that may outlive the pool. Thread-safe.
    std::function<bool(const std::string& reason)> interrupter(std::uint64_t task) const;
    // Ids of the workers' interpreters, by worker index; -1 for one not started yet (all are set
    // once wait_ready() returns).
    std::vector<std::int64_t> interpreter_ids() const;

    // The CPUs this process may run on (sched_getaffinity), at least 1.
    static std::size_t default_workers();

    // On a pool's worker thread, its index in the pool (0 .. size()-1); nullopt on any other thread.
    // Never blocks; no GIL needed.
    static std::optional<std::size_t> current_worker_index() noexcept;

    // The interpreters parked by pools with reuse_interpreters, process-wide (thread-safe).
    // end_idle_interpreters() ends them all and parks no more until resume_idle_interpreters(): call
    // it before fork() (a child forked from a process with sub-interpreters dies, CPython gh-139759).
    // It blocks until they have ended, which needs the main interpreter's GIL: never call it holding
    // that GIL. In a forked child, forget_idle_interpreters_after_fork() drops the parent's (whose
    // threads do not exist there) without touching them; the threads of call_in_main
    // (main_call.hpp) stayed in the parent too, and the child refuses such calls from then on.
    static void end_idle_interpreters();
    static void resume_idle_interpreters();
    static std::size_t idle_interpreters();
    static void forget_idle_interpreters_after_fork() noexcept;

private:
    friend struct detail::PoolAccess;  // the extension's tasks interrupt through the group (task.cpp)
    std::shared_ptr<detail::WorkerGroup> group_;
};

}  // namespace manygil
