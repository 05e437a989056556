// manygil::http: an HTTP/1.1 server front end in C++ (epoll, llhttp), for C++ hosts and for
// `manygil serve`. Its I/O threads accept connections, read and parse requests and write responses;
// they never take a GIL and never run application code. Each complete request goes to a Handler,
// which answers later, from any thread, through the request's Responder. wsgi.hpp's WsgiHandler
// answers by running a WSGI application on a Pool's own-GIL workers; a C++ host may write its own.
//
// Per connection: keep-alive by default on HTTP/1.1; pipelined requests are answered in order (the
// next one is parsed once the previous one is answered); "100 Continue" is sent when a client expects
// it and the body is still to come; HEAD gets the head only; chunked request bodies arrive decoded.
// The I/O thread itself answers bad input and limits, with a log line, and none of it reaches the
// Handler: 400 malformed, or request smuggling (Content-Length with Transfer-Encoding, Content-Length
// twice); 408 a request not complete within ServerOptions::header_timeout (headers) or with no bytes
// for that long (body): a slow client never holds a worker; 413 a body over Limits::max_body
// (refused as soon as Content-Length says so); 417 an unknown Expect; 431 headers over
// Limits::max_header_bytes or max_headers; 501 a Transfer-Encoding other than chunked, or CONNECT.
//
// TLS (ServerOptions::tls): every connection on every address speaks TLS 1.2 or newer (OpenSSL), the
// handshake counted against header_timeout; ALPN selects "http/1.1". A plain-HTTP request arriving
// on it is answered 400 in the clear and the connection closed (as nginx and Go's net/http do). File
// ranges are read and encrypted there instead of going out with sendfile().
//
// Backpressure counts requests, not connections: while ServerOptions::max_pending requests are with
// the Handler, no more are dispatched and no connections accepted; they wait in the kernel.
//
// While more requests are with the Handler than it works on at once (Handler::capacity(): requests
// wait for a worker anyway), the I/O threads run with the SCHED_BATCH policy (Linux; same CPU share
// as SCHED_OTHER): a request arriving or an answer posted then does not preempt a worker
// mid-request; the I/O thread runs when a core is free or at the next scheduling point, and handles
// everything ready by then in one pass. Otherwise they run SCHED_OTHER and answer at once, even on
// cores busy with other processes.
//
// Nothing here needs or takes a GIL; hold none across the calls that block (Server::stop,
// Responder::send_chunk), since the workers answering requests may need it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace manygil::http {

// How much a log line matters, as Python's logging and gunicorn's --log-level grade it. A server
// drops lines below its ServerOptions::log_level (the access log is never dropped).
//  debug: nothing logs at it yet; info: requests refused for bad input or limits (4xx), with why;
//  warning: a response cut short after it began; error: 5xx (the handler failed, 504 for a stuck
//  request), a broken response, running out of file descriptors.
enum class LogLevel { debug, info, warning, error, critical };

// "debug", "info", "warning", "error", "critical" (any case) -> the level; nullopt otherwise.
std::optional<LogLevel> parse_log_level(std::string_view name) noexcept;

struct Header {
    std::string name;   // as received (case kept); compare with iequals()
    std::string value;  // leading and trailing blanks removed
};

// ASCII case-insensitive equality (header names). Any thread.
bool iequals(std::string_view a, std::string_view b) noexcept;

// A request as the front end hands it over: complete (headers and the whole body, chunked bodies
// decoded), plain C++ data that any thread may move and read.
struct Request {
    std::string method;  // "GET"
    std::string target;  // the request-target as received: "/path?query"
    int version_major = 1, version_minor = 1;
    std::vector<Header> headers;
    std::string body;
    bool keep_alive = true;  // the client wants the connection kept (HTTP/1.1 default, Connection header)
    bool chunked = false;    // the body arrived chunked
    bool tls = false;        // it arrived over TLS (ServerOptions::tls): wsgi.url_scheme "https"

    // Where the request came from and arrived at ("127.0.0.1", 41234).
    std::string remote_addr, server_addr;
    std::uint16_t remote_port = 0, server_port = 0;

    // The first header named `name` (case-insensitive), or nullptr.
    const Header* find(std::string_view name) const noexcept;
};

// A range of an open file, sent with sendfile(). The Response owns `fd` and closes it.
struct FileRange {
    int fd = -1;
    std::uint64_t offset = 0, length = 0;
};

