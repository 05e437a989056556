// One connection's HTTP/1 state machine, on its I/O thread (io_thread.hpp, connection.hpp): bytes in
// (plain or TLS) to the RequestParser; a complete request dispatched to the Handler (or queued for
// room); the Handler's answer (whole, or a stream with its framing) serialized into the output;
// refusals (400, 408, 413, 431, 501, 504...) answered and logged; after a response, the next
// request or the linger before close. Sockets are written by flow.cpp's flush().
#include "http/io_thread.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>

#include "http/listeners.hpp"

namespace manygil::http {

namespace {

// What one recv() (or TLS read) takes at most.
constexpr std::size_t kReadChunk = 64 * 1024;

// The I/O thread's one read buffer: bytes go from it into the connection's `in` at once.
std::string& read_buffer() {
    thread_local std::string chunk(kReadChunk, '\0');
    return chunk;
}

}  // namespace

void IoThread::pump(Connection& c) {
    if (c.state == Connection::State::WebSocket) return ws_pump(c);
    std::string& chunk = read_buffer();
    for (;;) {
        if (c.state == Connection::State::Lingering) {
            ssize_t n = ::recv(c.fd, chunk.data(), chunk.size(), 0);
            if (n > 0) continue;
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                c.readable = false;
                return;
            }
            return close(c);  // EOF or error
        }
        // The next request waits for this answer; a streamed body goes on arriving meanwhile.
        bool body_phase = c.body_in && (c.state == Connection::State::Dispatched || c.state == Connection::State::Writing);
        if (c.state != Connection::State::Reading && !body_phase) return;
        if (c.body_in && c.body_in->pause_if_full()) return;  // backpressure: a BodyAck resumes it
        if (c.in_pos < c.in.size()) {
            bool was_mid = c.parser.mid_request();
            std::size_t used = c.parser.feed(c.in.data() + c.in_pos, c.in.size() - c.in_pos);
            c.in_pos += used;
            if (c.in_pos == c.in.size()) {
                c.in.clear();
                c.in_pos = 0;
            }
            if (!was_mid && c.parser.mid_request()) c.request_started = Clock::now();
            if (c.parser.head_ready() && c.parser.state() == RequestParser::State::Complete) {
                // The whole body came with the head: handed over whole, as without streaming.
                Request request = c.parser.take_head();
                request.body = c.parser.take_body();
                c.parser.take();
                const std::uint64_t id = c.id;  // dispatch() may close `c`: see Complete below
                dispatch(c, std::move(request));
                if (by_id_.find(id) == by_id_.end()) return;
                continue;
            }
            if (c.parser.head_ready() && c.parser.state() == RequestParser::State::Reading) {
                // streams_request_bodies: hand the request over now (a body refused at once is not)
                bool expects_continue = c.parser.wants_continue();
                std::uint64_t id = c.id;
                begin_body(c, c.parser.take_head(), expects_continue);
                if (by_id_.find(id) == by_id_.end()) return;
            }
            if (c.parser.streaming_body()) {
                std::string bytes = c.parser.take_body();
                bool end = c.parser.state() == RequestParser::State::Complete;
                if (c.body_in && (!bytes.empty() || end)) c.body_in->push(std::move(bytes), end);
                if (end) {
                    c.body_in.reset();
                    c.parser.take();  // empty: the request went out with its head
                    if (c.state != Connection::State::Reading) return;  // the next request waits for the answer
                    continue;
                }
            }
            switch (c.parser.state()) {
                case RequestParser::State::Complete: {
                    // dispatch() may answer at once (a refused WebSocket upgrade), and writing that
                    // answer may pump this connection again and close it: then `c` is gone.
                    const std::uint64_t id = c.id;
                    dispatch(c, c.parser.take());
                    if (by_id_.find(id) == by_id_.end()) return;
                    continue;
                }
                case RequestParser::State::Failed:
                    if (c.body_in) return refuse_body(c, c.parser.error_status(), c.parser.error_reason());
                    return reject(c, c.parser.error_status(), c.parser.error_reason());
                case RequestParser::State::Reading: break;
            }
            if (c.parser.wants_continue() && !c.sent_continue) {
                c.sent_continue = true;
                c.out += "HTTP/1.1 100 Continue\r\n\r\n";
                const std::uint64_t id = c.id;  // flush() may close `c`
                flush(c);
                if (by_id_.find(id) == by_id_.end()) return;
            }
        }
        if (!c.readable) return;
        switch (read_some(c)) {
            case ReadStep::More: continue;
            case ReadStep::Stop: return;
            case ReadStep::PlainHttp:
                c.tls.reset();  // answered in the clear, then closed
                return reject(c, 400, "a plain HTTP request on a TLS port (use https://)");
            case ReadStep::Closed:
                return close(c);  // the client closed (between requests, or mid-request: nothing to answer) or failed
        }
    }
}

