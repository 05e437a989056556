// manygil::Pool: parallelism, initializers, failure isolation, shutdown semantics.
#include <gtest/gtest.h>

#include <Python.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"
#include "testing_module.hpp"

using manygil::Initializer;
using manygil::Pool;
using manygil::PoolOptions;
using manygil::Value;
using manygil::testing::runtime;

namespace {

bool is_ready(manygil::Task& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }

// Unique names for rendezvous points and events, so tests never share them.
std::string unique(const char* prefix) {
    static int n = 0;
    return std::string(prefix) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
           std::to_string(++n);
}

}  // namespace

TEST(Pool, DefaultSizeIsTheUsableCpuCount) {
    Pool pool(runtime());
    EXPECT_EQ(pool.size(), Pool::default_workers());
    EXPECT_GE(Pool::default_workers(), 1u);
    EXPECT_LE(Pool::default_workers(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(Pool, ThousandTasks) {
    Pool pool(runtime(), {.workers = 2});
    std::vector<manygil::Task> futures;
    for (int i = 0; i < 1000; ++i) futures.push_back(pool.submit("mg_tasks:add", {i, i}));
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(futures[i].get(), Value(2 * i)) << i;
}

TEST(Pool, EachWorkerHasItsOwnInterpreter) {
    Pool pool(runtime(), {.workers = 3});
    pool.wait_ready();
    auto ids = pool.interpreter_ids();
    ASSERT_EQ(ids.size(), 3u);
    EXPECT_EQ(std::set<std::int64_t>(ids.begin(), ids.end()).size(), 3u);
    for (auto id : ids) EXPECT_GT(id, 0) << "a worker runs in the main interpreter";
}

// Two tasks meet at a rendezvous while each HOLDS its interpreter's GIL. They can only both arrive if
// two workers execute Python at the same time, i.e. the GILs are distinct. No clock is read.
TEST(Pool, TwoWorkersRunPythonAtTheSameTime) {
    Pool pool(runtime(), {.workers = 2});
    std::string point = unique("pair");
    auto a = pool.submit("mg_tasks:rendezvous_holding_gil", {point, 2});
    auto b = pool.submit("mg_tasks:rendezvous_holding_gil", {point, 2});
    EXPECT_EQ(a.get(), Value(true));
    EXPECT_EQ(b.get(), Value(true));
}

// The control for the test above: the same rendezvous between two threads that share ONE GIL cannot
// succeed for both (the first holds the GIL until its bound runs out). So the test above can fail.
TEST(Pool, ControlThreadsSharingOneGilCannotRendezvous) {
    manygil::Interpreter interp(runtime());
    Value results = interp.call("mg_tasks:rendezvous_in_two_threads_of_one_interpreter", {unique("shared"), 0.5});
    EXPECT_EQ(results.as_list().at(0), Value(false)) << results.repr();
}

// PoolOptions::pin_workers: worker i on the (i mod n)-th CPU of the process; without it, every CPU.
// One worker more than the CPUs, so the last wraps round.
TEST(Pool, PinnedWorkersRunOnTheirOwnCpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    std::vector<Value> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) cpus.emplace_back(cpu);
    }
    std::size_t workers = cpus.size() + 1;
    for (bool pin : {true, false}) {
        Pool pool(runtime(), {.workers = workers, .name = "pin", .pin_workers = pin});
        std::string point = unique("placement");
        std::vector<manygil::Task> tasks;
        for (std::size_t i = 0; i < workers; ++i) {
            tasks.push_back(pool.submit("mg_tasks:placement", {point, static_cast<std::int64_t>(workers)}));
        }
        std::set<std::int64_t> indexes;
        for (auto& t : tasks) {
            Value v = t.get();
            std::int64_t index = v.as_list().at(0).as_int();
            indexes.insert(index);
            Value expected = pin ? Value::list({cpus[index % cpus.size()]}) : Value(manygil::List{cpus});
            EXPECT_EQ(v.as_list().at(1), expected) << "worker " << index << (pin ? " pinned" : " not pinned");
        }
        EXPECT_EQ(indexes.size(), workers);
    }
}

TEST(Pool, SourceInitializerRunsInEveryWorker) {
    PoolOptions options{.workers = 2,
                        .initializer = Initializer::source("import _manygil_testing\n"
                                                           "TAG = 'initialized'\n"
                                                           "def tagged(point):\n"
                                                           "    _manygil_testing.rendezvous(point, 2, 30.0)\n"
                                                           "    return TAG\n")};
    Pool pool(runtime(), options);
    std::string point = unique("init");
    auto a = pool.submit("__main__:tagged", {point});  // the rendezvous puts them on both workers
    auto b = pool.submit("__main__:tagged", {point});
    EXPECT_EQ(a.get(), Value("initialized"));
    EXPECT_EQ(b.get(), Value("initialized"));
}

TEST(Pool, CallInitializerRunsWithItsArguments) {
    Pool pool(runtime(), {.workers = 2, .initializer = Initializer::call("mg_tasks:setup", {"configured"})});
    std::vector<manygil::Task> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(pool.submit("mg_tasks:get_setup"));
    for (auto& f : futures) EXPECT_EQ(f.get(), Value("configured"));
}

TEST(Pool, FailingInitializerFailsPendingAndLaterWork) {
    std::string go = unique("init-go");
    PoolOptions options{.workers = 2,
                        .initializer = Initializer::source("import _manygil_testing\n"
                                                           "_manygil_testing.wait_event('" + go + "', 60.0)\n"
                                                           "raise RuntimeError('init failed')\n")};
    Pool pool(runtime(), options);
    std::vector<manygil::Task> pending;
    for (int i = 0; i < 5; ++i) pending.push_back(pool.submit("mg_tasks:add", {i}));  // before any worker is ready
    manygil::testing::set_event(go);
    for (auto& f : pending) EXPECT_THROW(f.get(), manygil::BrokenPoolError);
    try {
        pool.wait_ready();
        FAIL() << "wait_ready on a broken pool did not throw";
    } catch (const manygil::BrokenPoolError& e) {
        EXPECT_NE(std::string(e.what()).find("RuntimeError: init failed"), std::string::npos) << e.what();
        try {
            std::rethrow_exception(e.cause());
        } catch (const manygil::PythonError& cause) {
            EXPECT_EQ(cause.type_name(), "RuntimeError");
            EXPECT_EQ(cause.message(), "init failed");
            EXPECT_NE(cause.traceback().find("init failed"), std::string::npos);
        }
    }
    EXPECT_THROW(pool.submit("mg_tasks:add", {1}), manygil::BrokenPoolError);
}

TEST(Pool, UnknownInitializerTargetBreaksThePool) {
    Pool pool(runtime(), {.workers = 1, .initializer = Initializer::call("no_such_module_xyz:setup")});
    try {
        pool.wait_ready();
        FAIL() << "no exception";
    } catch (const manygil::BrokenPoolError& e) {
        EXPECT_THROW(std::rethrow_exception(e.cause()), manygil::UnknownFunctionError);
    }
    EXPECT_THROW(Pool(runtime(), {.workers = 1, .initializer = Initializer::call("no colon")}),
                 manygil::InvalidArgument);
}

TEST(Pool, FailingTasksDoNotBreakThePool) {
    Pool pool(runtime(), {.workers = 2});
    std::vector<manygil::Task> futures;
    for (int i = 0; i < 100; ++i) {
        futures.push_back(i % 2 ? pool.submit("mg_tasks:fail", {"odd"}) : pool.submit("mg_tasks:add", {i}));
    }
    for (int i = 0; i < 100; ++i) {
        if (i % 2) EXPECT_THROW(futures[i].get(), manygil::PythonError);
        else EXPECT_EQ(futures[i].get(), Value(i));
    }
    EXPECT_THROW(pool.submit("mg_tasks:nope").get(), manygil::UnknownFunctionError);
    EXPECT_THROW(pool.submit("mg_tasks:return_set").get(), manygil::ConversionError);
    EXPECT_EQ(pool.submit("mg_tasks:add", {20, 22}).get(), Value(42));
}

namespace {
// A one-worker pool whose worker is blocked in a task (until release()), with 50 tasks queued behind it.
struct BlockedPool {
    Pool pool{runtime(), {.workers = 1}};
    std::string started = unique("started"), go = unique("go");
    manygil::Task running;
    std::vector<manygil::Task> queued;

    BlockedPool() {
        running = pool.submit("mg_tasks:block_until", {started, go});
        EXPECT_TRUE(manygil::testing::wait_event(started, 60.0));
        for (int i = 0; i < 50; ++i) queued.push_back(pool.submit("mg_tasks:add", {i}));
    }
    void release() { manygil::testing::set_event(go); }
};
}  // namespace

TEST(Pool, WaitingShutdownWithCancelLetsEachWorkerTakeItsFirstTask) {
    // Submitted before the workers exist; each blocks until `go`. shutdown(true, true) first lets
    // each of the 2 workers take a task, then cancels the other 18.
    Pool pool(runtime(), {.workers = 2});
    std::string started = unique("started"), go = unique("go");
    std::vector<manygil::Task> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(pool.submit("mg_tasks:block_until", {started, go}));
    std::thread stopper([&] { pool.shutdown(/*wait=*/true, /*cancel_pending=*/true); });
    for (std::size_t i = 2; i < futures.size(); ++i) {
        ASSERT_EQ(futures[i].wait_for(std::chrono::seconds(60)), std::future_status::ready);
        EXPECT_THROW(futures[i].get(), manygil::CancelledError);
    }
    manygil::testing::set_event(go);
    stopper.join();
    EXPECT_EQ(futures[0].get(), Value(true));
    EXPECT_EQ(futures[1].get(), Value(true));
}

TEST(Pool, ShutdownWithCancelResolvesEveryQueuedFuture) {
    BlockedPool blocked;
    auto& [pool, started, go, running, queued] = blocked;

    pool.shutdown(/*wait=*/false, /*cancel_pending=*/true);
    for (auto& f : queued) {
        ASSERT_TRUE(is_ready(f)) << "a queued task was neither run nor cancelled";
        EXPECT_THROW(f.get(), manygil::CancelledError);
    }
    EXPECT_THROW(pool.submit("mg_tasks:add", {1}), manygil::ShutdownError);
    blocked.release();
    pool.shutdown(/*wait=*/true);
    ASSERT_TRUE(is_ready(running));
    EXPECT_EQ(running.get(), Value(true));  // the task already running was not interrupted
}

TEST(Pool, ShutdownWithoutCancelRunsEveryQueuedTask) {
    BlockedPool blocked;
    auto& [pool, started, go, running, queued] = blocked;
    pool.shutdown(/*wait=*/false);
    blocked.release();
    pool.shutdown(/*wait=*/true);  // idempotent; now waits
    EXPECT_EQ(running.get(), Value(true));
    for (int i = 0; i < 50; ++i) EXPECT_EQ(queued[i].get(), Value(i));
}

TEST(Pool, FinishedOnceEveryWorkerHasEnded) {
    Pool pool(runtime(), {.workers = 2});
    EXPECT_EQ(pool.submit("mg_tasks:add", {1}).get(), Value(1));
    EXPECT_FALSE(pool.finished());
    pool.shutdown(/*wait=*/true);
    EXPECT_TRUE(pool.finished());
}

TEST(Pool, DestructorFinishesQueuedWork) {
    std::vector<manygil::Task> futures;
    {
        Pool pool(runtime(), {.workers = 2});
        for (int i = 0; i < 40; ++i) futures.push_back(pool.submit("mg_tasks:add", {i, 1}));
    }
    for (int i = 0; i < 40; ++i) {
        ASSERT_TRUE(is_ready(futures[i]));
        EXPECT_EQ(futures[i].get(), Value(i + 1));
    }
}

TEST(Pool, SubmitExecRunsSource) {
    Pool pool(runtime(), {.workers = 1});
    EXPECT_EQ(pool.submit_exec("x = 6 * 7\ndef get_x():\n    return x\n").get(), Value());
    EXPECT_EQ(pool.submit("__main__:get_x").get(), Value(42));
}

namespace {
// Records which interpreter it ran in; optionally tries shutdown(wait=true) from inside the pool.
class ProbeJob : public manygil::Job {
public:
    ProbeJob(Pool* pool_to_shut, std::promise<std::string>& out) : pool_(pool_to_shut), out_(out) {}
    void run() noexcept override {
        if (!pool_) {
            out_.set_value(std::to_string(PyInterpreterState_GetID(PyInterpreterState_Get())));
            return;
        }
        try {
            pool_->shutdown(true);
            out_.set_value("no error");
        } catch (const manygil::Error& e) {
            out_.set_value(e.what());
        }
    }
    void abandon(std::exception_ptr) noexcept override { out_.set_value("abandoned"); }

private:
    Pool* pool_;
    std::promise<std::string>& out_;
};
}  // namespace

TEST(Pool, CustomJobsRunInAWorkerInterpreter) {
    Pool pool(runtime(), {.workers = 2});
    pool.wait_ready();
    std::promise<std::string> out;
    auto ran_in = out.get_future();
    pool.post(std::make_unique<ProbeJob>(nullptr, out));
    auto ids = pool.interpreter_ids();
    std::int64_t id = std::stoll(ran_in.get());
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end());
}

