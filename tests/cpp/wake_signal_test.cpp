// WakeSignal and WaitEstimate (src/wait/wake_signal.hpp, src/wait/wait_estimate.hpp): waits that spin before they
// sleep lose no wake-up, whichever phase the notification finds them in, and keep their timeouts.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <thread>

#include "wait/spin_wait.hpp"
#include "wait/wait_estimate.hpp"
#include "wait/wake_signal.hpp"

namespace {

using manygil::detail::spin_budget;
using manygil::detail::WaitEstimate;
using manygil::detail::WakeSignal;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Two threads handing a token back and forth: each hand-over is a wait that the other side ends,
// sometimes while the waiter spins, sometimes after it went to sleep (the delays vary).
TEST(WakeSignal, PingPongLosesNoWakeUp) {
    std::mutex mu;
    WakeSignal signal;
    int turn = 0;  // 0: main's turn, 1: the other thread's
    constexpr int kRounds = 20'000;
    std::thread other([&] {
        for (int i = 0; i < kRounds; ++i) {
            std::unique_lock lock(mu);
            signal.wait(lock, [&] { return turn == 1; });
            turn = 0;
            lock.unlock();
            signal.notify_all();
        }
    });
    for (int i = 0; i < kRounds; ++i) {
        if (i % 1000 == 999) std::this_thread::sleep_for(2 * spin_budget() + 1ms);  // let the other fall asleep
        {
            std::lock_guard lock(mu);
            turn = 1;
        }
        signal.notify_all();
        std::unique_lock lock(mu);
        ASSERT_TRUE(signal.wait(lock, 60s, [&] { return turn == 0; })) << "round " << i << " was never answered";
    }
    other.join();
}

TEST(WakeSignal, ManyWaitersAllWakeOnNotifyAll) {
    std::mutex mu;
    WakeSignal signal;
    bool open = false;
    std::atomic<int> through{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 8; ++i) {
        waiters.emplace_back([&] {
            std::unique_lock lock(mu);
            signal.wait(lock, [&] { return open; });
            ++through;
        });
    }
    std::this_thread::sleep_for(10ms);  // some spin, most sleep by now
    {
        std::lock_guard lock(mu);
        open = true;
    }
    signal.notify_all();
    for (auto& t : waiters) t.join();
    EXPECT_EQ(through.load(), 8);
}

TEST(WakeSignal, TimeoutIsKeptWhenNothingComes) {
    std::mutex mu;
    WakeSignal signal;
    std::unique_lock lock(mu);
    auto start = Clock::now();
    EXPECT_FALSE(signal.wait(lock, std::chrono::duration<double>(0.03), [] { return false; }));
    EXPECT_GE(Clock::now() - start, 30ms);
    EXPECT_TRUE(lock.owns_lock());
    // A zero timeout only looks.
    EXPECT_FALSE(signal.wait(lock, std::chrono::duration<double>(0), [] { return false; }));
    EXPECT_TRUE(signal.wait(lock, std::chrono::duration<double>(0), [] { return true; }));
    // So does a negative one, however large.
    EXPECT_FALSE(signal.wait(lock, std::chrono::duration<double>(-1e300), [] { return false; }));
}

// Infinity, or any timeout too long for the clock, waits as long as needed (it once returned at once).
TEST(WakeSignal, AnEndlessTimeoutWaitsAsLongAsNeeded) {
    for (double seconds : {std::numeric_limits<double>::infinity(), 1e300, 2e9}) {
        std::mutex mu;
        WakeSignal signal;
        bool ready = false;
        std::thread setter([&] {
            std::this_thread::sleep_for(30ms);
            {
                std::lock_guard lock(mu);
                ready = true;
            }
            signal.notify_all();
        });
        std::unique_lock lock(mu);
        EXPECT_TRUE(signal.wait(lock, std::chrono::duration<double>(seconds), [&] { return ready; })) << seconds;
        lock.unlock();
        setter.join();
    }
}

TEST(WakeSignal, ANotificationWithoutChangeKeepsWaiting) {
    std::mutex mu;
    WakeSignal signal;
    bool ready = false;
    std::thread notifier([&] {
        for (int i = 0; i < 50; ++i) {
            signal.notify_one();  // spurious: the predicate is still false
            std::this_thread::sleep_for(100us);
        }
        {
            std::lock_guard lock(mu);
            ready = true;
        }
        signal.notify_one();
    });
    std::unique_lock lock(mu);
    EXPECT_TRUE(signal.wait(lock, 60s, [&] { return ready; }));
    EXPECT_TRUE(ready);
    lock.unlock();
    notifier.join();
}

TEST(WaitEstimate, SpinsThroughShortWaitsOnly) {
    const auto base = 50us;
    WaitEstimate estimate;
    EXPECT_EQ(estimate.spin_for(Clock::now(), base), base);  // nothing known yet
    for (int i = 0; i < 20; ++i) estimate.record(300us);
    // Most waits are short: a wait that just began spins about twice their length, then the base.
    auto spin = estimate.spin_for(Clock::now(), base);
    EXPECT_GT(spin, 400us);
    EXPECT_LE(spin, 600us + base);
    // One that began long ago is overdue: the base only.
    EXPECT_EQ(estimate.spin_for(Clock::now() - 10ms, base), base);
    // No spinning at all when spinning is off.
    EXPECT_EQ(estimate.spin_for(Clock::now(), Clock::duration::zero()), Clock::duration::zero());
    // Once most waits are long, waits sleep after the base.
    for (int i = 0; i < 20; ++i) estimate.record(50ms);
    EXPECT_EQ(estimate.spin_for(Clock::now(), base), base);
    // A stream of short waits brings spinning back.
    for (int i = 0; i < 20; ++i) estimate.record(300us);
    EXPECT_GT(estimate.spin_for(Clock::now(), base), 400us);
}

TEST(WaitEstimate, NeverSpinsBeyondItsCap) {
    WaitEstimate estimate;
    for (int i = 0; i < 20; ++i) estimate.record(WaitEstimate::kMaxSpin);  // short, just
    EXPECT_LE(estimate.spin_for(Clock::now(), 50us), WaitEstimate::kMaxSpin + 50us);
}

TEST(SpinWait, SpinUntilReturnsAsSoonAsDoneAndGivesUpAtTheDeadline) {
    std::atomic<bool> flag{false};
    std::thread setter([&] {
        std::this_thread::sleep_for(1ms);
        flag = true;
    });
    EXPECT_TRUE(manygil::detail::spin_until([&] { return flag.load(); }, Clock::now() + 60s));
    setter.join();
    auto start = Clock::now();
    EXPECT_FALSE(manygil::detail::spin_until([] { return false; }, start + 2ms));
    EXPECT_GE(Clock::now() - start, 2ms);
}

}  // namespace
