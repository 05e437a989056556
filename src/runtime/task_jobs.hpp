// The two standard tasks, call "module:function" and exec source, as jobs: with a std::future
// (Interpreter::call/submit), or recording their outcome in a TaskState (Pool::submit, task.hpp).
#pragma once

#include <future>
#include <memory>
#include <string_view>
#include <utility>

#include "manygil/job.hpp"
#include "manygil/value.hpp"

namespace manygil::detail {

using JobAndFuture = std::pair<std::unique_ptr<Job>, std::future<Value>>;

// Checks the target's form now (InvalidArgument), resolves and calls it on the worker.
JobAndFuture make_call_job(std::string_view target, Args args, Kwargs kwargs);

// Runs source in the worker's __main__; the future yields None.
JobAndFuture make_exec_job(std::string_view source);

class TaskState;

// The same two as a Pool's tasks: `task` decides whether they run (cancel()), gives the call its id,
// timeout and early interrupt, and records the outcome. The call's target is checked now.
std::unique_ptr<Job> make_call_task(std::string_view target, Args args, Kwargs kwargs, std::shared_ptr<TaskState> task);
std::unique_ptr<Job> make_exec_task(std::string_view source, std::shared_ptr<TaskState> task);

}  // namespace manygil::detail
