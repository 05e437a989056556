#include "asgi/worker.hpp"

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <new>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "asgi/scope.hpp"
#include "cpython/interpreter_dict.hpp"
#include "cpython/python_error.hpp"
#include "http/response_head.hpp"
#include "runtime/interruptible_call.hpp"

namespace manygil::asgi::detail {

using manygil::detail::PyRef;

namespace {

// ---- the per-interpreter types ----

struct Types {
    PyRef worker, call, step, bound;
    PyRef s_done, s_set_result, s_blocking;  // Future.done, Future.set_result, _asyncio_future_blocking
    PyRef k_type, k_body, k_more_body, k_status, k_headers, http_request, http_disconnect;
    PyRef k_text, k_bytes, k_code, k_reason, k_subprotocol, ws_connect, ws_receive, ws_disconnect;
};

// What a WebSocket's listener (I/O thread) hands the worker's loop: messages, the close, room to
// send again. Each event is then announced through the inbox (Inbox::wake with the call's id).
struct WsEvents {
    std::mutex mu;
    std::deque<std::pair<bool, std::string>> messages;  // (mu) (text?, data), oldest first
    bool closed = false;                                // (mu) on_close came
    int code = 1006;                                    // (mu)
    std::string reason;                                 // (mu)
    std::atomic<bool> full{false};  // send() answered QueueFull and on_writable() has not come since
};

class WsListener final : public http::WebSocketListener {
public:
    WsListener(std::shared_ptr<WsEvents> events, std::shared_ptr<Inbox> inbox, std::uint64_t id)
        : events_(std::move(events)), inbox_(std::move(inbox)), id_(id) {}
    void on_message(bool text, std::string data) override {
        {
            std::lock_guard lock(events_->mu);
            events_->messages.emplace_back(text, std::move(data));
        }
        inbox_->wake(id_);
    }
    void on_close(int code, std::string reason) override {
        {
            std::lock_guard lock(events_->mu);
            events_->closed = true;
            events_->code = code;
            events_->reason = std::move(reason);
        }
        events_->full.store(false);
        inbox_->wake(id_);
    }
    void on_writable() override {
        events_->full.store(false);
        inbox_->wake(id_);
    }

private:
    std::shared_ptr<WsEvents> events_;
    std::shared_ptr<Inbox> inbox_;
    std::uint64_t id_;
};

// A WebSocket call's progress through ASGI: websocket.connect given, then accepted (open), denied
// (websocket.close or a denial response before accept), or closed by the application.
enum class WsStage { Connecting, Denying, Open, Closed };

struct WorkerState {
    std::shared_ptr<AsgiShared> shared;
    std::shared_ptr<Inbox> inbox;
    std::unordered_map<std::uint64_t, PyObject*> calls;  // borrowed: each HttpCall removes itself
    bool reported_start = false;
    PyRef create_future;  // the loop's create_future (bind()), for a receive() or send() that must wait
};

struct WorkerObject {
    PyObject_HEAD
    WorkerState* state;
};

// One request on the loop.
struct Call {
    std::uint64_t id = 0;
    http::Request request;
    http::Responder responder;
    std::string scheme;
    PyRef worker;   // the WorkerObject: its inbox, its map of calls
    PyRef waiters;  // a list of parked futures, or null
    std::shared_ptr<std::atomic<bool>> gone = std::make_shared<std::atomic<bool>>(false);
    bool body_given = false;  // http.request was received
    bool started = false;     // http.response.start was sent (held until the first body)
    bool streaming = false;   // the head went out; more body follows
    bool complete = false;    // the last body went out
    bool finished = false;    // fail() or finish(): out of the worker's in-flight count
    int status = 0;
    std::vector<http::Header> headers;
    // A WebSocket's (is_websocket):
    bool is_websocket = false;
    http::WebSocket websocket;
    std::shared_ptr<WsEvents> events;
    WsStage stage = WsStage::Connecting;
    bool connect_given = false;  // websocket.connect was received
    bool accepted = false;       // websocket.accept went out (the stage may be Closed since)
    std::string denial_body;     // websocket.http.response.body so far
};

struct CallObject {
    PyObject_HEAD
    Call* call;
};

WorkerState& worker_of(PyObject* op) { return *reinterpret_cast<WorkerObject*>(op)->state; }
Call& call_of(PyObject* op) { return *reinterpret_cast<CallObject*>(op)->call; }

Types& types();

// m[key] into *out (a new reference; null when absent): 1 found, 0 absent, -1 error. Any mapping
// (PyMapping_GetOptionalItem is 3.13+).
int get_item(PyObject* m, PyObject* key, PyObject** out) {
    *out = nullptr;
    if (PyDict_CheckExact(m)) {
        PyObject* v = PyDict_GetItemWithError(m, key);
        if (!v) return PyErr_Occurred() ? -1 : 0;
        *out = Py_NewRef(v);
        return 1;
    }
    PyObject* v = PyObject_GetItem(m, key);
    if (v) {
        *out = v;
        return 1;
    }
    if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
    PyErr_Clear();
    return 0;
}

// ---- Worker ----

void worker_dealloc(PyObject* op) {
    delete reinterpret_cast<WorkerObject*>(op)->state;
    PyTypeObject* type = Py_TYPE(op);
    type->tp_free(op);
    Py_DECREF(type);
}

PyObject* worker_fileno(PyObject* op, PyObject*) { return PyLong_FromLong(worker_of(op).inbox->fd()); }

PyObject* new_call(PyObject* worker, Arrival arrival) {
    WorkerState& w = worker_of(worker);
    PyTypeObject* type = reinterpret_cast<PyTypeObject*>(types().call.get());
    PyObject* op = type->tp_alloc(type, 0);
    if (!op) return nullptr;
    auto* call = new (std::nothrow) Call;
    if (!call) {
        Py_DECREF(op);
        return PyErr_NoMemory();
    }
    reinterpret_cast<CallObject*>(op)->call = call;
    call->id = w.shared->next_call.fetch_add(1);
    call->request = std::move(arrival.request);
    call->responder = std::move(arrival.responder);
    call->scheme = std::move(arrival.scheme);
    call->worker = PyRef::borrow(worker);
    if (arrival.is_websocket) {
        call->is_websocket = true;
        call->websocket = std::move(arrival.websocket);
        call->events = std::make_shared<WsEvents>();
        // The client leaving before the application has answered the upgrade: receive() says
        // websocket.disconnect (1006) instead of waiting for messages that cannot come. An accept after
        // it goes to a closed connection (the listener hears 1006, and websocket.send raises).
        call->websocket.on_gone([events = call->events, inbox = w.inbox, id = call->id] {
            {
                std::lock_guard lock(events->mu);
                if (!events->closed) {
                    events->closed = true;
                    events->code = 1006;
                    events->reason = "the client left before the WebSocket was accepted";
                }
            }
            inbox->wake(id);
        });
        w.calls.emplace(call->id, op);
        return op;
    }
    // The client hanging up before the response is complete: receive() says http.disconnect and
    // sends are ignored from then on.
    call->responder.on_gone([gone = call->gone, inbox = w.inbox, id = call->id] {
        gone->store(true);
        inbox->wake(id);
    });
    w.calls.emplace(call->id, op);
    return op;
}

PyObject* worker_drain(PyObject* op, PyObject*) {
    WorkerState& w = worker_of(op);
    Inbox::Drained d = w.inbox->drain();
    if (w.inbox->interrupted.exchange(false)) {
        // The stuck-loop watchdog interrupted this loop, and it came back: the interrupt is withdrawn
        // (a new interruptible call from here on), so the pool does not replace a worker that serves.
        if (manygil::detail::WorkerMonitor* monitor = manygil::detail::WorkerMonitor::current()) {
            (void)monitor->call_finished();
            std::uint64_t task = manygil::detail::next_task_id();
            w.inbox->task.store(task);
            monitor->call_started(task, std::nullopt);
        }
    }
    PyRef fresh(PyList_New(0)), woken(PyList_New(0));
    if (!fresh || !woken) return nullptr;
    for (Arrival& a : d.arrivals) {
        PyRef call(new_call(op, std::move(a)));
        if (!call || PyList_Append(fresh.get(), call.get()) < 0) return nullptr;
    }
    for (std::uint64_t id : d.woken) {
        auto it = w.calls.find(id);
        if (it != w.calls.end() && PyList_Append(woken.get(), it->second) < 0) return nullptr;
    }
    // Its share of requests taken (AsgiOptions::max_requests): a successor starts now; this loop
    // serves on until it is ready (then drain() says retire).
    if (d.recycle_due && !d.stop) {
        bool recycling;
        Py_BEGIN_ALLOW_THREADS  // posting to the pool and starting a thread: no GIL needed
        recycling = w.shared->recycle(w.inbox);
        Py_END_ALLOW_THREADS
        if (!recycling) w.inbox->recycle_failed();  // it serves on, and tries again after another share
    }
    // stop: True (the handler stops), 2 (retire: a successor serves instead), False.
    if (d.stop) return Py_BuildValue("(OOO)", fresh.get(), woken.get(), Py_True);
    if (d.retire) return Py_BuildValue("(OOi)", fresh.get(), woken.get(), 2);
    return Py_BuildValue("(OOO)", fresh.get(), woken.get(), Py_False);
}

PyObject* worker_started(PyObject* op, PyObject* error) {
    WorkerState& w = worker_of(op);
    if (w.reported_start) Py_RETURN_NONE;
    std::optional<std::string> failure;
    if (error != Py_None) {
        const char* text = PyUnicode_AsUTF8(error);
        if (!text) return nullptr;
        failure = text;
    }
    w.reported_start = true;
    if (!failure) w.inbox->serving.store(true);
    if (w.inbox->successor) {
        Py_BEGIN_ALLOW_THREADS  // may take the pool's lock (a failed successor gives its slot back)
        w.shared->successor_started(*w.inbox, failure, true);
        Py_END_ALLOW_THREADS
    }
    else w.shared->mark_started(std::move(failure));
    Py_RETURN_NONE;
}

// log(level, text): level 0 debug .. 4 critical (http::LogLevel's order).
PyObject* worker_log(PyObject* op, PyObject* args) {
    int level;
    const char* text;
    if (!PyArg_ParseTuple(args, "is:log", &level, &text)) return nullptr;
    if (level < 0) level = 0;
    if (level > 4) level = 4;
    const AsgiShared& shared = *worker_of(op).shared;
    std::string line = text;
    Py_BEGIN_ALLOW_THREADS  // a log callback may write to a pipe that is slow to drain
    shared.log(static_cast<http::LogLevel>(level), line);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

// bind(create_future or None): the loop's create_future, which a receive() or send() that must wait
// calls for the future it yields; None when the loop ends (the Worker must not keep it alive).
PyObject* worker_bind(PyObject* op, PyObject* create_future) {
    if (create_future != Py_None && !PyCallable_Check(create_future)) {
        PyErr_SetString(PyExc_TypeError, "bind() takes the loop's create_future or None");
        return nullptr;
    }
    worker_of(op).create_future = create_future == Py_None ? PyRef() : PyRef::borrow(create_future);
    Py_RETURN_NONE;
}

PyObject* worker_recycle_grace(PyObject* op, PyObject*) {
    return PyFloat_FromDouble(worker_of(op).shared->options.recycle_grace.count());
}

PyMethodDef worker_methods[] = {
    {"fileno", worker_fileno, METH_NOARGS, "the inbox's eventfd (readable: drain())"},
    {"drain", worker_drain, METH_NOARGS, "drain() -> (new HttpCalls, HttpCalls with news, stop)"},
    {"started", worker_started, METH_O, "started(error: str | None): lifespan startup is over"},
    {"recycle_grace", worker_recycle_grace, METH_NOARGS, "recycle_grace() -> seconds a retiring loop's WebSockets get"},
    {"log", worker_log, METH_VARARGS, "log(level: int, text: str): the server's log (0 debug .. 4 critical)"},
    {"bind", worker_bind, METH_O, "bind(loop.create_future or None): where waiting receive()/send() get futures"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot worker_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(worker_dealloc)},
    {Py_tp_methods, worker_methods},
    {Py_tp_doc, const_cast<char*>("An ASGI worker's inbox (manygil/asgi.hpp)")},
    {0, nullptr},
};

// Made only by the handler (new_worker), never from Python.
PyType_Spec worker_spec = {"manygil.asgi.Worker", sizeof(WorkerObject), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, worker_slots};

// ---- HttpCall ----

void log_call(const Call& c, http::LogLevel level, const std::string& text) {
    worker_of(c.worker.get()).shared->log(level, text);
}

void leave(Call& c) {
    if (c.finished) return;
    c.finished = true;
    worker_of(c.worker.get()).inbox->in_flight.fetch_sub(1);
}

void call_dealloc(PyObject* op) {
    Call* c = reinterpret_cast<CallObject*>(op)->call;
    if (c) {
        leave(*c);
        worker_of(c->worker.get()).calls.erase(c->id);
        // A Responder not answered yet answers 500 (or cuts a stream) as it goes.
        delete c;
    }
    PyTypeObject* type = Py_TYPE(op);
    type->tp_free(op);
    Py_DECREF(type);
}

PyObject* call_scope(PyObject* op, PyObject* state) {
    Call& c = call_of(op);
    try {
        return build_scope(c.request, c.scheme, worker_of(c.worker.get()).shared->options.root_path, state,
                           c.is_websocket)
            .release();
    } catch (const std::exception&) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "cannot build the ASGI scope");
        return nullptr;
    }
}

PyObject* message(PyObject* type_value) {
    Types& t = types();
    PyObject* d = PyDict_New();
    if (d && PyDict_SetItem(d, t.k_type.get(), type_value) < 0) Py_CLEAR(d);
    return d;
}

PyObject* ws_receive(Call& c);
PyObject* send_message(PyObject* op, PyObject* m);
PyObject* ws_send(Call& c, PyObject* m, std::string_view kind);

// receive() while the body streams (AsgiHandler::streams_request_bodies): what has arrived as one
// http.request (more_body True), the last bytes with more_body False; None (park) while nothing new
// has come, the I/O thread waking this call through the inbox when it does. Bytes are acknowledged
// to the front end as the application takes them (receive backpressure: an application that does
// not read stops its own upload, nobody else's). A body that fails (the client went away, 413, 408)
// says http.disconnect: the front end has answered or closed the connection.
PyObject* streamed_body(Call& c) {
    Types& t = types();
    http::RequestBody& body = c.request.body_stream;
    std::string bytes;
    http::RequestBody::Status status = body.read(bytes);
    if (status == http::RequestBody::Status::Waiting) {
        if (c.gone->load()) return message(t.http_disconnect.get());
        body.when_ready([inbox = worker_of(c.worker.get()).inbox, id = c.id] { inbox->wake(id); });
        Py_RETURN_NONE;
    }
    if (status == http::RequestBody::Status::Failed) {
        c.body_given = true;
        return message(t.http_disconnect.get());
    }
    bool last = status == http::RequestBody::Status::End;
    if (last) c.body_given = true;
    body.consumed(bytes.size());
    PyRef data(PyBytes_FromStringAndSize(bytes.data(), static_cast<Py_ssize_t>(bytes.size())));
    if (!data) return nullptr;
    PyRef m(message(t.http_request.get()));
    if (!m || PyDict_SetItem(m.get(), t.k_body.get(), data.get()) < 0 ||
        PyDict_SetItem(m.get(), t.k_more_body.get(), last ? Py_False : Py_True) < 0) {
        return nullptr;
    }
    return m.release();
}

// The next message, or None while there is none yet (the caller parks a future).
PyObject* receive_now(PyObject* op) {
    Call& c = call_of(op);
    if (c.is_websocket) return ws_receive(c);
    Types& t = types();
    if (!c.body_given && c.request.body_stream) return streamed_body(c);
    if (!c.body_given) {
        c.body_given = true;
        PyRef body(PyBytes_FromStringAndSize(c.request.body.data(), static_cast<Py_ssize_t>(c.request.body.size())));
        if (!body) return nullptr;
        std::string().swap(c.request.body);  // the bytes object holds it now
        PyRef m(message(t.http_request.get()));
        if (!m || PyDict_SetItem(m.get(), t.k_body.get(), body.get()) < 0 ||
            PyDict_SetItem(m.get(), t.k_more_body.get(), Py_False) < 0) {
            return nullptr;
        }
        return m.release();
    }
    if (c.gone->load() || c.complete) return message(t.http_disconnect.get());
    Py_RETURN_NONE;  // wait: park a future
}

bool token_char(unsigned char ch) {
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(ch)) != std::string_view::npos;
}

