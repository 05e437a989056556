// The ownership checks (src/cpython/ownership.hpp): a job that breaks the rule "a job returns with
// the interpreter it was given still attached" stops the process with a message naming the rule,
// instead of corrupting another interpreter's state later. Each case runs in a death-test child that
// starts its own Runtime.
#include <gtest/gtest.h>

#include <Python.h>

#include <cstdlib>
#include <memory>

#include "cpython/ownership.hpp"
#include "manygil/manygil.hpp"

namespace {

// Runs with its worker's interpreter attached and leaves with nothing attached.
class DetachingJob final : public manygil::Job {
public:
    void run() noexcept override { (void)PyEval_SaveThread(); }
    void abandon(std::exception_ptr) noexcept override {}
};

// Settles in main, as a Python task does, but leaves main with nothing attached.
class DetachingInMainJob final : public manygil::Job {
public:
    void run() noexcept override {}
    bool wants_main() const noexcept override { return true; }
    void run_in_main() noexcept override { (void)PyEval_SaveThread(); }
    void abandon(std::exception_ptr) noexcept override {}
};

void post_and_wait(std::unique_ptr<manygil::Job> job) {
    manygil::Runtime runtime;
    manygil::Pool pool(runtime, {.workers = 1});
    pool.post(std::move(job));
    pool.shutdown();  // waits for the job; the check stops the process first
}

TEST(OwnershipDeathTest, JobLeavingItsWorkerDetachedStopsTheProcess) {
    EXPECT_DEATH(post_and_wait(std::make_unique<DetachingJob>()),
                 "ownership rule broken: Job::run\\(\\) returns with its worker's interpreter attached");
}

TEST(OwnershipDeathTest, JobLeavingMainDetachedStopsTheProcess) {
    EXPECT_DEATH(post_and_wait(std::make_unique<DetachingInMainJob>()),
                 "ownership rule broken: Job::run_in_main\\(\\) returns with the main interpreter attached");
}

TEST(OwnershipDeathTest, ChecksNameTheInterpreterTheyExpect) {
    // With no thread state attached, any expectation of one fails; expect_detached() passes.
    EXPECT_DEATH(
        {
            Py_InitializeEx(0);
            (void)PyEval_SaveThread();
            manygil::detail::expect_detached("never fails here");
            manygil::detail::expect_main_attached("the main interpreter is attached");
        },
        "ownership rule broken: the main interpreter is attached");
}

TEST(Ownership, ChecksPassWhenTheRuleHolds) {
    EXPECT_EXIT(
        {
            Py_InitializeEx(0);
            manygil::detail::expect_main_attached("main attached after Py_Initialize");
            PyThreadState* main = PyEval_SaveThread();
            manygil::detail::expect_detached("nothing attached after PyEval_SaveThread");
            PyEval_RestoreThread(main);
            std::exit(Py_FinalizeEx() == 0 ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "");
}

}  // namespace
