// manygil::asgi::AsgiHandler: serves an ASGI 3.0 application (HTTP, WebSocket and lifespan, asgiref's
// specs/www.rst and lifespan.rst) on a Pool's own-GIL workers, behind http.hpp's Server. Each worker
// interpreter runs ONE asyncio event loop for as long as the handler serves (asyncio's own loop:
// uvloop refuses sub-interpreters), with many requests in flight on it: a slow `await` in one does
// not hold up the others.
//
// The I/O thread hands a request to the worker with the fewest requests in flight by pushing the C++
// request into that worker's inbox and writing its eventfd, which the loop watches
// (loop.add_reader): no GIL is taken and nothing is pickled. On the loop, the request's `scope` is
// built in C++ (src/asgi/scope.cpp), `receive()` gives the body as it arrives: `http.request` with
// more_body True for each piece, the last with more_body False (each awaited through the inbox
// without blocking the loop; bytes the application has not taken count against
// http::RequestBody::kWindow, past which the front end stops reading that upload), then
// `http.disconnect` once the client has gone or the response is complete (also instead of the rest
// of a body that failed: the client left, 413 over --max-body, 408 too slow); `send()`'s messages are checked and turned into the response in C++
// (http.response.start, http.response.body with more_body streaming). A streamed body never blocks
// the loop: past Responder::kStreamWindow unsent bytes `await send()` waits for the I/O thread to
// say the client caught up. After the client has gone, sends are dropped (nothing raises). The
// loop itself (the per-request tasks, lifespan) is the Python package's manygil._asgi, reached
// through its package hook "asgi.serve": the workers must have imported the manygil package
// (`manygil serve` does).
//
// Lifespan (AsgiOptions::lifespan): each worker runs `lifespan.startup` before it takes requests
// and `lifespan.shutdown` when the handler stops; `scope["state"]` is that worker's lifespan state,
// shallow-copied per request. Auto: an application that raises before asking for the first
// lifespan event does not support it and is served anyway (uvicorn's "auto"); startup.failed, or an
// exception after the startup event, fails the start (wait_started()).
//
// Failures are answered and logged, and the loop goes on: an exception before http.response.start
// -> 500 (the traceback logged), after it -> the connection is cut; a request running past
// AsgiOptions::timeout has its task cancelled -> 504 if nothing was sent yet, else cut; an
// application that returns without a complete response -> 500, or cut. A worker whose job the pool
// refuses (shut down) answers 503.
//
// A stuck loop (with AsgiOptions::timeout): a watchdog thread of the handler probes each loop that
// has requests in flight through its inbox; one that leaves it undrained for the timeout (a request
// blocking it in C code, or in Python that never awaits) is interrupted (TimeoutError at its next
// bytecode, in that request; a loop that comes back withdraws the interrupt and serves on). If the
// interrupt stays pending until the pool replaces the worker as stuck (PoolOptions::
// replace_stuck_after: give the pool one), a successor loop is posted for the replacement
// interpreter (also when the pool retires a worker whose loop came back just after it looked, or
// whose call anyone else interrupted: the watchdog checks the pool's stuck workers every round); it takes the requests the stuck loop never drained (those it had taken get the front
// end's 504, Server's response_timeout), and the stuck loop retires when its call returns.
//
// WebSockets (asgiref's websocket.* events, spec 2.4): accepts_websockets() is true, and an upgrade
// request goes to the least loaded worker like a request (an open WebSocket counts as in flight
// until its application returns). The scope adds `subprotocols` (Sec-WebSocket-Protocol's tokens),
// scheme ws / wss, and extensions {"websocket.http.response": {}}. receive(): websocket.connect,
// then each message (text or bytes) -- the front end's receive window (WebSocketOptions) counts a
// message until the application has received it (WebSocket::consumed then), so a slow consumer
// stops its own socket being read and nobody else's -- then websocket.disconnect with the close code
// the listener heard (1006 when the client left before the application answered the upgrade: an
// accept after that goes to a closed connection, and websocket.send raises). send(): websocket.accept (subprotocol, headers), websocket.send (past the send
// window `await send()` waits for on_writable() through the inbox, never blocking the loop; after
// the client has gone it raises ConnectionResetError), websocket.close (before accept: 403),
// websocket.http.response.start/body (the denial extension: that response instead). An application
// that returns or raises before accepting -> 403; after accepting, an exception -> close 1011,
// returning without closing -> close 1000; cancelled by stop() -> 1001. AsgiOptions::timeout does
// not apply to WebSockets (a Server's response_timeout still answers an upgrade not accepted in time). Server::stop() closes open WebSockets with 1001 first: stop() then gives
// their tasks up to 5 s (manygil._asgi.WEBSOCKET_FINISH_SECONDS) to take websocket.disconnect and
// return before it cancels what remains.
//
// The handler's jobs occupy every worker of the pool until stop(): give it a pool of its own. They do
// not count toward PoolOptions::max_tasks_per_worker (Job::counts_as_task): the handler recycles its
// loops itself (max_requests), and the pool's count would only start successors with no loop to run.
//
// Typical C++ host:
//   manygil::Runtime runtime({.python_path = {"/srv/app"}});
//   manygil::Pool pool(runtime, {.workers = 2, .initializer = manygil::Initializer::source("import manygil")});
//   manygil::asgi::AsgiHandler handler(pool, {.app = "myapp:app"});
//   if (auto failed = handler.wait_started()) { ... *failed ...; }
//   manygil::http::Server server({.bind = {"0.0.0.0:8000"}}, handler);
//   ... wait for a signal ...; server.stop(std::chrono::seconds(30)); handler.stop();
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

