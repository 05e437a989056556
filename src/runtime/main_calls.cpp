#include "runtime/main_calls.hpp"

#include <Python.h>
#include <pthread.h>

#include <string>
#include <thread>
#include <utility>

#include "manygil/errors.hpp"
#include "manygil/main_call.hpp"
#include "cpython/ownership.hpp"
#include "cpython/private_api.hpp"
#include "runtime/call_target.hpp"

namespace manygil::detail {

namespace {

thread_local bool t_main_side = false;

// How long callers have waited for their calls lately: a stream of short calls is waited for by
// spinning, a slow call by sleeping (wait_estimate.hpp).
WaitEstimate g_round_trips;

}  // namespace

// ---- MainCall ----------------------------------------------------------------------------------------

MainCall::Outcome MainCall::wait(const Timeout& timeout) {
    std::unique_lock lock(mu_);
    bool settled = signal_.wait(lock, timeout, [&] { return state_ == State::Done || state_ == State::Refused; },
                                &g_round_trips);
    if (settled) return state_ == State::Done ? Outcome::Done : Outcome::Refused;
    // Given up. A queued call is withdrawn and never runs; a running one runs to completion, and
    // nobody reads its outcome.
    if (state_ == State::Queued) state_ = State::Withdrawn;
    WaitInterrupt* interrupt = WaitInterrupt::current();
    return interrupt && interrupt->requested() ? Outcome::Interrupted : Outcome::TimedOut;
}

bool MainCall::start() {
    std::lock_guard lock(mu_);
    if (state_ != State::Queued) return false;
    state_ = State::Running;
    return true;
}

void MainCall::finish() {
    {
        std::lock_guard lock(mu_);
        state_ = State::Done;
    }
    signal_.notify_all();  // the caller's thread, spinning or asleep
}

void MainCall::refuse(std::exception_ptr why) {
    {
        std::lock_guard lock(mu_);
        if (state_ == State::Done || state_ == State::Refused) return;
        refused_ = std::move(why);
        state_ = State::Refused;
    }
    signal_.notify_all();
}

// ---- MainCalls ---------------------------------------------------------------------------------------

MainCalls& MainCalls::instance() {
    // Never destroyed: detached threads may still be leaving it while the process exits.
    static MainCalls* calls = new MainCalls();
    return *calls;
}

bool MainCalls::on_main_side_thread() noexcept { return t_main_side; }

void MainCalls::open() {
    std::lock_guard lock(mu_);
    if (!forked_) open_ = true;
}

void MainCalls::forget_after_fork() noexcept {
    // The mutex may have been held by a thread of the parent at the fork: never take it here.
    forked_ = true;
}

std::size_t MainCalls::threads() const {
    std::lock_guard lock(mu_);
    return threads_;
}

void MainCalls::post(std::shared_ptr<MainCall> call) {
    if (forked_) throw ShutdownError("calls into the main interpreter do not survive os.fork()");
    {
        std::lock_guard lock(mu_);
        if (!open_) throw ShutdownError("manygil is shut down: no calls into the main interpreter");
        queue_.push_back(call);
        // One thread per call in flight: start one if the idle ones cannot take them all.
        if (queue_.size() > idle_ && threads_ < kMaxThreads) {
            std::size_t index = started_;
            try {
                std::thread([this, index] { serve(index); }).detach();
                ++threads_;
                ++started_;
            } catch (...) {
                if (threads_ == 0) {  // nobody would ever run it
                    queue_.pop_back();
                    throw Error("cannot start a thread for calls into the main interpreter");
                }
                // The running threads take it once they are free.
            }
        }
    }
    work_.notify_one();
}

std::shared_ptr<MainCall> MainCalls::next(std::unique_lock<std::mutex>& lock) {
    ++idle_;
    work_.wait(lock, [&] { return !queue_.empty() || !open_; }, &idle_wait_);
    --idle_;
    if (queue_.empty()) return nullptr;  // closed (close() refuses what was queued)
    std::shared_ptr<MainCall> call = std::move(queue_.front());
    queue_.pop_front();
    return call;
}

void MainCalls::serve(std::size_t index) noexcept {
    std::string name = "mg-main-" + std::to_string(index);
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    t_main_side = true;
    PyThreadState* tstate = nullptr;  // this thread's own, in the main interpreter; made once
    bool finalizing = false;
    std::unique_lock lock(mu_);
    while (std::shared_ptr<MainCall> call = next(lock)) {
        lock.unlock();
        if (call->start()) {
            // Never attach an interpreter that is finalising (close() comes first, by contract; this
            // is the fence should a host get that wrong): the thread would be stopped inside CPython.
            finalizing = Py_IsFinalizing();
            if (!finalizing && !tstate) tstate = PyThreadState_New(PyInterpreterState_Main());
            if (finalizing || !tstate) {
                call->refuse(std::make_exception_ptr(ShutdownError(
                    finalizing ? "the main interpreter is finalising: the call into it was refused"
                               : "cannot create a thread state in the main interpreter")));
                // A finalising interpreter never comes back: leave (its thread state, if any, is
                // left to it).
                if (finalizing) {
                    call.reset();
                    lock.lock();
                    break;
                }
            } else {
                PyEval_RestoreThread(tstate);
                // Calls queued meanwhile run too before the main GIL is let go: no hand-over between
                // them.
                while (call) {
                    call->run();
                    expect_main_attached("MainCall::run() returns with the main interpreter attached");
                    if (PyErr_Occurred()) PyErr_Clear();
                    call->finish();
                    call->release();  // main's objects, after the caller was told
                    if (PyErr_Occurred()) PyErr_Clear();
                    call.reset();
                    std::lock_guard next_lock(mu_);
                    while (open_ && !queue_.empty() && !call) {
                        call = std::move(queue_.front());
                        queue_.pop_front();
                        if (!call->start()) call.reset();  // withdrawn by its caller
                    }
                }
                PyEval_SaveThread();
            }
        }
        call.reset();
        lock.lock();
    }
    lock.unlock();
    if (tstate && !finalizing && !Py_IsFinalizing()) {
        PyEval_RestoreThread(tstate);
        PyThreadState_Clear(tstate);
        PyThreadState_DeleteCurrent();
    }
    lock.lock();
    --threads_;
    exited_.notify_all();
}

void MainCalls::close() noexcept {
    if (forked_) return;
    std::deque<std::shared_ptr<MainCall>> refused;
    {
        std::lock_guard lock(mu_);
        open_ = false;
        refused.swap(queue_);
    }
    work_.notify_all();
    if (!refused.empty()) {
        auto why = std::make_exception_ptr(
            ShutdownError("manygil is shutting down: the call into the main interpreter was refused"));
        for (auto& call : refused) call->refuse(why);
    }
    refused.clear();  // never ran: they hold no Python object
    if (t_main_side) return;  // a call in main that closes the runtime cannot wait for itself
    std::unique_lock lock(mu_);
    exited_.wait(lock, [&] { return threads_ == 0; });
}

}  // namespace manygil::detail

