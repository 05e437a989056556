#include "runtime/worker_group.hpp"

#include <Python.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include <unistd.h>  // environ

#include "manygil/errors.hpp"
#include "cpython/ownership.hpp"
#include "cpython/py_ref.hpp"
#include "runtime/call_target.hpp"
#include "runtime/idle_workers.hpp"
#include "runtime/thread_interpreter.hpp"

namespace manygil::detail {

namespace {

constexpr std::size_t kNotAWorker = static_cast<std::size_t>(-1);
thread_local std::size_t t_worker_index = kNotAWorker;
thread_local const WorkerGroup* t_group = nullptr;  // the group whose job this thread may be running
thread_local const void* t_worker = nullptr;         // the WorkerGroup::Worker this thread is (with t_group)

// The CPUs the process may run on: its main thread's affinity (a worker thread's own may be pinned).
// False if it cannot be read.
bool process_cpu_set(cpu_set_t& set) {
    CPU_ZERO(&set);
    return sched_getaffinity(getpid(), sizeof set, &set) == 0;
}

// The same, as a list of CPU numbers (empty if it cannot be read).
std::vector<int> process_cpus() {
    std::vector<int> cpus;
    cpu_set_t set;
    if (!process_cpu_set(set)) return cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
    return cpus;
}

std::string describe(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown error";
    }
}

// The worker's interpreter attached: its os.environ made the process's environment again. Each
// interpreter's os module copies the C environment once, when it is imported; a parked interpreter
// would otherwise show a new pool's tasks the variables of the day it was created, not those the
// program set since (os.environ changes in any interpreter reach the C environment through putenv).
// Updates os.environ's mapping in place (on POSIX it is posix.environ itself), without putenv.
void refresh_os_environ() noexcept {
    PyRef name(PyUnicode_FromString("os"));
    PyRef os(name ? PyImport_GetModule(name.get()) : nullptr);  // not imported: nothing stale
    PyRef mapping(os ? PyObject_GetAttrString(os.get(), "environ") : nullptr);
    PyRef data(mapping ? PyObject_GetAttrString(mapping.get(), "_data") : nullptr);
    PyRef fresh(data && PyDict_Check(data.get()) ? PyDict_New() : nullptr);
    if (fresh) {
        for (char** entry = environ; *entry; ++entry) {
            const char* eq = std::strchr(*entry, '=');
            if (!eq || eq == *entry) continue;  // as CPython's own copy skips them
            PyRef key(PyBytes_FromStringAndSize(*entry, eq - *entry));
            PyRef value(key ? PyBytes_FromString(eq + 1) : nullptr);
            if (!value || PyDict_SetItem(fresh.get(), key.get(), value.get()) < 0) {
                fresh = PyRef();
                break;
            }
        }
    }
    if (fresh) {
        PyDict_Clear(data.get());
        if (PyDict_Update(data.get(), fresh.get()) < 0) PyErr_Clear();
    }
    if (PyErr_Occurred()) PyErr_Clear();  // the interpreter keeps its old copy
}

void run_initializer(const Initializer& init) {
    if (init.is_source()) exec_source(init.text());
    else invoke_target(init.text(), init.args(), init.kwargs());  // its result is not needed
}

// Worker and watchdog threads alive (detached): Runtime::close() waits for them to return.
std::mutex g_threads_mu;
std::condition_variable g_threads_cv;
std::size_t g_threads = 0;

void thread_started() {
    std::lock_guard lock(g_threads_mu);
    ++g_threads;
}

// The last thing a detached thread does.
void thread_ending() {
    std::unique_lock lock(g_threads_mu);
    --g_threads;
    // Notified once this thread's locals are gone: a waiter then knows it runs no more of our code.
    std::notify_all_at_thread_exit(g_threads_cv, std::move(lock));
}

void report_to_stderr(const StuckWorker& w) {
    char pending[32];
    std::snprintf(pending, sizeof pending, "%.1f", w.interrupt_pending_seconds);
    std::string text = "manygil: " + w.pool + " worker " + std::to_string(w.index) + " (interpreter " +
                       std::to_string(w.interpreter_id) + ") is stuck: " + w.what + " still runs " + pending +
                       " s after an interrupt. A new worker takes its place; this one ends when its call "
                       "returns. Its stack:\n" +
                       (w.stack ? *w.stack : "(unavailable: it runs C code that keeps its GIL)") + "\n";
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
}

}  // namespace

