#include "runtime/task_jobs.hpp"

#include <string>

#include "runtime/call_target.hpp"
#include "runtime/promise_job.hpp"
#include "runtime/task_state.hpp"

namespace manygil::detail {

namespace {

// A job whose outcome goes to its TaskState: run() only if the task was not cancelled first.
template <class Fn>
class TaskJob final : public Job {
public:
    TaskJob(std::shared_ptr<TaskState> task, Fn fn, std::string what)
        : task_(std::move(task)), fn_(std::move(fn)), what_(std::move(what)) {}

    void run() noexcept override {
        if (!task_->start()) return;  // cancelled while queued: cancel() settled it
        try {
            task_->set_value(fn_(*task_));
        } catch (...) {
            failed_ = true;
            task_->set_error(std::current_exception());
        }
    }
    void abandon(std::exception_ptr reason) noexcept override {
        if (task_->abandon()) task_->set_error(std::move(reason));  // else cancelled first, and settled
    }
    std::string describe() const override { return what_; }
    bool failed() const noexcept override { return failed_; }

private:
    std::shared_ptr<TaskState> task_;
    Fn fn_;
    std::string what_;
    bool failed_ = false;
};

template <class Fn>
std::unique_ptr<Job> make_task_job(std::shared_ptr<TaskState> task, Fn fn, std::string what) {
    return std::make_unique<TaskJob<Fn>>(std::move(task), std::move(fn), std::move(what));
}

}  // namespace

std::unique_ptr<Job> make_call_task(std::string_view target, Args args, Kwargs kwargs, std::shared_ptr<TaskState> task) {
    check_target(target);
    return make_task_job(std::move(task), [target = std::string(target), args = std::move(args),
                                           kwargs = std::move(kwargs)](const TaskState& t) {
        return call_target(target, args, kwargs, &t);
    }, std::string(target));
}

std::unique_ptr<Job> make_exec_task(std::string_view source, std::shared_ptr<TaskState> task) {
    return make_task_job(std::move(task), [source = std::string(source)](const TaskState&) {
        exec_source(source);
        return Value();
    }, "exec(source)");
}

JobAndFuture make_call_job(std::string_view target, Args args, Kwargs kwargs) {
    check_target(target);
    return make_promise_job([target = std::string(target), args = std::move(args), kwargs = std::move(kwargs)] {
        return call_target(target, args, kwargs);
    }, std::string(target));
}

JobAndFuture make_exec_job(std::string_view source) {
    return make_promise_job([source = std::string(source)] {
        exec_source(source);
        return Value();
    }, "exec(source)");
}

}  // namespace manygil::detail
