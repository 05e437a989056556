// The two standard tasks, as jobs with a future: call "module:function", and exec source.
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

}  // namespace manygil::detail
