#include "runtime/worker_monitor.hpp"

#include <pthread.h>

#include <atomic>
#include <vector>

#include "cpython/private_api.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

namespace {

thread_local WorkerMonitor* t_current = nullptr;

double seconds(WorkerMonitor::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string utf8(PyObject* s) {
    Py_ssize_t n = 0;
    const char* p = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : nullptr;
    if (!p) {
        PyErr_Clear();
        return "?";
    }
    return std::string(p, static_cast<std::size_t>(n));
}

}  // namespace

WorkerMonitor* WorkerMonitor::current() noexcept { return t_current; }
void WorkerMonitor::set_current(WorkerMonitor* monitor) noexcept { t_current = monitor; }

WorkerMonitor::~WorkerMonitor() { stop(); }

void WorkerMonitor::prepare_interpreter() {
    PyRef sys(PyImport_ImportModule("sys"));
    PyRef done(sys ? PyObject_CallMethod(sys.get(), "setswitchinterval", "d", kSwitchIntervalSeconds) : nullptr);
    if (!done) PyErr_Clear();  // interrupts then land within CPython's default interval instead
}

void WorkerMonitor::start(PyThreadState* worker, std::int64_t interpreter_id) {
    worker_ = worker;
    worker_ident_ = PyThread_get_thread_ident();
    interpreter_id_ = interpreter_id;
    PyInterpreterState* interp = PyThreadState_GetInterpreter(worker);
    thread_ = std::thread([this, interp] { run(interp); });
    std::lock_guard lock(mu_);
    started_ = true;
}

void WorkerMonitor::stop() noexcept {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        if (!started_) return;
        started_ = false;
    }
    wake_.notify_all();
    answer_.notify_all();
    thread_.join();
}

void WorkerMonitor::call_started(std::uint64_t task, std::optional<Clock::duration> timeout) {
    gil_call_task_ = task;  // the worker holds its GIL: the monitor reads this under the same GIL
    gil_delivered_ = false;
    wait_interrupt_.call_started(task);
    call_task_.store(task);
    if (stop_all_.load()) {  // the pool is stopping: this call too
        std::string reason;
        {
            std::lock_guard lock(mu_);
            reason = stop_reason_;
        }
        interrupt(task, std::move(reason));
    }
    if (!timeout) return;  // the monitor only needs waking for a deadline
    {
        std::lock_guard lock(mu_);
        deadline_task_ = task;
        deadline_ = Clock::now() + *timeout;
        deadline_reason_ = "manygil: the task ran past its timeout of " + std::to_string(seconds(*timeout)) + " s";
    }
    wake_.notify_all();
}

std::optional<std::string> WorkerMonitor::call_finished() {
    wait_interrupt_.call_finished();
    call_task_.store(0);
    gil_call_task_ = 0;
    if (!gil_delivered_) return std::nullopt;
    // Delivered, but the call may have returned before reaching a bytecode that raises it: it must
    // not go off later in unrelated code.
    PyThreadState_SetAsyncExc(worker_ident_, nullptr);
    gil_delivered_ = false;
    return std::move(gil_reason_);
}

bool WorkerMonitor::interrupt(std::uint64_t task, std::string reason) {
    {
        std::lock_guard lock(mu_);
        if (stopping_ || call_task_.load() != task) return false;
        interrupt_reason_ = std::move(reason);
        interrupt_task_.store(task);
        ++interrupt_seq_;
    }
    wake_.notify_all();
    return true;
}

bool WorkerMonitor::interrupt_current(std::string reason, bool later_calls_too) {
    if (later_calls_too) {
        {
            std::lock_guard lock(mu_);
            stop_reason_ = reason;
        }
        stop_all_.store(true);
    }
    std::uint64_t task = call_task_.load();
    return task && interrupt(task, std::move(reason));
}

std::optional<std::string> WorkerMonitor::stack(Clock::duration timeout) {
    std::unique_lock lock(mu_);
    if (stopping_ || !started_) return std::nullopt;
    std::uint64_t ticket = ++stack_wanted_;
    wake_.notify_all();
    if (!answer_.wait_for(lock, timeout, [&] { return stack_done_ >= ticket || stopping_; }) || stack_done_ < ticket) {
        return std::nullopt;
    }
    return stack_;
}

