// Worker monitors through the C++ Pool: stats, stack dumps and interrupts of running Python.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include <unistd.h>

#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"

namespace {

using manygil::testing::runtime;
using manygil::Pool;
using manygil::PythonError;
using manygil::Value;

// A file the task creates once it runs (so the test knows the task has started).
std::string marker(const char* name) {
    auto path = std::filesystem::temp_directory_path() / (std::string("mg-monitor-") + name + "-" +
                                                          std::to_string(::getpid()));
    std::filesystem::remove(path);
    return path.string();
}

void wait_for(const std::string& path) {
    for (int i = 0; i < 6000 && !std::filesystem::exists(path); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(std::filesystem::exists(path)) << "the task never started";
}

TEST(Monitor, StatsCountTasksAndFailures) {
    Pool pool(runtime(), {.workers = 1});
    EXPECT_EQ(pool.submit("mg_tasks:add", {1, 2}).get(), Value(3));
    EXPECT_THROW(pool.submit("mg_tasks:fail", {"no"}).get(), PythonError);
    // A C++ future is ready as soon as the task sets it, a moment before the worker counts it.
    auto stats = pool.stats();
    for (int i = 0; i < 6000 && stats.workers[0].tasks_done < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        stats = pool.stats();
    }
    ASSERT_EQ(stats.workers.size(), 1u);
    EXPECT_EQ(stats.workers[0].tasks_done, 2u);
    EXPECT_EQ(stats.workers[0].tasks_failed, 1u);
    EXPECT_EQ(stats.workers[0].interpreter_id, pool.interpreter_ids()[0]);
    EXPECT_FALSE(stats.workers[0].current.has_value());
    EXPECT_EQ(stats.queued, 0u);
}

TEST(Monitor, InterruptStopsRunningPythonAndTheWorkerGoesOn) {
    Pool pool(runtime(), {.workers = 1});
    std::string path = marker("interrupt");
    auto spinning = pool.submit("mg_tasks:spin_after", {path});
    auto queued = pool.submit("mg_tasks:add", {20, 1});
    wait_for(path);

    auto stats = pool.stats();
    ASSERT_TRUE(stats.workers[0].current.has_value());
    EXPECT_EQ(stats.workers[0].current->what, "mg_tasks:spin_after");
    EXPECT_TRUE(stats.workers[0].current->interruptible);
    EXPECT_EQ(stats.queued, 1u);

    auto stacks = pool.dump_stacks(std::chrono::seconds(30));
    ASSERT_EQ(stacks.size(), 1u);
    ASSERT_TRUE(stacks[0].has_value());
    EXPECT_NE(stacks[0]->find("in spin_after"), std::string::npos) << *stacks[0];

    EXPECT_EQ(pool.interrupt_running("stop, please"), 1u);
    try {
        spinning.get();
        FAIL() << "the spinning task returned";
    } catch (const PythonError& e) {
        EXPECT_EQ(e.type_name(), "TimeoutError");
        EXPECT_EQ(e.message(), "stop, please");
    }
    EXPECT_EQ(queued.get(), Value(21));
    EXPECT_EQ(pool.interrupt_running("nothing runs"), 0u);
    std::filesystem::remove(path);
}

TEST(Monitor, IdleWorkersDumpAnEmptyStack) {
    Pool pool(runtime(), {.workers = 2});
    pool.wait_ready();
    for (const auto& stack : pool.dump_stacks()) {
        ASSERT_TRUE(stack.has_value());
        EXPECT_NE(stack->find("idle"), std::string::npos) << *stack;
    }
}

TEST(Monitor, ShutdownWithRunningTaskEndsAfterInterrupt) {
    Pool pool(runtime(), {.workers = 2});
    std::string path = marker("shutdown");
    auto spinning = pool.submit("mg_tasks:spin_after", {path});
    wait_for(path);
    pool.shutdown(/*wait=*/false);
    EXPECT_FALSE(pool.wait_finished(std::chrono::milliseconds(50)));  // it spins on
    EXPECT_EQ(pool.interrupt_running("shutting down"), 1u);
    EXPECT_TRUE(pool.wait_finished(std::chrono::seconds(60)));
    EXPECT_THROW(spinning.get(), PythonError);
    std::filesystem::remove(path);
}

}  // namespace
