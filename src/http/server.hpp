// Server: an HTTP/1.1 front end on epoll. Its I/O threads accept connections, read and parse
// requests (llhttp, request_parser.hpp) and write responses; they never hold a GIL and never run
// application code. A complete request goes to a Handler, which answers later, from any thread,
// through the request's Responder (a WSGI handler posts it to a pool's workers: wsgi/).
//
// Per connection: keep-alive by default on HTTP/1.1; pipelined requests are answered in order (the
// next one is parsed only once the previous one is answered); "100 Continue" is sent when a client
// expects it and the body is still to come; HEAD gets the head only. Limits and bad input
// (request_parser.hpp) are answered by the I/O thread itself, with a log line, and never reach the
// Handler; a slow client holds no worker, since handlers only get complete requests.
//
// Backpressure counts requests, not connections: while ServerOptions::max_pending requests are with
// the Handler, no more are dispatched and no connections accepted; they wait in the kernel.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.hpp"
#include "http/request_parser.hpp"
#include "http/response.hpp"

namespace manygil::http {

class IoThread;
struct StreamState;

// How a Handler answers one request. Movable, not copyable. Any thread.
//
// A whole response: send(), once. A streamed one (a body of unknown length, or one produced slowly):
// send() a response with `stream` set (its head and first bytes), then send_chunk() any number of
// times, then finish(); or abort() to cut the connection when the body cannot be completed (the
// head is gone: an error can no longer be answered). A Responder destroyed without an answer answers
// 500 itself, and one destroyed mid-stream aborts, so no request is left hanging.
class Responder {
public:
    // Unsent bytes a stream may have queued before send_chunk() waits for the client to read.
    static constexpr std::size_t kStreamWindow = 1 << 20;

    Responder() = default;
    Responder(std::shared_ptr<IoThread> io, std::uint64_t connection) : io_(std::move(io)), connection_(connection) {}
    Responder(Responder&&) noexcept = default;
    Responder& operator=(Responder&& other) noexcept;
    Responder(const Responder&) = delete;
    Responder& operator=(const Responder&) = delete;
    ~Responder();

    // Hands the response to the connection's I/O thread (non-blocking). After the server stopped,
    // or the client went away, the response is dropped. With response.stream set, the Responder
    // stays open for send_chunk() and finish().
    void send(Response response);
    // Streaming: more body bytes. Blocks (call it without any GIL) while kStreamWindow bytes are
    // still unsent; false once the client is gone or the server stopped (the rest can be dropped).
    bool send_chunk(std::string bytes);
    // Streaming: the body is complete.
    void finish();
    // Streaming: the body cannot be completed; the connection is closed after what was sent.
    void abort();
    explicit operator bool() const noexcept { return io_ != nullptr; }

private:
    enum class End { Finish, Abort };
    void end(End how);

    std::shared_ptr<IoThread> io_;
    std::uint64_t connection_ = 0;
    std::shared_ptr<StreamState> stream_;  // set while streaming
};

// Gets each complete request, on an I/O thread. Must not block: hand the request on and answer
// through the Responder later.
class Handler {
public:
    virtual ~Handler() = default;
    virtual void handle(Request request, Responder responder) = 0;
};

struct ServerOptions {
    std::vector<std::string> bind = {"127.0.0.1:8000"};  // "HOST:PORT" ("[::1]:8000" for IPv6); port 0: any
    int backlog = 1024;
    std::size_t io_threads = 1;  // with several, each has its own SO_REUSEPORT listener per address
    Limits limits;
    std::size_t max_pending = 1024;                      // requests with the Handler at once
    std::chrono::milliseconds header_timeout{10'000};    // first byte of a request to its last
    std::chrono::milliseconds keep_alive_timeout{75'000};  // idle keep-alive connection
    bool access_log = false;
    // Where log lines go (one line, no newline). Default: stderr. Called from I/O threads.
    std::function<void(std::string_view)> log;
};

struct ServerStats {
    std::uint64_t connections_accepted = 0, connections_open = 0;
    std::uint64_t requests = 0, responses = 0, rejected = 0;  // rejected: answered 4xx/5xx by the front end
    std::uint64_t pending = 0;                                // with the Handler now
};

class Server {
public:
    // Binds every address (throws std::system_error naming the address when one cannot be bound)
    // and starts the I/O threads. `handler` must outlive the Server.
    Server(ServerOptions options, Handler& handler);
    // stop(0) if stop() was not called.
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // The addresses listened on, with the ports actually bound ("127.0.0.1:41234").
    std::vector<std::string> addresses() const;

    // Graceful stop: no more connections accepted; idle connections closed; requests in flight (with
    // the Handler or being read) answered with "Connection: close" while `grace` lasts; then every
    // connection is closed and the I/O threads end. Blocks until they have. Any thread; idempotent.
    void stop(std::chrono::milliseconds grace);

    ServerStats stats() const;

    struct Shared;  // what the I/O threads share (counters, options, handler)

private:
    std::shared_ptr<Shared> shared_;
    std::vector<std::shared_ptr<IoThread>> threads_;
    std::vector<std::string> addresses_;
    bool stopped_ = false;
};

}  // namespace manygil::http