namespace manygil::asgi {

// uvicorn's --lifespan: Auto (run it if the application supports it), On (it must), Off (never).
enum class Lifespan { Auto, On, Off };

struct AsgiOptions {
    std::string app;  // "module:attribute" (the attribute may be dotted), importable by the workers
    // Per request: its task is cancelled past this (504, or a cut connection once the head is gone).
    std::optional<std::chrono::duration<double>> timeout;
    std::string url_scheme = "http";  // scope["scheme"] ("https" for a request over TLS)
    std::string root_path;            // scope["root_path"] (the application's mount point behind a proxy)
    // As WsgiOptions::forwarded_allow_ips: trusted proxies' Forwarded / X-Forwarded-* set
    // scope["client"] and scope["scheme"].
    std::vector<std::string> forwarded_allow_ips = {"127.0.0.1", "::1"};
    Lifespan lifespan = Lifespan::Auto;
    // Recycling (gunicorn's --max-requests, as its uvicorn worker does it): a worker's loop that has
    // taken this many requests and WebSocket connections (plus up to max_requests_jitter more, drawn
    // per loop) starts a successor: a new interpreter for its pool slot (WorkerGroup's successor, as
    // PoolOptions::max_tasks_per_worker), which imports the application and runs lifespan startup
    // while the old loop serves on. Once it has started, the requests go to it, and the old loop
    // finishes those it has (no request is refused or dropped), runs lifespan shutdown and ends its
    // interpreter. Open WebSockets get recycle_grace to end on their own, then are closed 1001 (their
    // tasks cancelled): a long-lived connection must not keep a retired interpreter alive, which
    // would defeat the point (a leaking application's memory back). HTTP requests still running then
    // are cancelled too (503, or a cut stream). A successor whose startup fails is dropped (logged
    // critical) and the old loop serves on, trying again after another share. 0: never.
    std::size_t max_requests = 0;
    std::size_t max_requests_jitter = 0;
    std::chrono::duration<double> recycle_grace{30.0};
    // Where errors are logged (a line or a traceback, no trailing newline), from worker threads.
    // Default: stderr.
    std::function<void(std::string_view)> log;
    http::LogLevel log_level = http::LogLevel::info;
};

namespace detail {
struct AsgiShared;  // internal: the workers' inboxes and start/stop bookkeeping (src/asgi/inbox.hpp)
}

class AsgiHandler final : public http::Handler {
public:
    // Posts one serving job per worker of `pool` (each imports the application, runs lifespan
    // startup, then serves until stop()). Never blocks. `pool` must outlive the handler; the handler
    // must outlive the Server using it. Throws InvalidArgument if `app` is not "module:attribute".
    AsgiHandler(Pool& pool, AsgiOptions options);
    // stop(). Blocks like it.
    ~AsgiHandler() override;
    AsgiHandler(const AsgiHandler&) = delete;
    AsgiHandler& operator=(const AsgiHandler&) = delete;

    // Blocks until every worker has run lifespan startup (or found it unsupported): nullopt when
    // all did, else why one could not start (the application's message, an import error, a startup
    // exception's traceback). Hold no GIL (the workers need the main one to start). Thread-safe.
    std::optional<std::string> wait_started();

    // On an I/O thread: queues the request in a worker's inbox and wakes its loop. Never blocks; no
    // GIL. Requests that arrive before a worker has started wait in its inbox.
    void handle(http::Request request, http::Responder responder) override;
    // The pool's workers. A worker's loop takes any number of requests at once, but runs one
    // piece of Python at a time: with more requests out than workers, the I/O threads run
    // SCHED_BATCH (http.hpp) and do not preempt a loop mid-request.
    std::size_t capacity() const noexcept override;
    // WebSocket upgrade requests go to the workers too (ASGI's websocket scope).
    bool accepts_websockets() const noexcept override { return true; }
    // Request bodies stream (http.hpp's RequestBody): receive() gives each piece as it arrives.
    bool streams_request_bodies() const noexcept override { return true; }
    // On an I/O thread: queues the upgrade request like handle() (the least loaded worker; an open
    // WebSocket counts as in flight until its application returns). Never blocks; no GIL.
    void handle_websocket(http::Request request, http::WebSocket websocket) override;

    // Every worker's loop cancels what it still runs (call it after Server::stop(), which lets the
    // requests in flight finish), runs lifespan shutdown and ends its job. Blocks until all have;
    // hold no GIL. Idempotent; thread-safe.
    void stop();

private:
    std::shared_ptr<detail::AsgiShared> shared_;
};

}  // namespace manygil::asgi
