// manygil::Runtime: owning or attaching to Python, one at a time, and closing everything it created.
// Each test makes its own Runtime (ctest runs each test in its own process).
#include <gtest/gtest.h>

#include <Python.h>

#include <chrono>
#include <future>

#include "manygil/manygil.hpp"
#include "testing_module.hpp"

using manygil::Value;

TEST(Runtime, InitialisesAndFinalisesPython) {
    ASSERT_FALSE(Py_IsInitialized());
    {
        manygil::Runtime runtime(manygil::testing::runtime_options());
        EXPECT_TRUE(runtime.owns_python());
        EXPECT_TRUE(Py_IsInitialized());
        EXPECT_EQ(manygil::Runtime::current(), &runtime);
        EXPECT_EQ(manygil::Runtime::python_version().substr(0, 2), "3.");
        manygil::Interpreter interp(runtime);
        EXPECT_EQ(interp.call("mg_tasks:add", {1, 2}), Value(3));
    }
    EXPECT_FALSE(Py_IsInitialized());
    EXPECT_EQ(manygil::Runtime::current(), nullptr);
}

TEST(Runtime, OnlyOneAtATime) {
    manygil::Runtime runtime(manygil::testing::runtime_options());
    EXPECT_THROW(manygil::Runtime second, manygil::Error);
    EXPECT_EQ(manygil::Runtime::current(), &runtime);
}

TEST(Runtime, AttachesToARunningPythonWithoutFinalisingIt) {
    Py_InitializeEx(0);
    PyThreadState* main = PyEval_SaveThread();  // as an extension does before blocking on workers
    {
        manygil::Runtime runtime;
        EXPECT_FALSE(runtime.owns_python());
        manygil::Pool pool(runtime, {.workers = 2});
        EXPECT_EQ(pool.submit("builtins:len", {"four"}).get(), Value(4));
    }
    EXPECT_TRUE(Py_IsInitialized());
    PyEval_RestoreThread(main);
    Py_FinalizeEx();
}

TEST(Runtime, CloseFinishesWorkAndRefusesMore) {
    manygil::Runtime runtime(manygil::testing::runtime_options());
    manygil::Pool pool(runtime, {.workers = 2});
    manygil::Interpreter interp(runtime);
    std::vector<manygil::Task> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(pool.submit("mg_tasks:add", {i, 1}));
    runtime.close();
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(futures[i].wait_for(std::chrono::seconds(0)), std::future_status::ready);
        EXPECT_EQ(futures[i].get(), Value(i + 1));
    }
    EXPECT_THROW(pool.submit("mg_tasks:add", {1}), manygil::ShutdownError);
    EXPECT_THROW(interp.call("mg_tasks:add", {1}), manygil::ShutdownError);
    EXPECT_TRUE(interp.closed());
    EXPECT_THROW(manygil::Pool(runtime, {.workers = 1}), manygil::ShutdownError);
}

TEST(Runtime, PoolsMayOutliveTheRuntime) {
    std::unique_ptr<manygil::Pool> pool;
    {
        manygil::Runtime runtime(manygil::testing::runtime_options());
        pool = std::make_unique<manygil::Pool>(runtime, manygil::PoolOptions{.workers = 2});
        EXPECT_EQ(pool->submit("mg_tasks:add", {1, 1}).get(), Value(2));
    }  // the runtime ended the pool's interpreters before finalising Python
    EXPECT_THROW(pool->submit("mg_tasks:add", {1}), manygil::ShutdownError);
    pool.reset();  // and destroying it afterwards touches no Python
}

TEST(Runtime, PythonPathOptionReachesWorkers) {
    manygil::Runtime runtime(manygil::testing::runtime_options());
    manygil::Interpreter interp(runtime);
    EXPECT_EQ(interp.call("mg_tasks:identity", {"found"}), Value("found"));
}

// Calls into main (main_call.hpp) need an open Runtime: close() lets the running ones finish, refuses
// the queued ones and later ones, and ends the threads before Python finalises.
TEST(Runtime, CloseEndsCallsIntoMain) {
    EXPECT_THROW(manygil::call_in_main("mg_tasks:add", {1, 2}), manygil::ShutdownError);  // no Runtime yet
    manygil::Runtime runtime(manygil::testing::runtime_options());
    EXPECT_EQ(manygil::call_in_main("mg_tasks:add", {1, 2}), Value(3));
    // 16 calls block in main (every thread busy); a 17th waits in the queue.
    constexpr int kBusy = 16;
    std::vector<std::future<Value>> running;
    for (int i = 0; i < kBusy; ++i) {
        std::string started = "started-" + std::to_string(i);
        running.push_back(std::async(std::launch::async, [started] {
            return manygil::call_in_main("mg_tasks:block_until", {started, "go"});
        }));
        ASSERT_TRUE(manygil::testing::wait_event(started, 60));
    }
    auto queued = std::async(std::launch::async, [] {
        return manygil::call_in_main("mg_tasks:block_until", {"never-started", "go"});
    });
    EXPECT_EQ(queued.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
    auto closing = std::async(std::launch::async, [&] { runtime.close(); });
    EXPECT_THROW(queued.get(), manygil::ShutdownError);  // refused, never ran
    EXPECT_EQ(closing.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);  // waits for running
    manygil::testing::set_event("go");
    closing.get();
    for (auto& f : running) EXPECT_EQ(f.get(), Value(true));
    EXPECT_FALSE(manygil::testing::wait_event("never-started", 0));
    EXPECT_THROW(manygil::call_in_main("mg_tasks:add", {1, 2}), manygil::ShutdownError);
}
