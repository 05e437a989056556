// manygil::Job: the unit of work a worker runs. Pool::submit and Interpreter::call/submit build Jobs
// for you; a host that calls the CPython C-API itself posts its own (Pool::post, Interpreter::post).
//
// Protocol. Once post() accepts a job, the group owns it and calls exactly one of run() or abandon(),
// once. A Pool's jobs start in FIFO order, several at a time on different workers; an Interpreter's
// run one after another. If post() throws (ShutdownError, BrokenPoolError), neither is called: the job
// is destroyed on the posting thread. Every member except abandon() runs on the worker's thread; a
// Python exception a phase leaves set is cleared. No member may throw (a throwing describe()
// terminates the process).
//
// GILs. run() holds the worker's GIL and may call the C-API on the worker's interpreter only; it must
// not touch objects of another interpreter. Blocking in run() holds up that worker (release its GIL
// around a long C++ wait so its other Python threads run). Work that needs the main interpreter (a
// Python object the host owns there) goes in run_in_main(), which takes the MAIN interpreter's GIL:
// a thread that waits for the job while holding the main GIL deadlocks it.
#pragma once

#include <exception>
#include <string>

namespace manygil {

class Job {
public:
    // Runs on the thread where the job ran last, with that phase's GIL still held (see below), or,
    // after abandon(), where abandon() ran.
    virtual ~Job() = default;

    // Required. The worker's interpreter is attached (its GIL held). Report the outcome yourself
    // (a promise, a callback); leave no Python exception set.
    virtual void run() noexcept = 0;

    // Required. Called instead of run() when the job will never run, with CancelledError (shutdown
    // with cancel_pending) or BrokenPoolError (a worker failed to start). It runs on the thread that
    // called shutdown(), holding whatever GIL that caller holds (the Python package holds the main
    // interpreter's), or on the failed worker's thread holding none: assume neither.
    virtual void abandon(std::exception_ptr reason) noexcept = 0;

    // Optional, for stats() and stack dumps: what the job runs (e.g. "module:function"). Called once,
    // just before run(), on the worker with its GIL held.
    virtual std::string describe() const { return "job"; }
    // Optional: after run(), whether the job failed (counted in stats()).
    virtual bool failed() const noexcept { return false; }
    // Optional: whether the job counts toward PoolOptions::max_tasks_per_worker (a worker's share of
    // jobs before it is recycled). Say false for a job that is not one of the pool's tasks, whose
    // count would recycle workers the host did not mean to: AsgiHandler's event loop (it holds its
    // worker for as long as it serves and recycles it itself, AsgiOptions::max_requests), or a probe
    // a host runs before it knows what the pool will serve. Asked once, before run().
    virtual bool counts_as_task() const noexcept { return true; }

    // Optional second phase, for results that belong to the main interpreter (the Python package
    // settles its concurrent.futures.Future here): if wants_main() (asked after run()) is true, the
    // same worker thread releases its interpreter, attaches the MAIN interpreter (waiting for its
    // GIL) and calls run_in_main(). Without a third phase, the job is then destroyed there.
    virtual bool wants_main() const noexcept { return false; }
    virtual void run_in_main() noexcept {}

    // Optional third phase, after run_in_main() only: if wants_cleanup() (asked with the main GIL
    // held) is true, the worker re-attaches its own interpreter and calls cleanup(), e.g. to free the
    // objects the task made there off the caller's path (the Python package does); the job is then
    // destroyed there.
    virtual bool wants_cleanup() const noexcept { return false; }
    virtual void cleanup() noexcept {}
};

}  // namespace manygil