IoThread::ReadStep IoThread::read_some(Connection& c) {
    std::string& chunk = read_buffer();
    if (c.tls) {
        // The handshake first; then records, each read whole (so a short read says nothing about
        // the socket: read on until WantRead).
        TlsSession::Result r = c.tls->established() ? c.tls->read(chunk.data(), chunk.size()) : c.tls->handshake();
        switch (r.status) {
            case TlsSession::Status::Ok:
                if (r.bytes) {
                    c.last_activity = Clock::now();
                    c.in.append(chunk.data(), r.bytes);
                }
                return ReadStep::More;
            case TlsSession::Status::WantRead: c.readable = false; return ReadStep::Stop;
            case TlsSession::Status::WantWrite: c.tls_read_wants_write = true; return ReadStep::Stop;
            case TlsSession::Status::PlainHttp: return ReadStep::PlainHttp;
            case TlsSession::Status::Closed:
            case TlsSession::Status::Failed: return ReadStep::Closed;
        }
        return ReadStep::Closed;
    }
    ssize_t n = ::recv(c.fd, chunk.data(), chunk.size(), 0);
    if (n > 0) {
        c.last_activity = Clock::now();
        c.in.append(chunk.data(), static_cast<std::size_t>(n));
        // A short read emptied the socket: bytes arriving later raise a new edge, so there is no
        // need for a recv() that would only say EAGAIN.
        if (static_cast<std::size_t>(n) < chunk.size() && !c.hangup) c.readable = false;
        return ReadStep::More;
    }
    if (n < 0 && errno == EINTR) return ReadStep::More;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c.readable = false;
        return ReadStep::Stop;
    }
    return ReadStep::Closed;
}

void IoThread::dispatch(Connection& c, Request request) {
    shared_->requests.fetch_add(1);
    c.state = Connection::State::Dispatched;
    c.head = request.method == "HEAD";
    c.keep_alive = request.keep_alive;
    c.http10 = request.version_major == 1 && request.version_minor == 0;
    c.sent_continue = false;
    c.request_started = {};
    request.tls = c.tls != nullptr;
    request.remote_addr = c.remote.first;
    request.remote_port = c.remote.second;
    request.server_addr = c.local.first;
    request.server_port = c.local.second;
    if (shared_->access_format) {
        AccessRecord& r = c.access.emplace();
        r.remote = c.remote.first;
        r.method = request.method;
        r.target = request.target;
        r.protocol = "HTTP/" + std::to_string(request.version_major) + "." + std::to_string(request.version_minor);
        if (shared_->access_format->needs_request_headers()) r.request_headers = request.headers;
        r.started = Clock::now();
    }
    if (!prepare_websocket(c, request)) return;  // a bad upgrade request: answered
    if (shared_->pending.load() >= shared_->options.max_pending || !waiting_.empty()) {
        c.waiting = std::move(request);
        waiting_.push_back(c.id);
        return;
    }
    hand_over(c, std::move(request));
}

void IoThread::hand_over(Connection& c, Request request) {
    shared_->pending.fetch_add(1);
    c.handed_over = Clock::now();
    try {
        if (c.ws) shared_->handler->handle_websocket(std::move(request), WebSocket(shared_from_this(), c.id, c.ws->state));
        else shared_->handler->handle(std::move(request), Responder(shared_from_this(), c.id));
    } catch (const std::exception& e) {
        // The Responder, destroyed while unwinding, has answered 500.
        shared_->log(LogLevel::error, std::string("manygil serve: the request handler failed: ") + e.what());
    }
}

