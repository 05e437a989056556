#include "http_server_object.hpp"

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "manygil/asgi.hpp"
#include "manygil/errors.hpp"
#include "manygil/http.hpp"
#include "manygil/wsgi.hpp"
#include "module_state.hpp"
#include "pool_object.hpp"
#include "without_gil.hpp"

namespace manygil::ext {

namespace {

struct HttpServerObject {
    PyObject_HEAD
    PyObject* pool;  // the _core.Pool whose workers run the application (kept alive)
    http::Handler* handler;     // one of:
    wsgi::WsgiHandler* wsgi;    //   interface "wsgi"
    asgi::AsgiHandler* asgi;    //   interface "asgi": its loops occupy the pool's workers
    http::Server* server;
};

HttpServerObject* as_server(PyObject* op) { return reinterpret_cast<HttpServerObject*>(op); }

std::chrono::milliseconds millis(double seconds) {
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
}

// The strings of a Python sequence of str, appended to `out`. False with a Python error.
bool strings_of(PyObject* sequence, const char* what, std::vector<std::string>& out) {
    PyObject* seq = PySequence_Fast(sequence, what);
    if (!seq) return false;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
        const char* text = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
        if (!text) {
            Py_DECREF(seq);
            return false;
        }
        out.emplace_back(text);
    }
    Py_DECREF(seq);
    return true;
}

// HttpServer(pool, app, bind, *, io_threads, backlog, max_body, max_header_bytes, max_pending, timeout,
//            header_timeout, keep_alive_timeout, access_log, forwarded_allow_ips, access_log_format,
//            log_level, certfile, keyfile, interface, lifespan, root_path, max_requests,
//            max_requests_jitter, recycle_grace)
// interface "asgi": the pool's workers run ASGI event loops (manygil/asgi.hpp); the constructor
// waits (without the GIL) for every worker's lifespan startup and raises RuntimeError with the
// application's message if one fails.
PyObject* server_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    static const char* kw[] = {"pool", "app", "bind", "io_threads", "backlog", "max_body", "max_header_bytes",
                               "max_pending", "timeout", "header_timeout", "keep_alive_timeout", "access_log",
                               "forwarded_allow_ips", "access_log_format", "log_level", "certfile", "keyfile",
                               "interface", "lifespan", "root_path", "max_requests", "max_requests_jitter",
                               "recycle_grace", nullptr};
    PyObject *pool, *bind, *timeout = Py_None, *forwarded = nullptr;
    const char* app;
    const char* access_log_format = nullptr;
    const char* log_level = "info";
    const char *certfile = nullptr, *keyfile = nullptr;
    const char *interface = "wsgi", *lifespan = "auto", *root_path = "";
    Py_ssize_t io_threads = 1, backlog = 1024, max_body = Py_ssize_t{1} << 30, max_header_bytes = 64 * 1024,
               max_pending = 1024, max_requests = 0, max_requests_jitter = 0;
    double header_timeout = 10.0, keep_alive_timeout = 75.0, recycle_grace = 30.0;
    int access_log = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OsO|$nnnnnOddpOzszzsssnnd:HttpServer", const_cast<char**>(kw),
                                     &pool, &app, &bind, &io_threads, &backlog, &max_body, &max_header_bytes,
                                     &max_pending, &timeout, &header_timeout, &keep_alive_timeout, &access_log,
                                     &forwarded, &access_log_format, &log_level, &certfile, &keyfile, &interface,
                                     &lifespan, &root_path, &max_requests, &max_requests_jitter, &recycle_grace)) {
        return nullptr;
    }
    if (!(recycle_grace >= 0)) {
        PyErr_SetString(PyExc_ValueError, "recycle_grace must be >= 0");
        return nullptr;
    }
    if (max_requests < 0 || max_requests_jitter < 0) {
        PyErr_SetString(PyExc_ValueError, "max_requests and max_requests_jitter must be >= 0");
        return nullptr;
    }
    std::string_view iface = interface, life = lifespan;
    if (iface != "wsgi" && iface != "asgi") {
        PyErr_Format(PyExc_ValueError, "interface must be 'wsgi' or 'asgi', not '%s'", interface);
        return nullptr;
    }
    if (life != "auto" && life != "on" && life != "off") {
        PyErr_Format(PyExc_ValueError, "lifespan must be 'auto', 'on' or 'off', not '%s'", lifespan);
        return nullptr;
    }
    std::optional<http::LogLevel> level = http::parse_log_level(log_level);
    if (!level) {
        PyErr_Format(PyExc_ValueError, "log_level must be 'debug', 'info', 'warning', 'error' or 'critical', not '%s'",
                     log_level);
        return nullptr;
    }
    Pool* target = pool_of(pool, state_of_type(type)->pool_type);
    if (!target) return nullptr;
    http::ServerOptions options;
    options.bind.clear();
    if (!strings_of(bind, "bind must be a sequence of addresses", options.bind)) return nullptr;
    if (io_threads < 1 || backlog < 1 || max_body < 0 || max_header_bytes < 256 || max_pending < 1 ||
        header_timeout <= 0 || keep_alive_timeout <= 0) {
        PyErr_SetString(PyExc_ValueError,
                        "io_threads, backlog and max_pending must be >= 1, max_body >= 0, max_header_bytes >= 256, "
                        "and the timeouts > 0");
        return nullptr;
    }
    options.io_threads = static_cast<std::size_t>(io_threads);
    options.backlog = static_cast<int>(backlog);
    options.limits.max_body = static_cast<std::size_t>(max_body);
    options.limits.max_header_bytes = static_cast<std::size_t>(max_header_bytes);
    options.max_pending = static_cast<std::size_t>(max_pending);
    options.header_timeout = millis(header_timeout);
    options.keep_alive_timeout = millis(keep_alive_timeout);
    options.access_log = access_log != 0;
    if (access_log_format) options.access_log_format = access_log_format;
    options.log_level = *level;
    if (keyfile && !certfile) {
        PyErr_SetString(PyExc_ValueError, "keyfile needs certfile (the certificate it belongs to)");
        return nullptr;
    }
    if (certfile) {
        if (!*certfile) {
            PyErr_SetString(PyExc_ValueError, "certfile must name a file");
            return nullptr;
        }
        options.tls.emplace();
        options.tls->certfile = certfile;
        if (keyfile) options.tls->keyfile = keyfile;
    }
    wsgi::WsgiOptions wsgi_options;
    wsgi_options.app = app;
    wsgi_options.log_level = *level;
    if (forwarded) {
        wsgi_options.forwarded_allow_ips.clear();
        if (!strings_of(forwarded, "forwarded_allow_ips must be a sequence of addresses",
                        wsgi_options.forwarded_allow_ips)) {
            return nullptr;
        }
    }
    if (timeout != Py_None) {
        double seconds = PyFloat_AsDouble(timeout);
        if (seconds == -1.0 && PyErr_Occurred()) return nullptr;
        if (seconds <= 0) {
            PyErr_SetString(PyExc_ValueError, "timeout must be > 0 or None");
            return nullptr;
        }
        wsgi_options.timeout = std::chrono::duration<double>(seconds);
        // The worker interrupts the call at `timeout` and answers 504 itself (within milliseconds);
        // a call that does not come back to bytecode (blocked in C) is answered 504 by the front end
        // half a second later.
        options.response_timeout = millis(seconds + 0.5);
    }

    PyObject* self = type->tp_alloc(type, 0);
    if (!self) return nullptr;
    HttpServerObject* s = as_server(self);
    s->pool = Py_NewRef(pool);
    try {
        if (iface == "asgi") {
            asgi::AsgiOptions asgi_options;
            asgi_options.app = std::move(wsgi_options.app);
            asgi_options.timeout = wsgi_options.timeout;
            asgi_options.root_path = root_path;
            asgi_options.forwarded_allow_ips = std::move(wsgi_options.forwarded_allow_ips);
            asgi_options.lifespan = life == "on" ? asgi::Lifespan::On : life == "off" ? asgi::Lifespan::Off
                                                                                     : asgi::Lifespan::Auto;
            asgi_options.log_level = *level;
            asgi_options.max_requests = static_cast<std::size_t>(max_requests);
            asgi_options.max_requests_jitter = static_cast<std::size_t>(max_requests_jitter);
            asgi_options.recycle_grace = std::chrono::duration<double>(recycle_grace);
            s->asgi = new asgi::AsgiHandler(*target, std::move(asgi_options));
            s->handler = s->asgi;
            std::optional<std::string> failed;
            without_gil([&] { failed = s->asgi->wait_started(); });  // the workers need the main GIL to start
            if (failed) {
                PyErr_SetString(PyExc_RuntimeError, failed->c_str());
                Py_DECREF(self);  // stops the loops that did start (their lifespan shutdown runs)
                return nullptr;
            }
        } else {
            s->wsgi = new wsgi::WsgiHandler(*target, std::move(wsgi_options));
            s->handler = s->wsgi;
        }
        s->server = new http::Server(std::move(options), *s->handler);
    } catch (const std::system_error& e) {
        Py_DECREF(self);
        PyErr_SetObject(PyExc_OSError, Py_BuildValue("(is)", e.code().value(), e.what()));
        return nullptr;
    } catch (const InvalidArgument& e) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_ValueError, e.what());
        return nullptr;
    } catch (const std::invalid_argument& e) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_ValueError, e.what());
        return nullptr;
    } catch (const std::exception& e) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
    return self;
}