namespace {
// A job with a main-interpreter phase: records the interpreter and thread of each phase.
class TwoPhaseJob : public manygil::Job {
public:
    explicit TwoPhaseJob(std::promise<std::vector<std::int64_t>>& out) : out_(out) {}
    void run() noexcept override { seen_.push_back(PyInterpreterState_GetID(PyInterpreterState_Get())); thread_ = std::this_thread::get_id(); }
    bool wants_main() const noexcept override { return true; }
    void run_in_main() noexcept override {
        seen_.push_back(PyInterpreterState_GetID(PyInterpreterState_Get()));
        seen_.push_back(thread_ == std::this_thread::get_id());
        out_.set_value(seen_);
    }
    void abandon(std::exception_ptr) noexcept override { out_.set_value({}); }

private:
    std::promise<std::vector<std::int64_t>>& out_;
    std::vector<std::int64_t> seen_;
    std::thread::id thread_;
};
}  // namespace

TEST(Pool, MainPhaseRunsInTheMainInterpreterOnTheSameThread) {
    Pool pool(runtime(), {.workers = 2});
    std::promise<std::vector<std::int64_t>> out;
    auto seen = out.get_future();
    pool.post(std::make_unique<TwoPhaseJob>(out));
    auto phases = seen.get();
    ASSERT_EQ(phases.size(), 3u);
    EXPECT_GT(phases[0], 0) << "run() was not in a worker interpreter";
    EXPECT_EQ(phases[1], 0) << "run_in_main() was not in the main interpreter";
    EXPECT_EQ(phases[2], 1) << "the two phases ran on different threads";
    EXPECT_EQ(pool.submit("mg_tasks:add", {1, 2}).get(), Value(3));
}

