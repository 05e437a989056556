// One connection's state, and what a Responder posts about it to its I/O thread. A Connection is
// owned by its I/O thread (IoThread::by_fd_) and touched only there; a Completion is built by a
// Responder on any thread and consumed by that I/O thread; a StreamState is the one piece both
// sides of a stream touch (under its mutex). Plain C++ data: no Python, no GIL. Internal to http/.
//
// A connection's states: Reading (reading and parsing the next request) -> Dispatched (a request is
// with the Handler, or waits for room: backpressure) -> Writing (the response, from `out`, then its
// file range) -> Reading again on keep-alive, or Lingering (final response written, write side shut,
// input dropped until EOF) -> closed; or, for an accepted WebSocket upgrade, Dispatched -> WebSocket
// -> Writing (the close frame) -> Lingering. The transitions are IoThread's (connection.cpp,
// websocket_io.cpp).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "http/access_log.hpp"
#include "http/request_parser.hpp"
#include "http/response_head.hpp"
#include "http/server_state.hpp"
#include "http/tls.hpp"
#include "http/websocket.hpp"
#include "manygil/http.hpp"

namespace manygil::http {

// What a streaming Responder and its connection's I/O thread share: how many posted bytes are still
// unsent (the producer waits above Responder::kStreamWindow), and whether the stream can go on.
struct StreamState {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t queued = 0;  // (mu)
    bool closed = false;     // (mu) the connection is gone or the server stopped
    // (mu) Responder::try_send_chunk's producer, told once when room frees or the stream closes.
    std::function<void()> ready;

    void release(std::size_t n) {
        std::function<void()> tell;
        {
            std::lock_guard lock(mu);
            queued -= std::min(queued, n);
            if (ready && queued < Responder::kStreamWindow) tell = std::move(ready);
            ready = nullptr;
        }
        cv.notify_all();
        if (tell) tell();
    }
    void close() {
        std::function<void()> tell;
        {
            std::lock_guard lock(mu);
            closed = true;
            tell = std::move(ready);
            ready = nullptr;
        }
        cv.notify_all();
        if (tell) tell();
    }
};

class IoThread;

// What a RequestBody and its connection's I/O thread share (under mu): bytes arrived and not read,
// the end or the failure, the consumer's when_ready(), and the backpressure count: bytes pushed and
// not acknowledged. When that is over RequestBody::kWindow, the I/O thread sets `paused` and stops
// reading; consumed() bringing it back under posts a BodyAck to resume it.
struct RequestBodyState {
    std::weak_ptr<IoThread> io;
    std::uint64_t connection = 0;
    mutable std::mutex mu;
    std::string data;       // (mu) arrived, not read
    bool ended = false;     // (mu) the body is complete
    bool failed = false;    // (mu) it cannot complete: `error` says why
    std::string error;      // (mu)
    std::size_t unacked = 0;  // (mu) pushed, not consumed()
    bool paused = false;      // (mu) the I/O thread stopped reading for it
    std::function<void()> ready;  // (mu) when_ready()

    // I/O thread: more bytes, the end, a failure. Each may call `ready` (outside mu).
    void push(std::string bytes, bool end);
    void fail(std::string why);
    // I/O thread: whether to stop reading now (and remember that it did).
    bool pause_if_full();
};

// What a Responder posts to the I/O thread.
struct Completion {
    enum class Kind { Response, Chunk, Finish, Abort, Watch, WebSocket, BodyAck };
    std::uint64_t connection = 0;
    Kind kind = Kind::Response;
    Response response;                    // Kind::Response
    std::string bytes;                    // Kind::Chunk
    std::shared_ptr<StreamState> stream;  // a streamed Kind::Response
    std::function<void()> gone;           // Kind::Watch (Responder::on_gone)
    std::shared_ptr<WebSocketOp> websocket;  // Kind::WebSocket (websocket_io.cpp)
};

struct Connection {
    enum class State {
        Reading,     // reading and parsing the next request
        Dispatched,  // a request is with the Handler (or waiting for capacity)
        Writing,     // writing the response
        Lingering,   // final response written, write side shut: dropping input until EOF
        WebSocket,   // upgraded: frames both ways (websocket_io.cpp)
    };

    Connection(int fd_, std::uint64_t id_, const Limits& limits) : fd(fd_), id(id_), parser(limits) {}

    int fd;
    std::uint64_t id;
    RequestParser parser;
    State state = State::Reading;
    std::string in;  // received, not yet parsed (from in_pos)
    std::size_t in_pos = 0;
    std::string out;  // to write (from out_pos)
    std::size_t out_pos = 0;
    std::optional<Response> file_response;  // its file range is sent after `out`
    std::optional<Request> waiting;         // complete, waiting for the Handler to have room
    bool readable = false, keep_alive = true, head = false, sent_continue = false, http10 = false;
    bool hangup = false;  // the peer shut its side (or the socket failed): EOF or an error is due
    // A streamed response being written: how its body is framed, the bytes it may still send
    // (Framing::Length), and bytes appended to `out` not yet released to the producer.
    std::shared_ptr<StreamState> stream;
    Framing framing = Framing::Length;
    std::uint64_t stream_left = 0;
    std::size_t stream_credit = 0;
    Clock::time_point last_activity = Clock::now(), request_started{};
    Clock::time_point handed_over{};  // when the Dispatched request went to the Handler (not while waiting)
    std::pair<std::string, std::uint16_t> remote, local;
    std::optional<AccessRecord> access;  // the dispatched request's parts, when access_log is on
    // TLS (ServerOptions::tls): the session, and which readiness a TLS call that could not finish
    // waits for besides its own direction (reading may need to write, and writing to read).
    std::unique_ptr<TlsSession> tls;
    bool tls_read_wants_write = false, tls_write_wants_read = false;
    Clock::time_point opened = Clock::now();  // the handshake must be done header_timeout after it
    // Responder::on_gone: called if the client hangs up or the connection closes before the
    // response is written; dropped once it is.
    std::function<void()> on_gone;
    void tell_gone() {
        if (auto tell = std::move(on_gone)) {
            on_gone = nullptr;
            tell();
        }
    }
    // A WebSocket upgrade request (set when dispatched) and, once accepted, the WebSocket.
    std::unique_ptr<WebSocketSession> ws;
    // A request body still arriving after its request went to the Handler (streams_request_bodies),
    // and whether the Handler has had an answer written for that request (then a refusal of the body
    // can only close the connection).
    std::shared_ptr<RequestBodyState> body_in;
    bool body_answered = false;
};

}  // namespace manygil::http
