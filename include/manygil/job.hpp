// manygil::Job: the unit of work a worker runs. Pool::submit and Interpreter::call build Jobs for you;
// clients that need more (the Python extension, a host calling the C-API directly) post their own.
#pragma once

#include <exception>
#include <string>

namespace manygil {

class Job {
public:
    virtual ~Job() = default;

    // Runs on a worker thread with that worker's interpreter attached (its GIL held). The job must
    // report its own outcome (promise, callback) and leave no Python exception set.
    virtual void run() noexcept = 0;

    // Optional second phase, for results that belong to the main interpreter (a Python Future): if
    // wants_main() is true, after run() the same worker thread attaches the MAIN interpreter (taking
    // its GIL) and calls run_in_main(); the job is then destroyed there, still attached.
    virtual bool wants_main() const noexcept { return false; }
    virtual void run_in_main() noexcept {}

    // Optional last phase, for work that must not delay the caller: if wants_cleanup() is true after
    // run_in_main(), the worker re-attaches its own interpreter and calls cleanup() (e.g. to release
    // the objects the task made there, which can take as long as making them); the job is then
    // destroyed there, still attached.
    virtual bool wants_cleanup() const noexcept { return false; }
    virtual void cleanup() noexcept {}

    // For stats() and stack dumps: what the job runs (e.g. "module:function").
    virtual std::string describe() const { return "job"; }
    // After run(): whether the job failed (counted in stats()).
    virtual bool failed() const noexcept { return false; }

    // Called instead of run() when the job will never run: cancelled at shutdown (CancelledError) or
    // the pool broke (BrokenPoolError). Called on any thread, without any GIL held.
    virtual void abandon(std::exception_ptr reason) noexcept = 0;
};

}  // namespace manygil