namespace {
// A job that owns the pool it runs in, and destroys it from inside.
class DestroysItsOwnPool : public manygil::Job {
public:
    DestroysItsOwnPool(std::unique_ptr<Pool> pool, std::promise<bool>& done) : pool_(std::move(pool)), done_(done) {}
    void run() noexcept override {
        pool_.reset();  // ~Pool on one of its own workers: must neither wait for itself nor terminate
        done_.set_value(true);
    }
    void abandon(std::exception_ptr) noexcept override { done_.set_value(false); }

private:
    std::unique_ptr<Pool> pool_;
    std::promise<bool>& done_;
};
}  // namespace

TEST(Pool, APoolDestroyedByItsOwnTaskWindsDownCleanly) {
    std::promise<bool> done;
    auto pool = std::make_unique<Pool>(runtime(), PoolOptions{.workers = 2});
    Pool* raw = pool.get();
    raw->post(std::make_unique<DestroysItsOwnPool>(std::move(pool), done));
    EXPECT_TRUE(done.get_future().get());
    Pool next(runtime(), {.workers = 1});  // the runtime is unharmed
    EXPECT_EQ(next.submit("mg_tasks:add", {2, 2}).get(), Value(4));
}

TEST(Pool, WaitingShutdownFromInsideThePoolIsRefused) {
    Pool pool(runtime(), {.workers = 1});
    std::promise<std::string> out;
    auto message = out.get_future();
    pool.post(std::make_unique<ProbeJob>(&pool, out));
    EXPECT_NE(message.get().find("would wait for itself"), std::string::npos);
    EXPECT_EQ(pool.submit("mg_tasks:add", {1, 2}).get(), Value(3));  // refused without side effects
}