// bytes (or bytearray / memoryview) -> std::string. False with a TypeError naming `what`.
bool bytes_of(PyObject* v, const char* what, std::string& out) {
    if (PyBytes_Check(v)) {
        out.assign(PyBytes_AS_STRING(v), static_cast<std::size_t>(PyBytes_GET_SIZE(v)));
        return true;
    }
    if (PyByteArray_Check(v)) {
        out.assign(PyByteArray_AS_STRING(v), static_cast<std::size_t>(PyByteArray_GET_SIZE(v)));
        return true;
    }
    if (PyMemoryView_Check(v)) {
        PyRef b(PyBytes_FromObject(v));
        if (!b) return false;
        out.assign(PyBytes_AS_STRING(b.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(b.get())));
        return true;
    }
    PyErr_Format(PyExc_TypeError, "ASGI send(): %s must be bytes, not %.100s", what, Py_TYPE(v)->tp_name);
    return false;
}

// headers: an iterable of (name, value) bytes pairs, checked (names HTTP tokens, values without
// line breaks or NUL) into `parsed`. False with a Python error.
bool parse_headers(PyObject* headers, std::vector<http::Header>& parsed) {
    PyRef it(PyObject_GetIter(headers));
    if (!it) return false;
    for (Py_ssize_t i = 0;; ++i) {
        PyRef item(PyIter_Next(it.get()));
        if (!item) return !PyErr_Occurred();
        PyRef pair(PySequence_Fast(item.get(), "ASGI send(): each header must be a (name, value) pair"));
        if (!pair) return false;
        if (PySequence_Fast_GET_SIZE(pair.get()) != 2) {
            PyErr_Format(PyExc_ValueError, "ASGI send(): header %zd is not a (name, value) pair", i);
            return false;
        }
        http::Header h;
        if (!bytes_of(PySequence_Fast_GET_ITEM(pair.get(), 0), "a header name", h.name) ||
            !bytes_of(PySequence_Fast_GET_ITEM(pair.get(), 1), "a header value", h.value)) {
            return false;
        }
        bool name_ok = !h.name.empty();
        for (unsigned char ch : h.name) name_ok = name_ok && token_char(ch);
        if (!name_ok) {
            PyErr_Format(PyExc_ValueError, "ASGI send(): the header name %R is not an HTTP token",
                         PySequence_Fast_GET_ITEM(pair.get(), 0));
            return false;
        }
        if (h.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
            PyErr_Format(PyExc_ValueError, "ASGI send(): the value of header %R holds a line break or NUL",
                         PySequence_Fast_GET_ITEM(pair.get(), 0));
            return false;
        }
        parsed.push_back(std::move(h));
    }
}

