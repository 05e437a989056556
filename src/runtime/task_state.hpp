// TaskState: what one submitted task's submitter (manygil::Task, the Python Future), the worker that
// runs it and the pool (failing it, when it shuts down or breaks) share. The public handle and its
// contract are include/manygil/task.hpp; this is the state behind it, and the worker's side of it.
//
// state_ moves once from PENDING to RUNNING (start(): a worker took it), CANCELLED (cancel()) or
// ABANDONED (abandon(): the pool fails it), by compare-and-swap, without any lock or GIL: that is
// the submit-to-result hot path, and it takes no lock. The outcome record (a Value or an exception)
// is for C++ submitters (set_value/set_error, under mu_, which only they and get() take); a Python
// task's outcome goes to its Future instead, and mark_delivered() says when it is there.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "manygil/task.hpp"
#include "manygil/value.hpp"
#include "runtime/interruptible_call.hpp"
#include "wait/wait_estimate.hpp"

namespace manygil {
class Pool;
}

namespace manygil::detail {

class WorkerGroup;

class TaskState {
public:
    using Clock = WaitEstimate::Clock;

    // `group`: where interrupt() finds the task's call (none: interrupt() only records the wish).
    // `latency`: the submitter's estimate of submit-to-delivery times (spin_for()), shared by its tasks.
    TaskState(std::weak_ptr<WorkerGroup> group, std::optional<Clock::duration> timeout,
              std::shared_ptr<WaitEstimate> latency = nullptr) noexcept
        : group_(std::move(group)), latency_(std::move(latency)), timeout_(timeout) {}

    TaskState(const TaskState&) = delete;
    TaskState& operator=(const TaskState&) = delete;

    std::uint64_t id() const noexcept { return id_; }
    std::optional<Clock::duration> timeout() const noexcept { return timeout_; }

    // ---- the submitter's side -----------------------------------------------------------------------

    // True if the task will never run (cancelled now, or already). A C++ task's waiters are woken with
    // CancelledError.
    bool cancel() noexcept {
        int expected = kPending;
        if (state_.compare_exchange_strong(expected, kCancelled)) {
            settle_cancelled();
            return true;
        }
        return expected == kCancelled;
    }
    // Records the wish first, so a call that starts just after finds it (TaskCall checks once its call
    // is marked), then interrupts the call if it runs now. True if the task has started (Task::interrupt
    // and the Future add: and is not done yet).
    bool interrupt(const std::string& reason);
    // True once a worker has started it (and forever after).
    bool started() const noexcept { return state_.load() == kRunning; }

    // ---- the worker's and the pool's side ----------------------------------------------------------

    // Worker: true if the task may run (it is RUNNING now).
    bool start() noexcept {
        int expected = kPending;
        return state_.compare_exchange_strong(expected, kRunning);
    }
    // Pool: true if the task is now claimed for failing (the submitter had not cancelled it).
    bool abandon() noexcept {
        int expected = kPending;
        return state_.compare_exchange_strong(expected, kAbandoned);
    }
    // An interrupt asked before the call was marked (interrupt() found nothing running then).
    std::optional<std::string> interrupt_requested() const {
        if (!interrupt_requested_.load()) return std::nullopt;
        std::lock_guard lock(reason_mu_);
        return interrupt_reason_;
    }

    // ---- the outcome, for C++ submitters -----------------------------------------------------------

    void set_value(Value value);
    void set_error(std::exception_ptr error);
    bool done() const noexcept { return done_.load(std::memory_order_acquire); }
    // False if the deadline passed first.
    bool wait_until(Clock::time_point deadline) const;
    void wait() const;
    // After done(): the value, or the error rethrown.
    const Value& value() const;

    // ---- delivery, for the Python Future's brief spin ----------------------------------------------

    // The outcome is settled where the submitter reads it and the worker has let go of the
    // submitter's interpreter, so a submitter that waits can take its GIL back at once.
    void mark_delivered() noexcept {
        if (latency_) latency_->record(Clock::now() - posted_);
        delivered_.store(true, std::memory_order_release);
    }
    bool delivered() const noexcept { return delivered_.load(std::memory_order_acquire); }
    // How long a waiter should spin before sleeping: what the pool's WaitEstimate suggests for a task
    // posted when this one was (spin_wait.hpp's budget as the base), at most `cap`.
    Clock::duration spin_budget(std::optional<Clock::duration> cap) const noexcept;
    // Spins, without any GIL (the caller released its own), until delivered() or `budget` has passed.
    bool spin_until_delivered(Clock::duration budget) const noexcept;

private:
    void settle_cancelled() noexcept;
    void settle(std::optional<Value> value, std::exception_ptr error) noexcept;

    const std::uint64_t id_ = next_task_id();
    const Clock::time_point posted_ = Clock::now();
    const std::weak_ptr<WorkerGroup> group_;
    const std::shared_ptr<WaitEstimate> latency_;
    const std::optional<Clock::duration> timeout_;

    static constexpr int kPending = 0, kRunning = 1, kCancelled = 2, kAbandoned = 3;
    std::atomic<int> state_{kPending};
    std::atomic<bool> delivered_{false};

    mutable std::mutex reason_mu_;  // interrupt() may be called twice, from two threads
    std::string interrupt_reason_;
    std::atomic<bool> interrupt_requested_{false};

    // The outcome: written once under mu_, then done_ is set; read after done_.
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    std::atomic<bool> done_{false};
    std::optional<Value> value_;
    std::exception_ptr error_;
};

// The scope of a task's call on its worker (interruptible_call.hpp): the task's id and timeout, and an
// interrupt asked before the call was marked is delivered now.
class TaskCall : public InterruptibleCall {
public:
    explicit TaskCall(const TaskState& task) : InterruptibleCall(task.id(), task.timeout()) {
        if (auto reason = task.interrupt_requested()) interrupt(std::move(*reason));
    }
};

// A TaskState of `pool`: its interrupt() reaches the pool's workers, and its spin_budget() follows the
// pool's submit-to-delivery times. What Pool::submit makes, and the extension for each Python task.
std::shared_ptr<TaskState> new_task_state(const Pool& pool, std::optional<TaskState::Clock::duration> timeout);

}  // namespace manygil::detail
