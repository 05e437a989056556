// manygil::call_in_main (main_call.hpp): calls into the main interpreter from host threads, from a
// worker's job with its GIL held, and from Python tasks; errors, timeouts, interrupts.
#include <gtest/gtest.h>

#include <Python.h>

#include <future>
#include <string>
#include <thread>

#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"
#include "testing_module.hpp"

using manygil::Args;
using manygil::call_in_main;
using manygil::Pool;
using manygil::Value;
using manygil::testing::runtime;

namespace {

std::string unique(const char* prefix) {
    static int n = 0;
    return std::string(prefix) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
           std::to_string(++n);
}

std::int64_t native_id() { return static_cast<std::int64_t>(PyThread_get_thread_native_id()); }

// A job whose run() (the worker's GIL held) calls into main, and checks it gets its GIL back.
class CallingJob final : public manygil::Job {
public:
    CallingJob(std::string target, Args args) : target_(std::move(target)), args_(std::move(args)) {}
    std::future<Value> future() { return promise_.get_future(); }
    void run() noexcept override {
        PyThreadState* mine = PyThreadState_GetUnchecked();
        try {
            Value v = call_in_main(target_, args_);
            if (PyThreadState_GetUnchecked() != mine) throw manygil::Error("the worker's thread state was not restored");
            promise_.set_value(std::move(v));
        } catch (...) {
            promise_.set_exception(std::current_exception());
        }
    }
    void abandon(std::exception_ptr reason) noexcept override { promise_.set_exception(reason); }

private:
    std::string target_;
    Args args_;
    std::promise<Value> promise_;
};

}  // namespace

TEST(CallInMain, FromAHostThreadRunsInMainOnAThreadOfItsOwn) {
    Value where = call_in_main("mg_tasks:where");
    const auto& w = where.as_list();
    EXPECT_EQ(w.at(0), Value(0)) << where.repr();          // the main interpreter
    EXPECT_NE(w.at(1), Value(native_id())) << where.repr();  // not on the calling thread
    EXPECT_EQ(w.at(2), Value(false)) << where.repr();      // nor on the thread that started Python
}

TEST(CallInMain, ArgumentsKwargsAndErrors) {
    EXPECT_EQ(call_in_main("mg_tasks:add", {2, 3}, {{"scale", 10}}), Value(50));
    try {
        call_in_main("mg_tasks:fail_nested", {"k"});
        FAIL() << "no error";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "KeyError");
        EXPECT_NE(e.traceback().find("_inner"), std::string::npos) << e.traceback();  // main's frames
    }
    EXPECT_THROW(call_in_main("mg_tasks:no_such_function"), manygil::UnknownFunctionError);
    EXPECT_THROW(call_in_main("no colon"), manygil::InvalidArgument);
    EXPECT_THROW(call_in_main("mg_tasks:return_set"), manygil::ConversionError);
}

TEST(CallInMain, AModuleThatOnlyLoadsInMain) {
    Pool pool(runtime(), {.workers = 1});
    EXPECT_THROW(pool.submit("mg_tasks:import_module", {"_manygil_testing_legacy"}).get(), manygil::PythonError);
    EXPECT_EQ(call_in_main("mg_tasks:legacy_module_name"), Value("_manygil_testing_legacy"));
}

TEST(CallInMain, FromAWorkersJobItsGilIsReleasedWhileItWaits) {
    Pool pool(runtime(), {.workers = 1});
    std::string started = unique("started"), go = unique("go");
    auto job = std::make_unique<CallingJob>("mg_tasks:block_until", Args{started, go});
    auto future = job->future();
    pool.post(std::move(job));
    ASSERT_TRUE(manygil::testing::wait_event(started, 60));
    // The monitor takes the worker's GIL to read its stack: possible only while the job waits without it.
    auto stacks = pool.dump_stacks(std::chrono::seconds(10));
    ASSERT_EQ(stacks.size(), 1u);
    EXPECT_TRUE(stacks[0].has_value()) << "the worker kept its GIL while it waited for main";
    manygil::testing::set_event(go);
    EXPECT_EQ(future.get(), Value(true));
}

TEST(CallInMain, FromAPythonTaskThroughTheCppApi) {
    Pool pool(runtime(), {.workers = 2});
    Value where = pool.submit("mg_tasks:via_host_call_in_main", {"mg_tasks:where"}).get();
    EXPECT_EQ(where.as_str().substr(0, 3), "[0,") << where.repr();  // the repr of main's answer
}

TEST(CallInMain, TimeoutEndsTheWait) {
    std::string started = unique("started"), go = unique("go");
    try {
        call_in_main("mg_tasks:block_until", {started, go}, {}, std::chrono::duration<double>(0.1));
        FAIL() << "no timeout";
    } catch (const manygil::TimeoutError& e) {
        EXPECT_FALSE(e.interrupted());
    }
    EXPECT_TRUE(manygil::testing::wait_event(started, 60));  // it had started: it runs on
    manygil::testing::set_event(go);
}

TEST(CallInMain, AnInterruptOfTheTaskEndsTheWait) {
    Pool pool(runtime(), {.workers = 1});
    std::string started = unique("started"), go = unique("go");
    auto future = pool.submit("mg_tasks:via_host_call_in_main", {"mg_tasks:block_until", started, go});
    ASSERT_TRUE(manygil::testing::wait_event(started, 60));
    EXPECT_EQ(pool.interrupt_running("stop it"), 1u);
    try {
        future.get();
        FAIL() << "not interrupted";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "TimeoutError");
        EXPECT_NE(e.traceback().find("interrupted=1"), std::string::npos) << e.traceback();
    }
    manygil::testing::set_event(go);
    EXPECT_EQ(pool.submit("mg_tasks:add", {1, 1}).get(), Value(2));  // the worker goes on
}

TEST(CallInMain, WithTheMainInterpreterAttachedItIsAPlainCall) {
    Value where, nested_where;
    std::thread([&] {
        PyThreadState* tstate = PyThreadState_New(PyInterpreterState_Main());
        PyEval_RestoreThread(tstate);
        try {
            where = call_in_main("mg_tasks:where");
        } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
        }
        nested_where = Value(native_id());
        PyThreadState_Clear(tstate);
        PyThreadState_DeleteCurrent();
    }).join();
    EXPECT_EQ(where.as_list().at(0), Value(0));
    EXPECT_EQ(where.as_list().at(1), nested_where) << "not run on the calling thread";
}

TEST(CallInMain, ManyThreadsAtOnce) {
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                if (call_in_main("mg_tasks:add", {t, i}) == Value(t + i)) ++ok;
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), 8 * 200);
}
