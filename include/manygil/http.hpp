// manygil::http: an HTTP/1.1 server front end in C++ (epoll, llhttp), for C++ hosts and for
// `manygil serve`. Its I/O threads accept connections, read and parse requests and write responses;
// they never take a GIL and never run application code. Each complete request goes to a Handler,
// which answers later, from any thread, through the request's Responder; a Handler that
// streams_request_bodies() (ASGI) gets a request with a body once its headers are in, the body
// following through a RequestBody with backpressure (the limits and refusals below still apply). wsgi.hpp's WsgiHandler
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
// WebSockets (RFC 6455), for a Handler whose accepts_websockets() says so: a valid upgrade request
// goes to Handler::handle_websocket() with a WebSocket, which accepts (101) or denies it; from then on
// the connection's I/O thread frames, unmasks, reassembles and checks messages (wslay underneath),
// answers pings, and hands whole messages to a WebSocketListener. Protocol errors close the connection
// with the RFC's code before the application sees anything: 1002 (an unmasked client frame, a
// reserved bit, an unknown opcode, a fragmented or over-125-byte control frame, a continuation out of
// place), 1007 (invalid UTF-8 in a text message), 1009 (a message over WebSocketOptions::max_message).
// docs/http.md lists what the front end answers and why.
//
// Nothing here needs or takes a GIL; hold none across the calls that block (Server::stop,
// Responder::send_chunk), since the workers answering requests may need it.
#pragma once

#include <atomic>
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

struct RequestBodyState;  // internal: what a RequestBody and its I/O thread share
class IoThread;           // internal: one I/O thread of a Server

// A request body that arrives while the Handler already has the request (Handler::
// streams_request_bodies()): the connection's I/O thread appends the bytes as they arrive (chunked
// bodies decoded), then the end, or a failure. Every member never blocks and may be called from any
// thread (one consumer at a time); copies share one body. It may outlive the connection and the
// Server.
//
// Backpressure: while more than kWindow bytes handed over by read() (or waiting to be read) are not
// acknowledged with consumed(), the I/O thread stops reading that connection (the client's sends
// block in its kernel buffers); other connections go on. A consumer that never acknowledges stalls
// only its own upload (header_timeout does not apply to a paused body; response_timeout does).
class RequestBody {
public:
    static constexpr std::size_t kWindow = 1 << 20;
    enum class Status {
        Waiting,  // nothing new yet: when_ready() tells when there is
        Data,     // bytes were appended to `out`; more follow
        End,      // the body is complete; its last bytes (possibly none) were appended to `out`
        Failed,   // it cannot complete: error() says why (too large: 413, malformed chunk, a timeout,
                  // the client went away, the server stopped); the bytes that arrived before it came
                  // as Data first
    };

    RequestBody() = default;
    explicit RequestBody(std::shared_ptr<RequestBodyState> state) : state_(std::move(state)) {}

    // Appends every byte that has arrived and not been read to `out`. Never blocks. After End or
    // Failed, it says so again.
    Status read(std::string& out);
    // Calls `ready` once, when read() would say something other than Waiting: at once on this thread
    // if it already would, else later on the I/O thread (no GIL; must not block). A second call before
    // the first fired replaces it.
    void when_ready(std::function<void()> ready);
    // Acknowledges `bytes` that read() handed over (the consumer has taken them): see Backpressure.
    void consumed(std::size_t bytes);
    // After Failed: why (for a log line).
    std::string error() const;
    // Whether this is a body being streamed (false: a default-constructed handle).
    explicit operator bool() const noexcept { return state_ != nullptr; }

private:
    std::shared_ptr<RequestBodyState> state_;
};

