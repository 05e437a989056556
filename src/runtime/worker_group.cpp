#include "runtime/worker_group.hpp"

#include <Python.h>
#include <pthread.h>

#include <utility>

#include "manygil/errors.hpp"
#include "cpython/ownership.hpp"
#include "cpython/py_ref.hpp"
#include "runtime/call_target.hpp"
#include "runtime/exec_source.hpp"
#include "runtime/idle_workers.hpp"
#include "runtime/thread_interpreter.hpp"

namespace manygil::detail {

namespace {

constexpr std::size_t kNotAWorker = static_cast<std::size_t>(-1);
thread_local std::size_t t_worker_index = kNotAWorker;

std::string describe(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown error";
    }
}

void run_initializer(const Initializer& init) {
    if (init.is_source()) exec_source(init.text());
    else invoke_target(init.text(), init.args(), init.kwargs());  // its result is not needed
}

// Worker threads alive (detached): Runtime::close() waits for them to return.
std::mutex g_threads_mu;
std::condition_variable g_threads_cv;
std::size_t g_threads = 0;

}  // namespace

// The body of every worker thread: serves its first group, then, while its interpreter may be
// reused, parks and serves whichever group adopts it. Ends its interpreter itself.
void worker_thread_main(std::shared_ptr<WorkerGroup> group, std::size_t index) noexcept {
    std::optional<ThreadInterpreter> interp;
    IdleWorkers& idle = IdleWorkers::instance();
    bool drained = false;
    while (group) {
        bool park = group->serve(index, interp) && group->options_.reuse_interpreters;
        std::shared_ptr<IdleWorkers::Slot> slot = park ? idle.offer() : nullptr;
        if (!slot && interp) {
            interp->attach();
            interp->end();
            interp.reset();
        }
        // Counted as gone only now: its interpreter is ended, or parked where drain() will find it.
        group->mark_exited();
        group.reset();
        if (!slot) break;
        IdleWorkers::Assignment next = idle.wait(slot);
        group = std::move(next.group);
        index = next.index;
        drained = !group;
    }
    if (interp) {  // told to end while parked
        interp->attach();
        interp->end();
        interp.reset();
    }
    if (drained) idle.ended();
    t_worker_index = kNotAWorker;
    std::unique_lock lock(g_threads_mu);
    --g_threads;
    // Notified once this thread's locals are gone: a waiter then knows it runs no more of our code.
    std::notify_all_at_thread_exit(g_threads_cv, std::move(lock));
}

void WorkerGroup::wait_for_worker_threads() {
    if (t_worker_index != kNotAWorker) return;
    std::unique_lock lock(g_threads_mu);
    g_threads_cv.wait(lock, [] { return g_threads == 0; });
}

WorkerGroup::WorkerGroup(Options options) : options_(std::move(options)) {
    for (std::size_t i = 0; i < options_.workers; ++i) {
        monitors_.push_back(std::make_unique<WorkerMonitor>());
        activity_.push_back(std::make_unique<WorkerActivity>());
    }
}

std::shared_ptr<WorkerGroup> WorkerGroup::start(Runtime& runtime, Options options) {
    if (options.workers == 0) throw InvalidArgument("a pool needs at least one worker");
    if (options.initializer && !options.initializer->is_source()) check_target(options.initializer->text());
    auto group = std::make_shared<WorkerGroup>(std::move(options));
    std::size_t n = group->options_.workers;
    group->ids_.assign(n, -1);
    group->thread_ids_.reserve(n);
    // Each worker holds the group until it is done with it: the last owner may then be a worker (a
    // task that dropped its own pool), and the destructor copes with that.
    if (group->options_.reuse_interpreters) group->thread_ids_ = IdleWorkers::instance().adopt(group, 0, n);
    for (std::size_t i = group->thread_ids_.size(); i < n; ++i) {
        {
            std::lock_guard lock(g_threads_mu);
            ++g_threads;
        }
        try {
            std::thread thread([group, i] { worker_thread_main(group, i); });
            group->thread_ids_.push_back(thread.get_id());
            thread.detach();
        } catch (...) {
            {
                std::lock_guard lock(g_threads_mu);
                --g_threads;
            }
            // The workers started so far must not wait for the ones that never will.
            group->break_group(i, std::current_exception());
            for (std::size_t j = i; j < n; ++j) group->mark_exited();
            group->shutdown(true, true);
            throw;
        }
    }
    try {
        runtime.adopt(group);  // from now on Runtime::close() shuts it down; throws if already closed
    } catch (...) {
        group->shutdown(true, true);
        throw;
    }
    return group;
}

WorkerGroup::~WorkerGroup() {
    // Every worker has left serve() by now (each held a reference): nothing to wait for.
    close();
}

