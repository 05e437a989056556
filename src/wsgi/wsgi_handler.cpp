#include "manygil/wsgi.hpp"

#include <Python.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "cpython/interpreter_dict.hpp"
#include "cpython/py_ref.hpp"
#include "cpython/python_error.hpp"
#include "http/response_head.hpp"
#include "manygil/errors.hpp"
#include "manygil/job.hpp"
#include "runtime/call_target.hpp"
#include "runtime/interruptible_call.hpp"
#include "wsgi/environ.hpp"
#include "wsgi/forwarded.hpp"
#include "wsgi/start_response.hpp"

namespace manygil::wsgi {

using detail::PyRef;

namespace {

// The attribute `name` of `obj`, or null when it has none (no error set). Throws PythonError on
// any other failure.
PyRef optional_attr(PyObject* obj, const char* name) {
    PyRef value(PyObject_GetAttrString(obj, name));
    if (!value) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) detail::throw_python_error();
        PyErr_Clear();
    }
    return value;
}

// The application named `ref`, imported in this interpreter once and kept in its dict.
PyObject* application(const std::string& ref) {
    PyObject* apps = detail::per_interpreter("manygil.wsgi.apps", [] { return PyDict_New(); });
    if (PyObject* app = PyDict_GetItemString(apps, ref.c_str())) return app;
    PyRef app = detail::resolve_target(ref);
    if (PyDict_SetItemString(apps, ref.c_str(), app.get()) < 0) detail::throw_python_error();
    return app.get();  // borrowed: the dict holds it
}

// A wsgi.file_wrapper over a regular file: its remaining bytes, to send with sendfile (the fd is a
// dup, owned by the range). nullopt when it is anything else (it is iterated instead).
std::optional<http::FileRange> file_range(PyObject* wrapper) {
    PyRef filelike = optional_attr(wrapper, "filelike");
    if (!filelike) return std::nullopt;
    PyRef fileno(PyObject_CallMethod(filelike.get(), "fileno", nullptr));
    if (!fileno) {
        PyErr_Clear();  // not backed by a file descriptor (io.BytesIO): iterate it
        return std::nullopt;
    }
    int fd = static_cast<int>(PyLong_AsLong(fileno.get()));
    struct stat st {};
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        PyErr_Clear();
        return std::nullopt;
    }
    // Where the file object stands (it may have read ahead): tell() says, for buffered files too.
    PyRef pos(PyObject_CallMethod(filelike.get(), "tell", nullptr));
    long long offset = pos ? PyLong_AsLongLong(pos.get()) : -1;
    if (offset < 0) {
        PyErr_Clear();
        return std::nullopt;
    }
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return std::nullopt;
    http::FileRange range;
    range.fd = copy;
    range.offset = static_cast<std::uint64_t>(offset);
    range.length = st.st_size > offset ? static_cast<std::uint64_t>(st.st_size - offset) : 0;
    return range;
}

// One request, run by a pool worker with its interpreter attached.
class WsgiJob final : public Job {
public:
    WsgiJob(std::shared_ptr<const WsgiOptions> options, http::Request request, http::Responder responder,
            std::string scheme)
        : options_(std::move(options)), request_(std::move(request)), responder_(std::move(responder)),
          scheme_(std::move(scheme)) {}

    // Neither run nor abandoned: the pool refused it (shut down).
    ~WsgiJob() override {
        if (responder_) responder_.send(http::Response(503, "Service Unavailable: the server is shutting down\n"));
    }

    void run() noexcept override {
        std::optional<http::Response> response;
        try {
            response = serve();
        } catch (const std::exception& e) {
            response = streaming_ ? std::nullopt : std::optional(fail(500, e.what()));
            if (streaming_) abort_stream(e.what());
        }
        if (PyErr_Occurred()) PyErr_Clear();
        if (response) responder_.send(std::move(*response));
    }

    void abandon(std::exception_ptr) noexcept override {
        responder_.send(http::Response(503, "Service Unavailable: the server is shutting down\n"));
    }