// PoolOptions::reuse_interpreters: a pool that shuts down parks its interpreters and the next pool
// with the option starts on them; a pool without it neither takes nor leaves any.
TEST(Pool, ReuseStartsTheNextPoolOnTheParkedInterpreters) {
    std::vector<std::int64_t> first;
    {
        Pool pool(runtime(), {.workers = 2, .name = "reuse-a", .reuse_interpreters = true});
        pool.wait_ready();
        first = pool.interpreter_ids();
        ASSERT_EQ(pool.submit("mg_tasks:add", {1, 2}).get(), Value(3));
    }
    {
        Pool fresh(runtime(), {.workers = 2, .name = "fresh"});
        fresh.wait_ready();
        for (auto id : fresh.interpreter_ids()) {
            EXPECT_EQ(std::count(first.begin(), first.end(), id), 0) << "a pool without reuse took a parked one";
        }
    }
    Pool pool(runtime(), {.workers = 2,
                          .initializer = Initializer::source("import mg_tasks\nmg_tasks.TAG = 'second'\n"),
                          .name = "reuse-b",
                          .reuse_interpreters = true});
    pool.wait_ready();
    auto again = pool.interpreter_ids();
    std::sort(first.begin(), first.end());
    std::sort(again.begin(), again.end());
    EXPECT_EQ(again, first);
    EXPECT_EQ(pool.submit("mg_tasks:add", {2, 2}).get(), Value(4));  // and the initializer ran again
    pool.submit_exec("import mg_tasks\nassert mg_tasks.TAG == 'second'\n").get();
}