void stop_and_free(HttpServerObject* s, std::chrono::milliseconds grace) {
    http::Server* server = s->server;
    s->server = nullptr;
    if (server) {
        // The I/O threads never take a GIL, but the workers answering in-flight requests may want ours.
        without_gil([&] {
            server->stop(grace);
            delete server;
        });
    }
    if (asgi::AsgiHandler* a = s->asgi) {
        // After the server: the requests in flight have had their grace. Then the loops' lifespan
        // shutdown, which may want our GIL's interpreter to be free of us.
        without_gil([&] { a->stop(); });
    }
    delete s->wsgi;
    delete s->asgi;
    s->wsgi = nullptr;
    s->asgi = nullptr;
    s->handler = nullptr;
}

void server_dealloc(PyObject* op) {
    HttpServerObject* s = as_server(op);
    stop_and_free(s, std::chrono::milliseconds(0));
    Py_CLEAR(s->pool);
    PyTypeObject* type = Py_TYPE(op);
    type->tp_free(op);
    Py_DECREF(type);
}

PyObject* server_addresses(PyObject* op, PyObject*) {
    HttpServerObject* s = as_server(op);
    PyObject* out = PyList_New(0);
    if (!out || !s->server) return out;
    for (const std::string& a : s->server->addresses()) {
        PyObject* str = PyUnicode_FromString(a.c_str());
        if (!str || PyList_Append(out, str) < 0) {
            Py_XDECREF(str);
            Py_DECREF(out);
            return nullptr;
        }
        Py_DECREF(str);
    }
    return out;
}

