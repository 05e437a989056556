// PyTaskJob: one task submitted from Python. Built on the caller's thread (main interpreter), run on a
// worker (its interpreter), completed on the same worker thread with the main interpreter attached:
// the Future's result is set there, as ThreadPoolExecutor's workers do, with no extra thread hop.
//
// Only C++ data crosses: the callable as a "module:qualname" reference or a pickle, arguments and
// results as payloads (payload.hpp), errors as strings plus an optional pickle of the exception. The
// Future (a main-interpreter object) is only touched with the main interpreter attached. What the
// task made in the worker is released after the Future is settled (cleanup()), off the caller's path.
#pragma once

#include <Python.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "manygil/job.hpp"
#include "manygil/value.hpp"
#include "codec/payload_python.hpp"
#include "cpython/py_ref.hpp"
#include "exception_translation.hpp"
#include "runtime/task_state.hpp"

namespace manygil::ext {

// What to call in the worker.
struct CallableSpec {
    enum class Kind {
        Reference,  // data: "module:qualname", resolved by import
        Pickled,    // data: the pickled callable (by value)
        Method,     // data: a method name; holder: the object it belongs to, one that travels by
                    // reference (SharedBuffer, Channel, Lock, Event, Semaphore, Barrier)
    };
    Kind kind = Kind::Reference;
    std::string data;
    detail::Payload holder;
    // For stats() and messages: "module:qualname", "Event.wait", "<function sent by value>".
    std::string describe() const;
};

class PyTaskJob final : public Job {
public:
    enum class Kind {
        Call,   // fn(*args, **kwargs)
        Chunk,  // [fn(item) or fn(*item) for item in items], stopping at the first exception (map)
        Exec,   // exec(source) in the worker's __main__
    };

    // `future` is a new reference, owned by the job until completion.
    // `kwargs` is empty (no bytes) for none.
    PyTaskJob(Kind kind, CallableSpec callable, detail::Payload args, detail::Payload kwargs, bool star,
              std::shared_ptr<detail::TaskState> state, PyObject* future);
    ~PyTaskJob() override;

    void run() noexcept override;
    bool wants_main() const noexcept override { return true; }
    void run_in_main() noexcept override;
    bool wants_cleanup() const noexcept override { return true; }  // also tells the caller it may go on
    std::string describe() const override;
    bool failed() const noexcept override { return error_.has_value(); }
    bool counts_as_task() const noexcept override { return counted_; }
    // Before post(): the task does not count toward max_tasks_per_worker (a server's probe).
    void set_uncounted() noexcept { counted_ = false; }
    void cleanup() noexcept override;
    void abandon(std::exception_ptr reason) noexcept override;

private:
    void run_call();
    void run_chunk();
    void run_exec();
    PyObject* keep(detail::PyRef obj);
    // call() (a Python call returning a new reference or null) as an interruptible call: its
    // timeout and Future.interrupt() apply; interrupted_ says afterwards whether one was delivered
    // (capture_error() then reports manygil.Interrupted).
    template <class Call>
    detail::PyRef interruptible(Call call);
    void capture_error();                     // from the raised Python exception
    void fail_with(const char* type_name, const std::string& message);
    // The task failed because a module refuses to load in an own-GIL interpreter (numpy, ...): the
    // Future's _refused / _refused_chunk then decide (Pool(fallback=...) runs it elsewhere).
    static bool refused_by_module(const ErrorInfo& error);
    void settle_chunk();
    // future.<method>(arg), then drop the future. A null arg (its construction failed) settles the
    // future with the raised error instead, so the future never stays pending.
    void settle(const char* method, detail::PyRef arg);
    // For a task that will never run: cancel() then set_running_or_notify_cancel(), which wakes
    // wait() and as_completed() (a merely cancelled future does not).
    void settle_cancelled();

    Kind kind_;
    CallableSpec callable_;
    detail::Payload args_, kwargs_;  // Call: tuple and dict; Chunk: list of items; Exec: the source as str
    bool star_;
    bool counted_ = true;
    std::shared_ptr<detail::TaskState> state_;
    PyObject* future_;

    // Outcome, written by run(), read by run_in_main().
    bool skipped_ = false;
    detail::Payload result_;  // Call: the result; Chunk: list of results before the error (if any)
    std::optional<ErrorInfo> error_;
    std::optional<std::string> interrupted_;  // why the last call was interrupted, if it was
    // The worker's objects (arguments, result), released by cleanup() in the worker: owned by
    // worker_interp_ (set by run()), and checked to be released there.
    std::vector<detail::PyRef> worker_objects_;
    PyInterpreterState* worker_interp_ = nullptr;
};

}  // namespace manygil::ext
