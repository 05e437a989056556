// TaskState: the one fact about a task that the caller (Future.cancel), the worker (about to run it)
// and the pool (failing it, when broken) decide without any GIL: an atomic that moves once from
// PENDING to RUNNING, CANCELLED or ABANDONED.
// Exposed to Python as _core.TaskHandle.
#pragma once

#include <Python.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "runtime/interruptible_call.hpp"
#include "wait/wait_estimate.hpp"

namespace manygil::ext {

class TaskState {
public:
    explicit TaskState(std::shared_ptr<detail::WaitEstimate> latency = nullptr) noexcept
        : id_(detail::next_task_id()), latency_(std::move(latency)) {}

    // Unique in the process: how interrupts find the task's call in whichever worker runs it.
    std::uint64_t id() const noexcept { return id_; }
    // How long the task's call may run (submit_with(timeout=...)).
    std::optional<double> timeout;
    // Set when posted: interrupts this task's running call in its pool (a no-op once the pool is gone).
    std::function<bool(const std::string&)> interrupter;

    // Future.interrupt(): the wish is recorded first, so a call that starts just after the
    // interrupter found none running sees it (PyTaskJob checks after marking its call started).
    void request_interrupt(std::string reason) {
        interrupt_reason_ = std::move(reason);
        interrupt_requested_.store(true);
    }
    std::optional<std::string> interrupt_requested() const {
        if (!interrupt_requested_.load()) return std::nullopt;
        return interrupt_reason_;
    }

    // Caller side: true if the task will never run (cancelled now, or already).
    bool cancel() noexcept {
        int expected = kPending;
        return state_.compare_exchange_strong(expected, kCancelled) || expected == kCancelled;
    }
    // Pool side: true if the task is now claimed for failing (the caller had not cancelled it).
    bool abandon() noexcept {
        int expected = kPending;
        return state_.compare_exchange_strong(expected, kAbandoned);
    }
    // True once a worker has started it (and forever after: the Future knows when it is done).
    bool started() const noexcept { return state_.load() == kRunning; }
    // Worker side: true if the task may run.
    bool start() noexcept {
        int expected = kPending;
        return state_.compare_exchange_strong(expected, kRunning);
    }

    // Worker side: the Future is settled and the worker has let go of the caller's interpreter, so a
    // caller that waits for the result can take its GIL back at once.
    void mark_delivered() noexcept {
        if (latency_) latency_->record(detail::WaitEstimate::Clock::now() - posted_);
        delivered_.store(true, std::memory_order_release);
    }
    bool delivered() const noexcept { return delivered_.load(std::memory_order_acquire); }
    // How long a caller waiting for the outcome should spin before sleeping (WaitEstimate).
    detail::WaitEstimate::Clock::duration spin_for(detail::WaitEstimate::Clock::duration base) const noexcept {
        return latency_ ? latency_->spin_for(posted_, base) : base;
    }

private:
    const std::uint64_t id_;
    const detail::WaitEstimate::Clock::time_point posted_ = detail::WaitEstimate::Clock::now();
    const std::shared_ptr<detail::WaitEstimate> latency_;  // the pool's, shared by its tasks
    std::string interrupt_reason_;  // written once, before the flag
    std::atomic<bool> interrupt_requested_{false};
    static constexpr int kPending = 0, kRunning = 1, kCancelled = 2, kAbandoned = 3;
    std::atomic<int> state_{kPending};
    std::atomic<bool> delivered_{false};
};

// The TaskHandle type: its spec, and a constructor for the module's own use.
extern PyType_Spec task_handle_spec;
PyObject* new_task_handle(PyTypeObject* type, std::shared_ptr<TaskState> state);

}  // namespace manygil::ext
