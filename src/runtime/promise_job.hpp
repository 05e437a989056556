// PromiseJob: a Job whose outcome (fn's result, or what it threw) goes to a std::promise<T>: what
// submit() and call() post (T = Value), and what udf::map_rows posts per slice (T = an Arrow array).
#pragma once

#include <future>
#include <string>
#include <utility>

#include "manygil/job.hpp"
#include "manygil/value.hpp"

namespace manygil::detail {

template <class Fn, class T = Value>
class PromiseJob final : public Job {
public:
    PromiseJob(Fn fn, std::string what) : fn_(std::move(fn)), what_(std::move(what)) {}

    std::future<T> future() { return promise_.get_future(); }

    void run() noexcept override {
        try {
            promise_.set_value(fn_());
        } catch (...) {
            failed_ = true;
            promise_.set_exception(std::current_exception());
        }
    }
    std::string describe() const override { return what_; }
    bool failed() const noexcept override { return failed_; }

    void abandon(std::exception_ptr reason) noexcept override { promise_.set_exception(std::move(reason)); }

private:
    Fn fn_;
    std::string what_;
    bool failed_ = false;
    std::promise<T> promise_;
};

// Wraps fn (run on a worker, returning Value) into a job and hands back the job and its future.
// `what` names it in stats().
template <class Fn>
std::pair<std::unique_ptr<Job>, std::future<Value>> make_promise_job(Fn fn, std::string what) {
    auto job = std::make_unique<PromiseJob<Fn>>(std::move(fn), std::move(what));
    auto future = job->future();
    return {std::move(job), std::move(future)};
}

}  // namespace manygil::detail
