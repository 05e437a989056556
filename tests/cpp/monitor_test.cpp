// Worker monitors through the C++ Pool: stats, stack dumps and interrupts of running Python.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <Python.h>

#include <future>

#include "manygil/job.hpp"
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

// A pipe whose read end a task blocks on in C (os.read), until the test writes one byte.
struct Pipe {
    int fds[2] = {-1, -1};
    Pipe() { EXPECT_EQ(::pipe(fds), 0); }
    ~Pipe() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    void release() { EXPECT_EQ(::write(fds[1], "x", 1), 1); }
};

// Polls `done` (up to a minute: machines are noisy); true once it holds.
template <class Pred>
bool eventually(Pred done) {
    for (int i = 0; i < 6000; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
}

TEST(StuckWorkers, AWorkerThatIgnoresAnInterruptIsReplacedAndEndsWhenItsCallReturns) {
    std::mutex mu;
    std::vector<manygil::StuckWorker> reports;
    Pool pool(runtime(), {.workers = 1,
                          .name = "stuckpool",
                          .replace_stuck_after = std::chrono::milliseconds(100),
                          .on_stuck = [&](const manygil::StuckWorker& w) {
                              std::lock_guard lock(mu);
                              reports.push_back(w);
                          }});
    Pipe pipe;
    std::string path = marker("stuck");
    auto stuck = pool.submit("mg_tasks:read_after", {path, pipe.fds[0]});
    wait_for(path);
    std::int64_t first_interpreter = pool.interpreter_ids()[0];
    EXPECT_EQ(pool.interrupt_running("stop reading"), 1u);

    // The pool keeps its size: the next task runs on a new worker while the stuck one still reads.
    EXPECT_EQ(pool.submit("mg_tasks:add", {1, 2}).get(), Value(3));
    EXPECT_EQ(stuck.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
    auto stats = pool.stats();
    EXPECT_EQ(stats.replaced, 1u);
    ASSERT_EQ(stats.workers.size(), 1u);
    EXPECT_NE(stats.workers[0].interpreter_id, first_interpreter);
    EXPECT_EQ(pool.interpreter_ids()[0], stats.workers[0].interpreter_id);
    ASSERT_EQ(stats.stuck.size(), 1u);
    EXPECT_EQ(stats.stuck[0].interpreter_id, first_interpreter);
    ASSERT_TRUE(stats.stuck[0].current.has_value());
    EXPECT_EQ(stats.stuck[0].current->what, "mg_tasks:read_after");
    EXPECT_TRUE(stats.stuck[0].current->interrupt_pending_seconds.has_value());
    {
        std::lock_guard lock(mu);
        ASSERT_EQ(reports.size(), 1u);
        EXPECT_EQ(reports[0].pool, "stuckpool");
        EXPECT_EQ(reports[0].index, 0u);
        EXPECT_EQ(reports[0].interpreter_id, first_interpreter);
        EXPECT_EQ(reports[0].what, "mg_tasks:read_after");
        EXPECT_GE(reports[0].interrupt_pending_seconds, 0.1);
        // os.read lets go of the GIL: the stack can be had, and shows where it is stuck.
        ASSERT_TRUE(reports[0].stack.has_value());
        EXPECT_NE(reports[0].stack->find("in read_after"), std::string::npos) << *reports[0].stack;
    }

    // Its call returns: the pending interrupt is raised at its next bytecode, its task settles as
    // an interrupted one, and the worker leaves the pool.
    pipe.release();
    try {
        stuck.get();
        FAIL() << "the interrupted call returned normally";
    } catch (const PythonError& e) {
        EXPECT_EQ(e.type_name(), "TimeoutError");
        EXPECT_EQ(e.message(), "stop reading");
    }
    EXPECT_TRUE(eventually([&] { return pool.stats().stuck.empty(); }));
    EXPECT_EQ(pool.stats().replaced, 1u);
    EXPECT_EQ(pool.submit("mg_tasks:add", {2, 2}).get(), Value(4));
    pool.shutdown();
    EXPECT_TRUE(pool.finished());
    std::lock_guard lock(mu);
    EXPECT_EQ(reports.size(), 1u);  // reported once
    std::filesystem::remove(path);
}

TEST(StuckWorkers, ShutdownWaitsForAStuckWorkersCall) {
    Pool pool(runtime(), {.workers = 2,
                          .replace_stuck_after = std::chrono::milliseconds(50),
                          .on_stuck = [](const manygil::StuckWorker&) {}});
    Pipe pipe;
    std::string path = marker("stuck-shutdown");
    auto stuck = pool.submit("mg_tasks:read_after", {path, pipe.fds[0]});
    wait_for(path);
    EXPECT_EQ(pool.interrupt_running("stop"), 1u);
    EXPECT_TRUE(eventually([&] { return pool.stats().replaced == 1; }));
    pool.shutdown(/*wait=*/false);
    EXPECT_FALSE(pool.wait_finished(std::chrono::milliseconds(50)));  // the stuck call still reads
    pipe.release();
    EXPECT_TRUE(pool.wait_finished(std::chrono::seconds(60)));
    EXPECT_THROW(stuck.get(), PythonError);
    std::filesystem::remove(path);
}

TEST(StuckWorkers, WithoutTheOptionAWorkerIsNeverReplaced) {
    Pool pool(runtime(), {.workers = 1});
    Pipe pipe;
    std::string path = marker("not-replaced");
    auto stuck = pool.submit("mg_tasks:read_after", {path, pipe.fds[0]});
    wait_for(path);
    std::int64_t interpreter = pool.interpreter_ids()[0];
    EXPECT_EQ(pool.interrupt_running("stop"), 1u);
    EXPECT_TRUE(eventually([&] {
        auto s = pool.stats();
        return s.workers[0].current && s.workers[0].current->interrupt_pending_seconds.value_or(0) > 0.3;
    }));
    auto stats = pool.stats();
    EXPECT_EQ(stats.replaced, 0u);
    EXPECT_TRUE(stats.stuck.empty());
    EXPECT_EQ(stats.workers[0].interpreter_id, interpreter);
    pipe.release();
    EXPECT_THROW(stuck.get(), PythonError);
    std::filesystem::remove(path);
}

TEST(Recycling, AWorkerIsReplacedAfterItsShareOfTasksWithTheInitializerRunAgain) {
    Pool pool(runtime(), {.workers = 1,
                          .initializer = manygil::Initializer::call("mg_tasks:setup", {"ready"}),
                          .max_tasks_per_worker = 3});
    auto run = [&] {
        Value v = pool.submit("mg_tasks:interpreter_and_setup").get();
        EXPECT_EQ(v.as_list().at(1), Value("ready"));  // every successor ran the initializer
        return v.as_list().at(0).as_int();
    };
    std::int64_t first = run();
    EXPECT_EQ(run(), first);
    EXPECT_EQ(run(), first);  // its third: its successor starts now, and takes over once ready
    ASSERT_TRUE(eventually([&] { return pool.stats().recycled == 1; }));
    std::int64_t second = run();
    EXPECT_NE(second, first);
    EXPECT_EQ(pool.interpreter_ids()[0], second);
    // A C++ future is ready as soon as the task sets it, a moment before the worker counts it.
    EXPECT_TRUE(eventually([&] { return pool.stats().workers.at(0).tasks_done == 1; }));  // the successor's own
    auto stats = pool.stats();
    ASSERT_EQ(stats.workers.size(), 1u);
    EXPECT_EQ(stats.workers[0].interpreter_id, second);
    EXPECT_EQ(stats.replaced, 0u);
    pool.shutdown();
    EXPECT_TRUE(pool.finished());
}

TEST(Recycling, ManyTasksFromSeveralThreadsAllRunWhileWorkersRecycle) {
    Pool pool(runtime(), {.workers = 2, .max_tasks_per_worker = 2, .max_tasks_jitter = 3});
    std::vector<std::thread> callers;
    std::mutex mu;
    std::set<std::int64_t> interpreters;
    int answered = 0;
    for (int t = 0; t < 3; ++t) {
        callers.emplace_back([&, t] {
            for (int i = 0; i < 40; ++i) {
                Value v = pool.submit("mg_tasks:add", {t, i}).get();
                std::int64_t id = pool.submit("mg_tasks:interpreter_and_setup").get().as_list().at(0).as_int();
                std::lock_guard lock(mu);
                answered += v == Value(t + i);
                interpreters.insert(id);
            }
        });
    }
    for (auto& c : callers) c.join();
    EXPECT_EQ(answered, 120);
    // 240 tasks, at most 5 per worker before it starts a successor, which takes over once ready
    // (however long a loaded machine makes that).
    EXPECT_TRUE(eventually([&] { return pool.stats().recycled >= 1; }));
    pool.shutdown();
    EXPECT_TRUE(pool.finished());
}

// A job that is none of the pool's tasks (Job::counts_as_task false): it tells which interpreter it
// ran in, after holding its worker a moment (GIL released) -- long enough for a successor that its
// count had started to take the slot.
class UncountedJob final : public manygil::Job {
public:
    explicit UncountedJob(std::promise<std::int64_t>& ran) : ran_(ran) {}
    void run() noexcept override {
        std::int64_t id = PyInterpreterState_GetID(PyInterpreterState_Get());
        Py_BEGIN_ALLOW_THREADS
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        Py_END_ALLOW_THREADS
        ran_.set_value(id);
    }
    void abandon(std::exception_ptr e) noexcept override { ran_.set_exception(e); }
    bool counts_as_task() const noexcept override { return false; }

private:
    std::promise<std::int64_t>& ran_;
};

TEST(Recycling, JobsThatAreNoTasksDoNotCountTowardTheShare) {
    Pool pool(runtime(), {.workers = 1, .max_tasks_per_worker = 1});
    pool.wait_ready();
    std::int64_t first = pool.interpreter_ids()[0];
    for (int i = 0; i < 3; ++i) {
        std::promise<std::int64_t> ran;
        pool.post(std::make_unique<UncountedJob>(ran));
        EXPECT_EQ(ran.get_future().get(), first);  // counted, the first would have recycled its worker
    }
    EXPECT_EQ(pool.stats().recycled, 0u);
    // The first task counts: its worker's share (1) is done, and a successor takes over.
    EXPECT_EQ(pool.submit("mg_tasks:interpreter_and_setup").get().as_list().at(0).as_int(), first);
    ASSERT_TRUE(eventually([&] { return pool.stats().recycled == 1; }));
    EXPECT_NE(pool.submit("mg_tasks:interpreter_and_setup").get().as_list().at(0).as_int(), first);
    pool.shutdown();
}

TEST(StuckWorkers, ANonPositiveLimitIsRefused) {
    EXPECT_THROW(Pool(runtime(), {.workers = 1, .replace_stuck_after = std::chrono::milliseconds(0)}),
                 manygil::InvalidArgument);
}

}  // namespace