// A request as the front end hands it over: headers and the whole body (chunked bodies decoded) as
// plain C++ data that any thread may move and read; or, for a Handler that streams_request_bodies()
// and a request with a body, headers only: `body` empty and the body arriving through `body_stream`.
struct Request {
    std::string method;  // "GET"
    std::string target;  // the request-target as received: "/path?query"
    int version_major = 1, version_minor = 1;
    std::vector<Header> headers;
    std::string body;
    // Set when the body streams (Handler::streams_request_bodies(); only for a request with a body).
    RequestBody body_stream;
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

// ---- WebSockets (RFC 6455) ----------------------------------------------------------------------

// What a WebSocket connection may do (ServerOptions::websocket).
struct WebSocketOptions {
    // A received message (all its fragments) over this: the connection is closed with 1009.
    std::size_t max_message = std::size_t{16} << 20;
    // Receive backpressure: while more than this many bytes of delivered messages have not been
    // acknowledged (WebSocket::consumed), the I/O thread stops reading the socket (the client's sends
    // then block in its kernel buffers). One message may take it past the window. 0: no limit (nothing
    // needs acknowledging).
    std::size_t receive_window = std::size_t{1} << 20;
    // Send backpressure: WebSocket::send() answers QueueFull once more than this many bytes it was
    // given are not yet written to the socket (they are queued anyway).
    std::size_t send_window = std::size_t{1} << 20;
    // The server pings an open connection this often (0: never); a connection with no pong within
    // ping_timeout of a ping is closed (1011 sent; the listener sees 1006).
    std::chrono::milliseconds ping_interval{20'000};
    std::chrono::milliseconds ping_timeout{20'000};
    // How long a close the server sent (WebSocket::close, Server::stop) waits for the client's close
    // frame before the connection is dropped.
    std::chrono::milliseconds close_timeout{10'000};
};

// Receives one accepted WebSocket's events, on the connection's I/O thread, one at a time. Every
// callback must not block (other connections wait meanwhile): hand the event on (a queue, an eventfd)
// and return. An exception from on_message() is logged and the connection closed with 1011; from the
// others, logged. The front end holds the listener (shared_ptr) from WebSocket::accept() until
// on_close() has returned, so a listener that holds its own WebSocket is freed then.
class WebSocketListener {
public:
    virtual ~WebSocketListener() = default;
    // One whole message (fragments reassembled, unmasked; text is valid UTF-8). Its size counts
    // against WebSocketOptions::receive_window until WebSocket::consumed() acknowledges it.
    virtual void on_message(bool text, std::string data) = 0;
    // Exactly once, last: the code of the client's close frame (1005 when it had none), the code the
    // server failed the connection with (1002, 1007, 1009, 1011), 1006 when the connection dropped
    // without a close frame, or 1001 when it dropped while the server stops. `reason` is the close
    // frame's reason, or why the server closed it.
    virtual void on_close(int code, std::string reason) = 0;
    // send() answered QueueFull, and the queue has since drained below half of send_window.
    virtual void on_writable() {}
};

struct WebSocketState;  // internal: what a WebSocket handle and its I/O thread share

// One WebSocket upgrade request, handed to Handler::handle_websocket(): accept() or deny() it, then
// (accepted) send() and close(). Movable, not copyable. Every member never blocks and may be called
// from any thread: send(), consumed() and close() even from several threads at once (a reader acking
// while a writer sends); accept(), deny(), moving and destroying it from one thread with no other
// call running. It may outlive the connection and the Server: what it sends then is dropped (send()
// says Gone). It keeps the I/O thread's state alive (not the Server) until destroyed.
// Destroyed without accept() or deny(), it answers the request 500; destroyed while open without
// close(), it closes the connection with 1011.
class WebSocket {
public:
    enum class SendResult {
        Sent,       // queued under send_window
        QueueFull,  // queued, but over send_window: wait for on_writable() before sending more
        Gone,       // dropped: not accepted, closed, or the connection is gone
    };

    WebSocket() = default;
    WebSocket(std::shared_ptr<IoThread> io, std::uint64_t connection, std::shared_ptr<WebSocketState> state);
    WebSocket(WebSocket&& other) noexcept;
    WebSocket& operator=(WebSocket&& other) noexcept;  // ends what this one held first, as ~WebSocket
    WebSocket(const WebSocket&) = delete;
    WebSocket& operator=(const WebSocket&) = delete;
    ~WebSocket();

    // Sends "101 Switching Protocols" (with Sec-WebSocket-Protocol: `subprotocol` unless empty, and
    // `headers`, minus any Connection, Upgrade or Sec-WebSocket-Accept among them); events go to
    // `listener` from then on. If the connection is already gone, the listener gets on_close(1006) at
    // once on the I/O thread (1001 if the server stopped meanwhile; on this thread when it had stopped
    // before accept() was called). Throws
    // std::logic_error if it was accepted or denied already, std::invalid_argument for a null listener.
    void accept(std::shared_ptr<WebSocketListener> listener, std::string subprotocol = {},
                std::vector<Header> headers = {});
    // Answers the upgrade request with `response` instead (403 is what ASGI's close-before-accept
    // means); the connection closes after it. Throws std::logic_error if accepted or denied already.
    void deny(Response response);
    // Queues one message (text must be UTF-8: not checked). See SendResult.
    SendResult send(bool text, std::string data);
    // Starts the close handshake: a close frame with `code` and `reason`; the listener's on_close()
    // follows when the client answers (or close_timeout passes). Nothing is sent after it. Throws
    // std::invalid_argument for a code a server may not send (RFC 6455 7.4: 1000-1003, 1007-1014,
    // 3000-4999 only) or a reason over 123 bytes. A no-op if not open.
    void close(int code = 1000, std::string reason = {});
    // Acknowledges `bytes` of delivered messages (receive backpressure: WebSocketOptions::receive_window).
    void consumed(std::size_t bytes);
    // Whether accept() or deny() is still due.
    bool pending() const noexcept { return stage_.load() == Stage::Pending; }
    // Before accept() or deny(): `gone` is called once, on the I/O thread (or on this one if the
    // connection is gone already or the server has stopped), if the client hangs up or the connection
    // closes while the upgrade waits for its answer (as Responder::on_gone). Not called once the
    // upgrade is answered (the listener's on_close() tells of an accepted one). Must not block.
    void on_gone(std::function<void()> gone);

private:
    enum class Stage { Pending, Accepted, Done };
    void release() noexcept;

    std::shared_ptr<IoThread> io_;
    std::uint64_t connection_ = 0;
    std::shared_ptr<WebSocketState> state_;
    std::atomic<Stage> stage_{Stage::Done};  // send() on one thread may race close() on another
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
    // Whether WebSocket upgrade requests go to handle_websocket() (checked by the front end first: GET,
    // HTTP/1.1, Upgrade: websocket, a Connection "upgrade" token, Sec-WebSocket-Version 13, a
    // Sec-WebSocket-Key of 16 bytes in base64; 400 otherwise, 426 for another version). False (the
    // default): they go to handle() as ordinary requests (WSGI).
    virtual bool accepts_websockets() const noexcept { return false; }
    // A valid WebSocket upgrade request, on an I/O thread; must not block, like handle(). The default
    // denies it (403). An exception it throws is logged and the request answered 500.
    virtual void handle_websocket(Request request, WebSocket websocket);
    // Whether a request with a body is handed over as soon as its headers are in, its body following
    // through Request::body_stream (RequestBody), instead of once the whole body is in. Read by the
    // I/O threads when the Server starts. The front end's guarantees stay: "100 Continue" is sent
    // when the request is handed over, if the client expects it; a body over Limits::max_body or a
    // malformed chunk is answered 413 / 400 by the front end if the Handler has not answered yet (the
    // body_stream fails; the Handler's later answer is dropped), else the connection closes; no body
    // byte for header_timeout (unless paused by backpressure) -> 408 the same way; a client that goes
    // away mid-body fails the body_stream (and Responder::on_gone fires). An answer completed while
    // the body is still arriving closes the connection after it (the body_stream fails). Pipelined
    // requests stay in order: the next is parsed after this body has ended and it was answered.
    // False (the default): bodies arrive whole (WSGI).
    virtual bool streams_request_bodies() const noexcept { return false; }
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
    // WebSocket connections (Handler::accepts_websockets()).
    WebSocketOptions websocket;
};

// Counters, read without locks (each exact, the set not one instant).
struct ServerStats {
    std::uint64_t connections_accepted = 0, connections_open = 0;
    std::uint64_t requests = 0, responses = 0;
    std::uint64_t rejected = 0;  // answered 4xx/5xx by the front end itself
    std::uint64_t pending = 0;   // with the Handler now (WebSocket upgrades until accepted or denied)
    std::uint64_t websockets_accepted = 0, websockets_open = 0;  // upgrades accepted (101), open now
    std::uint64_t websocket_messages_in = 0;   // whole messages delivered to listeners
    std::uint64_t websocket_messages_out = 0;  // messages send() queued on an open connection
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
    // "Connection: close" while `grace` lasts; open WebSockets sent close 1001 and their close
    // handshake awaited while it lasts; then every connection closes and the I/O threads end.
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