// http.response.start (or websocket.http.response.start): status and headers into `c`.
bool parse_start(Call& c, PyObject* m) {
    Types& t = types();
    PyObject* status = nullptr;
    if (get_item(m, t.k_status.get(), &status) < 0) return false;
    PyRef status_ref(status);
    if (!status || !PyLong_Check(status)) {
        PyErr_SetString(PyExc_TypeError, "ASGI send(): http.response.start needs an int 'status'");
        return false;
    }
    long code = PyLong_AsLong(status);
    if (code < 100 || code > 999) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "ASGI send(): the status %ld is not a 3-digit code", code);
        return false;
    }
    PyObject* headers = nullptr;
    if (get_item(m, t.k_headers.get(), &headers) < 0) return false;
    PyRef headers_ref(headers);
    std::vector<http::Header> parsed;
    if (headers && !parse_headers(headers, parsed)) return false;
    c.started = true;
    c.status = static_cast<int>(code);
    c.headers = std::move(parsed);
    return true;
}

// Hands `m` over: 0 go on, 1 wait for the window (a WebSocket's: while it stays full), 2 complete (the
// receivers are woken by the caller). -1 with a Python error for a bad message.
int send_now(PyObject* op, PyObject* m) {
    PyRef outcome(send_message(op, m));
    if (!outcome) return -1;
    return static_cast<int>(PyLong_AsLong(outcome.get()));
}

