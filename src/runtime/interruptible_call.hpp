// Marking a Python call interruptible: the task ids that name calls, and the scope, around one call
// on a worker's thread, inside which Pool::interrupt / a task timeout can stop it (worker_monitor.hpp
// says how an interrupt is delivered).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "runtime/worker_monitor.hpp"

namespace manygil::detail {

// A process-wide unique id for an interruptible call's task (never 0). Any thread.
inline std::uint64_t next_task_id() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// One interruptible call. Construct, make the call, finish(); on the worker's thread, its GIL held
// throughout. Outside a worker's job (no monitor) it marks nothing and finish() says nullopt.
class InterruptibleCall {
public:
    using Duration = WorkerMonitor::Clock::duration;

    // With a timeout, the call is interrupted (TimeoutError) once it has run that long.
    InterruptibleCall(std::uint64_t task, std::optional<Duration> timeout)
        : monitor_(WorkerMonitor::current()), task_(task) {
        if (monitor_) monitor_->call_started(task, timeout);
    }
    // A call left by an exception is unmarked too (any interrupt still pending is withdrawn).
    ~InterruptibleCall() {
        if (monitor_) (void)monitor_->call_finished();
    }
    InterruptibleCall(const InterruptibleCall&) = delete;
    InterruptibleCall& operator=(const InterruptibleCall&) = delete;

    // Asks for the call to be interrupted (for a request made before it started, which found
    // nothing to stop then).
    void interrupt(std::string reason) {
        if (monitor_) monitor_->interrupt(task_, std::move(reason));
    }

    // After the call: the reason if an interrupt was delivered during it (any still pending is
    // withdrawn, so it cannot go off later in unrelated code). Call once.
    std::optional<std::string> finish() {
        WorkerMonitor* monitor = std::exchange(monitor_, nullptr);
        return monitor ? monitor->call_finished() : std::nullopt;
    }

private:
    WorkerMonitor* monitor_;
    std::uint64_t task_;
};

}  // namespace manygil::detail
