// MainCalls: calls into the MAIN interpreter from anywhere else (a worker's task, a C++ thread),
// run by a few "main-side" threads of manygil's own, never by the user's main thread. The public
// entry points are manygil::call_in_main (include/manygil/main_call.hpp) and the Python package's
// manygil.call_in_main (ext/call_in_main.cpp); both post a MainCall here and wait for it.
//
// Threads. A main-side thread is a C++ thread with its own thread state in the main interpreter,
// created once, attached (the main GIL taken) only while it runs calls. Threads start on demand: a
// call posted while no thread is idle starts one more, up to kMaxThreads; beyond that, calls wait in
// a FIFO queue. So there are never more threads than calls that were in flight at once. A thread
// that finishes a call takes the next queued one before it lets the main GIL go (no hand-over of
// the GIL between calls). Idle threads wait as timeout.hpp says (spin briefly, then sleep).
//
// Main busy. All calls share the main interpreter's GIL: pure-Python calls run one at a time, and
// more threads only help calls that release the GIL (NumPy on large arrays, I/O, sleeps). While the
// user's main thread runs Python, a call waits for the main GIL: CPython makes the holder let go
// after its switch interval (sys.getswitchinterval(), 5 ms by default). A main thread blocked in a
// wait that releases the GIL (Future.result(), Lock.acquire(), I/O) does not delay calls at all.
//
// Giving up. A caller whose wait ends first (its timeout, or an interrupt of the task it runs in)
// withdraws its call: one still queued never runs; one already running in main runs to completion
// and its outcome is dropped (Python cannot stop it from outside safely).
//
// Lifetime and ownership. Every Python object a call makes is made and released on its main-side
// thread with the main interpreter attached (run() and release()); what crosses to the caller is
// C++ data (payloads, Values, strings). close() (Runtime::close(), before Python finalises) refuses
// new calls and queued ones (ShutdownError), lets running ones finish, and ends the threads, each
// deleting its thread state under the main GIL: its caller must not hold the main GIL. No thread
// attaches the main interpreter once it is finalising.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>

#include "manygil/timeout.hpp"
#include "wait/wait_estimate.hpp"
#include "wait/wake_signal.hpp"

namespace manygil::detail {

class MainCalls;

// One call into the main interpreter: what the caller posts (a subclass holds the call and its
// outcome, as C++ data) and waits for. Held by shared_ptr by the caller and the queue; destroyed by
// whichever lets go last, on any thread: once release() has run it holds no Python object.
class MainCall {
public:
    virtual ~MainCall() = default;

    // ---- a main-side thread, the main interpreter attached ----
    // Makes the call and stores its outcome in the subclass. Leaves no Python exception set.
    virtual void run() noexcept = 0;
    // After the caller was told the outcome: releases the Python objects run() kept (so freeing
    // them does not delay the caller).
    virtual void release() noexcept {}

    // ---- the caller's thread, holding NO GIL ----
    enum class Outcome {
        Done,         // run() has finished: read the outcome
        TimedOut,     // the timeout passed first
        Interrupted,  // the interruptible call this thread runs was interrupted (timeout.hpp)
        Refused,      // never ran: manygil shut down (refusal() says why)
    };
    // Blocks until the call is done, the timeout passes or the interruptible call this thread runs
    // is interrupted; spins briefly first (timeout.hpp). On TimedOut / Interrupted the call is
    // withdrawn (see the header's comment). Call once.
    Outcome wait(const Timeout& timeout);
    std::exception_ptr refusal() const { return refused_; }

private:
    friend class MainCalls;
    enum class State { Queued, Running, Done, Withdrawn, Refused };
    bool start();                          // Queued -> Running; false if withdrawn
    void finish();                         // Running -> Done, wakes the caller
    void refuse(std::exception_ptr why);   // (not Done) -> Refused, wakes the caller

    std::mutex mu_;
    WakeSignal signal_;
    State state_ = State::Queued;  // (mu_)
    std::exception_ptr refused_;   // set before state_ becomes Refused
};

class MainCalls {
public:
    // Calls that may run at once; more wait in the queue.
    static constexpr std::size_t kMaxThreads = 16;

    static MainCalls& instance();

    // Accepts calls (Runtime's constructor). Calls are refused until then, and after close().
    void open();
    // Refuses new and queued calls (ShutdownError), waits for the running ones and ends the threads.
    // Must not be called holding the main interpreter's GIL (the threads take it to end). Idempotent.
    void close() noexcept;
    // In a fork() child: the threads stayed in the parent. Refuses calls from now on and never
    // waits for them.
    void forget_after_fork() noexcept;

    // Queues `call`, starting a thread for it if none is idle. Throws ShutdownError when closed, or
    // Error when no thread can run it.
    void post(std::shared_ptr<MainCall> call);

    // Main-side threads alive now (tests, diagnostics).
    std::size_t threads() const;
    // True on a main-side thread.
    static bool on_main_side_thread() noexcept;

private:
    void serve(std::size_t index) noexcept;
    // The next call to run, or null when closed; waits for one.
    std::shared_ptr<MainCall> next(std::unique_lock<std::mutex>& lock);

    mutable std::mutex mu_;
    WakeSignal work_;           // a call queued, or closing
    WaitEstimate idle_wait_;    // how long idle threads wait for a call: they spin through short waits
    std::condition_variable exited_;  // a thread ended
    std::deque<std::shared_ptr<MainCall>> queue_;  // (mu_)
    bool open_ = false;          // (mu_)
    std::size_t threads_ = 0;    // (mu_) alive
    std::size_t idle_ = 0;       // (mu_) waiting in next()
    std::size_t started_ = 0;    // (mu_) ever started, for thread names
    std::atomic<bool> forked_{false};
};

}  // namespace manygil::detail