void IoThread::begin_body(Connection& c, Request request, bool expects_continue) {
    auto state = std::make_shared<RequestBodyState>();
    state->io = weak_from_this();
    state->connection = c.id;
    request.body_stream = RequestBody(state);
    c.body_in = state;
    c.body_answered = false;
    dispatch(c, std::move(request));
    if (expects_continue && c.state == Connection::State::Dispatched && !c.body_answered) {
        // The client waits for this before it sends the body (the Handler has the request now).
        c.out += "HTTP/1.1 100 Continue\r\n\r\n";
        flush(c);
    }
}

void IoThread::refuse_body(Connection& c, int status, const std::string& reason) {
    std::shared_ptr<RequestBodyState> body = std::move(c.body_in);
    body->fail(std::to_string(status) + " " + std::string(reason_phrase(status)) + ": " + reason);
    if (c.state == Connection::State::Dispatched && !c.body_answered) {
        // Not answered yet: the front end answers; the Handler's late answer finds the connection no
        // longer Dispatched and is dropped. A request still waiting for room never reaches it.
        if (c.waiting) c.waiting.reset();
        return reject(c, status, reason);
    }
    shared_->log(LogLevel::info, "manygil serve: closing the connection of " + format_address(c.remote) +
                                     " (already answered): its request body failed with " + std::to_string(status) +
                                     ": " + reason);
    close(c);
}

void IoThread::complete(Completion completion) {
    using Kind = Completion::Kind;
    auto it = by_id_.find(completion.connection);
    Connection* c = it == by_id_.end() ? nullptr : it->second;
    switch (completion.kind) {
        case Kind::Response: {
            Response& response = completion.response;
            if (!response.stream) {
                shared_->pending.fetch_sub(1);
                shared_->responses.fetch_add(1);
            }
            if (!c || c->state != Connection::State::Dispatched) {  // the client went away, or it was answered 504
                if (completion.stream) completion.stream->close();
                return;
            }
            if (shared_->access_format && c->access) {
                std::optional<std::uint64_t> bytes;
                if (!response.stream) bytes = response.body.size() + (response.file ? response.file->length : 0);
                shared_->write_line(shared_->access_format->render(*c->access, response.status, bytes, response.headers));
            }
            // A body still arriving when the answer goes out: the connection closes after it (the
            // rest of the body is not read to find the next request).
            bool keep_alive = c->keep_alive && !response.close && !shared_->stopping.load() && !c->body_in;
            c->body_answered = true;
            if (!response.stream) return write_response(*c, std::move(response), keep_alive);
            // A stream: its framing follows from the application's headers and the client's version.
            c->stream = std::move(completion.stream);
            c->framing = Framing::Chunked;
            if (auto declared = declared_length(response.headers)) {
                c->framing = Framing::Length;
                c->stream_left = *declared > response.body.size() ? *declared - response.body.size() : 0;
                if (response.body.size() > *declared) response.body.resize(static_cast<std::size_t>(*declared));
            }
            if (c->framing == Framing::Chunked && c->http10) {
                c->framing = Framing::UntilClose;
                keep_alive = false;
            }
            c->state = Connection::State::Writing;
            c->keep_alive = keep_alive;
            c->last_activity = Clock::now();
            c->out += serialize_head(response, keep_alive, date_.now(), c->framing);
            std::string first = std::move(response.body);
            if (c->framing == Framing::Length) {
                if (!c->head) c->out += first;
                return flush(*c);
            }
            return stream_chunk(*c, std::move(first));
        }
        case Kind::Chunk:
            if (!c || !c->stream) return;
            c->stream_credit += completion.bytes.size();
            return stream_chunk(*c, std::move(completion.bytes));
        case Kind::Watch:
            // A connection still waiting for its response (or streaming it) is watched; one already
            // closed is gone; one past its response (or on the next request) drops the watch.
            if (!c) return completion.gone();
            if (c->state == Connection::State::Dispatched || (c->state == Connection::State::Writing && c->stream)) {
                c->on_gone = std::move(completion.gone);
                if (c->hangup) c->tell_gone();
            }
            return;
        case Kind::WebSocket: return websocket_op(completion.connection, *completion.websocket);
        case Kind::BodyAck:  // a streamed body's consumer caught up: read its connection again
            if (!c || !c->body_in) return;
            c->last_activity = Clock::now();  // the pause was the consumer's, not a slow client's
            return pump(*c);
        case Kind::Finish:
        case Kind::Abort:
            shared_->pending.fetch_sub(1);
            shared_->responses.fetch_add(1);
            if (!c || !c->stream) return;
            return end_stream(*c, completion.kind == Kind::Abort);
    }
}

