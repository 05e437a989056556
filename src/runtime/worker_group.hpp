// WorkerGroup: N worker threads, each owning one own-GIL interpreter, fed from one FIFO queue. Pool
// is a WorkerGroup of N; Interpreter is a WorkerGroup of 1.
//
// A worker thread creates its interpreter and ends it itself. With Options::reuse_interpreters, a
// worker whose group is done may instead park, its interpreter alive, in IdleWorkers, and a later
// group with the option starts on parked workers before creating threads of its own. Worker threads
// are detached: a group waits for its workers to leave it (end or park), not for their threads;
// wait_for_worker_threads() waits for the threads themselves (Runtime::close()).
//
// Workers and slots: the group has `workers` slots; each is served by one Worker (its thread, its
// monitor and its counts) at a time. With Options::replace_stuck_after, a watchdog thread retires a
// worker whose call ignores an interrupt that long and gives its slot to a new Worker; the retired
// one finishes its call and ends (never parks). With Options::max_tasks_per_worker, a worker that has
// run its share starts a successor for its slot and serves on until the successor is ready, which
// then takes the slot and retires it. Every Worker, retired or not, holds the group and is counted
// until it leaves: finished() and join() wait for all of them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "manygil/job.hpp"
#include "manygil/pool.hpp"
#include "manygil/runtime.hpp"
#include "runtime/crash_note.hpp"
#include "runtime/thread_interpreter.hpp"
#include "runtime/worker_activity.hpp"
#include "runtime/worker_monitor.hpp"
#include "wait/wake_signal.hpp"

namespace manygil::detail {

class WorkerGroup : public std::enable_shared_from_this<WorkerGroup> {
public:
    struct Options {
        std::size_t workers = 1;
        std::optional<Initializer> initializer;
        std::string name = "pool";  // in thread names and messages
        // Start on parked workers (IdleWorkers) and park this group's workers when it is done.
        bool reuse_interpreters = false;
        // PoolOptions::replace_stuck_after and on_stuck (pool.hpp).
        std::optional<std::chrono::steady_clock::duration> replace_stuck_after;
        std::function<void(const StuckWorker&)> on_stuck;
        // PoolOptions::max_tasks_per_worker and max_tasks_jitter (pool.hpp).
        std::size_t max_tasks_per_worker = 0;
        std::size_t max_tasks_jitter = 0;
        // PoolOptions::pin_workers (pool.hpp).
        bool pin_workers = false;
    };

    // Registers the group with the runtime (which closes it before finalising) and starts the threads.
    static std::shared_ptr<WorkerGroup> start(Runtime& runtime, Options options);

    // Runs when the last owner lets go, possibly on one of its own workers (see start()).
    ~WorkerGroup();

    void post(std::unique_ptr<Job> job);
    void shutdown(bool wait, bool cancel_pending);
    // What an owner (Pool, Interpreter) does on close or destruction: no more work, queued tasks
    // still run, and wait for the workers, unless called from one of them (it cannot wait for itself).
    void close() noexcept;
    // Blocks until every worker has started (created its interpreter, run the initializer, and taken
    // its first task if one was queued), or the group broke (throws BrokenPoolError).
    void wait_ready();

