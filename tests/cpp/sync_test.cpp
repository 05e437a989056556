// manygil::Lock / Event / Semaphore / Barrier from C++: semantics across threads and interpreters.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"

using manygil::Value;
using manygil::testing::runtime;

TEST(Sync, LockEventSemaphoreBasics) {
    manygil::Lock lock;
    EXPECT_TRUE(lock.acquire());
    EXPECT_FALSE(lock.acquire(std::chrono::duration<double>(0)));
    lock.release();
    EXPECT_THROW(lock.release(), manygil::Error);
    manygil::Event event;
    EXPECT_FALSE(event.wait(std::chrono::duration<double>(0.01)));
    event.set();
    EXPECT_TRUE(event.wait());
    manygil::Semaphore sem(1);
    EXPECT_TRUE(sem.acquire());
    EXPECT_FALSE(sem.acquire(std::chrono::duration<double>(0)));
    sem.release(3);
    EXPECT_EQ(sem.value(), 3u);
}

TEST(Sync, BarrierReleasesEveryPartyWithDistinctIndices) {
    manygil::Barrier barrier(4);
    std::vector<std::size_t> indices(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&, i] { indices[i] = barrier.wait(); });
    for (auto& t : threads) t.join();
    std::sort(indices.begin(), indices.end());
    EXPECT_EQ(indices, (std::vector<std::size_t>{0, 1, 2, 3}));
    EXPECT_THROW(manygil::Barrier(0), manygil::InvalidArgument);
    manygil::Barrier lonely(2);
    EXPECT_THROW(lonely.wait(std::chrono::duration<double>(0.01)), manygil::BrokenBarrier);
    EXPECT_TRUE(lonely.broken());
    lonely.reset();
    EXPECT_FALSE(lonely.broken());
}

TEST(Sync, AnInterpreterWaitsForAHostEvent) {
    manygil::Interpreter interp(runtime());
    interp.exec("def wait(event):\n    return event.wait(60)\n");
    manygil::Event event;
    auto waiting = interp.submit("__main__:wait", {Value(event)});
    event.set();
    EXPECT_EQ(waiting.get(), Value(true));
}
