// WebSocket connections on their I/O thread (io_thread.hpp, websocket.hpp): the upgrade request
// checked and handed to Handler::handle_websocket(); the 101 written on accept; then wslay reads
// frames out of Connection::in (filled here from the socket or TLS, stopped while the listener has
// more than receive_window unacknowledged) and writes frames into Connection::out (written by
// flow.cpp's flush(), which credits the sender's window back through ws_written()); close frames,
// failures (1002, 1007, 1009, 1011), pings and their timeouts, and the graceful stop's 1001. A
// finished connection becomes Writing (its last frames) and then Lingering, like an HTTP response
// with Connection: close (connection.cpp's finish_response()).
#include <sys/socket.h>
#include <wslay/wslay.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "http/io_thread.hpp"
#include "http/listeners.hpp"
#include "http/websocket.hpp"

namespace manygil::http {

namespace {

// Receive backpressure: the listener has more than receive_window unacknowledged. Not once the server
// has sent its close frame: the client's answer must be read (what comes before it is still delivered).
bool paused(const WebSocketSession& s) noexcept {
    return !s.close_sent && s.state->receive_window && s.state->unconsumed.load() > s.state->receive_window;
}

const char* why_failed(int code) noexcept {
    switch (code) {
        case 1002: return "a protocol error (an unmasked frame, a reserved bit, an unknown opcode, a frame out of place)";
        case 1007: return "invalid UTF-8 in a text message";
        case 1009: return "a message over max_message";
        default: return "a broken frame";
    }
}

}  // namespace

// wslay's callbacks: bytes from Connection::in (up to a bad header FrameScanner found), bytes into
// Connection::out (always all of them: flush() writes them out), whole messages to ws_received().
struct WebSocketCallbacks {
    static ssize_t recv(wslay_event_context_ptr ctx, std::uint8_t* buf, std::size_t len, int, void* user) {
        auto& s = *static_cast<WebSocketSession*>(user);
        Connection& c = *s.conn;
        // Up to what FrameScanner has certified: a header still incomplete, or bad, waits.
        std::size_t end = static_cast<std::size_t>(std::min<std::uint64_t>(c.in.size(), s.scanner.certified() - s.in_base));
        if (c.in_pos >= end || paused(s)) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        std::size_t n = std::min(len, end - c.in_pos);
        std::memcpy(buf, c.in.data() + c.in_pos, n);
        c.in_pos += n;
        return static_cast<ssize_t>(n);
    }
    static ssize_t send(wslay_event_context_ptr, const std::uint8_t* data, std::size_t len, int, void* user) {
        auto& s = *static_cast<WebSocketSession*>(user);
        s.conn->out.append(reinterpret_cast<const char*>(data), len);
        return static_cast<ssize_t>(len);
    }
    static void message(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) {
        auto& s = *static_cast<WebSocketSession*>(user);
        s.io->ws_received(*s.conn, arg->opcode, arg->msg, arg->msg_length, arg->status_code);
    }
};

WebSocketSession::~WebSocketSession() {
    if (ctx) wslay_event_context_free(ctx);
}

bool IoThread::prepare_websocket(Connection& c, const Request& request) {
    if (!shared_->handler->accepts_websockets() || !wants_websocket(request)) return true;
    UpgradeCheck check = check_upgrade(request);
    if (check.status) {
        shared_->rejected.fetch_add(1);
        shared_->log(LogLevel::info, "manygil serve: " + std::to_string(check.status) + " " +
                                         std::string(reason_phrase(check.status)) + " to " + format_address(c.remote) +
                                         ": " + check.reason);
        Response r(check.status, std::string(reason_phrase(check.status)) + ": " + check.reason + "\n");
        if (check.status == 426) {  // RFC 6455 4.4: the versions spoken; RFC 9110 15.5.22: Upgrade
            r.headers.push_back({"Sec-WebSocket-Version", "13"});
            r.headers.push_back({"Upgrade", "websocket"});
        }
        c.head = false;
        write_response(c, std::move(r), false);
        return false;
    }
    auto state = std::make_shared<WebSocketState>();
    state->send_window = shared_->options.websocket.send_window;
    state->receive_window = shared_->options.websocket.receive_window;
    c.ws = std::make_unique<WebSocketSession>(std::move(state), std::move(check.accept_key));
    return true;
}

void IoThread::websocket_op(std::uint64_t connection, WebSocketOp& op) {
    auto it = by_id_.find(connection);
    Connection* c = it == by_id_.end() ? nullptr : it->second;
    switch (op.kind) {
        case WebSocketOp::Kind::Accept:
            shared_->pending.fetch_sub(1);
            shared_->responses.fetch_add(1);
            if (!c || c->state != Connection::State::Dispatched || !c->ws) {  // gone, or answered 504
                try {
                    op.listener->on_close(1006, "the connection closed before the upgrade was accepted");
                } catch (const std::exception& e) {
                    shared_->log(LogLevel::error, std::string("manygil serve: a WebSocket listener failed: ") + e.what());
                }
                return;
            }
            return ws_accept(*c, op);
        case WebSocketOp::Kind::Send: {
            if (!c || !c->ws || !c->ws->open || c->ws->close_sent) return;  // send() answers Gone from now on
            WebSocketSession& s = *c->ws;
            if (op.full) s.full = true;
            wslay_event_msg msg{static_cast<std::uint8_t>(op.text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME),
                                reinterpret_cast<const std::uint8_t*>(op.data.data()), op.data.size()};
            if (wslay_event_queue_msg(s.ctx, &msg) != 0) {
                s.state->queued.fetch_sub(op.data.size());
                return;
            }
            shared_->ws_out.fetch_add(1);
            s.credit += op.data.size();
            return ws_send_out(*c);
        }
        case WebSocketOp::Kind::Close:
            if (c && c->ws && c->state == Connection::State::WebSocket) ws_begin_close(*c, op.code, op.data);
            return;
        case WebSocketOp::Kind::Resume:
            if (c && c->ws && c->state == Connection::State::WebSocket) ws_pump(*c);
            return;
    }
}

void IoThread::ws_accept(Connection& c, WebSocketOp& op) {
    WebSocketSession& s = *c.ws;
    wslay_event_callbacks callbacks{};
    callbacks.recv_callback = &WebSocketCallbacks::recv;
    callbacks.send_callback = &WebSocketCallbacks::send;
    callbacks.on_msg_recv_callback = &WebSocketCallbacks::message;
    if (wslay_event_context_server_init(&s.ctx, &callbacks, &s) != 0) {
        s.ctx = nullptr;
        try {
            op.listener->on_close(1006, "out of memory");
        } catch (...) {
        }
        return close(c);
    }
    wslay_event_config_set_max_recv_msg_length(s.ctx, shared_->options.websocket.max_message);
    s.io = this;
    s.conn = &c;
    s.listener = std::move(op.listener);
    s.open = true;
    c.on_gone = nullptr;  // WebSocket::on_gone watched the wait for this answer; on_close() tells from here on
    c.in.erase(0, c.in_pos);  // bytes after the upgrade request are the first frames
    c.in_pos = 0;
    s.last_ping = Clock::now();
    c.state = Connection::State::WebSocket;
    c.keep_alive = false;
    c.last_activity = Clock::now();
    c.out += switching_protocols_head(s.accept_key, op.subprotocol, op.headers, date_.now());
    if (shared_->access_format && c.access) {
        shared_->write_line(shared_->access_format->render(*c.access, 101, std::nullopt, op.headers));
    }
    shared_->ws_accepted.fetch_add(1);
    shared_->ws_open.fetch_add(1);
    if (stopping_) return ws_begin_close(c, 1001, "the server is shutting down");
    std::uint64_t id = c.id;
    flush(c);
    if (by_id_.find(id) == by_id_.end()) return;
    ws_pump(c);
}

void IoThread::ws_pump(Connection& c) {
    WebSocketSession& s = *c.ws;
    const std::uint64_t id = c.id;
    for (;;) {
        if (s.finishing) return;
        // New bytes: their frame headers checked first, then wslay takes them (up to a bad header).
        if (s.scan_pos < c.in.size()) {
            s.scanner.scan(reinterpret_cast<const unsigned char*>(c.in.data()) + s.scan_pos, c.in.size() - s.scan_pos);
            s.scan_pos = c.in.size();
        }
        const std::size_t certified_end = static_cast<std::size_t>(std::min<std::uint64_t>(c.in.size(), s.scanner.certified() - s.in_base));
        if (c.in_pos < certified_end && !paused(s)) {
            int r = wslay_event_recv(s.ctx);
            if (s.listener_failed) return ws_fail(c, 1011, "the application's listener failed", 1011);
            if (wslay_event_get_close_received(s.ctx)) return ws_finish(c);  // on_close was delivered
            if (r != 0 || !wslay_event_get_read_enabled(s.ctx)) {
                // wslay failed the connection and queued its close frame: which code is known once sent.
                wslay_event_send(s.ctx);
                int code = wslay_event_get_status_code_sent(s.ctx);
                if (code == WSLAY_CODE_NO_STATUS_RCVD || code == WSLAY_CODE_ABNORMAL_CLOSURE) code = 1002;
                return ws_fail(c, code, why_failed(code), code);
            }
        }
        if (s.scanner.bad() && c.in_pos == certified_end) {
            return ws_fail(c, 1002, std::string("a protocol error: ") + s.scanner.why(), 1002);
        }
        if (c.in_pos == c.in.size()) {
            s.in_base += c.in.size();
            c.in.clear();
            c.in_pos = s.scan_pos = 0;
        }
        if (wslay_event_want_write(s.ctx)) {  // pongs
            ws_send_out(c);
            if (by_id_.find(id) == by_id_.end()) return;
        }
        if (paused(s) || !c.readable) return;  // consumed() resumes; a new edge resumes
        switch (read_some(c)) {
            case ReadStep::More: continue;
            case ReadStep::Stop: return;
            case ReadStep::PlainHttp:  // (not after a handshake)
            case ReadStep::Closed: return close(c);  // the client left without a close frame: on_close(1006)
        }
    }
}

void IoThread::ws_received(Connection& c, int opcode, const unsigned char* data, std::size_t length, int status) {
    WebSocketSession& s = *c.ws;
    if (!s.open) return;
    switch (opcode) {
        case WSLAY_TEXT_FRAME:
        case WSLAY_BINARY_FRAME:
            shared_->ws_in.fetch_add(1);
            s.state->unconsumed.fetch_add(length);
            try {
                s.listener->on_message(opcode == WSLAY_TEXT_FRAME, std::string(reinterpret_cast<const char*>(data), length));
            } catch (const std::exception& e) {
                shared_->log(LogLevel::error, std::string("manygil serve: a WebSocket listener failed: ") + e.what());
                s.listener_failed = true;
                wslay_event_shutdown_read(s.ctx);  // wslay returns at once
            }
            return;
        case WSLAY_PONG: s.ping_outstanding = false; return;
        case WSLAY_CONNECTION_CLOSE: {
            // wslay has queued the echo of this close frame (or ours went out first).
            std::string reason;
            if (length > 2) reason.assign(reinterpret_cast<const char*>(data) + 2, length - 2);
            return ws_notify_close(c, status ? status : 1005, std::move(reason));
        }
        default: return;  // a ping: wslay queued the pong
    }
}

void IoThread::ws_send_out(Connection& c) {
    if (wslay_event_want_write(c.ws->ctx)) wslay_event_send(c.ws->ctx);  // never short: send() takes all
    flush(c);  // may close c
}

void IoThread::ws_written(Connection& c) {
    WebSocketSession& s = *c.ws;
    if (s.credit) {
        s.state->queued.fetch_sub(std::min(s.credit, s.state->queued.load()));
        s.credit = 0;
    }
    if (s.full && s.open && s.state->queued.load() <= s.state->send_window / 2) {
        s.full = false;
        try {
            s.listener->on_writable();
        } catch (const std::exception& e) {
            shared_->log(LogLevel::error, std::string("manygil serve: a WebSocket listener failed: ") + e.what());
        }
    }
}

void IoThread::ws_fail(Connection& c, int code, const std::string& why, int notify_code) {
    WebSocketSession& s = *c.ws;
    shared_->log(LogLevel::info, "manygil serve: WebSocket from " + format_address(c.remote) + " closed with " +
                                     std::to_string(code) + ": " + why);
    if (!s.close_sent) {
        std::string reason = why.substr(0, 123);
        wslay_event_queue_close(s.ctx, static_cast<std::uint16_t>(code), reinterpret_cast<const std::uint8_t*>(reason.data()),
                                reason.size());
        s.close_sent = true;
    }
    wslay_event_shutdown_read(s.ctx);
    ws_notify_close(c, notify_code, why);
    ws_finish(c);
}

void IoThread::ws_begin_close(Connection& c, int code, const std::string& reason) {
    WebSocketSession& s = *c.ws;
    if (!s.open || s.close_sent || s.finishing) return;
    wslay_event_queue_close(s.ctx, static_cast<std::uint16_t>(code), reinterpret_cast<const std::uint8_t*>(reason.data()),
                            std::min<std::size_t>(reason.size(), 123));
    s.close_sent = true;
    s.close_sent_at = Clock::now();
    std::uint64_t id = c.id;
    ws_send_out(c);
    // Reading again if receive backpressure had stopped it: the client's close frame is due.
    if (by_id_.find(id) != by_id_.end() && c.state == Connection::State::WebSocket) ws_pump(c);
}

void IoThread::ws_finish(Connection& c) {
    WebSocketSession& s = *c.ws;
    s.finishing = true;
    if (wslay_event_want_write(s.ctx)) wslay_event_send(s.ctx);  // the close frame (an echo, or ours)
    // Written out, then the write side shut and input dropped until EOF (RFC 6455 7.1.1: the server
    // closes the TCP connection first).
    c.state = Connection::State::Writing;
    c.keep_alive = false;
    flush(c);
}

void IoThread::ws_notify_close(Connection& c, int code, std::string reason) {
    WebSocketSession& s = *c.ws;
    if (!s.open) return;
    s.open = false;
    s.state->gone.store(true);
    shared_->ws_open.fetch_sub(1);
    std::shared_ptr<WebSocketListener> listener = std::move(s.listener);
    try {
        listener->on_close(code, std::move(reason));
    } catch (const std::exception& e) {
        shared_->log(LogLevel::error, std::string("manygil serve: a WebSocket listener failed: ") + e.what());
    }
}

void IoThread::ws_sweep(Connection& c, Clock::time_point now) {
    WebSocketSession& s = *c.ws;
    const WebSocketOptions& o = shared_->options.websocket;
    if (s.close_sent && now - s.close_sent_at > o.close_timeout) {
        ws_notify_close(c, stopping_ ? 1001 : 1006, "no close frame from the client within close_timeout");
        return close(c);
    }
    if (o.ping_interval.count() <= 0 || !s.open || s.close_sent) return;
    if (paused(s)) {
        // Not reading: a pong could not be seen. A slow application must not cost the client its
        // connection; the clock starts again once reading resumes.
        s.ping_sent_at = s.last_ping = now;
        return;
    }
    if (s.ping_outstanding && now - s.ping_sent_at > o.ping_timeout) {
        return ws_fail(c, 1011, "no pong within ping_timeout", 1006);
    }
    if (!s.ping_outstanding && now - s.last_ping >= o.ping_interval) {
        wslay_event_msg ping{WSLAY_PING, reinterpret_cast<const std::uint8_t*>("manygil"), 7};
        if (wslay_event_queue_msg(s.ctx, &ping) != 0) return;
        s.ping_outstanding = true;
        s.ping_sent_at = s.last_ping = now;
        ws_send_out(c);
    }
}

void IoThread::ws_closed(Connection& c) {
    ws_notify_close(c, stopping_ ? 1001 : 1006,
                    stopping_ ? "the server stopped" : "the connection closed without a close frame");
}

}  // namespace manygil::http
