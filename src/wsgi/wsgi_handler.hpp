// WsgiHandler: serves a WSGI application (PEP 3333) on a Pool's own-GIL workers, behind the HTTP
// front end (http/server.hpp). The I/O thread hands each complete request, as C++ data, to the pool
// as a job; the worker that takes it builds `environ` itself from the request (no pickling), calls
// the application in its own interpreter (imported there once, cached per interpreter), collects
// the status, headers and body, and answers through the request's Responder. Nothing of Python
// crosses between interpreters, and the main interpreter is not involved at all.
//
// The response is buffered: the application's body (write() calls, then the iterable's items) is
// collected before anything is sent, so an error anywhere becomes a clean 500. A
// wsgi.file_wrapper over a regular file is served with sendfile instead.
//
// Failures are answered and logged, the worker goes on: an exception, a bad status or header, a
// body item that is not bytes -> 500 (the traceback in the log); a request that runs past
// WsgiOptions::timeout is interrupted with the pool's interrupt machinery -> 504; a pool that is
// shut down -> 503.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "http/server.hpp"
#include "manygil/pool.hpp"

namespace manygil::wsgi {

struct WsgiOptions {
    std::string app;  // "module:attribute" (the attribute may be dotted)
    std::optional<std::chrono::duration<double>> timeout;  // per request; none: no limit
    std::string url_scheme = "http";
    // Where errors are logged (one line or a traceback, no trailing newline). Default: stderr.
    // Called from worker threads.
    std::function<void(std::string_view)> log;
};

class WsgiHandler final : public http::Handler {
public:
    // `pool` must outlive the handler. Throws InvalidArgument if `app` is not "module:attribute".
    WsgiHandler(Pool& pool, WsgiOptions options);

    // On an I/O thread: posts the request to the pool (never blocks).
    void handle(http::Request request, http::Responder responder) override;

private:
    Pool& pool_;
    std::shared_ptr<const WsgiOptions> options_;
};

}  // namespace manygil::wsgi
