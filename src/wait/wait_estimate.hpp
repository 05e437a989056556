// WaitEstimate: what one kind of wait has been like lately, so that a waiter spins (spin_wait.hpp)
// through a wait that is likely to end soon and sleeps at once through one that is not. Two kinds:
// a caller waiting for a task's result (from submission to delivery), and an idle worker waiting for
// its next task.
//
// Waits are often bimodal (a stream of short tasks, then a pause), so a plain mean would be dragged
// up by the long ones. Kept instead: how often waits are short (at most kMaxSpin), and how long the
// short ones last. While most waits are short, a wait spins for up to twice their typical length.
// Smoothed (each wait moves them 1/8 of the way) in relaxed atomics, updated without a lock: a lost
// update among racing waits only delays the estimate a little.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace manygil::detail {

class WaitEstimate {
public:
    using Clock = std::chrono::steady_clock;

    // Longer waits are slept through: spinning would hold a core for long, and a wake-up is cheap
    // next to such a wait.
    static constexpr Clock::duration kMaxSpin = std::chrono::milliseconds(1);

    void record(Clock::duration took) noexcept {
        const bool is_short = took <= kMaxSpin;
        std::int32_t share = short_share_.load(std::memory_order_relaxed);
        short_share_.store(share + ((is_short ? kOne : 0) - share) / 8, std::memory_order_relaxed);
        if (!is_short) return;
        std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
        std::int64_t mean = short_ns_.load(std::memory_order_relaxed);
        short_ns_.store(mean < 0 ? ns : mean + (ns - mean) / 8, std::memory_order_relaxed);
    }

    // How long a wait that began at `began` should spin before sleeping, given `base` (spin_budget()):
    // while most waits are short, until twice their typical length has passed, plus `base`;
    // otherwise just `base`.
    Clock::duration spin_for(Clock::time_point began, Clock::duration base) const noexcept {
        if (base <= Clock::duration::zero()) return base;
        std::int64_t mean = short_ns_.load(std::memory_order_relaxed);
        if (mean < 0 || short_share_.load(std::memory_order_relaxed) < kOne / 2) return base;
        auto typical = std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(2 * mean));
        auto left = began + std::min(typical, kMaxSpin) - Clock::now();
        return left > Clock::duration::zero() ? left + base : base;
    }

private:
    static constexpr std::int32_t kOne = 1 << 16;  // fixed point: the share of short waits
    std::atomic<std::int32_t> short_share_{kOne};
    std::atomic<std::int64_t> short_ns_{-1};  // -1: no short wait yet
};

}  // namespace manygil::detail
