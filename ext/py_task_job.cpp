#include "py_task_job.hpp"

#include "manygil/errors.hpp"
#include "codec/payload_python.hpp"
#include "cpython/ownership.hpp"
#include "cpython/py_ref.hpp"
#include "cpython/python_error.hpp"
#include "deferred_result.hpp"
#include "exception_translation.hpp"
#include "main_interpreter.hpp"
#include "runtime/call_target.hpp"
#include "worker_cache.hpp"

namespace manygil::ext {

using detail::PyRef;

PyTaskJob::PyTaskJob(Kind kind, CallableSpec callable, detail::Payload args, detail::Payload kwargs, bool star,
                     std::shared_ptr<detail::TaskState> state, PyObject* future)
    : kind_(kind),
      callable_(std::move(callable)),
      args_(std::move(args)),
      kwargs_(std::move(kwargs)),
      star_(star),
      state_(std::move(state)),
      future_(future) {}

PyTaskJob::~PyTaskJob() {
    // Normally released by run_in_main() or abandon(). Still set only when post() refused the job, on
    // the submitting thread, which holds the main interpreter.
    if (future_) {
        detail::expect_main_attached("a task's Future is released in the main interpreter");
        Py_DECREF(future_);
    }
    if (!worker_objects_.empty()) {
        detail::expect_attached(worker_interp_, "a task's objects are released in the worker that made them");
    }
}

// ---- worker side ---------------------------------------------------------------------------------

void PyTaskJob::run() noexcept {
    worker_interp_ = detail::attached_interpreter();
    if (!state_->start()) {  // cancelled while queued
        skipped_ = true;
        return;
    }
    try {
        switch (kind_) {
            case Kind::Call: run_call(); break;
            case Kind::Chunk: run_chunk(); break;
            case Kind::Exec: run_exec(); break;
        }
    } catch (const std::exception& e) {
        error_ = error_info_for(e, "the task's function in a worker", "worker");
    }
}

// Holds `obj` until cleanup(), so that freeing it does not delay the caller. Returns it, borrowed.
PyObject* PyTaskJob::keep(PyRef obj) {
    worker_objects_.push_back(std::move(obj));
    return worker_objects_.back().get();
}

void PyTaskJob::cleanup() noexcept {
    state_->mark_delivered();  // the worker has left the caller's interpreter (runtime/task_state.hpp)
    if (worker_objects_.empty()) return;
    detail::expect_attached(worker_interp_, "a task's objects are released in the worker that made them");
    // Newest first: the result often is (or holds) an argument, so the arguments are released last,
    // when nothing else holds them, and their floats can be kept for the next payload.
    detail::release_decoded(worker_objects_);
}

std::string CallableSpec::describe() const {
    switch (kind) {
        case Kind::Reference: return data;
        case Kind::Pickled: return "<function sent by value>";
        case Kind::Method: return "<method " + data + " of a shared object>";
    }
    return data;
}

std::string PyTaskJob::describe() const {
    switch (kind_) {
        case Kind::Exec: return "exec(source)";
        case Kind::Chunk: return callable_.describe() + " (map)";
        case Kind::Call: break;
    }
    return callable_.describe();
}

template <class Call>
PyRef PyTaskJob::interruptible(Call call) {
    detail::TaskCall marked(*state_);  // the task's id and timeout; an interrupt asked while it was queued
    PyRef result(call());
    interrupted_ = marked.finish();
    return result;
}

void PyTaskJob::run_call() {
    PyRef fn = resolve_callable(callable_);
    PyObject* args = keep(detail::decode_python(args_));
    PyObject* kwargs = kwargs_.bytes.empty() ? nullptr : keep(detail::decode_python(kwargs_));
    PyRef result = interruptible([&] { return PyObject_Call(fn.get(), args, kwargs); });
    if (!result) return capture_error();
    try {
        result_ = detail::encode_python(result.get(), worker_pickler());
    } catch (ConversionError& e) {
        e.prepend_path("result");
        throw;
    }
    keep(std::move(result));
}

void PyTaskJob::run_chunk() {
    result_ = detail::encode(Value(List{}));  // even if resolving fails below, map() gets (results, error)
    PyRef fn = resolve_callable(callable_);
    PyObject* items = keep(detail::decode_python(args_));
    PyObject* pickler = worker_pickler();
    Py_ssize_t n = PyList_GET_SIZE(items);
    // The results, as one list payload whose count is only known at the end.
    detail::PayloadWriter w;
    std::vector<Value> handles;
    std::size_t count_at = w.tagged_count_later(detail::Tag::List);
    std::uint64_t done = 0;
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* item = PyList_GET_ITEM(items, i);
        PyRef star_args = star_ ? PyRef(PySequence_Tuple(item)) : PyRef();  // fn(*item)
        PyRef r = interruptible([&]() -> PyObject* {
            if (!star_) return PyObject_CallOneArg(fn.get(), item);
            return star_args ? PyObject_Call(fn.get(), star_args.get(), nullptr) : nullptr;
        });
        if (!r) {
            capture_error();
            break;
        }
        std::size_t mark = w.size(), handles_mark = handles.size();
        try {
            detail::encode_python_into(w, handles, r.get(), pickler);
        } catch (ConversionError& e) {
            w.truncate(mark);  // drop the half-written result
            handles.resize(handles_mark);
            e.prepend_path("result");
            fail_with("manygil.NotShareableError", e.what());
            break;
        }
        ++done;
        keep(std::move(r));
    }
    w.patch_count(count_at, done);
    result_ = detail::Payload{w.take(), std::move(handles)};
}

