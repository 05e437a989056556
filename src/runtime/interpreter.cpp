#include "manygil/interpreter.hpp"

#include "manygil/errors.hpp"
#include "runtime/task_jobs.hpp"
#include "runtime/worker_group.hpp"

namespace manygil {

namespace {

detail::WorkerGroup& live(const std::shared_ptr<detail::WorkerGroup>& group) {
    if (!group) throw Error("use of a moved-from manygil::Interpreter");
    return *group;
}

// Blocking on our own thread would wait forever for ourselves.
void check_not_own_thread(const detail::WorkerGroup& group, const char* what) {
    if (group.on_worker_thread()) {
        throw Error(std::string("Interpreter::") + what +
                    " called from the interpreter's own thread would wait for itself; use submit()");
    }
}

}  // namespace

namespace {
detail::WorkerGroup::Options one_worker() {
    detail::WorkerGroup::Options options;
    options.name = "interpreter";
    return options;
}
}  // namespace

Interpreter::Interpreter(Runtime& runtime) : group_(detail::WorkerGroup::start(runtime, one_worker())) {
    try {
        group_->wait_ready();
    } catch (const BrokenPoolError& e) {
        group_->shutdown(true, false);
        std::rethrow_exception(e.cause());  // the InterpreterError that stopped creation
    }
}

Interpreter::~Interpreter() {
    if (group_) group_->close();
}

Interpreter::Interpreter(Interpreter&&) noexcept = default;
Interpreter& Interpreter::operator=(Interpreter&& other) noexcept {
    if (this != &other) {
        if (group_) group_->close();
        group_ = std::move(other.group_);
    }
    return *this;
}

void Interpreter::exec(std::string_view source) {
    check_not_own_thread(live(group_), "exec");
    auto [job, future] = detail::make_exec_job(source);
    group_->post(std::move(job));
    future.get();
}

Value Interpreter::call(std::string_view target, Args args, Kwargs kwargs) {
    check_not_own_thread(live(group_), "call");
    return submit(target, std::move(args), std::move(kwargs)).get();
}

std::future<Value> Interpreter::submit(std::string_view target, Args args, Kwargs kwargs) {
    auto [job, future] = detail::make_call_job(target, std::move(args), std::move(kwargs));
    live(group_).post(std::move(job));
    return std::move(future);
}

void Interpreter::post(std::unique_ptr<Job> job) {
    if (!job) throw InvalidArgument("Interpreter::post: null job");
    live(group_).post(std::move(job));
}

void Interpreter::close() {
    if (group_) group_->close();
}

bool Interpreter::closed() const noexcept { return !group_ || group_->closed(); }

std::int64_t Interpreter::id() const { return live(group_).interpreter_ids().at(0); }

}  // namespace manygil
