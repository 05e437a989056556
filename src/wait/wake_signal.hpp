// WakeSignal: a condition variable whose waiters spin briefly before they sleep (spin_wait.hpp).
//
// Used like std::condition_variable with its mutex: state changes under the mutex, then notify.
// A notification also bumps an atomic counter, which spinning waiters watch without the mutex; they
// then take the mutex and check their predicate as usual. A notification that finds no sleeping
// waiter costs no system call.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

#include "manygil/timeout.hpp"
#include "wait/spin_wait.hpp"
#include "wait/wait_estimate.hpp"

namespace manygil::detail {

class WakeSignal;

class WaitInterrupt {
public:
    // The calling thread's, while it runs an interruptible call; else null.
    static WaitInterrupt* current() noexcept { return current_ref(); }

    // ---- the worker's thread ----
    // Around an interruptible call of task `task` (never 0): installs this as the thread's current one.
    void call_started(std::uint64_t task) noexcept {
        call_.store(task, std::memory_order_release);
        current_ref() = this;
    }
    void call_finished() noexcept {
        current_ref() = nullptr;
        call_.store(0, std::memory_order_release);
    }
    // Whether the running call was interrupted (its waits then end at once).
    bool requested() const noexcept {
        std::uint64_t call = call_.load(std::memory_order_acquire);
        return call != 0 && requested_.load(std::memory_order_acquire) == call;
    }
    void enter(WakeSignal* signal) noexcept {
        std::lock_guard lock(mu_);
        waiting_ = signal;
    }
    void leave() noexcept {
        std::lock_guard lock(mu_);
        waiting_ = nullptr;
    }

    // ---- any other thread (the monitor), holding no lock of the waiter's ----
    // Interrupts task `task`'s waits: sets the request, then wakes the wait it is in, if any. The
    // wake-up is repeated until the waiter leaves (a notification sent between its last look at the
    // request and its sleep would otherwise be lost; this thread cannot take the waiter's mutex,
    // which the waiter holds while it registers), for at most about a second.
    inline void request(std::uint64_t task) noexcept;

private:
    static WaitInterrupt*& current_ref() noexcept {
        static thread_local WaitInterrupt* current = nullptr;
        return current;
    }

    std::atomic<std::uint64_t> call_{0}, requested_{0};
    std::mutex mu_;                  // guards waiting_; the waiter takes it holding its wait's mutex
    WakeSignal* waiting_ = nullptr;  // valid while set: the waiter clears it before its wait returns
};

class WakeSignal {
public:
    void notify_one() noexcept {
        notified_.fetch_add(1, std::memory_order_release);
        cv_.notify_one();
    }
    void notify_all() noexcept {
        notified_.fetch_add(1, std::memory_order_release);
        cv_.notify_all();
    }

    using Clock = std::chrono::steady_clock;
    static constexpr double kLongestTimeoutSeconds = 1e9;  // ~31 years; steady_clock holds ~292

    // Waits until pred() (checked with `lock` held), or the timeout passes; returns pred(). Spins
    // for spin_budget() first, or for `estimate`'s advice when given.
    // On a thread running an interruptible call (WaitInterrupt::current()), the wait also ends when
    // that call is interrupted, returning pred() (false unless it came true meanwhile).
    template <class Pred>
    bool wait(std::unique_lock<std::mutex>& lock, const Timeout& timeout, Pred pred, WaitEstimate* estimate = nullptr) {
        if (pred()) return true;
        if (WaitInterrupt* interrupt = WaitInterrupt::current()) {
            interrupt->enter(this);
            wait_for(lock, timeout, [&] { return pred() || interrupt->requested(); }, estimate);
            interrupt->leave();
            return pred();
        }
        return wait_for(lock, timeout, pred, estimate);
    }

    template <class Pred>
    void wait(std::unique_lock<std::mutex>& lock, Pred pred, WaitEstimate* estimate = nullptr) {
        wait(lock, Timeout{}, pred, estimate);
    }

private:
    template <class Pred>
    bool wait_for(std::unique_lock<std::mutex>& lock, const Timeout& timeout, Pred pred, WaitEstimate* estimate) {
        const Clock::time_point start = Clock::now();
        std::optional<Clock::time_point> deadline;
        // Longer than the clock can count (infinity, 1e300 s: converting those is undefined, and
        // returned at once), or NaN: as long as needed. Negative: only a look, as zero.
        if (timeout && timeout->count() <= kLongestTimeoutSeconds) {
            std::chrono::duration<double> wait(std::max(timeout->count(), 0.0));
            deadline = start + std::chrono::duration_cast<Clock::duration>(wait);
        }
        bool done = wait_from(lock, start, deadline, pred, estimate ? estimate->spin_for(start, spin_budget()) : spin_budget());
        if (estimate && done) estimate->record(Clock::now() - start);
        return done;
    }

    template <class Pred>
    bool wait_from(std::unique_lock<std::mutex>& lock, Clock::time_point start,
                   std::optional<Clock::time_point> deadline, Pred pred, Clock::duration spin) {
        Clock::time_point spin_end = start + spin;
        if (deadline && *deadline < spin_end) spin_end = *deadline;
        while (Clock::now() < spin_end) {
            const std::uint32_t seen = notified_.load(std::memory_order_acquire);
            lock.unlock();
            bool notified = spin_until([&] { return notified_.load(std::memory_order_acquire) != seen; }, spin_end);
            lock.lock();
            if (pred()) return true;
            if (!notified) break;  // the budget is spent
        }
        if (!deadline) {
            cv_.wait(lock, pred);
            return true;
        }
        // A deadline already past (a zero timeout: recv_nowait, try_acquire) is only a look: a
        // condition-variable wait would still make a futex call that sleeps out the timer slack
        // (about 100 us measured per empty recv_nowait).
        if (Clock::now() >= *deadline) return pred();
        return cv_.wait_until(lock, *deadline, pred);
    }

    std::atomic<std::uint32_t> notified_{0};
    std::condition_variable cv_;
};

void WaitInterrupt::request(std::uint64_t task) noexcept {
    requested_.store(task, std::memory_order_release);
    for (int attempt = 0; attempt < 1000; ++attempt) {
        {
            std::lock_guard lock(mu_);
            if (!waiting_ || call_.load(std::memory_order_acquire) != task) return;
            waiting_->notify_all();  // needs no mutex of the waiter's; the signal lives while registered
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

}  // namespace manygil::detail