// ---- the public API (main_call.hpp) -------------------------------------------------------------------

namespace manygil {

namespace {

// A call from C++: the target resolved and called in main, Values in and out.
class ValueCall final : public detail::MainCall {
public:
    ValueCall(std::string target, Args args, Kwargs kwargs)
        : target_(std::move(target)), args_(std::move(args)), kwargs_(std::move(kwargs)) {}

    void run() noexcept override {
        try {
            result_ = detail::call_target(target_, args_, kwargs_);  // releases its objects itself
        } catch (...) {
            error_ = std::current_exception();
        }
    }

    Value take() {
        if (error_) std::rethrow_exception(error_);
        return std::move(result_);
    }

private:
    std::string target_;
    Args args_;
    Kwargs kwargs_;
    Value result_;
    std::exception_ptr error_;
};

}  // namespace

Value call_in_main(std::string_view target, Args args, Kwargs kwargs, Timeout timeout) {
    detail::check_target(target);
    PyThreadState* current = Py_IsInitialized() ? PyThreadState_GetUnchecked() : nullptr;
    if (current && PyThreadState_GetInterpreter(current) == PyInterpreterState_Main()) {
        return detail::call_target(target, args, kwargs);  // main to main: a plain call, right here
    }
    auto call = std::make_shared<ValueCall>(std::string(target), std::move(args), std::move(kwargs));
    detail::MainCalls::instance().post(call);
    // A worker's GIL is let go while it waits: its other threads run, and main's call may need it
    // not at all (Python objects never cross).
    PyThreadState* saved = current ? PyEval_SaveThread() : nullptr;
    detail::MainCall::Outcome outcome = call->wait(timeout);
    if (saved) PyEval_RestoreThread(saved);
    switch (outcome) {
        case detail::MainCall::Outcome::Done: return call->take();
        case detail::MainCall::Outcome::Refused: std::rethrow_exception(call->refusal());
        case detail::MainCall::Outcome::Interrupted:
            throw TimeoutError("call_in_main(" + std::string(target) + "): the call it was made from was interrupted",
                               true);
        case detail::MainCall::Outcome::TimedOut: break;
    }
    throw TimeoutError("call_in_main(" + std::string(target) + "): no result within the timeout", false);
}

}  // namespace manygil