void PyTaskJob::run_exec() {
    PyObject* source = keep(detail::decode_python(args_));
    if (!PyUnicode_Check(source)) return fail_with("TypeError", "the source to exec must be a str");
    Py_ssize_t n = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(source, &n);
    if (!utf8) return capture_error();
    detail::exec_source(std::string_view(utf8, static_cast<std::size_t>(n)));
    result_ = detail::encode(Value());  // exec returns None
}

void PyTaskJob::capture_error() {
    PyRef exc(PyErr_GetRaisedException());
    PythonError info = detail::describe_exception(exc.get());
    if (interrupted_ && Py_IS_TYPE(exc.get(), reinterpret_cast<PyTypeObject*>(PyExc_TimeoutError))) {
        // Ours, not the task's own TimeoutError: the caller gets manygil.Interrupted (a TimeoutError).
        error_ = ErrorInfo{"manygil.Interrupted", *interrupted_, info.traceback(), std::nullopt};
        return;
    }
    error_ = ErrorInfo{info.type_name(), info.message(), info.traceback(), pickle_exception(exc.get())};
}

void PyTaskJob::fail_with(const char* type_name, const std::string& message) {
    error_ = ErrorInfo{type_name, message, "", std::nullopt};
}

// ---- caller side (main interpreter attached) ------------------------------------------------------

bool PyTaskJob::refused_by_module(const ErrorInfo& error) {
    return error.type_name == "ImportError" &&
           error.message.find("does not support loading in subinterpreters") != std::string::npos;
}

void PyTaskJob::settle(const char* method, PyRef arg) {
    if (!arg) {
        arg = PyRef(PyErr_GetRaisedException());
        if (!arg) arg = PyRef(PyObject_CallFunction(PyExc_SystemError, "s", "manygil: could not build a task's outcome"));
        method = "set_exception";
    }
    if (arg) {
        // CallMethodOneArg, not CallMethod(..., "O", arg): that would unpack a tuple argument.
        PyRef name(PyUnicode_InternFromString(method));
        PyRef done(name ? PyObject_CallMethodOneArg(future_, name.get(), arg.get()) : nullptr);
        if (!done) PyErr_WriteUnraisable(future_);
    } else {
        PyErr_WriteUnraisable(future_);  // out of memory even for the error: nothing better to do
    }
    Py_CLEAR(future_);
}