// A response: status, headers, a body in memory, then optionally a file range. Built on any thread,
// written by the connection's I/O thread. Move-only (it may own a file descriptor).
struct Response {
    int status = 200;
    std::string reason;             // empty: the standard phrase for `status`
    std::vector<Header> headers;    // the server adds Date, Server, Connection and, unless set here,
                                    // Content-Length; a Connection header set here is ignored
    std::string body;               // sent first
    std::optional<FileRange> file;  // then this
    bool close = false;             // close the connection after this response
    // The body continues after this one (Responder::send_chunk, then finish): it goes out chunked,
    // or as a Content-Length header set here says, or (HTTP/1.0 clients) until the connection closes.
    bool stream = false;

    Response() = default;
    // A simple response: status, body, and a Content-Type header.
    Response(int status_, std::string body_, std::string content_type = "text/plain; charset=utf-8");
    Response(Response&& other) noexcept;
    Response& operator=(Response&& other) noexcept;
    Response(const Response&) = delete;
    Response& operator=(const Response&) = delete;
    ~Response();  // closes file->fd
};

struct Limits {
    std::size_t max_header_bytes = 64 * 1024;    // request line + headers: 431 beyond
    std::size_t max_headers = 100;               // 431 beyond
    std::size_t max_body = std::size_t{1} << 30;  // 1 GiB: 413 beyond
};

class IoThread;     // internal: one I/O thread of a Server
struct StreamState; // internal: a streamed response's window

// How a Handler answers one request. Movable, not copyable; one thread at a time (move it to the
// thread that answers).
//
// A whole response: send(), once. A streamed one (a body of unknown length, or produced slowly):
// send() a response with `stream` set (its head and first bytes), then send_chunk() any number of
// times, then finish(); or abort() to cut the connection when the body cannot be completed (the head
// is gone: an error can no longer be answered). A Responder destroyed without an answer answers 500
// itself, and one destroyed mid-stream aborts, so no request is left hanging. It may outlive the
// Server: what it sends then is dropped.
class Responder {
public:
    // Unsent bytes a stream may have queued before send_chunk() waits for the client to read.
    static constexpr std::size_t kStreamWindow = 1 << 20;

    Responder() = default;
    Responder(std::shared_ptr<IoThread> io, std::uint64_t connection) : io_(std::move(io)), connection_(connection) {}
    Responder(Responder&&) noexcept = default;
    Responder& operator=(Responder&& other) noexcept;  // answers (or aborts) what this one held first
    Responder(const Responder&) = delete;
    Responder& operator=(const Responder&) = delete;
    ~Responder();

    // Hands the response to the connection's I/O thread. Never blocks. If the server stopped or the
    // client went away, it is dropped. With response.stream set, the Responder stays open for
    // send_chunk() and finish(); otherwise it is spent.
    void send(Response response);
    // Streaming: more body bytes. Blocks while kStreamWindow bytes are still unsent (a slow
    // client), so call it without any GIL held; false once the client is gone or the server stopped
    // (stop producing: the rest would be dropped).
    bool send_chunk(std::string bytes);
    // Streaming, for a producer that must not block (an event loop): queues `bytes` like
    // send_chunk() but never waits. Sent: queued, and the window has room for more. Full: queued, but
    // kStreamWindow bytes are now unsent; `when_ready` is called once, on the I/O thread (no GIL,
    // must not block), when the client has read enough for more or the stream ended; produce more
    // after it. Gone: the client is gone or the server stopped (bytes dropped; `when_ready` not
    // called). Needs a streamed send() first (Gone otherwise).
    enum class ChunkResult { Sent, Full, Gone };
    ChunkResult try_send_chunk(std::string bytes, std::function<void()> when_ready);
    // Calls `gone` once, on the I/O thread (no GIL; must not block), if the client hangs up or the
    // connection closes before the response is written, including at once if that already happened;
    // never after the response is complete. For a handler that wants to stop work nobody will read
    // (an ASGI http.disconnect). Call it before the answer; never blocks.
    void on_gone(std::function<void()> gone);
    // Streaming: the body is complete. Never blocks.
    void finish();
    // Streaming: the body cannot be completed; the connection closes after what was sent. Never blocks.
    void abort();
    // Whether it can still answer.
    explicit operator bool() const noexcept { return io_ != nullptr; }

private:
    enum class End { Finish, Abort };
    void end(End how);