void WorkerMonitor::add_interrupt_state(WorkerStats& s) const {
    std::lock_guard lock(mu_);
    s.interpreter_id = interpreter_id_;
    if (!s.current) return;
    std::uint64_t call = call_task_.load();
    s.current->interruptible = call != 0;
    if (call && sent_task_ == call) s.current->interrupt_pending_seconds = seconds(Clock::now() - sent_at_);
}

std::optional<WorkerMonitor::Clock::duration> WorkerMonitor::interrupt_pending() const {
    std::lock_guard lock(mu_);
    std::uint64_t call = call_task_.load();
    if (!call || sent_task_ != call) return std::nullopt;
    return Clock::now() - sent_at_;
}

// ---- the monitor thread --------------------------------------------------------------------------------

void WorkerMonitor::run(PyInterpreterState* interp) noexcept {
    pthread_setname_np(pthread_self(), "mg-monitor");
    PyThreadState* tstate = PyThreadState_New(interp);  // no GIL needed; attached only to visit
    std::unique_lock lock(mu_);
    while (!stopping_) {
        // Due work: an interrupt for the running call (asked for, or its deadline passed), a dump.
        std::uint64_t call = call_task_.load(), interrupt_task = 0;
        std::string reason;
        bool deadline_pending = call && deadline_task_ == call && deadline_sent_task_ != call;
        if (call && interrupt_task_.load() == call && interrupt_seq_ > interrupt_sent_seq_) {
            interrupt_task = call;
            reason = interrupt_reason_;
            interrupt_sent_seq_ = interrupt_seq_;
        } else if (deadline_pending && Clock::now() >= deadline_) {
            interrupt_task = call;
            reason = deadline_reason_;
            deadline_sent_task_ = call;
        }
        bool dump = stack_wanted_ > stack_done_;
        if (!interrupt_task && !dump) {
            if (deadline_pending) wake_.wait_until(lock, deadline_);
            else wake_.wait(lock);
            continue;
        }
        std::uint64_t ticket = stack_wanted_;
        if (interrupt_task && sent_task_ != interrupt_task) {  // stats() shows it pending from the first
            sent_task_ = interrupt_task;
            sent_at_ = Clock::now();
        }
        lock.unlock();
        std::string dumped;
        bool delivered = false;
        if (tstate) {
            PyEval_RestoreThread(tstate);  // waits until the worker lets go of its GIL
            if (interrupt_task) delivered = deliver_interrupt(interrupt_task, reason);
            if (dump) dumped = format_stack();
            PyEval_SaveThread();
        } else if (dump) {
            dumped = "(no thread state for the monitor)";
        }
        // A worker blocked in a manygil wait (Lock, Event, Channel, ...) never reaches the bytecode
        // that raises the interrupt: end its wait too.
        if (delivered) wait_interrupt_.request(interrupt_task);
        lock.lock();
        if (dump) {
            stack_ = std::move(dumped);
            stack_done_ = ticket;
            answer_.notify_all();
        }
    }
    lock.unlock();
    if (tstate) {
        PyEval_RestoreThread(tstate);
        PyThreadState_Clear(tstate);
        PyThreadState_DeleteCurrent();
    }
}

bool WorkerMonitor::deliver_interrupt(std::uint64_t task, const std::string& reason) {
    if (gil_call_task_ != task) return false;  // that call is over (checked under the worker's GIL)
    // CPython raises an asynchronous exception from its type (an instance is refused), so the
    // reason travels beside it and the job puts it back into the error it reports.
    if (PyThreadState_SetAsyncExc(worker_ident_, PyExc_TimeoutError) != 1) return false;
    gil_delivered_ = true;
    gil_reason_ = reason;
    return true;
}

std::string WorkerMonitor::format_stack() const {
    PyFrameObject* frame = PyThreadState_GetFrame(worker_);  // new reference, or null when idle
    if (!frame) return "(idle: no Python code running)";
    std::vector<std::string> lines;
    while (frame) {
        PyCodeObject* code = PyFrame_GetCode(frame);
        PyRef file(PyObject_GetAttrString(reinterpret_cast<PyObject*>(code), "co_filename"));
        PyRef name(PyObject_GetAttrString(reinterpret_cast<PyObject*>(code), "co_qualname"));
        PyErr_Clear();
        lines.push_back("  File \"" + utf8(file.get()) + "\", line " + std::to_string(PyFrame_GetLineNumber(frame)) +
                        ", in " + utf8(name.get()));
        Py_DECREF(code);
        PyFrameObject* back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    std::string out = "Traceback (most recent call last):";
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) out += "\n" + *it;
    return out;
}

}  // namespace manygil::detail
