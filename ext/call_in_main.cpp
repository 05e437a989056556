#include "call_in_main.hpp"

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "manygil/errors.hpp"
#include "codec/payload_python.hpp"
#include "cpython/ownership.hpp"
#include "cpython/py_ref.hpp"
#include "cpython/python_error.hpp"
#include "exception_translation.hpp"
#include "module_state.hpp"
#include "pool_object.hpp"
#include "py_task_job.hpp"
#include "pytypes/blocking_call.hpp"
#include "runtime/main_calls.hpp"
#include "worker_cache.hpp"

namespace manygil::ext {

using detail::PyRef;

namespace {

// One call from a worker into main. Built and read in the worker (payloads, strings); run() and
// release() run on a main-side thread with the main interpreter attached, and the Python objects
// they make (the callable, the arguments, the result or the exception) never leave it.
class PyMainCall final : public detail::MainCall {
public:
    PyMainCall(CallableSpec spec, detail::Payload args, detail::Payload kwargs)
        : spec_(std::move(spec)), args_(std::move(args)), kwargs_(std::move(kwargs)) {}

    ~PyMainCall() override {
        if (!objects_.empty()) detail::expect_main_attached("a call's objects are released in the main interpreter");
    }

    void run() noexcept override {
        detail::expect_main_attached("a call into main runs with the main interpreter attached");
        try {
            PyObject* fn = keep(resolve_callable(spec_));
            PyObject* args = keep(detail::decode_python(args_));
            PyObject* kwargs = kwargs_.bytes.empty() ? nullptr : keep(detail::decode_python(kwargs_));
            PyRef result(PyObject_Call(fn, args, kwargs));
            if (!result) return capture_error();
            PyObject* kept = keep(std::move(result));
            try {
                result_ = detail::encode_python(kept, worker_pickler());
            } catch (ConversionError& e) {
                e.prepend_path("result");
                throw;
            }
        } catch (const std::exception& e) {
            error_ = error_info_for(e, "the function to call in the main interpreter", "call_in_main");
        }
        if (PyErr_Occurred()) PyErr_Clear();
    }

    void release() noexcept override {
        detail::expect_main_attached("a call's objects are released in the main interpreter");
        while (!objects_.empty()) objects_.pop_back();  // newest first: the result, then the arguments
    }

    // In the worker, after wait() said Done: the result as a new object of this interpreter, or null
    // with the call's error raised (its own type, main's traceback as __cause__).
    PyObject* outcome() {
        if (error_) return raise_exception(rebuild_error(*error_));
        try {
            return detail::decode_python(result_).release();
        } catch (const std::exception& e) {
            return raise_error(e, "result");
        }
    }

    const CallableSpec& spec() const noexcept { return spec_; }

private:
    PyObject* keep(PyRef obj) {
        objects_.push_back(std::move(obj));
        return objects_.back().get();
    }

    void capture_error() {
        PyRef exc(PyErr_GetRaisedException());
        PythonError info = detail::describe_exception(exc.get());
        error_ = ErrorInfo{info.type_name(), info.message(), info.traceback(), pickle_exception(exc.get())};
        keep(std::move(exc));  // its traceback holds main's frames: released in release()
    }

    CallableSpec spec_;
    detail::Payload args_, kwargs_;  // a tuple, and a dict (no bytes: none)
    // The outcome, written by run() in main, read by the worker after wait().
    detail::Payload result_;
    std::optional<ErrorInfo> error_;
    std::vector<PyRef> objects_;  // main's objects, until release()
};

detail::Payload encode(PyObject* obj, PyObject* pickler, const char* root) {
    try {
        return detail::encode_python(obj, pickler);
    } catch (ConversionError& e) {
        e.prepend_path(root);
        throw;
    }
}

}  // namespace

PyObject* py_call_in_main(PyObject*, PyObject* const* argv, Py_ssize_t argc) {
    if (argc != 4) return PyErr_Format(PyExc_TypeError, "_call_in_main() takes 4 arguments (%zd given)", argc);
    if (PyInterpreterState_Get() == PyInterpreterState_Main()) {
        PyErr_SetString(PyExc_RuntimeError, "_call_in_main() is for workers: in the main interpreter, call the function");
        return nullptr;
    }
    Timeout timeout;
    if (!detail::parse_timeout(argv[3], timeout, detail::TimeoutRule::NonNegative)) return nullptr;
    CallableSpec spec;
    if (!parse_spec(argv[0], spec)) return nullptr;
    if (!PyTuple_Check(argv[1])) return PyErr_Format(PyExc_TypeError, "_call_in_main(): args must be a tuple");
    if (argv[2] != Py_None && !PyDict_Check(argv[2])) {
        return PyErr_Format(PyExc_TypeError, "_call_in_main(): kwargs must be a dict or None");
    }
    std::shared_ptr<PyMainCall> call;
    try {
        PyObject* pickler = worker_pickler();
        detail::Payload args = encode(argv[1], pickler, "args");
        detail::Payload kwargs = argv[2] == Py_None || PyDict_GET_SIZE(argv[2]) == 0 ? detail::Payload{}
                                                                                       : encode(argv[2], pickler, "kwargs");
        call = std::make_shared<PyMainCall>(std::move(spec), std::move(args), std::move(kwargs));
        detail::MainCalls::instance().post(call);
    } catch (const std::exception& e) {  // ConversionError; ShutdownError, no pickler, no thread: RuntimeError
        return raise_error(e);
    }
    detail::MainCall::Outcome outcome;
    Py_BEGIN_ALLOW_THREADS  // this worker's other threads run meanwhile; main never needs its GIL
    outcome = call->wait(timeout);
    Py_END_ALLOW_THREADS
    switch (outcome) {
        case detail::MainCall::Outcome::Done: return call->outcome();
        case detail::MainCall::Outcome::Refused:
            try {
                std::rethrow_exception(call->refusal());
            } catch (const std::exception& e) {
                PyErr_SetString(PyExc_RuntimeError, e.what());
            }
            return nullptr;
        case detail::MainCall::Outcome::Interrupted:
            // The task this worker runs was interrupted: TimeoutError here, manygil.Interrupted for
            // the task's caller.
            if (detail::raise_if_wait_interrupted()) return nullptr;
            break;
        case detail::MainCall::Outcome::TimedOut: break;
    }
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", timeout ? timeout->count() : 0.0);
    std::string message = "call_in_main(" + call->spec().describe() + "): no result within " + seconds + " s";
    PyErr_SetString(PyExc_TimeoutError, message.c_str());
    return nullptr;
}

PyObject* py_main_side_threads(PyObject*, PyObject*) {
    return PyLong_FromSize_t(detail::MainCalls::instance().threads());
}

}  // namespace manygil::ext
