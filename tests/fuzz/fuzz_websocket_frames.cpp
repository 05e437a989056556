// libFuzzer target: the WebSocket frame path of the HTTP front end (src/http/websocket_io.cpp: the
// FrameScanner's header checks, wslay's framing, unmasking, reassembly and UTF-8 checks, the close
// handshake and failures) on arbitrary client bytes, through a real Server on loopback with an echo
// listener: each input is one connection that upgrades, sends the input as its frames, then shuts its
// write side. The server must never crash, hang or leak, and everything it sends back must be
// well-formed server frames (RFC 6455 5.2: unmasked, no reserved bit, a known opcode, control frames
// whole and at most 125 bytes), a close frame last if any, with a code a server may send.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "http/websocket.hpp"
#include "manygil/http.hpp"

namespace {

using namespace manygil::http;

struct Echo final : WebSocketListener {
    WebSocket ws;
    void on_message(bool text, std::string data) override {
        std::size_t n = data.size();
        ws.send(text, std::move(data));
        ws.consumed(n);
    }
    void on_close(int, std::string) override {}
};

struct EchoHandler final : Handler {
    bool accepts_websockets() const noexcept override { return true; }
    void handle(Request, Responder responder) override { responder.send(Response(404, "")); }
    void handle_websocket(Request, WebSocket ws) override {
        auto echo = std::make_shared<Echo>();
        echo->ws = std::move(ws);
        echo->ws.accept(echo);
    }
};

Server& server() {
    static EchoHandler handler;
    static Server* s = [] {
        ServerOptions o;
        o.bind = {"127.0.0.1:0"};
        o.log = [](std::string_view) {};
        o.websocket.max_message = 2048;
        o.websocket.ping_interval = std::chrono::milliseconds(0);
        o.websocket.close_timeout = std::chrono::milliseconds(2000);
        return new Server(o, handler);  // lives for the whole run
    }();
    return *s;
}

int connect_loopback(const std::string& address) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
    timeval tv{8, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

// Checks the server's frames after the 101 head; aborts on anything malformed.
void check_server_frames(const std::string& out) {
    std::size_t end = out.find("\r\n\r\n");
    if (out.rfind("HTTP/1.1 101 ", 0) != 0 || end == std::string::npos) std::abort();
    std::size_t at = end + 4;
    bool closed = false;
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(out[i]); };
    while (at < out.size()) {
        if (closed) std::abort();  // nothing after a close frame
        if (out.size() - at < 2) std::abort();
        unsigned b0 = byte(at), b1 = byte(at + 1);
        if ((b0 & 0x70) || (b1 & 0x80)) std::abort();  // a reserved bit, or a masked server frame
        unsigned opcode = b0 & 0x0f;
        if (opcode != 1 && opcode != 2 && opcode != 8 && opcode != 9 && opcode != 10) std::abort();
        std::uint64_t len = b1 & 0x7f;
        std::size_t head = 2;
        if (len == 126) {
            len = (std::uint64_t{byte(at + 2)} << 8) | byte(at + 3);
            head = 4;
        } else if (len == 127) {
            len = 0;
            for (int i = 2; i < 10; ++i) len = (len << 8) | byte(at + i);
            head = 10;
        }
        if (opcode >= 8 && (!(b0 & 0x80) || len > 125)) std::abort();
        if (out.size() - at < head + len) std::abort();  // a truncated frame
        if (opcode == 8) {
            closed = true;
            if (len == 1) std::abort();
            if (len >= 2) {
                int code = (byte(at + head) << 8) | byte(at + head + 1);
                // Our own codes, or the echo of a valid client code (wslay refuses the others: 1002).
                if (!sendable_close_code(code) && code != 1001) std::abort();
            }
        }
        at += head + static_cast<std::size_t>(len);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Server& s = server();
    int fd = connect_loopback(s.addresses()[0]);
    std::string request =
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    request.append(reinterpret_cast<const char*>(data), size);
    std::size_t sent = 0;
    while (sent < request.size()) {
        ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;  // the server failed the connection and reset it: fine
        sent += static_cast<std::size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    std::string out;
    char buf[8192];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    if (!out.empty()) check_server_frames(out);
    return 0;
}