// send(message) -> 0 go on, 1 wait for the window, 2 complete.
PyObject* send_message(PyObject* op, PyObject* m) {
    Call& c = call_of(op);
    Types& t = types();
    PyObject* type = nullptr;
    if (get_item(m, t.k_type.get(), &type) < 0) return nullptr;
    PyRef type_ref(type);
    const char* name = type && PyUnicode_Check(type) ? PyUnicode_AsUTF8(type) : nullptr;
    if (!name) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "ASGI send(): the message needs a str 'type'");
        return nullptr;
    }
    std::string_view kind = name;
    if (c.is_websocket) return ws_send(c, m, kind);
    if (kind == "http.response.start") {
        if (c.started) {
            PyErr_SetString(PyExc_RuntimeError, "ASGI send(): http.response.start was already sent");
            return nullptr;
        }
        if (!parse_start(c, m)) return nullptr;
        return PyLong_FromLong(0);
    }
    if (kind == "http.response.trailers") return PyLong_FromLong(0);  // not advertised: ignored
    if (kind != "http.response.body") {
        PyErr_Format(PyExc_ValueError, "ASGI send(): unexpected message type '%s' for an HTTP connection", name);
        return nullptr;
    }
    if (!c.started) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI send(): http.response.body before http.response.start");
        return nullptr;
    }
    if (c.complete) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI send(): http.response.body after the response was complete");
        return nullptr;
    }
    std::string body;
    PyObject* body_obj = nullptr;
    if (get_item(m, t.k_body.get(), &body_obj) < 0) return nullptr;
    PyRef body_ref(body_obj);
    if (body_obj && !bytes_of(body_obj, "'body'", body)) return nullptr;
    PyObject* more_obj = nullptr;
    if (get_item(m, t.k_more_body.get(), &more_obj) < 0) return nullptr;
    PyRef more_ref(more_obj);
    int more = more_obj ? PyObject_IsTrue(more_obj) : 0;
    if (more < 0) return nullptr;
    // After the client has gone, what is sent is dropped by the I/O thread (or the stream says Gone):
    // nothing raises. (A client that only half-closed its side still gets the response.)
    if (!c.streaming) {
        http::Response r;
        r.status = c.status;
        r.headers = std::move(c.headers);
        r.body = std::move(body);
        r.stream = more != 0;
        c.responder.send(std::move(r));
        if (more) {
            c.streaming = true;
            return PyLong_FromLong(0);
        }
        c.complete = true;
        return PyLong_FromLong(2);
    }
    http::Responder::ChunkResult sent = http::Responder::ChunkResult::Sent;
    if (!body.empty()) {
        WorkerState& w = worker_of(c.worker.get());
        sent = c.responder.try_send_chunk(std::move(body), [inbox = w.inbox, id = c.id] { inbox->wake(id); });
    }
    if (sent == http::Responder::ChunkResult::Gone) c.gone->store(true);
    if (!more) {
        c.responder.finish();
        c.complete = true;
        return PyLong_FromLong(2);
    }
    return PyLong_FromLong(sent == http::Responder::ChunkResult::Full ? 1 : 0);
}

// Resolves the futures parked on the call (receive() or send() waiting): they try again. False
// with a Python error.
bool wake(Call& c) {
    if (!c.waiters) return true;
    Types& t = types();
    PyRef waiters = std::exchange(c.waiters, PyRef());
    for (Py_ssize_t i = 0, n = PyList_GET_SIZE(waiters.get()); i < n; ++i) {
        PyObject* f = PyList_GET_ITEM(waiters.get(), i);
        PyRef done(PyObject_CallMethodNoArgs(f, t.s_done.get()));
        if (!done) return false;
        if (done.get() == Py_True) continue;  // cancelled (its task was)
        PyRef r(PyObject_CallMethodOneArg(f, t.s_set_result.get(), Py_None));
        if (!r) return false;
    }
    return true;
}

PyObject* call_wake(PyObject* op, PyObject*) {
    if (!wake(call_of(op))) return nullptr;
    Py_RETURN_NONE;
}

// ---- receive() and send(): awaitables in C ----
//
// The ASGI callables an application gets are the HttpCall's bound methods receive and send. Each
// call returns a Step: a coroutine-like object (__await__, send, throw, close: asyncio.create_task
// and collections.abc.Coroutine take it, as Django Channels' await_many_dispatch needs) that does its
// work when first stepped, as a coroutine would. When the answer is there (the body has arrived, the
// response fits the window: the usual case) that first step returns it at once, with no Python frame,
// closure or future. Otherwise it yields a future of the loop (_asyncio_future_blocking set, as
// Future.__await__ does), parked on the call and resolved through the inbox, and tries again when the
// task resumes it. A cancellation arrives as throw(): the Step ends and the exception goes on up.

struct StepObject {
    PyObject_HEAD
    PyObject* call;     // the HttpCall (strong)
    PyObject* message;  // send()'s message (strong) until it is handed over
    PyObject* waiter;   // the future yielded, while suspended (strong)
    bool is_send;       // a send(), not a receive()
    bool sent;          // send(): the message was handed over; a resume only waits for the window
    bool done;
};

PyObject* new_step(PyObject* call, PyObject* message) {
    PyTypeObject* type = reinterpret_cast<PyTypeObject*>(types().step.get());
    auto* st = PyObject_GC_New(StepObject, type);
    if (!st) return nullptr;
    st->call = Py_NewRef(call);
    st->message = Py_XNewRef(message);
    st->waiter = nullptr;
    st->is_send = message != nullptr;
    st->sent = st->done = false;
    PyObject_GC_Track(st);
    return reinterpret_cast<PyObject*>(st);
}

int step_traverse(PyObject* op, visitproc visit, void* arg) {
    auto* st = reinterpret_cast<StepObject*>(op);
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(st->call);
    Py_VISIT(st->message);
    Py_VISIT(st->waiter);
    return 0;
}

int step_clear(PyObject* op) {
    auto* st = reinterpret_cast<StepObject*>(op);
    st->done = true;
    Py_CLEAR(st->call);
    Py_CLEAR(st->message);
    Py_CLEAR(st->waiter);
    return 0;
}

void step_dealloc(PyObject* op) {
    PyObject_GC_UnTrack(op);
    step_clear(op);
    PyTypeObject* type = Py_TYPE(op);
    type->tp_free(op);
    Py_DECREF(type);
}

// Yields a new future parked on the call.
PySendResult step_suspend(StepObject* st, PyObject** result) {
    Call& c = call_of(st->call);
    WorkerState& w = worker_of(c.worker.get());
    if (!w.create_future) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI receive()/send() waited outside the worker's event loop");
        return PYGEN_ERROR;
    }
    PyRef future(PyObject_CallNoArgs(w.create_future.get()));
    if (!future || PyObject_SetAttr(future.get(), types().s_blocking.get(), Py_True) < 0) return PYGEN_ERROR;
    if (!c.waiters) {
        c.waiters = PyRef(PyList_New(0));
        if (!c.waiters) return PYGEN_ERROR;
    }
    if (PyList_Append(c.waiters.get(), future.get()) < 0) return PYGEN_ERROR;
    st->waiter = Py_NewRef(future.get());
    *result = future.release();
    return PYGEN_NEXT;
}

PySendResult step_finish(StepObject* st, PyObject* value, PyObject** result) {
    st->done = true;
    Py_CLEAR(st->waiter);
    Py_CLEAR(st->message);
    *result = value;
    return value ? PYGEN_RETURN : PYGEN_ERROR;
}