    std::shared_ptr<IoThread> io_;
    std::uint64_t connection_ = 0;
    std::shared_ptr<StreamState> stream_;  // set while streaming
};

// Gets each complete request, on an I/O thread. Must not block (other connections wait meanwhile):
// hand the request on and answer through the Responder later, from any thread. An exception it throws
// is logged and the request answered 500.
class Handler {
public:
    virtual ~Handler() = default;
    virtual void handle(Request request, Responder responder) = 0;
    // How many requests it works on at once (a pool's workers); 0: unbounded or unknown. Read by
    // the I/O threads when the Server starts.
    virtual std::size_t capacity() const noexcept { return 0; }
};

// A certificate and its private key, for TLS on every listening address.
struct TlsOptions {
    std::string certfile;  // PEM: the server's certificate, then its intermediates (a chain)
    std::string keyfile;   // PEM: the private key, unencrypted; empty: it is in certfile
};

struct ServerOptions {
    // "HOST:PORT", "[::1]:8000" (port 0: any free port); "unix:/path" or "unix:/path?mode=660" (a
    // stale socket file there is replaced); "fd://N", a listening socket inherited from a parent or a
    // service manager (left open: the server closes only its own duplicate).
    std::vector<std::string> bind = {"127.0.0.1:8000"};
    int backlog = 1024;
    std::size_t io_threads = 1;  // with several, each has its own SO_REUSEPORT listener per address
    Limits limits;
    std::size_t max_pending = 1024;                        // requests with the Handler at once
    std::chrono::milliseconds header_timeout{10'000};      // headers in by then; no body byte for that long
    std::chrono::milliseconds keep_alive_timeout{75'000};  // an idle keep-alive connection; a client not reading
    // A request with the Handler for longer than this (0: no limit) is answered 504 by the front end
    // and its connection closed, whatever the Handler is doing (a call blocked in C); the Handler's
    // late answer is dropped. Checked about every 200 ms.
    std::chrono::milliseconds response_timeout{0};
    // Set: every connection speaks TLS. Loaded when the Server starts (once: a new certificate takes
    // a new Server, or with `manygil serve` a graceful restart).
    std::optional<TlsOptions> tls;
    bool access_log = false;                               // one line per response
    // The access log line, in gunicorn's access_log_format atoms (src/http/access_log.hpp); empty:
    // gunicorn's default, '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'.
    std::string access_log_format;
    // Where log lines go (one line, no newline), from I/O threads. Default: stderr.
    std::function<void(std::string_view)> log;
    // Lines less important than this are dropped (LogLevel); the access log is not filtered.
    LogLevel log_level = LogLevel::info;
};

// Counters, read without locks (each exact, the set not one instant).
struct ServerStats {
    std::uint64_t connections_accepted = 0, connections_open = 0;
    std::uint64_t requests = 0, responses = 0;
    std::uint64_t rejected = 0;  // answered 4xx/5xx by the front end itself
    std::uint64_t pending = 0;   // with the Handler now
};

class Server {
public:
    // Binds every address and starts the I/O threads; it serves from then on. Throws
    // std::invalid_argument for a malformed address, std::system_error naming the address when one
    // cannot be bound. With options.tls: std::system_error naming a certificate or key file that
    // cannot be read, std::invalid_argument naming one that holds no PEM certificate or key, or a
    // key that is not the certificate's. `handler` must outlive the Server.
    Server(ServerOptions options, Handler& handler);
    // stop(0) if stop() was not called. Blocks like stop().
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // The addresses listened on, with the ports actually bound ("127.0.0.1:41234", "unix:/run/app.sock").
    // Thread-safe.
    std::vector<std::string> addresses() const;

    // Graceful stop: no more connections accepted (the listeners close); idle connections closed;
    // requests in flight (with the Handler, being read, or streaming) answered with
    // "Connection: close" while `grace` lasts; then every connection closes and the I/O threads end.
    // Blocks until they have: hold no GIL the Handler's answers need. Call from one thread;
    // idempotent.
    void stop(std::chrono::milliseconds grace);

    // Thread-safe.
    ServerStats stats() const;

    struct Shared;  // internal: what the I/O threads share

private:
    std::shared_ptr<Shared> shared_;
    std::vector<std::shared_ptr<IoThread>> threads_;
    std::vector<std::string> addresses_;
    bool stopped_ = false;
};

}  // namespace manygil::http
