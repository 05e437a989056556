// WakeSignal: a condition variable whose waiters spin briefly before they sleep (spin_wait.hpp).
//
// Used like std::condition_variable with its mutex: state changes under the mutex, then notify.
// A notification also bumps an atomic counter, which spinning waiters watch without the mutex; they
// then take the mutex and check their predicate as usual. A notification that finds no sleeping
// waiter costs no system call.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

#include "manygil/timeout.hpp"
#include "spin_wait.hpp"
#include "wait_estimate.hpp"

namespace manygil::detail {

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

    // Waits until pred() (checked with `lock` held), or the timeout passes; returns pred(). Spins
    // for spin_budget() first, or for `estimate`'s advice when given.
    template <class Pred>
    bool wait(std::unique_lock<std::mutex>& lock, const Timeout& timeout, Pred pred, WaitEstimate* estimate = nullptr) {
        if (pred()) return true;
        const Clock::time_point start = Clock::now();
        std::optional<Clock::time_point> deadline;
        if (timeout) deadline = start + std::chrono::duration_cast<Clock::duration>(*timeout);
        bool done = wait_from(lock, start, deadline, pred, estimate ? estimate->spin_for(start, spin_budget()) : spin_budget());
        if (estimate && done) estimate->record(Clock::now() - start);
        return done;
    }

    template <class Pred>
    void wait(std::unique_lock<std::mutex>& lock, Pred pred, WaitEstimate* estimate = nullptr) {
        wait(lock, Timeout{}, pred, estimate);
    }

private:
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
        return cv_.wait_until(lock, *deadline, pred);
    }

    std::atomic<std::uint32_t> notified_{0};
    std::condition_variable cv_;
};

}  // namespace manygil::detail