    std::size_t size() const noexcept { return options_.workers; }
    // How long this group's tasks take from submit to delivery (TaskState::spin_for), shared by them.
    const std::shared_ptr<WaitEstimate>& task_latency() const noexcept { return task_latency_; }
    std::vector<std::int64_t> interpreter_ids() const;
    bool closed() const;
    // True once every worker has left the group, ending its interpreter or parking it in IdleWorkers
    // (after shutdown, or when the group broke).
    // Retired (stuck) workers count until their call returns.
    bool finished() const noexcept { return exited_.load() == spawned_.load(); }
    bool on_worker_thread() const noexcept;
    // On a worker thread of any group: its index in the group (0 .. workers-1); else nullopt.
    static std::optional<std::size_t> current_worker_index() noexcept;
    // From a job running on a worker thread: recycle that worker now, as max_tasks_per_worker would
    // after its share (start_successor): a new interpreter starts for its slot and, once ready, takes
    // the slot and the queue's next job; the calling worker is retired and ends its interpreter when
    // its current job returns. A job that serves until told to stop (the ASGI loop) uses it to hand
    // its slot to a successor job: `first_job`, which the successor runs first, before it takes
    // anything from the queue (so each successor runs the job meant for it, whichever of several
    // starting successors is ready first); the group owns it from then on (run, or abandoned if the
    // group breaks first). False (nothing started, `first_job` left with the caller) off a worker
    // thread, when the group is closed or broken, or the worker is retired or has a successor
    // starting already.
    static bool start_current_successor(std::unique_ptr<Job>& first_job) noexcept;
    // From a job on a worker thread whose successor is starting (start_current_successor): blocks
    // until the successor has taken the slot (this worker is retired and leaves after the job), or
    // the group is closed or broken; at once if no successor is starting. Without a GIL. A job that
    // returns earlier would let its worker take the next queued job, meant for a new interpreter.
    static void wait_current_replaced() noexcept;
    // From the job a recycling successor took first (start_current_successor), on its worker thread:
    // that job could not start what it was to take over (an ASGI successor whose lifespan startup
    // failed), so the slot goes back to the worker this one replaced, which serves on (not retired,
    // as if it had never been recycled; stats().recycled not counted), and this worker is retired:
    // it leaves after the job, ending its interpreter. False (nothing changed) off such a worker,
    // or when the predecessor cannot take the slot back: it was found stuck meanwhile, it has left,
    // or the group is closed or broken. Without a GIL or with one.
    static bool return_slot_to_predecessor() noexcept;
    // The error that broke the group (BrokenPoolError), or null.
    std::exception_ptr broken() const;
    // Blocks until every worker has left the group (finished()), or the timeout passes: true if so.
    bool wait_finished(std::chrono::steady_clock::duration timeout);

    // Blocks until every worker thread of every group has returned (their interpreters are ended or
    // parked before that; parked threads only return once IdleWorkers::drain() ends them). Returns at
    // once on a worker thread, which would wait for itself.
    static void wait_for_worker_threads();

    // Observability and interrupts (worker_monitor.hpp).
    PoolStats stats() const;
    std::vector<std::optional<std::string>> dump_stacks(std::chrono::steady_clock::duration timeout) const;
    // Interrupts the call of task `task` wherever it runs now. True if it does.
    bool interrupt(std::uint64_t task, const std::string& reason);
    // Interrupts every running call (and, with later_calls_too, every call that starts from now
    // on); returns how many were running.
    std::size_t interrupt_all(const std::string& reason, bool later_calls_too = false);

    explicit WorkerGroup(Options options);  // use start()

private:
    // One worker: the thread that serves a slot, and what watches and counts it. Shared by the slot
    // table (or the stuck list) and the worker's thread, so stats() never races its creation or end.
    struct Worker {
        Worker(std::size_t index, bool initial) : index(index), initial(initial) {}
        const std::size_t index;
        const bool initial;  // one of the group's first workers (wait_ready() waits for those)
        WorkerMonitor monitor;
        WorkerActivity activity;
        JobNote note;  // for the line a fatal signal writes
        bool retired = false;  // (mu_) stuck and replaced, or recycled: leave after the current job
        std::int64_t interpreter_id = -1;  // (mu_)
        // (mu_) A recycling successor, during its first job: the worker whose slot it took
        // (return_slot_to_predecessor). leaving: next_job() gave it no more work, it leaves the group
        // (a slot cannot come back to it). Mutable: next_job() sees its worker as const.
        mutable std::weak_ptr<Worker> predecessor;
        mutable bool leaving = false;
        std::unique_ptr<Job> first_job;  // (mu_) a successor's job, run before the queue's
                                         // (start_current_successor)
    };