// am_send: one step (the value sent in is ignored: the task resumes with None).
PySendResult step_send(PyObject* op, PyObject*, PyObject** result) {
    auto* st = reinterpret_cast<StepObject*>(op);
    *result = nullptr;
    if (st->done || !st->call) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an ASGI receive() or send() already awaited");
        return PYGEN_ERROR;
    }
    Py_CLEAR(st->waiter);
    Call& c = call_of(st->call);
    if (!st->is_send) {
        PyObject* m = receive_now(st->call);
        if (m != Py_None) return step_finish(st, m, result);  // a message, or an error
        Py_DECREF(m);
        return step_suspend(st, result);
    }
    if (!st->sent) {
        st->sent = true;
        int outcome = send_now(st->call, st->message);
        Py_CLEAR(st->message);
        if (outcome < 0) return step_finish(st, nullptr, result);
        if (outcome == 2 && !wake(c)) return step_finish(st, nullptr, result);  // complete: receive() says disconnect
        // 1: the client has a window's worth unread (a WebSocket's send queue is full, unless
        // on_writable() came already): wait for it to catch up.
        if (outcome != 1 || (c.is_websocket && !c.events->full.load())) {
            return step_finish(st, Py_NewRef(Py_None), result);
        }
        return step_suspend(st, result);
    }
    // Resumed after a wait: an HTTP stream goes on (its window has room, or the client left); a
    // WebSocket waits while its send queue stays full.
    if (c.is_websocket && c.events->full.load()) return step_suspend(st, result);
    return step_finish(st, Py_NewRef(Py_None), result);
}

// The result as a generator's protocol says it: the yielded value, or NULL with StopIteration(value).
PyObject* step_result(PySendResult r, PyObject* result, bool none_without_exception) {
    if (r == PYGEN_NEXT) return result;
    if (r == PYGEN_ERROR) return nullptr;
    if (result == Py_None && none_without_exception) {  // tp_iternext: NULL without an error is StopIteration
        Py_DECREF(result);
        return nullptr;
    }
    PyRef stop(PyObject_CallOneArg(PyExc_StopIteration, result));  // wraps a tuple value as one argument
    Py_DECREF(result);
    if (stop) PyErr_SetObject(PyExc_StopIteration, stop.get());
    return nullptr;
}

PyObject* step_iternext(PyObject* op) {
    PyObject* result;
    PySendResult r = step_send(op, Py_None, &result);
    return step_result(r, result, true);
}

PyObject* step_send_method(PyObject* op, PyObject* value) {
    PyObject* result;
    PySendResult r = step_send(op, value, &result);
    return step_result(r, result, false);
}

// throw(exc) or throw(type[, value[, traceback]]): the task was cancelled (or the exception comes
// from elsewhere): the step ends and the exception is raised from it.
PyObject* step_throw(PyObject* op, PyObject* const* args, Py_ssize_t n) {
    if (n < 1 || n > 3) {
        PyErr_SetString(PyExc_TypeError, "throw() takes 1 to 3 arguments");
        return nullptr;
    }
    auto* st = reinterpret_cast<StepObject*>(op);
    st->done = true;
    Py_CLEAR(st->waiter);
    Py_CLEAR(st->message);
    PyObject* typ = args[0];
    if (PyExceptionInstance_Check(typ)) {
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(typ)), typ);
    } else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, n > 1 ? args[1] : Py_None);
    } else {
        PyErr_Format(PyExc_TypeError, "exceptions must derive from BaseException, not %.100s", Py_TYPE(typ)->tp_name);
    }
    return nullptr;
}

PyObject* step_close(PyObject* op, PyObject*) {
    auto* st = reinterpret_cast<StepObject*>(op);
    st->done = true;
    Py_CLEAR(st->waiter);
    Py_CLEAR(st->message);
    Py_RETURN_NONE;
}

PyObject* step_await(PyObject* op) { return Py_NewRef(op); }