void PyTaskJob::settle_cancelled() {
    // The caller's cancel() may have claimed the task but not yet marked the future (the GIL can
    // switch between the two): cancel() again first, so the notification finds it CANCELLED.
    PyRef cancelled(PyObject_CallMethod(future_, "cancel", nullptr));
    if (!cancelled) PyErr_WriteUnraisable(future_);
    PyRef notified(PyObject_CallMethod(future_, "set_running_or_notify_cancel", nullptr));
    if (!notified) PyErr_WriteUnraisable(future_);
    Py_CLEAR(future_);
}

void PyTaskJob::settle_chunk() {
    // (results, exception or None): map() yields the results, then raises at the failing item.
    PyRef results;
    try {
        results = result_.bytes.size() >= kDeferredResultBytes ? PyRef(defer_result(std::move(result_)))
                                                                 : detail::decode_python(result_);
    } catch (const ConversionError& e) {
        // The results that could not be rebuilt came before any error the task raised: report this one.
        error_ = ErrorInfo{"manygil.NotShareableError", e.what(), "", std::nullopt};
        results = PyRef(PyList_New(0));
    }
    PyRef exc = error_ ? PyRef(rebuild_error(*error_)) : PyRef::borrow(Py_None);
    // Refused by a module that cannot load here: the Future decides, as for a call (run_in_main()):
    // the pool's fallback may run the chunk's remaining items elsewhere.
    settle(error_ && refused_by_module(*error_) ? "_refused_chunk" : "set_result",
           results && exc ? PyRef(PyTuple_Pack(2, results.get(), exc.get())) : PyRef());
}

void PyTaskJob::run_in_main() noexcept {
    detail::expect_main_attached("a task's Future is settled in the main interpreter");
    try {
        if (skipped_) return settle_cancelled();
        if (kind_ == Kind::Chunk) return settle_chunk();
        if (!error_) {
            PyRef value;
            try {
                value = result_.bytes.size() >= kDeferredResultBytes ? PyRef(defer_result(std::move(result_)))
                                                                      : detail::decode_python(result_);
            } catch (const ConversionError& e) {
                error_ = ErrorInfo{"manygil.NotShareableError", std::string("the task's result: ") + e.what(), "",
                                   std::nullopt};
            }
            // A null value with no error_ is a failed allocation: settle() reports the raised error.
            if (value || !error_) return settle("set_result", std::move(value));
        }
        // A module that refuses to load in an own-GIL interpreter: the Future decides (its pool may
        // re-route the task: Pool(fallback=...)).
        settle(refused_by_module(*error_) ? "_refused" : "set_exception", PyRef(rebuild_error(*error_)));
    } catch (const std::exception& e) {  // PythonError (e.g. no memory), bad_alloc: still settle it
        if (future_) settle("set_exception", PyRef(PyObject_CallFunction(PyExc_RuntimeError, "s", e.what())));
    }
}

void PyTaskJob::abandon(std::exception_ptr reason) noexcept {
    MainInterpreterScope main;
    try {
        try {
            std::rethrow_exception(reason);
        } catch (const CancelledError&) {
            state_->cancel();
            return settle_cancelled();
        } catch (...) {
            if (!state_->abandon()) return settle_cancelled();  // the caller cancelled it first
            throw;
        }
    } catch (const BrokenPoolError& e) {
        settle("set_exception", PyRef(exception_for(e, "", /*with_cause=*/true)));
    } catch (const std::exception& e) {
        settle("set_exception", PyRef(PyObject_CallFunction(PyExc_RuntimeError, "s", e.what())));
    } catch (...) {
        settle("set_exception", PyRef());
    }
}

}  // namespace manygil::ext
