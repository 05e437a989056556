// WorkerMonitor: one per worker; a small thread that watches it from outside. It enforces task
// deadlines, delivers interrupts and takes stack dumps. (The worker's counts are WorkerActivity's;
// task ids and the marking of interruptible calls are interruptible_call.hpp's.)
//
// Interrupting Python that runs in another interpreter takes that interpreter's GIL: the monitor
// holds its own thread state in the worker's interpreter, attaches it (CPython asks the worker to
// drop its GIL at the next bytecode boundary, within its switch interval, 5 ms by default), checks
// under that GIL that the same call still runs, and sets an asynchronous exception on the worker's
// thread (PyThreadState_SetAsyncExc), raised at the worker's next bytecode. Code in C that keeps the
// GIL or never returns to bytecode (time.sleep, a blocking read) is not interrupted; stats() shows it
// running, with the interrupt pending since when.
//
// Waiting for a worker's GIL can take as long as that worker keeps it: each worker has its own
// monitor, so one stuck worker delays nobody else, and callers wait with a timeout.
//
// Lifetime: the worker starts its monitor once its interpreter exists, and stops (joins) it before
// ending the interpreter, without holding the GIL, so the monitor can drop its thread state there.
#pragma once

#include <Python.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "manygil/pool.hpp"
#include "wait/wake_signal.hpp"

namespace manygil::detail {

class WorkerMonitor {
public:
    using Clock = std::chrono::steady_clock;

    WorkerMonitor() = default;
    ~WorkerMonitor();
    WorkerMonitor(const WorkerMonitor&) = delete;
    WorkerMonitor& operator=(const WorkerMonitor&) = delete;

    // How long a thread waiting for a worker's GIL waits before CPython asks the worker to drop it
    // (sys.setswitchinterval; CPython's default is 5 ms). It bounds how late an interrupt lands.
    // Set in each worker's interpreter before its initializer runs, which may change it.
    static constexpr double kSwitchIntervalSeconds = 0.001;
    static void prepare_interpreter();

    // ---- the worker's thread ----
    // Its interpreter attached (`worker` is its thread state): starts the monitor thread.
    void start(PyThreadState* worker, std::int64_t interpreter_id);
    // Its interpreter NOT attached: ends the monitor thread (which first drops its thread state).
    void stop() noexcept;
    // Around one interruptible Python call of task `task`, the worker's GIL held. With a timeout,
    // the call is interrupted (TimeoutError) once it has run that long. call_finished() returns the
    // reason if an interrupt was delivered during the call (any still pending is withdrawn).
    void call_started(std::uint64_t task, std::optional<Clock::duration> timeout);
    std::optional<std::string> call_finished();

    // ---- any thread, no GIL held ----
    // Interrupts task `task` if its call runs here now (true), else does nothing (false). A caller
    // that must not miss a call about to start records its wish where the task will look after
    // call_started() (as a task's TaskState does: runtime/task_state.hpp, TaskCall), and the task asks again itself.
    bool interrupt(std::uint64_t task, std::string reason);
    // Interrupts whatever call runs here now (true if one does); with `later_calls_too`, every call
    // that starts here afterwards as well (a pool that shuts down and must stop).
    bool interrupt_current(std::string reason, bool later_calls_too = false);
    // The worker's current Python stack, innermost call last; nullopt if its GIL could not be had
    // within `timeout` (it runs C code that keeps the GIL).
    std::optional<std::string> stack(Clock::duration timeout);
    // Adds to `s` (a snapshot of the worker's WorkerActivity) its interpreter and, when a job
    // runs, whether its call is interruptible and since when an interrupt is pending.
    void add_interrupt_state(WorkerStats& s) const;
    // How long ago an interrupt was sent to the call running now, which has not returned since;
    // nullopt when no call runs or none was sent to it (the stuck-worker watchdog's test).
    std::optional<Clock::duration> interrupt_pending() const;

    // The worker thread's monitor, while it runs a job (for jobs that mark interruptible calls).
    static WorkerMonitor* current() noexcept;
    static void set_current(WorkerMonitor* monitor) noexcept;

private:
    void run(PyInterpreterState* interp) noexcept;
    // The worker's GIL held: sets the asynchronous exception; true if the call still ran.
    bool deliver_interrupt(std::uint64_t task, const std::string& reason);
    std::string format_stack() const;                                        // the worker's GIL held

    mutable std::mutex mu_;
    std::condition_variable wake_;   // the monitor: a request, a new deadline, stop
    std::condition_variable answer_; // callers of stack(): the dump is ready
    std::thread thread_;
    bool started_ = false, stopping_ = false;

    // The worker (set by start()).
    PyThreadState* worker_ = nullptr;
    unsigned long worker_ident_ = 0;
    std::int64_t interpreter_id_ = -1;

    // The interruptible call running now (0: none). Atomic: the worker sets it for every call
    // (every item of a map), without taking mu_.
    std::atomic<std::uint64_t> call_task_{0};
    // The call to interrupt (its task id; a new request replaces an older one, whose call is over).
    std::atomic<std::uint64_t> interrupt_task_{0};

    // Deadline, interrupt reason, and what was sent: each tagged with its task, so nothing needs
    // resetting when a call ends (mu_).
    std::uint64_t deadline_task_ = 0;
    Clock::time_point deadline_{};
    std::string deadline_reason_, interrupt_reason_;
    std::uint64_t interrupt_seq_ = 0, interrupt_sent_seq_ = 0;  // each request is delivered once
    std::uint64_t sent_task_ = 0;      // the call an interrupt was last sent to (for stats)
    Clock::time_point sent_at_{};
    std::uint64_t deadline_sent_task_ = 0;
    std::atomic<bool> stop_all_{false};  // interrupt_current(..., later_calls_too)
    std::string stop_reason_;            // (mu_)

    // Stack dumps (mu_): request / answer sequence numbers.
    std::uint64_t stack_wanted_ = 0, stack_done_ = 0;
    std::string stack_;

    // Ends the worker's waits (WakeSignal) when its call is interrupted.
    WaitInterrupt wait_interrupt_;

    // Written by the monitor and read by the worker only while holding the worker's GIL.
    std::uint64_t gil_call_task_ = 0;
    bool gil_delivered_ = false;
    std::string gil_reason_;
};

}  // namespace manygil::detail
