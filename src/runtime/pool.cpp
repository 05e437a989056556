#include "manygil/pool.hpp"

#include <sched.h>

#include <thread>

#include "manygil/errors.hpp"
#include "runtime/idle_workers.hpp"
#include "runtime/main_calls.hpp"
#include "runtime/task_jobs.hpp"
#include "runtime/task_state.hpp"
#include "runtime/worker_group.hpp"

namespace manygil {

Initializer Initializer::source(std::string code) {
    Initializer init;
    init.is_source_ = true;
    init.text_ = std::move(code);
    return init;
}

Initializer Initializer::call(std::string target, Args args, Kwargs kwargs) {
    Initializer init;
    init.is_source_ = false;
    init.text_ = std::move(target);
    init.args_ = std::move(args);
    init.kwargs_ = std::move(kwargs);
    return init;
}

namespace {
detail::WorkerGroup& live(const std::shared_ptr<detail::WorkerGroup>& group) {
    if (!group) throw Error("use of a moved-from manygil::Pool");
    return *group;
}
}  // namespace

Pool::Pool(Runtime& runtime, PoolOptions options)
    : group_(detail::WorkerGroup::start(
          runtime, {.workers = options.workers ? options.workers : default_workers(),
                    .initializer = std::move(options.initializer),
                    .name = std::move(options.name),
                    .reuse_interpreters = options.reuse_interpreters,
                    .replace_stuck_after = options.replace_stuck_after,
                    .on_stuck = std::move(options.on_stuck),
                    .max_tasks_per_worker = options.max_tasks_per_worker,
                    .max_tasks_jitter = options.max_tasks_jitter,
                    .pin_workers = options.pin_workers})) {}

Pool::~Pool() {
    if (group_) group_->close();
}

Pool::Pool(Pool&&) noexcept = default;
Pool& Pool::operator=(Pool&& other) noexcept {
    if (this != &other) {
        if (group_) group_->close();
        group_ = std::move(other.group_);
    }
    return *this;
}

Task Pool::submit(std::string_view target, Args args, Kwargs kwargs, TaskOptions options) {
    std::optional<detail::TaskState::Clock::duration> timeout;
    if (options.timeout) {
        if (!(options.timeout->count() > 0)) throw InvalidArgument("Pool::submit: a task's timeout must be > 0");
        timeout = std::chrono::duration_cast<detail::TaskState::Clock::duration>(*options.timeout);
    }
    auto task = detail::new_task_state(*this, timeout);
    live(group_).post(detail::make_call_task(target, std::move(args), std::move(kwargs), task));
    return Task(std::move(task));
}

Task Pool::submit_exec(std::string_view source) {
    auto task = detail::new_task_state(*this, std::nullopt);
    live(group_).post(detail::make_exec_task(source, task));
    return Task(std::move(task));
}

void Pool::post(std::unique_ptr<Job> job) {
    if (!job) throw InvalidArgument("Pool::post: null job");
    live(group_).post(std::move(job));
}

void Pool::shutdown(bool wait, bool cancel_pending) { live(group_).shutdown(wait, cancel_pending); }

void Pool::wait_ready() { live(group_).wait_ready(); }

std::optional<std::string> Pool::broken() const {
    std::exception_ptr e = live(group_).broken();
    if (!e) return std::nullopt;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return std::string(ex.what());
    }
}

std::size_t Pool::size() const noexcept { return group_ ? group_->size() : 0; }

bool Pool::finished() const noexcept { return !group_ || group_->finished(); }

std::vector<std::int64_t> Pool::interpreter_ids() const { return live(group_).interpreter_ids(); }

PoolStats Pool::stats() const { return live(group_).stats(); }

bool Pool::wait_finished(std::chrono::milliseconds timeout) { return live(group_).wait_finished(timeout); }

bool Pool::interrupt(std::uint64_t task, const std::string& reason) { return live(group_).interrupt(task, reason); }

std::size_t Pool::interrupt_running(const std::string& reason, bool later_calls_too) {
    return live(group_).interrupt_all(reason, later_calls_too);
}

std::function<bool(const std::string&)> Pool::interrupter(std::uint64_t task) const {
    std::weak_ptr<detail::WorkerGroup> group = group_;
    return [group, task](const std::string& reason) {
        auto g = group.lock();
        return g && g->interrupt(task, reason);
    };
}

std::vector<std::optional<std::string>> Pool::dump_stacks(std::chrono::milliseconds timeout) const {
    return live(group_).dump_stacks(timeout);
}

std::size_t Pool::default_workers() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return static_cast<std::size_t>(n);
    }
    unsigned n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

std::optional<std::size_t> Pool::current_worker_index() noexcept { return detail::WorkerGroup::current_worker_index(); }

void Pool::end_idle_interpreters() { detail::IdleWorkers::instance().drain(); }

void Pool::resume_idle_interpreters() { detail::IdleWorkers::instance().resume(); }

std::size_t Pool::idle_interpreters() { return detail::IdleWorkers::instance().parked(); }

void Pool::forget_idle_interpreters_after_fork() noexcept {
    detail::IdleWorkers::instance().forget_after_fork();
    detail::IdleWorkers::instance().resume();
    detail::MainCalls::instance().forget_after_fork();  // its threads stayed in the parent too
}

}  // namespace manygil