void IoThread::stream_chunk(Connection& c, std::string bytes) {
    if (!bytes.empty() && !c.head) {
        if (c.framing == Framing::Chunked) {
            char size[20];
            int n = std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
            c.out.append(size, static_cast<std::size_t>(n));
            c.out += bytes;
            c.out += "\r\n";
        } else if (c.framing == Framing::Length) {
            std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(c.stream_left, bytes.size()));
            c.out.append(bytes, 0, take);  // no more than the application's Content-Length
            c.stream_left -= take;
        } else {
            c.out += bytes;
        }
    }
    flush(c);
}

void IoThread::end_stream(Connection& c, bool abort) {
    if (!abort) c.on_gone = nullptr;  // the response is complete
    std::shared_ptr<StreamState> stream = std::move(c.stream);
    stream->close();
    if (abort || (c.framing == Framing::Length && c.stream_left > 0)) {
        // The body is incomplete: the client must not take it for a whole response.
        shared_->log(LogLevel::warning, "manygil serve: a streamed response to " + format_address(c.remote) +
                     " ended early; closing the connection");
        c.keep_alive = false;
    }
    if (abort) {
        std::uint64_t id = c.id;
        flush(c);  // may close (and destroy) c
        if (auto it = by_id_.find(id); it != by_id_.end()) close(*it->second);
        return;
    }
    if (c.framing == Framing::Chunked && !c.head) c.out += "0\r\n\r\n";
    if (c.framing == Framing::UntilClose) c.keep_alive = false;
    flush(c);
}

void IoThread::reject(Connection& c, int status, const std::string& reason) {
    shared_->rejected.fetch_add(1);
    shared_->log(status >= 500 ? LogLevel::error : LogLevel::info,
                 "manygil serve: " + std::to_string(status) + " " + std::string(reason_phrase(status)) + " to " +
                 format_address(c.remote) + ": " + reason);
    c.head = false;
    write_response(c, Response(status, std::string(reason_phrase(status)) + ": " + reason + "\n"), false);
}

void IoThread::write_response(Connection& c, Response response, bool keep_alive) {
    // The bytes must match a Content-Length the handler set, or the connection's next response would
    // be misread: extra bytes are dropped; a short body closes the connection after it.
    auto declared = declared_length(response.headers);
    if (declared && !c.head && !bodyless_status(response.status)) {
        std::uint64_t have = response.body.size() + (response.file ? response.file->length : 0);
        if (have != *declared) {
            shared_->log(LogLevel::error, "manygil serve: a response to " + format_address(c.remote) + " declared " +
                         std::to_string(*declared) + " bytes and produced " + std::to_string(have));
        }
        if (have > *declared && response.body.size() >= *declared) {
            response.body.resize(static_cast<std::size_t>(*declared));
            response.file.reset();
        } else if (have > *declared) {
            response.file->length = *declared - response.body.size();
        } else if (have < *declared) {
            keep_alive = false;
        }
    }
    c.state = Connection::State::Writing;
    c.keep_alive = keep_alive;
    c.last_activity = Clock::now();
    c.on_gone = nullptr;  // the response is complete
    c.out += serialize_head(response, keep_alive, date_.now());
    if (!c.head) {
        c.out += response.body;
        if (response.file && response.file->length > 0) c.file_response = std::move(response);
    }
    flush(c);
}

void IoThread::finish_response(Connection& c) {
    if (c.body_in) {
        c.keep_alive = false;
        std::exchange(c.body_in, nullptr)->fail("the response was complete before the request body");
    }
    if (!c.keep_alive) {
        // Let the client read the response before the connection goes: shut our side, drop the
        // rest of what it sends, close on its EOF (or after kLinger). TLS: close_notify first.
        if (c.tls) c.tls->shutdown();
        ::shutdown(c.fd, SHUT_WR);
        c.state = Connection::State::Lingering;
        c.last_activity = Clock::now();
        c.in.clear();
        c.in_pos = 0;
        return pump(c);
    }
    c.state = Connection::State::Reading;
    c.last_activity = Clock::now();
    pump(c);
}

}  // namespace manygil::http
