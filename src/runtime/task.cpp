// manygil::Task (the public handle) and the parts of TaskState that are not on the hot path.
#include "manygil/task.hpp"

#include <algorithm>

#include "manygil/errors.hpp"
#include "manygil/pool.hpp"
#include "runtime/task_state.hpp"
#include "runtime/worker_group.hpp"
#include "wait/spin_wait.hpp"

namespace manygil {

namespace detail {

struct PoolAccess {
    static const std::shared_ptr<WorkerGroup>& group(const Pool& pool) { return pool.group_; }
};

std::shared_ptr<TaskState> new_task_state(const Pool& pool, std::optional<TaskState::Clock::duration> timeout) {
    const std::shared_ptr<WorkerGroup>& group = PoolAccess::group(pool);
    if (!group) throw Error("use of a moved-from manygil::Pool");
    return std::make_shared<TaskState>(group, timeout, group->task_latency());
}

TaskState::Clock::duration TaskState::spin_budget(std::optional<Clock::duration> cap) const noexcept {
    Clock::duration base = detail::spin_budget();
    Clock::duration budget = latency_ ? latency_->spin_for(posted_, base) : base;
    return cap ? std::min(budget, *cap) : budget;
}

bool TaskState::spin_until_delivered(Clock::duration budget) const noexcept {
    return spin_until([&] { return delivered(); }, Clock::now() + budget);
}

bool TaskState::interrupt(const std::string& reason) {
    if (!interrupt_requested_.load()) {
        std::lock_guard lock(reason_mu_);
        if (!interrupt_requested_.load()) {
            interrupt_reason_ = reason;
            interrupt_requested_.store(true);
        }
    }
    bool running = started();
    // Its call may not have started yet: then the task delivers the wish itself (TaskCall).
    if (auto group = group_.lock()) group->interrupt(id_, reason);
    return running;
}

void TaskState::settle(std::optional<Value> value, std::exception_ptr error) noexcept {
    {
        std::lock_guard lock(mu_);
        if (done_.load(std::memory_order_relaxed)) return;  // the first outcome stays
        value_ = std::move(value);
        error_ = std::move(error);
        done_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
}

void TaskState::set_value(Value value) { settle(std::move(value), nullptr); }

void TaskState::set_error(std::exception_ptr error) { settle(std::nullopt, std::move(error)); }

void TaskState::settle_cancelled() noexcept {
    std::exception_ptr error;
    try {
        error = std::make_exception_ptr(CancelledError("the task was cancelled before it started"));
    } catch (...) {
        error = std::current_exception();  // bad_alloc: still an error, and still settled
    }
    settle(std::nullopt, std::move(error));
}

bool TaskState::wait_until(Clock::time_point deadline) const {
    if (done()) return true;
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return done(); });
}

void TaskState::wait() const {
    if (done()) return;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done(); });
}

const Value& TaskState::value() const {
    if (error_) std::rethrow_exception(error_);
    return *value_;
}

}  // namespace detail

detail::TaskState& Task::live() const {
    if (!state_) throw Error("use of an empty manygil::Task");
    return *state_;
}

std::uint64_t Task::id() const { return live().id(); }

bool Task::cancel() { return live().cancel(); }

bool Task::interrupt(const std::string& reason) {
    detail::TaskState& state = live();
    return state.interrupt(reason) && !state.done();  // started, and its outcome not recorded yet
}

bool Task::started() const { return live().started(); }

bool Task::done() const { return live().done(); }

void Task::wait() const { live().wait(); }

std::future_status Task::wait_until(std::chrono::steady_clock::time_point deadline) const {
    return live().wait_until(deadline) ? std::future_status::ready : std::future_status::timeout;
}

const Value& Task::get() const {
    detail::TaskState& state = live();
    state.wait();
    return state.value();
}

}  // namespace manygil