PyObject* server_stop(PyObject* op, PyObject* arg) {
    double grace = PyFloat_AsDouble(arg);
    if (grace == -1.0 && PyErr_Occurred()) return nullptr;
    if (grace < 0) grace = 0;
    stop_and_free(as_server(op), millis(grace));
    Py_RETURN_NONE;
}

PyObject* server_stats(PyObject* op, PyObject*) {
    HttpServerObject* s = as_server(op);
    http::ServerStats st = s->server ? s->server->stats() : http::ServerStats{};
    return Py_BuildValue("{sKsKsKsKsKsK}", "connections_accepted", (unsigned long long)st.connections_accepted,
                         "connections_open", (unsigned long long)st.connections_open, "requests",
                         (unsigned long long)st.requests, "responses", (unsigned long long)st.responses, "rejected",
                         (unsigned long long)st.rejected, "pending", (unsigned long long)st.pending);
}

PyObject* server_running(PyObject* op, PyObject*) { return PyBool_FromLong(as_server(op)->server != nullptr); }

PyMethodDef methods[] = {
    {"addresses", server_addresses, METH_NOARGS, "addresses() -> ['127.0.0.1:8000', ...]: where it listens"},
    {"stop", server_stop, METH_O, "stop(grace: float): stop accepting, answer what is in flight, close"},
    {"stats", server_stats, METH_NOARGS, "stats() -> dict of counters"},
    {"running", server_running, METH_NOARGS, "running() -> bool"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(server_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(server_dealloc)},
    {Py_tp_methods, methods},
    {Py_tp_doc, const_cast<char*>("HttpServer(pool, app, bind, ..., interface='wsgi'): manygil serve's front end "
                                  "(manygil/_serve.py)")},
    {0, nullptr},
};

}  // namespace

PyType_Spec http_server_spec = {"manygil._core.HttpServer", sizeof(HttpServerObject), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, slots};

}  // namespace manygil::ext
