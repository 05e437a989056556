#include "runtime/task_jobs.hpp"

#include <string>

#include "runtime/call_target.hpp"
#include "runtime/exec_source.hpp"
#include "runtime/promise_job.hpp"

namespace manygil::detail {

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