    std::string describe() const override { return "WSGI " + request_.method + " " + request_.target; }
    bool failed() const noexcept override { return failed_; }

private:
    // The response to send, or nullopt when it was streamed (and finished or aborted) already.
    std::optional<http::Response> serve();
    bool call_application(PyObject* app, PyObject* environ, PyObject* start, std::string& body,
                          std::optional<http::FileRange>& file);
    bool collect(PyObject* result, PyObject* start, std::string& body, std::optional<http::FileRange>& file);
    // Sends the head (status and headers from start_response) with `first` as a streamed response.
    // False with a Python error set if start_response was not called.
    bool start_stream(PyObject* start, std::string first);
    // One more body item of a streamed response, the GIL released while the client catches up.
    // False when the client went away (the rest is dropped).
    bool stream_item(PyObject* item);
    bool stream_bytes(std::string bytes);
    void abort_stream(const std::string& why) {
        log(http::LogLevel::warning, "manygil serve: " + request_.method + " " + request_.target +
                                         ": the response was cut short after it began: " + why);
        failed_ = true;
        responder_.abort();
    }

    http::Response fail(int status, const std::string& why) {
        failed_ = true;
        log(http::LogLevel::error,
            "manygil serve: " + std::to_string(status) + " for " + request_.method + " " + request_.target + ": " + why);
        http::Response r(status, std::string(http::reason_phrase(status)) + "\n");
        return r;
    }
    void log(http::LogLevel level, const std::string& text) const {
        if (level < options_->log_level) return;
        if (options_->log) return options_->log(text);
        std::fprintf(stderr, "%s\n", text.c_str());
    }

    std::shared_ptr<const WsgiOptions> options_;
    http::Request request_;
    http::Responder responder_;
    std::string scheme_;  // wsgi.url_scheme: the options' own, or a trusted proxy's
    bool failed_ = false;
    bool streaming_ = false;      // the head went out; the body follows item by item
    bool client_gone_ = false;    // while streaming
};

std::optional<http::Response> WsgiJob::serve() {
    PyObject* app;
    try {
        app = application(options_->app);
    } catch (const UnknownFunctionError& e) {
        return fail(500, std::string("cannot load the application: ") + e.what());
    }
    PyRef environ = build_environ(request_, scheme_);
    PyRef start = new_start_response();
    std::optional<detail::InterruptibleCall::Duration> timeout;
    if (options_->timeout) timeout = std::chrono::duration_cast<detail::InterruptibleCall::Duration>(*options_->timeout);
    std::string body;
    std::optional<http::FileRange> file;
    bool ok;
    std::optional<std::string> interrupted;
    {
        detail::InterruptibleCall marked(detail::next_task_id(), timeout);
        ok = call_application(app, environ.get(), start.get(), body, file);
        interrupted = marked.finish();
    }
    if (!ok) {
        PyRef exc(PyErr_GetRaisedException());
        PythonError info = detail::describe_exception(exc.get());
        bool timed_out = interrupted && PyErr_GivenExceptionMatches(exc.get(), PyExc_TimeoutError);
        std::string text = info.traceback().empty() ? info.type_name() + ": " + info.message() : info.traceback();
        while (!text.empty() && text.back() == '\n') text.pop_back();
        if (streaming_) {  // the head is gone: the connection is cut instead
            abort_stream(timed_out ? *interrupted : "the application raised an exception:\n" + text);
            return std::nullopt;
        }
        if (timed_out) return fail(504, *interrupted);
        return fail(500, "the application raised an exception:\n" + text);
    }
    if (streaming_) {
        responder_.finish();
        return std::nullopt;
    }
    StartResponseState& st = start_response_state(start.get());
    if (!st.called) return fail(500, "the application returned without calling start_response()");
    http::Response out;
    out.status = st.status;
    out.reason = std::move(st.reason);
    out.headers = std::move(st.headers);
    out.body = std::move(st.written);
    out.body += body;
    out.file = std::move(file);  // a Content-Length the application set is enforced by the server
    return out;
}

bool WsgiJob::call_application(PyObject* app, PyObject* environ, PyObject* start, std::string& body,
                               std::optional<http::FileRange>& file) {
    PyRef result(PyObject_CallFunctionObjArgs(app, environ, start, nullptr));
    if (!result) return false;
    bool ok = collect(result.get(), start, body, file);
    // PEP 3333: close() is called whenever the iterable has one, whatever happened.
    PyObject* error = ok ? nullptr : PyErr_GetRaisedException();
    PyRef close(PyObject_GetAttrString(result.get(), "close"));
    if (close) {
        PyRef done(PyObject_CallNoArgs(close.get()));
        if (!done && ok) return false;  // close() itself failed: that is the error
    }
    if (PyErr_Occurred()) PyErr_Clear();  // no close attribute (or close failed after another error)
    if (error) PyErr_SetRaisedException(error);
    return ok;
}

