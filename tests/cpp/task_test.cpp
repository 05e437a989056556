// manygil::Task (task.hpp): what a C++ host holds for one submitted task. Cancel while queued,
// interrupt while running (or before it starts), a per-task timeout, the outcome read more than once,
// and cancel() racing a worker's start: exactly one wins.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"
#include "testing_module.hpp"

using manygil::Pool;
using manygil::Task;
using manygil::Value;
using manygil::testing::runtime;

namespace {

std::string unique(const char* prefix) {
    static int n = 0;
    return std::string(prefix) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
           std::to_string(++n);
}

// The type of the Python exception get() throws (fails the test if it throws nothing or another error).
std::string python_error_of(const Task& task) {
    try {
        task.get();
    } catch (const manygil::PythonError& e) {
        return e.type_name();
    }
    ADD_FAILURE() << "get() threw no PythonError";
    return "";
}

}  // namespace

TEST(Task, ResultAndErrorCanBeReadAgain) {
    Pool pool(runtime(), {.workers = 1});
    Task ok = pool.submit("mg_tasks:add", {20, 22});
    EXPECT_NE(ok.id(), 0u);
    EXPECT_EQ(ok.get(), Value(42));
    EXPECT_EQ(ok.get(), Value(42));  // the outcome stays
    EXPECT_TRUE(ok.done());
    EXPECT_TRUE(ok.started());
    EXPECT_FALSE(ok.cancel());  // it ran
    Task copy = ok;             // handles share one task
    EXPECT_EQ(copy.id(), ok.id());
    EXPECT_EQ(copy.get(), Value(42));

    Task failing = pool.submit("mg_tasks:fail", {"no"});
    EXPECT_EQ(python_error_of(failing), "ValueError");
    EXPECT_EQ(python_error_of(failing), "ValueError");
    EXPECT_NE(pool.submit("mg_tasks:add", {1, 2}).id(), failing.id());
}

TEST(Task, CancelAPendingTask) {
    Pool pool(runtime(), {.workers = 1});
    std::string started = unique("started"), go = unique("go");
    Task blocker = pool.submit("mg_tasks:block_until", {started, go});
    ASSERT_TRUE(manygil::testing::wait_event(started, 60));
    Task queued = pool.submit("mg_tasks:add", {1, 2});
    EXPECT_FALSE(queued.started());
    EXPECT_TRUE(queued.cancel());
    EXPECT_TRUE(queued.cancel());  // still true: it will never run
    EXPECT_TRUE(queued.done());    // no wait for a worker to dequeue it
    EXPECT_THROW(queued.get(), manygil::CancelledError);
    EXPECT_FALSE(blocker.cancel());  // running: only interrupt() reaches it
    manygil::testing::set_event(go);
    EXPECT_EQ(blocker.get(), Value(true));
    EXPECT_EQ(pool.submit("mg_tasks:add", {2, 2}).get(), Value(4));  // the cancelled task was skipped
    EXPECT_FALSE(queued.started());
}

TEST(Task, InterruptARunningPythonCall) {
    Pool pool(runtime(), {.workers = 1});
    std::string started = unique("started");
    Task spinning = pool.submit("mg_tasks:spin_after_event", {started});
    ASSERT_TRUE(manygil::testing::wait_event(started, 60));
    EXPECT_TRUE(spinning.interrupt("stop, please"));
    try {
        spinning.get();
        ADD_FAILURE() << "an interrupted call returned";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "TimeoutError");
        EXPECT_EQ(e.message(), "stop, please");
    }
    EXPECT_EQ(pool.submit("mg_tasks:add", {1, 2}).get(), Value(3));  // the worker goes on
}

TEST(Task, AnInterruptAskedWhileQueuedStopsTheCallWhenItStarts) {
    Pool pool(runtime(), {.workers = 1});
    std::string started = unique("started"), go = unique("go"), spin = unique("spin");
    Task blocker = pool.submit("mg_tasks:block_until", {started, go});
    ASSERT_TRUE(manygil::testing::wait_event(started, 60));
    Task queued = pool.submit("mg_tasks:spin_after_event", {spin});
    EXPECT_FALSE(queued.interrupt());  // not running yet: the wish is kept
    manygil::testing::set_event(go);
    EXPECT_EQ(python_error_of(queued), "TimeoutError");
    EXPECT_TRUE(queued.started());
    EXPECT_EQ(blocker.get(), Value(true));
}

TEST(Task, ATimeoutStopsOnlyItsOwnTask) {
    Pool pool(runtime(), {.workers = 1});
    std::string started = unique("started");
    Task limited = pool.submit("mg_tasks:spin_after_event", {started}, {},
                               {.timeout = std::chrono::milliseconds(50)});
    EXPECT_EQ(python_error_of(limited), "TimeoutError");
    // The same pool's later tasks have no limit unless they ask for one.
    EXPECT_EQ(pool.submit("mg_tasks:add", {1, 2}).get(), Value(3));
    EXPECT_THROW(pool.submit("mg_tasks:add", {1}, {}, {.timeout = std::chrono::seconds(0)}),
                 manygil::InvalidArgument);
}

TEST(Task, CancelRacingTheWorkerHasExactlyOneWinner) {
    Pool pool(runtime(), {.workers = 2});
    pool.wait_ready();
    int cancelled = 0, ran = 0;
    for (int i = 0; i < 300; ++i) {
        Task task = pool.submit("mg_tasks:add", {i, 1});
        std::atomic<bool> won{false};
        std::thread canceller([&] { won = task.cancel(); });
        canceller.join();
        if (won) {
            ++cancelled;
            EXPECT_THROW(task.get(), manygil::CancelledError);
            EXPECT_FALSE(task.started());
        } else {
            ++ran;
            EXPECT_EQ(task.get(), Value(i + 1));
            EXPECT_TRUE(task.started());
        }
    }
    EXPECT_EQ(cancelled + ran, 300);
}

TEST(Task, AHandleOutlivesItsPool) {
    Task task;
    EXPECT_FALSE(task.valid());
    EXPECT_THROW(task.id(), manygil::Error);
    {
        Pool pool(runtime(), {.workers = 1});
        task = pool.submit_exec("x = 1");
    }
    EXPECT_EQ(task.get(), Value());
    EXPECT_FALSE(task.interrupt());  // its pool is gone: nothing to stop
}