bool WorkerGroup::serve(std::size_t index, std::optional<ThreadInterpreter>& interp) noexcept {
    std::string thread_name = "mg-" + options_.name.substr(0, 8) + "-" + std::to_string(index);
    pthread_setname_np(pthread_self(), thread_name.substr(0, 15).c_str());
    t_worker_index = index;

    try {
        if (interp) {
            interp->attach();  // a parked interpreter, taken over from its last group
            // An interrupt that reached its last call as it ended must not hit this group's first.
            PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), nullptr);
        } else {
            interp.emplace();  // attached from here on
            WorkerMonitor::prepare_interpreter();
        }
        if (options_.initializer) run_initializer(*options_.initializer);
    } catch (...) {
        auto cause = std::current_exception();
        if (interp) {
            interp->end();  // a failed start is not reused
            interp.reset();
        }
        break_group(index, cause);
        return false;
    }
    WorkerMonitor& monitor = *monitors_[index];
    WorkerActivity& activity = *activity_[index];
    monitor.start(interp->tstate(), interp->id());
    WorkerMonitor::set_current(&monitor);
    interp->detach();
    {
        std::lock_guard lock(mu_);
        ids_[index] = interp->id();
    }

    // Each job runs with the worker's interpreter attached; one that wants the main interpreter is
    // finished with it attached (settling a Future is a main-interpreter call), and one that wants a
    // cleanup goes back to the worker to release what it made there.
    //
    // Jobs are destroyed where they ran last: whatever Python objects a job still holds belong to
    // the interpreter it ran in last (the worker's for run() and cleanup(), main's for run_in_main()),
    // and an object may only be released with its own interpreter attached. The checks below hold
    // each job to returning with the interpreter it was given still attached.
    PyInterpreterState* worker_interp = PyThreadState_GetInterpreter(interp->tstate());
    bool first = true;
    while (auto job = next_job(std::exchange(first, false))) {
        interp->attach();
        activity.job_started(job->describe());
        job->run();
        expect_attached(worker_interp, "Job::run() returns with its worker's interpreter attached");
        activity.job_finished(job->failed());
        if (PyErr_Occurred()) PyErr_Clear();  // a misbehaving custom job must not poison the next one
        if (job->wants_main()) {
            interp->detach();
            interp->attach_main();
            job->run_in_main();
            expect_main_attached("Job::run_in_main() returns with the main interpreter attached");
            if (PyErr_Occurred()) PyErr_Clear();
            if (job->wants_cleanup()) {
                interp->detach_main();
                interp->attach();
                job->cleanup();
                expect_attached(worker_interp, "Job::cleanup() returns with its worker's interpreter attached");
                job.reset();  // in the worker: where it ran last
                if (PyErr_Occurred()) PyErr_Clear();
                interp->detach();
            } else {
                job.reset();  // in main: where it ran last
                if (PyErr_Occurred()) PyErr_Clear();
                interp->detach_main();
            }
        } else {
            job.reset();  // in the worker: where it ran
            interp->detach();
        }
    }
    WorkerMonitor::set_current(nullptr);
    expect_detached("a worker stops its monitor holding no GIL (the monitor needs the worker's)");
    monitor.stop();  // detached: the monitor drops its thread state in this interpreter first
    if (!options_.reuse_interpreters || broken()) return false;
    interp->attach();
    bool fit = may_park(*interp);
    interp->detach();
    return fit;
}

bool WorkerGroup::may_park(ThreadInterpreter& interp) const noexcept {
    // Another thread state means a thread the tasks started is still alive (or a foreign one
    // attached): ending the interpreter stops such threads (interpreter_threads.hpp); a new pool
    // must not inherit them.
    PyInterpreterState* state = PyThreadState_GetInterpreter(interp.tstate());
    PyThreadState* head = PyInterpreterState_ThreadHead(state);
    if (head != interp.tstate() || PyThreadState_Next(head) != nullptr) return false;
    // atexit callbacks a task registered run when the interpreter ends: at its pool's shutdown, as
    // in a process pool's worker, not at a later pool's or at process exit.
    PyRef name(PyUnicode_FromString("atexit"));
    PyRef atexit(name ? PyImport_GetModule(name.get()) : nullptr);
    PyRef count(atexit ? PyObject_CallMethod(atexit.get(), "_ncallbacks", nullptr) : nullptr);
    bool callbacks = count && PyLong_Check(count.get()) && PyLong_AsLong(count.get()) != 0;
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return false;
    }
    return !callbacks;
}

void WorkerGroup::mark_exited() {
    {
        std::lock_guard lock(mu_);
        ++exited_;
    }
    exited_cv_.notify_all();
}

bool WorkerGroup::wait_finished(std::chrono::steady_clock::duration timeout) {
    std::unique_lock lock(mu_);
    return exited_cv_.wait_for(lock, timeout, [&] { return exited_.load() == options_.workers; });
}

PoolStats WorkerGroup::stats() const {
    PoolStats s;
    for (std::size_t i = 0; i < monitors_.size(); ++i) {
        WorkerStats w = activity_[i]->snapshot(i);
        monitors_[i]->add_interrupt_state(w);
        s.workers.push_back(std::move(w));
    }
    std::lock_guard lock(mu_);
    s.queued = queue_.size();
    return s;
}