    // `worker`: the Worker the thread is (a successor); null: whichever serves slot `index` now.
    friend void worker_thread_main(std::shared_ptr<WorkerGroup> group, std::size_t index,
                                   std::shared_ptr<Worker> worker) noexcept;
    // Runs worker `index` of this group on the calling thread: creates the interpreter if `interp` is
    // empty (else takes a parked one over), runs the initializer and the jobs until the group is
    // closed and drained or broken. Returns with `interp` detached (or empty if it had to end), and
    // true if the interpreter may park for another group.
    bool serve(std::size_t index, std::optional<ThreadInterpreter>& interp, std::shared_ptr<Worker> self) noexcept;
    // Whether the interpreter (attached) is fit for another group: only the worker's own thread state
    // left in it.
    bool may_park(ThreadInterpreter& interp) const noexcept;
    std::unique_ptr<Job> next_job(bool first, const Worker& self);
    // Starts a detached worker thread for slot `index` (counted in g_threads), as `worker` if given.
    void spawn_worker(std::size_t index, std::shared_ptr<Worker> worker = nullptr);
    // The worker's thread, once it has run its share of jobs: starts its successor (false if none
    // could start; it then serves on), which runs `first_job` first if one is given (taken only on
    // success).
    bool start_successor(const Worker& self, std::unique_ptr<Job>* first_job = nullptr);
    // How many jobs a new worker runs before it is recycled (0: no limit).
    std::size_t task_limit();
    // The watchdog thread's body (Options::replace_stuck_after): holds the group only weakly.
    static void watch_for_stuck_workers(std::weak_ptr<WorkerGroup> weak, std::chrono::steady_clock::duration after);
    // Retires `worker` (stuck) and starts a new one in its slot; false if it is not in its slot any
    // more or the group needs no new worker (broken, or closed with nothing queued).
    bool replace(const std::shared_ptr<Worker>& worker, StuckWorker& report);
    std::vector<std::shared_ptr<Worker>> all_workers() const;  // slots and stuck ones (mu_ taken)
    void break_group(std::size_t index, std::exception_ptr cause);
    void mark_exited();
    void join();

    const Options options_;
    // pin_workers: the CPUs the process could run on when the group started (worker i runs on
    // cpus_[i % size]); empty when not pinning. Set by start() before any worker runs.
    std::vector<int> cpus_;
    // On a worker thread as it starts serving slot `index`: pins it (cpus_), or gives it the
    // process's CPUs (a thread a pinned worker created, or one a pinned group parked).
    void place_on_cpu(std::size_t index) const noexcept;

    mutable std::mutex mu_;
    WakeSignal work_signal_;  // queue non-empty, closed or broken
    WaitEstimate idle_wait_;  // how long idle workers wait for a task: they spin through short waits
    const std::shared_ptr<WaitEstimate> task_latency_ = std::make_shared<WaitEstimate>();
    std::condition_variable ready_cv_;  // a worker became ready, or the group broke
    std::deque<std::unique_ptr<Job>> queue_;
    bool closed_ = false;
    std::exception_ptr broken_;
    std::size_t ready_ = 0;
    std::vector<std::int64_t> ids_;

    std::atomic<std::size_t> spawned_{0};  // Workers ever given a slot (replacements included)
    std::atomic<std::size_t> exited_{0};   // ... that have left the group
    std::condition_variable exited_cv_;  // with mu_: a worker ended its interpreter
    std::condition_variable watch_cv_;   // with mu_: the watchdog, to notice closing at once

    std::vector<std::shared_ptr<Worker>> slots_;  // (mu_) the Worker serving each slot
    std::vector<std::shared_ptr<Worker>> stuck_;  // (mu_) retired, their call still running
    std::size_t replaced_ = 0;                    // (mu_)
    // (mu_) A successor started for each slot whose worker ran its share, until it takes the slot.
    std::vector<std::shared_ptr<Worker>> successors_;
    std::size_t recycled_ = 0;                    // (mu_)
    std::minstd_rand rng_{std::random_device{}()};  // (mu_) recycling jitter
};

}  // namespace manygil::detail
