// manygil::wsgi::WsgiHandler: serves a WSGI application (PEP 3333) on a Pool's own-GIL workers,
// behind http.hpp's Server. The I/O thread hands each complete request, as C++ data, to the pool as
// a job; the worker that takes it builds `environ` itself from the request (no pickling), calls the
// application in its own interpreter (imported there once, cached per interpreter), and answers
// through the request's Responder. Nothing of Python crosses between interpreters, and the main
// interpreter is not involved.
//
// Responses: a list or tuple body (the common case) is collected and sent whole with its length; so
// is any iterable once the bytes of the Content-Length it declared are in. Other iterables are
// streamed item by item as PEP 3333 asks (the first with the head), chunked unless a Content-Length
// was declared; a slow client makes the worker wait (without its GIL) past 1 MiB unsent. A
// wsgi.file_wrapper over a regular file is sent with sendfile().
//
// Failures are answered and logged, and the worker goes on: an exception, a bad status or header, a
// body item that is not bytes -> 500 with the traceback; a request running past WsgiOptions::timeout
// is interrupted (TimeoutError at its next bytecode) -> 504; after the head of a streamed response
// went out, either cuts the connection instead. A pool that is shut down -> 503.
//
// Typical C++ host:
//   manygil::Runtime runtime({.python_path = {"/srv/app"}});
//   manygil::Pool pool(runtime, {.workers = 4});
//   manygil::wsgi::WsgiHandler handler(pool, {.app = "myapp:application"});
//   manygil::http::Server server({.bind = {"0.0.0.0:8000"}}, handler);
//   ... wait for a signal ...; server.stop(std::chrono::seconds(30));
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "manygil/http.hpp"
#include "manygil/pool.hpp"

namespace manygil::wsgi {

struct WsgiOptions {
    std::string app;  // "module:attribute" (the attribute may be dotted), importable by the workers
    std::optional<std::chrono::duration<double>> timeout;  // per request; none: no limit
    std::string url_scheme = "http";                       // wsgi.url_scheme ("https" for a request over TLS)
    // Peers whose proxy headers (Forwarded, X-Forwarded-For, X-Forwarded-Proto) set REMOTE_ADDR,
    // REMOTE_PORT and wsgi.url_scheme: exact addresses, "*" for any; a Unix-socket peer counts as
    // trusted unless the list is empty. Empty: the headers reach the application untouched and change
    // nothing (they always reach it as HTTP_* keys).
    std::vector<std::string> forwarded_allow_ips = {"127.0.0.1", "::1"};
    // Where errors are logged (a line or a traceback, no trailing newline), from worker threads.
    // Default: stderr.
    std::function<void(std::string_view)> log;
    // Lines less important than this are dropped (http::LogLevel): the application's failures (500,
    // 504) log at error, a streamed response cut short at warning.
    http::LogLevel log_level = http::LogLevel::info;
};

class WsgiHandler final : public http::Handler {
public:
    // `pool` must outlive the handler and the Server using it. Throws InvalidArgument if `app` is not
    // of the form "module:attribute". The application is imported by each worker on its first request
    // (a pool initializer can import it at start).
    WsgiHandler(Pool& pool, WsgiOptions options);

    // On an I/O thread: posts the request to the pool. Never blocks; no GIL.
    void handle(http::Request request, http::Responder responder) override;
    // The pool's workers.
    std::size_t capacity() const noexcept override;

private:
    Pool& pool_;
    std::shared_ptr<const WsgiOptions> options_;
};

}  // namespace manygil::wsgi