// The body of every worker thread: serves its first group, then, while its interpreter may be
// reused, parks and serves whichever group adopts it. Ends its interpreter itself.
void worker_thread_main(std::shared_ptr<WorkerGroup> group, std::size_t index,
                        std::shared_ptr<WorkerGroup::Worker> worker) noexcept {
    std::optional<ThreadInterpreter> interp;
    IdleWorkers& idle = IdleWorkers::instance();
    bool drained = false;
    while (group) {
        bool park = group->serve(index, interp, std::exchange(worker, nullptr)) && group->options_.reuse_interpreters;
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
    thread_ending();
}

void WorkerGroup::wait_for_worker_threads() {
    if (t_worker_index != kNotAWorker) return;
    std::unique_lock lock(g_threads_mu);
    g_threads_cv.wait(lock, [] { return g_threads == 0; });
}

WorkerGroup::WorkerGroup(Options options) : options_(std::move(options)) {
    for (std::size_t i = 0; i < options_.workers; ++i) slots_.push_back(std::make_shared<Worker>(i, true));
    successors_.resize(options_.workers);
    spawned_ = options_.workers;
}

void WorkerGroup::spawn_worker(std::size_t index, std::shared_ptr<Worker> worker) {
    thread_started();
    try {
        std::thread([group = shared_from_this(), index, worker = std::move(worker)]() mutable {
            worker_thread_main(std::move(group), index, std::move(worker));
        }).detach();
    } catch (...) {
        std::lock_guard lock(g_threads_mu);
        --g_threads;
        throw;
    }
}

std::shared_ptr<WorkerGroup> WorkerGroup::start(Runtime& runtime, Options options) {
    if (options.workers == 0) throw InvalidArgument("a pool needs at least one worker");
    if (options.replace_stuck_after && options.replace_stuck_after->count() <= 0) {
        throw InvalidArgument("replace_stuck_after must be > 0");
    }
    if (options.initializer && !options.initializer->is_source()) check_target(options.initializer->text());
    auto group = std::make_shared<WorkerGroup>(std::move(options));
    if (group->options_.pin_workers) group->cpus_ = process_cpus();
    std::size_t n = group->options_.workers;
    group->ids_.assign(n, -1);
    // Each worker holds the group until it is done with it: the last owner may then be a worker (a
    // task that dropped its own pool), and the destructor copes with that.
    std::size_t adopted = 0;
    if (group->options_.reuse_interpreters) adopted = IdleWorkers::instance().adopt(group, 0, n).size();
    for (std::size_t i = adopted; i < n; ++i) {
        try {
            group->spawn_worker(i);
        } catch (...) {
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
    if (auto after = group->options_.replace_stuck_after) {
        thread_started();
        try {
            std::thread(watch_for_stuck_workers, std::weak_ptr<WorkerGroup>(group), *after).detach();
        } catch (...) {
            {
                std::lock_guard lock(g_threads_mu);
                --g_threads;
            }
            group->shutdown(true, true);
            throw;
        }
    }
    return group;
}

WorkerGroup::~WorkerGroup() {
    // Every worker has left serve() by now (each held a reference): nothing to wait for.
    close();
}

void WorkerGroup::place_on_cpu(std::size_t index) const noexcept {
    // Best effort: a CPU taken away since (cpuset changes) makes the call fail, and the thread runs
    // wherever the kernel puts it, as an unpinned one does.
    cpu_set_t set;
    CPU_ZERO(&set);
    if (!cpus_.empty()) {
        CPU_SET(cpus_[index % cpus_.size()], &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
        return;
    }
    // Not pinning: a thread inherits its creator's CPUs, and a pinned worker may have created this
    // one (a successor) or run it before (a parked thread reused): give it the process's.
    cpu_set_t process;
    if (!process_cpu_set(process)) return;
    if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) == 0 && CPU_EQUAL(&set, &process)) return;
    pthread_setaffinity_np(pthread_self(), sizeof process, &process);
}

bool WorkerGroup::serve(std::size_t index, std::optional<ThreadInterpreter>& interp, std::shared_ptr<Worker> self) noexcept {
    std::string thread_name = "mg-" + options_.name.substr(0, 8) + "-" + std::to_string(index);
    pthread_setname_np(pthread_self(), thread_name.substr(0, 15).c_str());
    place_on_cpu(index);
    t_worker_index = index;
    t_group = this;
    std::size_t task_limit = this->task_limit();
    if (!self) {
        std::lock_guard lock(mu_);
        self = slots_[index];
    }
    t_worker = self.get();

    try {
        if (interp) {
            interp->attach();  // a parked interpreter, taken over from its last group
            // An interrupt that reached its last call as it ended must not hit this group's first.
            PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), nullptr);
            refresh_os_environ();
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
        std::unique_ptr<Job> first_job;  // a successor's own job, which no worker will run now
        {
            std::lock_guard lock(mu_);
            first_job = std::move(self->first_job);
        }
        if (first_job) first_job->abandon(broken());
        t_group = nullptr;
        t_worker = nullptr;
        return false;
    }
    WorkerMonitor& monitor = self->monitor;
    WorkerActivity& activity = self->activity;
    JobNote& note = self->note;
    note.start(options_.name, index);
    monitor.start(interp->tstate(), interp->id());
    WorkerMonitor::set_current(&monitor);
    interp->detach();
    {
        std::lock_guard lock(mu_);
        self->interpreter_id = interp->id();
        if (slots_[index] == self) ids_[index] = interp->id();  // a successor's, once it takes the slot
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
    std::size_t jobs = 0;
    while (auto job = next_job(std::exchange(first, false), *self)) {
        interp->attach();
        std::string what = job->describe();
        const bool counted = job->counts_as_task();
        note.job_started(what);
        activity.job_started(std::move(what));
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
        note.job_finished();
        // Its share done: a successor starts now, while this one serves on until it is ready.
        if (task_limit && counted && ++jobs == task_limit && !start_successor(*self)) jobs = 0;
    }
    note.stop();
    t_worker = nullptr;
    WorkerMonitor::set_current(nullptr);
    expect_detached("a worker stops its monitor holding no GIL (the monitor needs the worker's)");
    monitor.stop();  // detached: the monitor drops its thread state in this interpreter first
    t_group = nullptr;
    {
        std::lock_guard lock(mu_);
        if (self->retired) {  // stuck or recycled: it leaves, and its interpreter ends (no parking)
            std::erase(stuck_, self);
            return false;
        }
    }
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
    return exited_cv_.wait_for(lock, timeout, [&] { return exited_.load() == spawned_.load(); });
}

std::vector<std::shared_ptr<WorkerGroup::Worker>> WorkerGroup::all_workers() const {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<Worker>> all = slots_;
    all.insert(all.end(), stuck_.begin(), stuck_.end());
    return all;
}

PoolStats WorkerGroup::stats() const {
    std::vector<std::shared_ptr<Worker>> slots, stuck;
    PoolStats s;
    {
        std::lock_guard lock(mu_);
        slots = slots_;
        stuck = stuck_;
        s.queued = queue_.size();
        s.replaced = replaced_;
        s.recycled = recycled_;
    }
    // Each worker's numbers under its own locks, never the group's: a stats() call never waits for a
    // worker that is posting or finishing.
    auto snapshot = [](const Worker& w) {
        WorkerStats out = w.activity.snapshot(w.index);
        w.monitor.add_interrupt_state(out);
        return out;
    };
    for (const auto& w : slots) s.workers.push_back(snapshot(*w));
    for (const auto& w : stuck) s.stuck.push_back(snapshot(*w));
    return s;
}

std::vector<std::optional<std::string>> WorkerGroup::dump_stacks(std::chrono::steady_clock::duration timeout) const {
    std::vector<std::shared_ptr<Worker>> slots;
    {
        std::lock_guard lock(mu_);
        slots = slots_;
    }
    std::vector<std::optional<std::string>> out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (const auto& w : slots) {
        auto left = std::max(deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero());
        out.push_back(w->monitor.stack(left));
    }
    return out;
}

bool WorkerGroup::interrupt(std::uint64_t task, const std::string& reason) {
    for (const auto& w : all_workers()) {
        if (w->monitor.interrupt(task, reason)) return true;  // one call runs it at most
    }
    return false;
}

std::size_t WorkerGroup::interrupt_all(const std::string& reason, bool later_calls_too) {
    std::size_t n = 0;
    for (const auto& w : all_workers()) n += w->monitor.interrupt_current(reason, later_calls_too) ? 1 : 0;
    return n;
}

// ---- stuck workers ------------------------------------------------------------------------------------

void WorkerGroup::watch_for_stuck_workers(std::weak_ptr<WorkerGroup> weak, std::chrono::steady_clock::duration after) {
    pthread_setname_np(pthread_self(), "mg-watchdog");
    using namespace std::chrono_literals;
    const auto period = std::clamp<std::chrono::steady_clock::duration>(after / 4, 10ms, 100ms);
    while (auto group = weak.lock()) {
        std::vector<std::shared_ptr<Worker>> slots;
        {
            std::unique_lock lock(group->mu_);
            // Closed with nothing queued: no call needs a new worker any more. Broken: none starts.
            auto done = [&] { return (group->closed_ && group->queue_.empty()) || group->broken_; };
            if (group->watch_cv_.wait_for(lock, period, done)) break;
            slots = group->slots_;
        }
        for (const auto& w : slots) {
            auto pending = w->monitor.interrupt_pending();
            if (!pending || *pending < after) continue;
            StuckWorker report;
            report.pool = group->options_.name;
            report.index = w->index;
            WorkerStats now = w->activity.snapshot(w->index);
            w->monitor.add_interrupt_state(now);
            report.interpreter_id = now.interpreter_id;
            report.what = now.current ? now.current->what : "?";
            report.interrupt_pending_seconds = std::chrono::duration<double>(*pending).count();
            // Only a short wait: a worker that keeps its GIL in C would hold its monitor (and us) up.
            report.stack = w->monitor.stack(200ms);
            if (!group->replace(w, report)) continue;
            try {
                if (group->options_.on_stuck) group->options_.on_stuck(report);
                else report_to_stderr(report);
            } catch (...) {
                // A reporting callback must not end the watchdog (its contract says it must not throw).
            }
        }
        group.reset();  // between checks, only the weak pointer: a dropped pool is not kept alive
    }
    thread_ending();
}

bool WorkerGroup::replace(const std::shared_ptr<Worker>& worker, StuckWorker& report) {
    std::size_t index = worker->index;
    {
        std::lock_guard lock(mu_);
        if (slots_[index] != worker || worker->retired || broken_ || (closed_ && queue_.empty())) return false;
        worker->retired = true;
        stuck_.push_back(worker);
        ++replaced_;
        // Its successor (recycling) is starting already: it takes the slot once ready.
        if (successors_[index]) return true;
        slots_[index] = std::make_shared<Worker>(index, false);
        ids_[index] = -1;
        ++spawned_;
    }
    work_signal_.notify_all();  // in case it had just returned to wait for work: it leaves now
    try {
        spawn_worker(index);
    } catch (...) {
        // No thread for the new worker: its slot stays without one, counted as gone, and the group
        // goes on with one worker fewer (the next stuck one may get a thread again).
        mark_exited();
        report.what += " (no thread could be started for its replacement: " + describe(std::current_exception()) + ")";
    }
    return true;
}

// ---- recycling ----------------------------------------------------------------------------------------

std::size_t WorkerGroup::task_limit() {
    if (!options_.max_tasks_per_worker) return 0;
    if (!options_.max_tasks_jitter) return options_.max_tasks_per_worker;
    std::lock_guard lock(mu_);
    return options_.max_tasks_per_worker + std::uniform_int_distribution<std::size_t>(0, options_.max_tasks_jitter)(rng_);
}

bool WorkerGroup::start_successor(const Worker& self, std::unique_ptr<Job>* first_job) {
    std::shared_ptr<Worker> successor;
    {
        std::lock_guard lock(mu_);
        // Nothing left to serve, or its slot was given away (stuck, replaced meanwhile).
        if (closed_ || broken_ || self.retired || slots_[self.index].get() != &self || successors_[self.index]) {
            return false;
        }
        successor = std::make_shared<Worker>(self.index, false);
        if (first_job) successor->first_job = std::move(*first_job);  // before its thread can look
        successors_[self.index] = successor;
        ++spawned_;
    }
    try {
        spawn_worker(self.index, successor);
    } catch (...) {
        {
            std::lock_guard lock(mu_);
            successors_[self.index] = nullptr;
            if (first_job) *first_job = std::move(successor->first_job);  // back to the caller
        }
        mark_exited();
        return false;  // it serves on, and tries again after another share
    }
    return true;
}

std::unique_ptr<Job> WorkerGroup::next_job(bool first, const Worker& self) {
    std::unique_lock lock(mu_);
    if (!first) self.predecessor.reset();  // only the job a successor takes first may give its slot back
    if (first && successors_[self.index].get() == &self) {
        // A successor is ready: it takes the slot, and the worker it succeeds leaves after the job
        // in hand (or at once, if it waits for work).
        std::shared_ptr<Worker> old = std::exchange(slots_[self.index], std::move(successors_[self.index]));
        if (!old->retired) ++recycled_;  // (else it was found stuck meanwhile, and counted as replaced)
        old->retired = true;
        slots_[self.index]->predecessor = old;
        ids_[self.index] = self.interpreter_id;
        work_signal_.notify_all();
        // The job it was started for (start_current_successor) comes before the queue's.
        if (auto job = std::move(slots_[self.index]->first_job)) return job;
    }
    if (first && self.initial) {
        // The worker counts as ready in the same critical section in which it takes its first task:
        // once wait_ready() returns, each worker has taken a task or found the queue empty, so a
        // shutdown(cancel_pending) that follows cancels only what no worker could have started.
        // (Replacements and successors come later, into a group that was ready.)
        ++ready_;
        ready_cv_.notify_all();
    }
    // A retired worker leaves after the job it was stuck in.
    // (A watchdog that saw its call running just before it returned may retire it while it waits.)
    work_signal_.wait(lock, [&] { return !queue_.empty() || closed_ || broken_ || self.retired; }, &idle_wait_);
    if (broken_ || self.retired || queue_.empty()) {  // closed and drained, broken, or retired
        self.leaving = true;
        return nullptr;
    }
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
    watch_cv_.notify_all();
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
    watch_cv_.notify_all();
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
    exited_cv_.wait(lock, [&] { return exited_.load() == spawned_.load(); });
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

bool WorkerGroup::on_worker_thread() const noexcept { return t_group == this; }

void WorkerGroup::wait_current_replaced() noexcept {
    if (!t_group || !t_worker) return;
    auto* group = const_cast<WorkerGroup*>(t_group);
    const auto& self = *static_cast<const Worker*>(t_worker);
    std::unique_lock lock(group->mu_);
    group->work_signal_.wait(lock, [&] {
        return self.retired || group->closed_ || group->broken_ || !group->successors_[self.index];
    });
}

bool WorkerGroup::return_slot_to_predecessor() noexcept {
    if (!t_group || !t_worker) return false;
    auto* group = const_cast<WorkerGroup*>(t_group);
    const auto& self = *static_cast<const Worker*>(t_worker);
    {
        std::lock_guard lock(group->mu_);
        std::shared_ptr<Worker>& slot = group->slots_[self.index];
        std::shared_ptr<Worker> old = slot.get() == &self ? self.predecessor.lock() : nullptr;
        // A stuck predecessor (in stuck_) was retired for good: its slot must keep a live worker.
        if (!old || !old->retired || old->leaving || group->closed_ || group->broken_ ||
            std::find(group->stuck_.begin(), group->stuck_.end(), old) != group->stuck_.end()) {
            return false;
        }
        std::shared_ptr<Worker> successor = std::exchange(slot, old);
        successor->retired = true;
        successor->predecessor.reset();
        old->retired = false;
        group->ids_[self.index] = old->interpreter_id;
        --group->recycled_;
    }
    group->work_signal_.notify_all();  // this worker leaves after its job
    return true;
}

bool WorkerGroup::start_current_successor(std::unique_ptr<Job>& first_job) noexcept {
    if (!t_group || !t_worker) return false;
    // The group is only const in t_group so that observers cannot change it; the worker's own thread
    // may (as serve() does when its share of jobs is done).
    auto* group = const_cast<WorkerGroup*>(t_group);
    try {
        return group->start_successor(*static_cast<const Worker*>(t_worker), &first_job);
    } catch (...) {  // (make_shared: out of memory) nothing started
        return false;
    }
}

}  // namespace manygil::detail