std::vector<std::optional<std::string>> WorkerGroup::dump_stacks(std::chrono::steady_clock::duration timeout) const {
    std::vector<std::optional<std::string>> out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (const auto& m : monitors_) {
        auto left = std::max(deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero());
        out.push_back(m->stack(left));
    }
    return out;
}

bool WorkerGroup::interrupt(std::uint64_t task, const std::string& reason) {
    for (const auto& m : monitors_) {
        if (m->interrupt(task, reason)) return true;  // one call runs it at most
    }
    return false;
}

std::size_t WorkerGroup::interrupt_all(const std::string& reason, bool later_calls_too) {
    std::size_t n = 0;
    for (const auto& m : monitors_) n += m->interrupt_current(reason, later_calls_too) ? 1 : 0;
    return n;
}

std::unique_ptr<Job> WorkerGroup::next_job(bool first) {
    std::unique_lock lock(mu_);
    if (first) {
        // The worker counts as ready in the same critical section in which it takes its first task:
        // once wait_ready() returns, each worker has taken a task or found the queue empty, so a
        // shutdown(cancel_pending) that follows cancels only what no worker could have started.
        ++ready_;
        ready_cv_.notify_all();
    }
    work_signal_.wait(lock, [&] { return !queue_.empty() || closed_ || broken_; }, &idle_wait_);
    if (broken_ || queue_.empty()) return nullptr;  // closed and drained, or broken
    auto job = std::move(queue_.front());
    queue_.pop_front();
    return job;
}

void WorkerGroup::break_group(std::size_t index, std::exception_ptr cause) {
    std::deque<std::unique_ptr<Job>> pending;
    std::exception_ptr broken;
    {
        std::lock_guard lock(mu_);
        if (!broken_) {
            std::string what = options_.name + " is broken: worker " + std::to_string(index) +
                               " failed to start: " + describe(cause);
            broken_ = std::make_exception_ptr(BrokenPoolError(what, cause));
        }
        broken = broken_;
        pending.swap(queue_);
    }
    work_signal_.notify_all();
    ready_cv_.notify_all();
    for (auto& job : pending) job->abandon(broken);
}

void WorkerGroup::post(std::unique_ptr<Job> job) {
    {
        std::lock_guard lock(mu_);
        if (broken_) std::rethrow_exception(broken_);
        if (closed_) throw ShutdownError("cannot submit to a " + options_.name + " after shutdown");
        queue_.push_back(std::move(job));
    }
    work_signal_.notify_one();
}

void WorkerGroup::shutdown(bool wait, bool cancel_pending) {
    if (wait && on_worker_thread()) {
        throw Error("shutdown(wait=true) called from one of the " + options_.name +
                    "'s own workers would wait for itself");
    }
    std::deque<std::unique_ptr<Job>> cancelled;
    {
        std::unique_lock lock(mu_);
        // Tasks submitted before shutdown() are not cancelled merely because the workers were still
        // creating their interpreters: a caller who waits anyway first lets each take its first task.
        if (wait && cancel_pending) ready_cv_.wait(lock, [&] { return ready_ == options_.workers || broken_; });
        closed_ = true;
        if (cancel_pending) cancelled.swap(queue_);
    }
    work_signal_.notify_all();
    if (!cancelled.empty()) {
        auto reason = std::make_exception_ptr(CancelledError("cancelled by shutdown before it started"));
        for (auto& job : cancelled) job->abandon(reason);
    }
    if (wait) join();
}

void WorkerGroup::close() noexcept {
    try {
        shutdown(!on_worker_thread(), false);
    } catch (...) {
        // Only the wait-for-itself refusal throws, and on_worker_thread() rules it out.
    }
}

void WorkerGroup::join() {
    std::unique_lock lock(mu_);
    exited_cv_.wait(lock, [&] { return exited_.load() == options_.workers; });
}

void WorkerGroup::wait_ready() {
    std::unique_lock lock(mu_);
    ready_cv_.wait(lock, [&] { return ready_ == options_.workers || broken_; });
    if (broken_) std::rethrow_exception(broken_);
}

std::vector<std::int64_t> WorkerGroup::interpreter_ids() const {
    std::lock_guard lock(mu_);
    return ids_;
}

bool WorkerGroup::closed() const {
    std::lock_guard lock(mu_);
    return closed_;
}

std::exception_ptr WorkerGroup::broken() const {
    std::lock_guard lock(mu_);
    return broken_;
}

std::optional<std::size_t> WorkerGroup::current_worker_index() noexcept {
    if (t_worker_index == kNotAWorker) return std::nullopt;
    return t_worker_index;
}

bool WorkerGroup::on_worker_thread() const noexcept {
    auto self = std::this_thread::get_id();
    for (const auto& id : thread_ids_) {
        if (id == self) return true;
    }
    return false;
}

}  // namespace manygil::detail