PyMethodDef step_methods[] = {
    {"send", step_send_method, METH_O, "send(value): one step (the value is ignored)"},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void*>(step_throw)), METH_FASTCALL,
     "throw(exc): end the step with exc"},
    {"close", step_close, METH_NOARGS, "close(): end the step"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot step_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(step_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(step_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(step_clear)},
    {Py_tp_iter, reinterpret_cast<void*>(step_await)},
    {Py_tp_iternext, reinterpret_cast<void*>(step_iternext)},
    {Py_tp_methods, step_methods},
    {Py_am_await, reinterpret_cast<void*>(step_await)},
    {Py_am_send, reinterpret_cast<void*>(step_send)},
    {Py_tp_doc, const_cast<char*>("An ASGI receive() or send() in progress (awaitable)")},
    {0, nullptr},
};

// Made only by HttpCall.receive() and send(), never from Python.
PyType_Spec step_spec = {"manygil.asgi.Step", sizeof(StepObject), 0,
                         Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION, step_slots};

// The application's receive and send: callables bound to the call, each returning a Step. They are
// their own type, not HttpCall's bound methods, so that they can carry inspect.markcoroutinefunction's
// mark (set on the type in types()): inspect.iscoroutinefunction and asgiref's async_to_sync then take
// them for the coroutine functions they stand for (Channels' sync consumers call
// async_to_sync(send), which warns about a callable that is not marked).
struct BoundObject {
    PyObject_HEAD
    PyObject* call;  // the HttpCall (strong)
    vectorcallfunc vectorcall;
    bool is_send;
};

PyObject* bound_vectorcall(PyObject* op, PyObject* const* args, std::size_t nargsf, PyObject* kwnames) {
    auto* b = reinterpret_cast<BoundObject*>(op);
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if ((kwnames && PyTuple_GET_SIZE(kwnames)) || n != (b->is_send ? 1 : 0)) {
        PyErr_SetString(PyExc_TypeError, b->is_send ? "ASGI send() takes one argument, the message"
                                                    : "ASGI receive() takes no arguments");
        return nullptr;
    }
    return new_step(b->call, b->is_send ? args[0] : nullptr);
}

PyObject* new_bound(PyObject* call, bool is_send) {
    PyTypeObject* type = reinterpret_cast<PyTypeObject*>(types().bound.get());
    auto* b = PyObject_GC_New(BoundObject, type);
    if (!b) return nullptr;
    b->call = Py_NewRef(call);
    b->vectorcall = bound_vectorcall;
    b->is_send = is_send;
    PyObject_GC_Track(b);
    return reinterpret_cast<PyObject*>(b);
}

int bound_traverse(PyObject* op, visitproc visit, void* arg) {
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(reinterpret_cast<BoundObject*>(op)->call);
    return 0;
}

int bound_clear(PyObject* op) {
    Py_CLEAR(reinterpret_cast<BoundObject*>(op)->call);
    return 0;
}

void bound_dealloc(PyObject* op) {
    PyObject_GC_UnTrack(op);
    bound_clear(op);
    PyTypeObject* type = Py_TYPE(op);
    type->tp_free(op);
    Py_DECREF(type);
}

PyObject* bound_repr(PyObject* op) {
    return PyUnicode_FromString(reinterpret_cast<BoundObject*>(op)->is_send ? "<manygil ASGI send>"
                                                                           : "<manygil ASGI receive>");
}

PyMemberDef bound_members[] = {
    {"__vectorcalloffset__", Py_T_PYSSIZET, offsetof(BoundObject, vectorcall), Py_READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot bound_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(bound_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(bound_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(bound_clear)},
    {Py_tp_call, reinterpret_cast<void*>(PyVectorcall_Call)},
    {Py_tp_members, bound_members},
    {Py_tp_repr, reinterpret_cast<void*>(bound_repr)},
    {Py_tp_doc, const_cast<char*>("An ASGI receive or send callable (returns an awaitable)")},
    {0, nullptr},
};

// Made only by HttpCall.callables(), never from Python. Not immutable: types() sets the mark on it.
PyType_Spec bound_spec = {"manygil.asgi.Callable", sizeof(BoundObject), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                              Py_TPFLAGS_DISALLOW_INSTANTIATION,
                          bound_slots};

// callables() -> (receive, send), what the application is called with.
PyObject* call_callables(PyObject* op, PyObject*) {
    PyRef receive(new_bound(op, false));
    PyRef send(receive ? new_bound(op, true) : nullptr);
    return send ? PyTuple_Pack(2, receive.get(), send.get()) : nullptr;
}

std::string describe_request(const Call& c) { return c.request.method + " " + c.request.target; }

// ---- WebSocket calls (ASGI's websocket.* events) ----

std::string describe_websocket(const Call& c) { return "WebSocket " + c.request.target; }

// A message dict {"type": type} plus one more key (or none).
PyObject* message_with(PyObject* type_value, PyObject* key, PyRef value) {
    PyRef m(message(type_value));
    if (!m) return nullptr;
    if (key) {
        if (!value || PyDict_SetItem(m.get(), key, value.get()) < 0) return nullptr;
    }
    return m.release();
}

// receive(): websocket.connect first; then each message the client sent (acknowledged to the front
// end as it is taken: receive backpressure); then websocket.disconnect with the close code. None:
// wait (park a future).
PyObject* ws_receive(Call& c) {
    Types& t = types();
    if (!c.connect_given) {
        c.connect_given = true;
        return message(t.ws_connect.get());
    }
    std::pair<bool, std::string> next;
    bool have = false, closed = false;
    int code = 1006;
    std::string reason;
    {
        std::lock_guard lock(c.events->mu);
        if (!c.events->messages.empty()) {
            next = std::move(c.events->messages.front());
            c.events->messages.pop_front();
            have = true;
        } else if (c.events->closed) {
            closed = true;
            code = c.events->code;
            reason = c.events->reason;
        }
    }
    if (have) {
        c.websocket.consumed(next.second.size());
        const std::string& d = next.second;
        if (next.first) {
            return message_with(t.ws_receive.get(), t.k_text.get(),
                                PyRef(PyUnicode_DecodeUTF8(d.data(), static_cast<Py_ssize_t>(d.size()), "replace")));
        }
        return message_with(t.ws_receive.get(), t.k_bytes.get(),
                            PyRef(PyBytes_FromStringAndSize(d.data(), static_cast<Py_ssize_t>(d.size()))));
    }
    // Denied before accept: no connection ever opened (1006, as the client sees it).
    if (!closed && !c.accepted && (c.stage == WsStage::Closed)) closed = true;
    if (!closed) Py_RETURN_NONE;
    PyRef m(message_with(t.ws_disconnect.get(), t.k_code.get(), PyRef(PyLong_FromLong(code))));
    PyRef r(PyUnicode_DecodeUTF8(reason.data(), static_cast<Py_ssize_t>(reason.size()), "replace"));
    if (!m || !r || PyDict_SetItem(m.get(), t.k_reason.get(), r.get()) < 0) return nullptr;
    return m.release();
}

// m[key] as a str, or "" when absent or None. False with a Python error.
bool optional_str(PyObject* m, PyObject* key, const char* what, std::string& out) {
    PyObject* v = nullptr;
    if (get_item(m, key, &v) < 0) return false;
    PyRef ref(v);
    out.clear();
    if (!v || v == Py_None) return true;
    if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "ASGI send(): %s must be a str, not %.100s", what, Py_TYPE(v)->tp_name);
        return false;
    }
    Py_ssize_t n;
    const char* text = PyUnicode_AsUTF8AndSize(v, &n);
    if (!text) return false;
    out.assign(text, static_cast<std::size_t>(n));
    return true;
}

void ws_deny(Call& c, http::Response response) {
    try {
        c.websocket.deny(std::move(response));
    } catch (const std::exception&) {  // already answered: nothing more to say
    }
    c.stage = WsStage::Closed;
}

// send(message) -> 0 go on, 1 wait (the send queue is full: the Step waits while events->full), 2 denied.
PyObject* ws_send(Call& c, PyObject* m, std::string_view kind) {
    Types& t = types();
    if (kind == "websocket.accept") {
        if (c.stage != WsStage::Connecting) {
            PyErr_SetString(PyExc_RuntimeError, "ASGI send(): websocket.accept after the WebSocket was accepted, "
                                                "closed or denied");
            return nullptr;
        }
        std::string subprotocol;
        if (!optional_str(m, t.k_subprotocol.get(), "'subprotocol'", subprotocol)) return nullptr;
        PyObject* headers = nullptr;
        if (get_item(m, t.k_headers.get(), &headers) < 0) return nullptr;
        PyRef headers_ref(headers);
        std::vector<http::Header> parsed;
        if (headers && !parse_headers(headers, parsed)) return nullptr;
        WorkerState& w = worker_of(c.worker.get());
        try {
            c.websocket.accept(std::make_shared<WsListener>(c.events, w.inbox, c.id), std::move(subprotocol),
                               std::move(parsed));
        } catch (const std::exception& e) {
            PyErr_Format(PyExc_RuntimeError, "ASGI send(): websocket.accept failed: %s", e.what());
            return nullptr;
        }
        c.stage = WsStage::Open;
        c.accepted = true;
        return PyLong_FromLong(0);
    }
    if (kind == "websocket.send") {
        if (c.stage != WsStage::Open) {
            PyErr_SetString(PyExc_RuntimeError, c.stage == WsStage::Closed
                                                    ? "ASGI send(): websocket.send after websocket.close"
                                                    : "ASGI send(): websocket.send before websocket.accept");
            return nullptr;
        }
        PyObject *bytes_obj = nullptr, *text_obj = nullptr;
        if (get_item(m, t.k_bytes.get(), &bytes_obj) < 0) return nullptr;
        PyRef bytes_ref(bytes_obj);
        if (get_item(m, t.k_text.get(), &text_obj) < 0) return nullptr;
        PyRef text_ref(text_obj);
        bool has_bytes = bytes_obj && bytes_obj != Py_None, has_text = text_obj && text_obj != Py_None;
        if (has_bytes == has_text) {
            PyErr_SetString(PyExc_ValueError, "ASGI send(): websocket.send needs exactly one of 'bytes' and 'text'");
            return nullptr;
        }
        std::string data;
        if (has_bytes) {
            if (!bytes_of(bytes_obj, "'bytes'", data)) return nullptr;
        } else {
            if (!optional_str(m, t.k_text.get(), "'text'", data)) return nullptr;
        }
        bool closed;
        {
            std::lock_guard lock(c.events->mu);
            closed = c.events->closed;  // the listener heard the close, or the client left before accept
        }
        if (closed) {
            PyErr_SetString(PyExc_ConnectionResetError, "ASGI send(): the WebSocket is closed (the client has gone)");
            return nullptr;
        }
        // Set before the send: on_writable() (which clears it) can only follow a QueueFull.
        c.events->full.store(true);
        http::WebSocket::SendResult r = c.websocket.send(has_text, std::move(data));
        if (r != http::WebSocket::SendResult::QueueFull) c.events->full.store(false);
        if (r == http::WebSocket::SendResult::Gone) {
            // asgiref spec 2.4: a send on a closed connection raises an OSError subclass.
            PyErr_SetString(PyExc_ConnectionResetError, "ASGI send(): the WebSocket is closed (the client has gone)");
            return nullptr;
        }
        return PyLong_FromLong(r == http::WebSocket::SendResult::QueueFull ? 1 : 0);
    }
    if (kind == "websocket.close") {
        PyObject* code_obj = nullptr;
        if (get_item(m, t.k_code.get(), &code_obj) < 0) return nullptr;
        PyRef code_ref(code_obj);
        long code = 1000;
        if (code_obj && code_obj != Py_None) {
            if (!PyLong_Check(code_obj)) {
                PyErr_Format(PyExc_TypeError, "ASGI send(): websocket.close's 'code' must be an int, not %.100s",
                             Py_TYPE(code_obj)->tp_name);
                return nullptr;
            }
            code = PyLong_AsLong(code_obj);
            if (code == -1 && PyErr_Occurred()) return nullptr;
        }
        std::string reason;
        if (!optional_str(m, t.k_reason.get(), "'reason'", reason)) return nullptr;
        if (c.stage == WsStage::Connecting) {  // close before accept: the upgrade is refused
            ws_deny(c, http::Response(403, "Forbidden\n"));
            return PyLong_FromLong(2);
        }
        if (c.stage != WsStage::Open) return PyLong_FromLong(0);  // closed already: nothing to do
        if (code < 0 || code > 65535) code = 0;  // rejected just below
        try {
            c.websocket.close(static_cast<int>(code), std::move(reason));
        } catch (const std::invalid_argument& e) {
            PyErr_Format(PyExc_ValueError, "ASGI send(): websocket.close: %s", e.what());
            return nullptr;
        }
        c.stage = WsStage::Closed;
        return PyLong_FromLong(0);
    }
    if (kind == "websocket.http.response.start") {
        if (c.stage != WsStage::Connecting) {
            PyErr_SetString(PyExc_RuntimeError, "ASGI send(): websocket.http.response.start after the WebSocket "
                                                "was accepted, closed or denied");
            return nullptr;
        }
        if (!parse_start(c, m)) return nullptr;
        c.stage = WsStage::Denying;
        return PyLong_FromLong(0);
    }
    if (kind == "websocket.http.response.body") {
        if (c.stage != WsStage::Denying) {
            PyErr_SetString(PyExc_RuntimeError,
                            "ASGI send(): websocket.http.response.body without websocket.http.response.start");
            return nullptr;
        }
        PyObject* body_obj = nullptr;
        if (get_item(m, t.k_body.get(), &body_obj) < 0) return nullptr;
        PyRef body_ref(body_obj);
        std::string body;
        if (body_obj && !bytes_of(body_obj, "'body'", body)) return nullptr;
        PyObject* more_obj = nullptr;
        if (get_item(m, t.k_more_body.get(), &more_obj) < 0) return nullptr;
        PyRef more_ref(more_obj);
        int more = more_obj ? PyObject_IsTrue(more_obj) : 0;
        if (more < 0) return nullptr;
        c.denial_body += body;
        if (more) return PyLong_FromLong(0);
        http::Response r;
        r.status = c.status;
        r.headers = std::move(c.headers);
        r.body = std::move(c.denial_body);
        ws_deny(c, std::move(r));
        return PyLong_FromLong(2);
    }
    PyErr_Format(PyExc_ValueError, "ASGI send(): unexpected message type '%.100s' for a WebSocket connection",
                 std::string(kind).c_str());
    return nullptr;
}

// fail(status, text) for a WebSocket: `status` (403 for an exception, 503 when the server stops)
// answers an upgrade not accepted yet (500 for an exception amid a denial response); an open one is closed 1011 (1001 when the server stops).
void ws_fail(Call& c, int status, const std::string& why) {
    switch (c.stage) {
        case WsStage::Connecting:
        case WsStage::Denying:
            if (c.stage == WsStage::Denying && status == 403) status = 500;  // a denial response half sent
            log_call(c, http::LogLevel::error,
                     "manygil serve: " + std::to_string(status) + " for " + describe_websocket(c) + ": " + why);
            ws_deny(c, http::Response(status, std::string(http::reason_phrase(status)) + "\n"));
            return;
        case WsStage::Open: {
            bool gone;
            {
                std::lock_guard lock(c.events->mu);
                gone = c.events->closed;
            }
            log_call(c, gone || status == 503 ? http::LogLevel::info : http::LogLevel::error,
                     "manygil serve: " + describe_websocket(c) + (gone ? " (closed)" : " closed 1011") + ": " + why);
            if (!gone) c.websocket.close(status == 503 ? 1001 : 1011, status == 503 ? "server stopping" : "");
            c.stage = WsStage::Closed;
            return;
        }
        case WsStage::Closed:
            log_call(c, http::LogLevel::error, "manygil serve: " + describe_websocket(c) + ": " + why);
            return;
    }
}

// finish() for a WebSocket: not accepted -> 403; a denial response half sent -> 500; open -> close 1000.
void ws_finish(Call& c) {
    switch (c.stage) {
        case WsStage::Connecting:
            log_call(c, http::LogLevel::info, "manygil serve: 403 for " + describe_websocket(c) +
                                                  ": the application returned without accepting it");
            ws_deny(c, http::Response(403, "Forbidden\n"));
            return;
        case WsStage::Denying:
            log_call(c, http::LogLevel::error, "manygil serve: 500 for " + describe_websocket(c) +
                                                   ": the application returned before its denial response was complete");
            ws_deny(c, http::Response(500, "Internal Server Error\n"));
            return;
        case WsStage::Open:
            c.websocket.close(1000);
            c.stage = WsStage::Closed;
            return;
        case WsStage::Closed:
            return;
    }
}

PyObject* call_is_websocket(PyObject* op, PyObject*) { return PyBool_FromLong(call_of(op).is_websocket); }

// An HTTP response the application will not complete (it raised, timed out or returned early): a
// stream already begun is cut (a warning, `cut`), else `status` answers it (an error, `why`).
void end_response(Call& c, int status, const std::string& cut, const std::string& why) {
    if (c.streaming) {
        log_call(c, http::LogLevel::warning, "manygil serve: " + describe_request(c) + ": " + cut);
        c.responder.abort();
    } else {
        log_call(c, http::LogLevel::error,
                 "manygil serve: " + std::to_string(status) + " for " + describe_request(c) + ": " + why);
        c.responder.send(http::Response(status, std::string(http::reason_phrase(status)) + "\n"));
    }
    c.complete = true;
}

// fail(status, text): the application raised (500) or timed out (504).
PyObject* call_fail(PyObject* op, PyObject* args) {
    int status;
    const char* text;
    if (!PyArg_ParseTuple(args, "is:fail", &status, &text)) return nullptr;
    Call& c = call_of(op);
    leave(c);
    std::string why = text;
    if (c.is_websocket) {
        ws_fail(c, status, why);
        Py_RETURN_NONE;
    }
    if (c.complete || c.gone->load()) {
        log_call(c, http::LogLevel::error, "manygil serve: " + describe_request(c) + ": " + why);
        c.complete = true;
    } else {
        end_response(c, status, "the response was cut short after it began: " + why, why);
    }
    Py_RETURN_NONE;
}

// finish(): the application returned. (The caller then wakes what is parked: wake().)
PyObject* call_finish(PyObject* op, PyObject*) {
    Call& c = call_of(op);
    leave(c);
    if (c.is_websocket) {
        ws_finish(c);
        Py_RETURN_NONE;
    }
    if (c.complete || c.gone->load()) Py_RETURN_NONE;
    end_response(c, 500, "the application returned before its response was complete",
                 std::string("the application returned without ") +
                     (c.started ? "completing its response" : "sending a response"));
    Py_RETURN_NONE;
}

PyObject* call_repr(PyObject* op) {
    const Call& c = call_of(op);
    if (c.is_websocket) return PyUnicode_FromFormat("<manygil.asgi.HttpCall WebSocket %s>", c.request.target.c_str());
    return PyUnicode_FromFormat("<manygil.asgi.HttpCall %s %s>", c.request.method.c_str(), c.request.target.c_str());
}

PyMethodDef call_methods[] = {
    {"scope", call_scope, METH_O, "scope(state) -> the ASGI scope dict"},
    {"callables", call_callables, METH_NOARGS,
     "callables() -> (receive, send): the ASGI callables, each returning an awaitable (receive: the next "
     "message; send(message): hands the message over)"},
    {"wake", call_wake, METH_NOARGS, "wake(): a receive() or send() waiting tries again (the call has news)"},
    {"fail", call_fail, METH_VARARGS, "fail(status, text): answer status if nothing was sent, else cut"},
    {"finish", call_finish, METH_NOARGS, "finish(): the application returned"},
    {"is_websocket", call_is_websocket, METH_NOARGS, "is_websocket() -> a WebSocket connection, not an HTTP request"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot call_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(call_dealloc)},
    {Py_tp_methods, call_methods},
    {Py_tp_repr, reinterpret_cast<void*>(call_repr)},
    {Py_tp_doc, const_cast<char*>("One ASGI HTTP request on a worker's loop (manygil/asgi.hpp)")},
    {0, nullptr},
};

// Made only by Worker.drain(), never from Python.
PyType_Spec call_spec = {"manygil.asgi.HttpCall", sizeof(CallObject), 0,
                         Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, call_slots};

void free_types(PyObject* capsule) { delete static_cast<Types*>(PyCapsule_GetPointer(capsule, "manygil.asgi.types")); }

Types& types() {
    PyObject* capsule = manygil::detail::per_interpreter("manygil.asgi.types", []() -> PyObject* {
        auto t = std::make_unique<Types>();
        t->worker = PyRef(PyType_FromSpec(&worker_spec));
        t->call = PyRef(PyType_FromSpec(&call_spec));
        t->step = PyRef(PyType_FromSpec(&step_spec));
        t->bound = PyRef(PyType_FromSpec(&bound_spec));
        if (!t->bound) return nullptr;
        {
            // inspect.markcoroutinefunction's mark (3.12+), on the type: every receive and send carries it.
            PyRef inspect(PyImport_ImportModule("inspect"));
            if (!inspect) return nullptr;
            PyRef mark(PyObject_GetAttrString(inspect.get(), "_is_coroutine_mark"));
            if (!mark || PyObject_SetAttrString(t->bound.get(), "_is_coroutine_marker", mark.get()) < 0) return nullptr;
        }
        t->s_done = PyRef(PyUnicode_InternFromString("done"));
        t->s_set_result = PyRef(PyUnicode_InternFromString("set_result"));
        t->s_blocking = PyRef(PyUnicode_InternFromString("_asyncio_future_blocking"));
        t->k_type = PyRef(PyUnicode_InternFromString("type"));
        t->k_body = PyRef(PyUnicode_InternFromString("body"));
        t->k_more_body = PyRef(PyUnicode_InternFromString("more_body"));
        t->k_status = PyRef(PyUnicode_InternFromString("status"));
        t->k_headers = PyRef(PyUnicode_InternFromString("headers"));
        t->http_request = PyRef(PyUnicode_InternFromString("http.request"));
        t->http_disconnect = PyRef(PyUnicode_InternFromString("http.disconnect"));
        t->k_text = PyRef(PyUnicode_InternFromString("text"));
        t->k_bytes = PyRef(PyUnicode_InternFromString("bytes"));
        t->k_code = PyRef(PyUnicode_InternFromString("code"));
        t->k_reason = PyRef(PyUnicode_InternFromString("reason"));
        t->k_subprotocol = PyRef(PyUnicode_InternFromString("subprotocol"));
        t->ws_connect = PyRef(PyUnicode_InternFromString("websocket.connect"));
        t->ws_receive = PyRef(PyUnicode_InternFromString("websocket.receive"));
        t->ws_disconnect = PyRef(PyUnicode_InternFromString("websocket.disconnect"));
        if (!t->worker || !t->call || !t->step || !t->s_done || !t->s_set_result || !t->s_blocking || !t->k_type || !t->k_body || !t->k_more_body || !t->k_status || !t->k_headers ||
            !t->http_request || !t->http_disconnect || !t->k_text || !t->k_bytes || !t->k_code || !t->k_reason ||
            !t->k_subprotocol || !t->ws_connect || !t->ws_receive || !t->ws_disconnect) {
            return nullptr;
        }
        PyObject* capsule = PyCapsule_New(t.get(), "manygil.asgi.types", free_types);
        if (capsule) t.release();
        return capsule;
    });
    return *static_cast<Types*>(PyCapsule_GetPointer(capsule, "manygil.asgi.types"));
}

}  // namespace

PyRef new_worker(std::shared_ptr<AsgiShared> shared, std::shared_ptr<Inbox> inbox) {
    PyTypeObject* type = reinterpret_cast<PyTypeObject*>(types().worker.get());
    PyRef op(type->tp_alloc(type, 0));
    if (!op) manygil::detail::throw_python_error();
    reinterpret_cast<WorkerObject*>(op.get())->state = new WorkerState{std::move(shared), std::move(inbox), {}, false, {}};
    return op;
}

bool worker_reported_start(PyObject* worker) { return worker_of(worker).reported_start; }

}  // namespace manygil::asgi::detail
