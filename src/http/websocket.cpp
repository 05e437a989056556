// WebSockets (websocket.hpp): the public WebSocket handle (any thread: atomics and posts to the
// connection's I/O thread, never a Connection), the upgrade request's checks and the accept key
// (RFC 6455 4.2), the 101 head, and FrameScanner's header rules (5.2, 5.5).
#include "http/websocket.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <stdexcept>
#include <string_view>
#include <utility>

#include "http/connection.hpp"
#include "http/io_thread.hpp"
#include "http/request_parser.hpp"

namespace manygil::http {

namespace {

// Whether the comma-separated list `value` has `token` (case-insensitive, blanks trimmed).
bool has_token(std::string_view value, std::string_view token) noexcept {
    while (!value.empty()) {
        std::size_t comma = value.find(',');
        std::string_view item = trim_ows(value.substr(0, comma));
        if (iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

bool any_header_has_token(const Request& r, std::string_view name, std::string_view token) noexcept {
    for (const Header& h : r.headers) {
        if (iequals(h.name, name) && has_token(h.value, token)) return true;
    }
    return false;
}

// A base64 encoding of exactly 16 bytes: 22 characters of the alphabet, the last one's low four
// bits zero (RFC 4648 3.5's canonical form), then "==".
bool is_16_byte_base64(std::string_view key) noexcept {
    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
    for (std::size_t i = 0; i < 22; ++i) {
        if (alphabet.find(key[i]) == std::string_view::npos) return false;
    }
    return alphabet.find(key[21]) % 16 == 0;
}

}  // namespace

bool wants_websocket(const Request& request) noexcept { return any_header_has_token(request, "upgrade", "websocket"); }

UpgradeCheck check_upgrade(const Request& r) {
    UpgradeCheck c;
    auto refuse = [&](int status, std::string reason) {
        c.status = status;
        c.reason = std::move(reason);
        return c;
    };
    if (r.method != "GET") return refuse(400, "a WebSocket upgrade must be a GET (RFC 6455 4.1), not " + r.method);
    if (r.version_major == 1 && r.version_minor == 0) return refuse(400, "a WebSocket upgrade needs HTTP/1.1");
    if (!any_header_has_token(r, "connection", "upgrade")) {
        return refuse(400, "a WebSocket upgrade without the Connection: upgrade token");
    }
    const Header* version = r.find("sec-websocket-version");
    if (!version) return refuse(426, "a WebSocket upgrade without Sec-WebSocket-Version (13 is spoken)");
    if (version->value != "13") return refuse(426, "Sec-WebSocket-Version " + version->value + " (13 is spoken)");
    const Header* key = r.find("sec-websocket-key");
    if (!key) return refuse(400, "a WebSocket upgrade without Sec-WebSocket-Key");
    if (!is_16_byte_base64(key->value)) return refuse(400, "a Sec-WebSocket-Key that is not 16 bytes in base64");
    c.accept_key = accept_key_for(key->value);
    return c;
}

std::string accept_key_for(std::string_view key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string text(key);
    text += guid;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

std::string switching_protocols_head(std::string_view accept_key, std::string_view subprotocol,
                                     const std::vector<Header>& headers, std::string_view date) {
    std::string out = "HTTP/1.1 101 Switching Protocols\r\nServer: manygil\r\nDate: ";
    out += date;
    out += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
    out += accept_key;
    out += "\r\n";
    if (!subprotocol.empty()) {
        out += "Sec-WebSocket-Protocol: ";
        out += subprotocol;
        out += "\r\n";
    }
    for (const Header& h : headers) {
        if (iequals(h.name, "connection") || iequals(h.name, "upgrade") || iequals(h.name, "sec-websocket-accept") ||
            (!subprotocol.empty() && iequals(h.name, "sec-websocket-protocol"))) {
            continue;
        }
        out += h.name;
        out += ": ";
        out += h.value;
        out += "\r\n";
    }
    out += "\r\n";
    return out;
}

bool sendable_close_code(int code) noexcept {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

void FrameScanner::scan(const unsigned char* data, std::size_t n) noexcept {
    std::size_t i = 0;
    while (i < n && !why_) {
        if (left_ > 0) {  // payload: skipped, certified as it goes
            std::uint64_t skip = std::min<std::uint64_t>(left_, n - i);
            i += static_cast<std::size_t>(skip);
            left_ -= skip;
            certified_ += skip;
            continue;
        }
        header_[have_++] = data[i++];
        if (have_ < 2) continue;
        unsigned len7 = header_[1] & 0x7f;
        std::size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((header_[1] & 0x80) ? 4 : 0);
        if (have_ < need) continue;
        std::uint64_t length = len7;
        if (len7 == 126) length = (std::uint64_t{header_[2]} << 8) | header_[3];
        if (len7 == 127) {
            length = 0;
            for (int b = 2; b < 10; ++b) length = (length << 8) | header_[b];
        }
        bool control = (header_[0] & 0x08) != 0, fin = (header_[0] & 0x80) != 0;
        if (control && !fin) why_ = "a fragmented control frame";
        else if (control && len7 > 125) why_ = "a control frame over 125 bytes";
        else if (len7 == 127 && (length >> 63)) why_ = "a payload length over 2^63";
        else if ((len7 == 126 && length < 126) || (len7 == 127 && length < 65536)) why_ = "a payload length not in its shortest form";
        if (why_) return;  // certified_ stays at this header's first byte
        certified_ += have_;
        have_ = 0;
        left_ = length;
    }
}

// ---- The handle ----------------------------------------------------------------------------------

WebSocket::WebSocket(std::shared_ptr<IoThread> io, std::uint64_t connection, std::shared_ptr<WebSocketState> state)
    : io_(std::move(io)), connection_(connection), state_(std::move(state)), stage_(Stage::Pending) {}

WebSocket::WebSocket(WebSocket&& other) noexcept
    : io_(std::move(other.io_)), connection_(other.connection_), state_(std::move(other.state_)),
      stage_(other.stage_.exchange(Stage::Done)) {}

WebSocket& WebSocket::operator=(WebSocket&& other) noexcept {
    if (this != &other) {
        release();
        io_ = std::move(other.io_);
        connection_ = other.connection_;
        state_ = std::move(other.state_);
        stage_.store(other.stage_.exchange(Stage::Done));
    }
    return *this;
}

WebSocket::~WebSocket() { release(); }

void WebSocket::release() noexcept {
    if (!io_) return;
    try {
        Stage stage = stage_.load();
        if (stage == Stage::Pending) deny(Response(500, "the WebSocket upgrade was dropped by its handler\n"));
        else if (stage == Stage::Accepted) close(1011, "the WebSocket was dropped by its handler");
    } catch (...) {  // allocation failure: nothing to answer with
    }
    io_.reset();
    stage_.store(Stage::Done);
}

void WebSocket::accept(std::shared_ptr<WebSocketListener> listener, std::string subprotocol, std::vector<Header> headers) {
    if (!listener) throw std::invalid_argument("WebSocket::accept: a null listener");
    Stage pending = Stage::Pending;
    if (!stage_.compare_exchange_strong(pending, Stage::Accepted)) {
        throw std::logic_error("WebSocket::accept: the upgrade was already answered");
    }
    Completion c;
    c.connection = connection_;
    c.kind = Completion::Kind::WebSocket;
    auto op = std::make_shared<WebSocketOp>();
    op->kind = WebSocketOp::Kind::Accept;
    op->listener = listener;
    op->subprotocol = std::move(subprotocol);
    op->headers = std::move(headers);
    c.websocket = std::move(op);
    if (!io_->post(std::move(c))) {
        // The server has stopped: no I/O thread will ever deliver it.
        state_->gone.store(true);
        listener->on_close(1006, "the server has stopped");
    }
}

void WebSocket::on_gone(std::function<void()> gone) {
    if (!io_ || !gone || stage_.load() != Stage::Pending) return;
    Completion c;
    c.connection = connection_;
    c.kind = Completion::Kind::Watch;
    c.gone = gone;
    if (!io_->post(std::move(c))) gone();  // the I/O thread has ended: nobody is there to answer
}

void WebSocket::deny(Response response) {
    Stage pending = Stage::Pending;
    if (!stage_.compare_exchange_strong(pending, Stage::Done)) {
        throw std::logic_error("WebSocket::deny: the upgrade was already answered");
    }
    state_->gone.store(true);
    response.close = true;
    response.stream = false;
    Completion c;
    c.connection = connection_;
    c.response = std::move(response);
    io_->post(std::move(c));
}

WebSocket::SendResult WebSocket::send(bool text, std::string data) {
    if (stage_.load() != Stage::Accepted || state_->gone.load()) return SendResult::Gone;
    std::size_t n = data.size();
    std::size_t queued = state_->queued.fetch_add(n) + n;
    bool full = queued > state_->send_window;
    Completion c;
    c.connection = connection_;
    c.kind = Completion::Kind::WebSocket;
    auto op = std::make_shared<WebSocketOp>();
    op->kind = WebSocketOp::Kind::Send;
    op->text = text;
    op->full = full;
    op->data = std::move(data);
    c.websocket = std::move(op);
    if (!io_->post(std::move(c))) {
        state_->gone.store(true);
        return SendResult::Gone;
    }
    return full ? SendResult::QueueFull : SendResult::Sent;
}

void WebSocket::close(int code, std::string reason) {
    if (!sendable_close_code(code)) {
        throw std::invalid_argument("WebSocket::close: " + std::to_string(code) +
                                    " is not a close code a server may send (1000-1003, 1007-1014, 3000-4999)");
    }
    if (reason.size() > 123) throw std::invalid_argument("WebSocket::close: the reason is over 123 bytes");
    Stage accepted = Stage::Accepted;
    if (!stage_.compare_exchange_strong(accepted, Stage::Done)) return;  // not open: a no-op
    Completion c;
    c.connection = connection_;
    c.kind = Completion::Kind::WebSocket;
    auto op = std::make_shared<WebSocketOp>();
    op->kind = WebSocketOp::Kind::Close;
    op->code = code;
    op->data = std::move(reason);
    c.websocket = std::move(op);
    io_->post(std::move(c));
}

void WebSocket::consumed(std::size_t bytes) {
    if (!state_ || bytes == 0) return;
    std::size_t old = state_->unconsumed.load();
    std::size_t next;
    do next = old - std::min(old, bytes);
    while (!state_->unconsumed.compare_exchange_weak(old, next));
    // Crossing the window downwards: the I/O thread may have stopped reading; wake it to read on.
    std::size_t window = state_->receive_window;
    if (window && old > window && next <= window && io_) {
        Completion c;
        c.connection = connection_;
        c.kind = Completion::Kind::WebSocket;
        auto op = std::make_shared<WebSocketOp>();
        op->kind = WebSocketOp::Kind::Resume;
        c.websocket = std::move(op);
        io_->post(std::move(c));
    }
}

void Handler::handle_websocket(Request, WebSocket websocket) { websocket.deny(Response(403, "Forbidden\n")); }

}  // namespace manygil::http
