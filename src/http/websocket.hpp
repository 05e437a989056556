// WebSockets (RFC 6455) in the HTTP front end: what the public WebSocket handle and the connection's
// I/O thread share (WebSocketState), what the handle posts (WebSocketOp, inside a Completion), the
// upgrade request's checks and the accept key (websocket.cpp), a pre-check of frame headers for the
// rules wslay answers without a close code (FrameScanner), and one connection's session
// (WebSocketSession: the wslay context and the listener), driven by IoThread's ws_* members
// (websocket_io.cpp). wslay (Debian's libwslay, 1.1.1) does the framing, unmasking, reassembly, UTF-8
// and size checks and the automatic pong and close echo; its header stays in the .cpp files.
// Internal to http/: plain C++, no Python, no GIL.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/server_state.hpp"
#include "manygil/http.hpp"

struct wslay_event_context;

namespace manygil::http {

struct Connection;

// Shared by a WebSocket handle (any thread) and its connection's I/O thread: atomics only.
struct WebSocketState {
    std::atomic<std::size_t> queued{0};      // bytes send() was given, not yet written to the socket
    std::atomic<std::size_t> unconsumed{0};  // bytes delivered to on_message, not yet consumed()
    std::atomic<bool> gone{false};           // closed or dropped: send() answers Gone
    std::size_t send_window = 0, receive_window = 0;  // set before the handle exists, then read-only
};

// What a WebSocket handle posts to the I/O thread (Completion::Kind::WebSocket).
struct WebSocketOp {
    enum class Kind { Accept, Send, Close, Resume };
    Kind kind = Kind::Accept;
    std::shared_ptr<WebSocketListener> listener;  // Accept
    std::string subprotocol;                      // Accept
    std::vector<Header> headers;                  // Accept
    bool text = false, full = false;              // Send: a text message; send() answered QueueFull
    std::string data;                             // Send: the message; Close: the reason
    int code = 1000;                              // Close
};

// Whether a request asks for a WebSocket (an Upgrade header with the "websocket" token).
bool wants_websocket(const Request& request) noexcept;

// RFC 6455 4.2.1's checks of an upgrade request that wants_websocket(): the status to refuse it with
// (400, or 426 for a Sec-WebSocket-Version other than 13) and why, or 0 and the Sec-WebSocket-Accept
// value (4.2.2: base64(SHA-1(key + the GUID))).
struct UpgradeCheck {
    int status = 0;
    std::string reason;      // status != 0
    std::string accept_key;  // status == 0
};
UpgradeCheck check_upgrade(const Request& request);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2 step 5.4).
std::string accept_key_for(std::string_view key);

// The "101 Switching Protocols" head: Upgrade, Connection, Sec-WebSocket-Accept, the subprotocol, the
// application's headers (minus Connection, Upgrade, Sec-WebSocket-Accept), Server and Date.
std::string switching_protocols_head(std::string_view accept_key, std::string_view subprotocol,
                                     const std::vector<Header>& headers, std::string_view date);

// Whether a server may send `code` in a close frame (RFC 6455 7.4.1, 7.4.2).
bool sendable_close_code(int code) noexcept;

// Reads client frame headers as bytes arrive, before wslay does, for the header rules wslay would
// refuse without a close code (RFC 6455 5.2, 5.5): a control frame fragmented or over 125 bytes, a
// 64-bit length with its top bit set, a length not in its shortest form. Incremental: any pieces.
// A header's bytes are certified only once the whole header is in and good, so wslay never sees a
// part of a bad one.
class FrameScanner {
public:
    // Scans `n` more bytes of the stream. Once bad() it scans nothing more.
    void scan(const unsigned char* data, std::size_t n) noexcept;
    // How many bytes from the stream's start are known to hold no bad header (when bad(): up to the
    // bad header's first byte).
    std::uint64_t certified() const noexcept { return certified_; }
    bool bad() const noexcept { return why_ != nullptr; }
    const char* why() const noexcept { return why_; }

private:
    unsigned char header_[14] = {};
    std::size_t have_ = 0;    // header bytes collected
    std::uint64_t left_ = 0;  // payload bytes still to skip
    std::uint64_t certified_ = 0;
    const char* why_ = nullptr;
};

// One accepted (or pending) WebSocket connection's state, owned by its Connection and used only on
// its I/O thread.
struct WebSocketSession {
    explicit WebSocketSession(std::shared_ptr<WebSocketState> state_, std::string accept_key_)
        : state(std::move(state_)), accept_key(std::move(accept_key_)) {}
    ~WebSocketSession();
    WebSocketSession(const WebSocketSession&) = delete;
    WebSocketSession& operator=(const WebSocketSession&) = delete;

    std::shared_ptr<WebSocketState> state;
    std::string accept_key;
    std::shared_ptr<WebSocketListener> listener;  // from accept until on_close has returned
    wslay_event_context* ctx = nullptr;           // from accept
    IoThread* io = nullptr;                       // for wslay's callbacks
    Connection* conn = nullptr;                   // the owner, for wslay's callbacks
    FrameScanner scanner;
    std::size_t scan_pos = 0;  // Connection::in scanned up to here
    std::uint64_t in_base = 0; // the stream offset of Connection::in[0] (FrameScanner counts from the start)
    std::size_t credit = 0;                    // queued bytes put into Connection::out, not yet written
    bool open = false;            // accepted, and on_close not yet delivered
    bool close_sent = false;      // a close frame is queued or sent (nothing after it)
    bool full = false;            // a send() answered QueueFull: on_writable() is due once it drains
    bool ping_outstanding = false;
    bool finishing = false;       // the handshake is over or failed: the connection closes once written
    bool listener_failed = false; // a listener callback threw: close 1011 once wslay returns
    Clock::time_point close_sent_at{}, ping_sent_at{}, last_ping{};
};

}  // namespace manygil::http