bool WsgiJob::collect(PyObject* result, PyObject* start, std::string& body, std::optional<http::FileRange>& file) {
    if (Py_TYPE(result) == reinterpret_cast<PyTypeObject*>(file_wrapper_type())) {
        file = file_range(result);
        if (file) return true;
    }
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {  // the common case: sent whole
        PyObject* seq = result;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        for (Py_ssize_t i = 0; i < n; ++i) {
            PyObject* item = PySequence_Fast_GET_ITEM(seq, i);
            if (!PyBytes_Check(item)) {
                PyErr_Format(PyExc_TypeError, "the response body's item %zd is a %.100s, not bytes", i, Py_TYPE(item)->tp_name);
                return false;
            }
            body.append(PyBytes_AS_STRING(item), static_cast<std::size_t>(PyBytes_GET_SIZE(item)));
        }
        return true;
    }
    // Any other iterable may be slow to produce (a generator, server-sent events): PEP 3333 wants
    // each item sent before the next is asked for. The first item goes out with the head, the
    // others one by one; an iterable that yields nothing is sent whole.
    PyRef it(PyObject_GetIter(result));
    if (!it) return false;
    StartResponseState& st = start_response_state(start);
    std::optional<std::uint64_t> declared;
    for (Py_ssize_t i = 0;; ++i) {
        PyRef item(PyIter_Next(it.get()));
        // write() calls made while the iterable produced this item come before it.
        if (streaming_ && !st.written.empty() && !stream_bytes(std::exchange(st.written, std::string()))) {
            client_gone_ = true;
        }
        if (!item) return !PyErr_Occurred();
        if (i == 0) declared = http::declared_length(st.headers);  // start_response has been called by now
        if (!PyBytes_Check(item.get())) {
            PyErr_Format(PyExc_TypeError, "the response body's item %zd is a %.100s, not bytes", i,
                         Py_TYPE(item.get())->tp_name);
            return false;
        }
        if (client_gone_) return true;  // nobody to send the rest to: stop, close() ends the iterable
        if (streaming_) {
            if (!stream_item(item.get())) client_gone_ = true;
            continue;
        }
        body.append(PyBytes_AS_STRING(item.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(item.get())));
        // Once the bytes the application declared are all in (Flask and Django declare them), the
        // response is complete whatever the iterable still does: it goes out whole.
        if (declared && st.written.size() + body.size() >= *declared) continue;
        if (!start_stream(start, std::exchange(body, std::string()))) return false;
    }
}

bool WsgiJob::start_stream(PyObject* start, std::string first) {
    StartResponseState& st = start_response_state(start);
    if (!st.called) {
        PyErr_SetString(PyExc_RuntimeError, "the application yielded body bytes before calling start_response()");
        return false;
    }
    http::Response head;
    head.status = st.status;
    head.reason = st.reason;
    head.headers = st.headers;
    head.body = std::move(st.written);
    head.body += first;
    head.stream = true;
    streaming_ = true;
    responder_.send(std::move(head));
    return true;
}

bool WsgiJob::stream_item(PyObject* item) {
    return stream_bytes(std::string(PyBytes_AS_STRING(item), static_cast<std::size_t>(PyBytes_GET_SIZE(item))));
}

bool WsgiJob::stream_bytes(std::string bytes) {
    if (bytes.empty()) return true;
    bool sent;
    Py_BEGIN_ALLOW_THREADS  // waiting for a slow client must not hold this interpreter's GIL
    sent = responder_.send_chunk(std::move(bytes));
    Py_END_ALLOW_THREADS
    return sent;
}

}  // namespace

WsgiHandler::WsgiHandler(Pool& pool, WsgiOptions options)
    : pool_(pool), options_(std::make_shared<const WsgiOptions>(std::move(options))) {
    detail::check_target(options_->app);
}

std::size_t WsgiHandler::capacity() const noexcept { return pool_.size(); }

void WsgiHandler::handle(http::Request request, http::Responder responder) {
    std::string scheme = request.tls ? "https" : options_->url_scheme;  // a trusted proxy's word overrides
    apply_proxy_headers(request, options_->forwarded_allow_ips, scheme);
    // If the pool refuses the job (shut down), the job's destructor answers 503.
    pool_.post(std::make_unique<WsgiJob>(options_, std::move(request), std::move(responder), std::move(scheme)));
}

}  // namespace manygil::wsgi
