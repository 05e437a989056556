// WebSockets in the HTTP front end (src/http/websocket*.cpp): the handshake's checks, the accept key
// and the frame-header pre-check on their own, then a Server with a C++ echo / broadcast Handler over
// real loopback sockets, driven by a raw-socket client that writes frames by hand, so that every
// protocol error can be sent. No interpreter: the front end never touches Python.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http/request_parser.hpp"
#include "http/websocket.hpp"
#include "loopback_client.hpp"
#include "manygil/http.hpp"

namespace {

using namespace std::chrono_literals;
using manygil::http::Handler;
using manygil::http::Header;
using manygil::http::Request;
using manygil::http::Responder;
using manygil::http::Response;
using manygil::http::Server;
using manygil::http::ServerOptions;
using manygil::http::WebSocket;
using manygil::http::WebSocketListener;
using manygil::testing::connect_to;
using manygil::testing::send_all;

// ---- What the server side saw --------------------------------------------------------------------

struct Events {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> messages;
    std::vector<std::pair<int, std::string>> closes;
    int writable = 0;

    template <class Pred>
    bool wait(Pred pred, std::chrono::milliseconds limit = 20s) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, limit, [&] { return pred(); });
    }
    void notify() { cv.notify_all(); }
};

// Echoes every message back (and acknowledges it at once), records them and the close.
class EchoListener : public WebSocketListener {
public:
    EchoListener(Events& events, bool consume = true) : events_(events), consume_(consume) {}
    WebSocket ws;
    void on_message(bool text, std::string data) override {
        {
            std::lock_guard lock(events_.mu);
            events_.messages.push_back(data);
        }
        events_.notify();
        std::size_t n = data.size();
        if (echo) ws.send(text, std::move(data));
        if (consume_) ws.consumed(n);
    }
    void on_close(int code, std::string reason) override {
        {
            std::lock_guard lock(events_.mu);
            events_.closes.emplace_back(code, reason);
        }
        events_.notify();
    }
    void on_writable() override {
        {
            std::lock_guard lock(events_.mu);
            ++events_.writable;
        }
        events_.notify();
    }
    bool echo = true;

private:
    Events& events_;
    bool consume_;
};

// Every path is a behaviour: /echo, /hold (no acknowledgement, no echo), /deny (403), /drop (500),
// /broadcast (each message to every open /broadcast socket), /close (server closes at the first
// message, with the code in it), /flood (the server sends 64 KiB messages until QueueFull).
class WsHandler final : public Handler {
public:
    Events events;
    std::mutex mu;
    std::vector<std::shared_ptr<EchoListener>> listeners;
    std::atomic<int> flood_sent{0};
    std::atomic<int> plain_requests{0};
    std::string last_protocols;

    bool accepts_websockets() const noexcept override { return true; }
    void handle(Request request, Responder responder) override {
        plain_requests.fetch_add(1);
        responder.send(Response(200, "plain " + request.target));
    }
    void handle_websocket(Request request, WebSocket ws) override {
        const std::string& path = request.target;
        if (path == "/deny") return ws.deny(Response(403, "no\n"));
        if (path == "/drop") return;  // destroyed unanswered: 500
        if (const Header* h = request.find("sec-websocket-protocol")) last_protocols = h->value;
        auto listener = std::make_shared<EchoListener>(events, path != "/hold");
        listener->echo = path == "/echo" || path == "/flood";
        WebSocket* handle = &listener->ws;
        *handle = std::move(ws);
        {
            std::lock_guard lock(mu);
            listeners.push_back(listener);
        }
        if (path == "/broadcast") {
            auto self = listener;
            struct Broadcast : EchoListener {
                Broadcast(WsHandler& h) : EchoListener(h.events), handler(h) {}
                WsHandler& handler;
                void on_message(bool text, std::string data) override {
                    std::lock_guard lock(handler.mu);
                    for (auto& l : handler.listeners) l->ws.send(text, data);
                    ws.consumed(data.size());
                }
            };
            auto b = std::make_shared<Broadcast>(*this);
            b->ws = std::move(*handle);
            std::lock_guard lock(mu);
            listeners.back() = b;
            b->ws.accept(b);
            return;
        }
        if (path == "/throw") {
            struct Thrower : EchoListener {
                using EchoListener::EchoListener;
                void on_message(bool, std::string) override { throw std::runtime_error("the listener broke"); }
            };
            auto t = std::make_shared<Thrower>(events);
            t->ws = std::move(*handle);
            t->ws.accept(t);
            return;
        }
        if (path == "/forget") {  // accepted, then the handle is dropped: close 1011
            WebSocket local = std::move(*handle);
            local.accept(std::make_shared<EchoListener>(events));
            return;
        }
        if (path == "/close") {
            struct Closer : EchoListener {
                using EchoListener::EchoListener;
                void on_message(bool, std::string data) override { ws.close(std::stoi(data), "asked to"); }
            };
            auto c = std::make_shared<Closer>(events);
            c->ws = std::move(*handle);
            c->ws.accept(c);
            return;
        }
        handle->accept(listener, request.find("sec-websocket-protocol") ? "chat" : "", {{"X-Extra", "1"}});
        if (path == "/flood") {
            for (;;) {
                auto r = handle->send(false, std::string(64 * 1024, 'f'));
                flood_sent.fetch_add(1);
                if (r != WebSocket::SendResult::Sent) break;
            }
        }
    }
};

// ---- A raw client --------------------------------------------------------------------------------

std::string upgrade_request(const std::string& path, const std::string& extra = "",
                            const std::string& key = "dGhlIHNhbXBsZSBub25jZQ==") {
    return "GET " + path + " HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
           "Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n";
}

// A client frame: masked unless told otherwise.
std::string frame(int opcode, const std::string& payload, bool fin = true, bool mask = true, int rsv = 0) {
    std::string f;
    f += static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    std::size_t n = payload.size();
    char m = mask ? char(0x80) : 0;
    if (n < 126) {
        f += static_cast<char>(m | static_cast<char>(n));
    } else if (n < 65536) {
        f += static_cast<char>(m | 126);
        f += static_cast<char>(n >> 8);
        f += static_cast<char>(n & 0xff);
    } else {
        f += static_cast<char>(m | 127);
        for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff);
    }
    const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    if (mask) f.append(reinterpret_cast<const char*>(key), 4);
    for (std::size_t i = 0; i < n; ++i) f += mask ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
    return f;
}

std::string close_payload(int code, const std::string& reason = "") {
    std::string p;
    p += static_cast<char>(code >> 8);
    p += static_cast<char>(code & 0xff);
    return p + reason;
}

struct Frame {
    bool fin = false;
    int opcode = -1;  // -1: the connection closed
    std::string payload;
    int close_code() const {
        return payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]) : 1005;
    }
};

class Client {
public:
    explicit Client(const std::string& address) : fd(connect_to(address)) {}
    ~Client() {
        if (fd >= 0) ::close(fd);
    }
    // Sends the upgrade request; returns the response head.
    std::string upgrade(const std::string& path, const std::string& extra = "") {
        send_all(fd, upgrade_request(path, extra));
        return head();
    }
    std::string head() {
        while (buf.find("\r\n\r\n") == std::string::npos) {
            if (!fill()) return buf;
        }
        std::size_t end = buf.find("\r\n\r\n") + 4;
        std::string h = buf.substr(0, end);
        buf.erase(0, end);
        return h;
    }
    void send(const std::string& bytes) { send_all(fd, bytes); }
    Frame read() {
        Frame f;
        if (!need(2)) return f;
        auto b = [&](std::size_t i) { return static_cast<unsigned char>(buf[i]); };
        std::size_t len = b(1) & 0x7f, at = 2;
        if (len == 126) {
            if (!need(4)) return f;
            len = (b(2) << 8) | b(3);
            at = 4;
        } else if (len == 127) {
            if (!need(10)) return f;
            len = 0;
            for (int i = 2; i < 10; ++i) len = (len << 8) | b(i);
            at = 10;
        }
        if (!need(at + len)) return f;
        f.fin = b(0) & 0x80;
        f.opcode = b(0) & 0x0f;
        f.payload = buf.substr(at, len);
        buf.erase(0, at + len);
        return f;
    }
    // The next frame that is not a ping (answered) or pong.
    Frame next() {
        for (;;) {
            Frame f = read();
            if (f.opcode == 0x9) {
                send(frame(0xA, f.payload));
                continue;
            }
            if (f.opcode == 0xA) continue;
            return f;
        }
    }
    // Whether the server closed the TCP connection (EOF) after what was read.
    bool eof() {
        while (fill()) {
        }
        return last == 0;
    }
    int fd;
    std::string buf;
    ssize_t last = 1;

private:
    bool need(std::size_t n) {
        while (buf.size() < n) {
            if (!fill()) return false;
        }
        return true;
    }
    bool fill() {
        char tmp[65536];
        last = ::recv(fd, tmp, sizeof tmp, 0);
        if (last <= 0) return false;
        buf.append(tmp, static_cast<std::size_t>(last));
        return true;
    }
};

ServerOptions options() {
    ServerOptions o;
    o.bind = {"127.0.0.1:0"};
    o.log = [](std::string_view) {};
    return o;
}

// ---- The parts on their own ----------------------------------------------------------------------

TEST(WebSocketHandshake, AcceptKeyIsRfc6455sExample) {
    // RFC 6455 1.3's worked example.
    EXPECT_EQ(manygil::http::accept_key_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshake, ChecksEveryRequiredHeader) {
    auto parse = [](const std::string& text) {
        Request r;
        std::size_t line_end = text.find("\r\n");
        std::string line = text.substr(0, line_end);
        r.method = line.substr(0, line.find(' '));
        if (line.find("HTTP/1.0") != std::string::npos) r.version_minor = 0;
        std::size_t at = line_end + 2;
        while (true) {
            std::size_t e = text.find("\r\n", at);
            if (e == at || e == std::string::npos) break;
            std::string h = text.substr(at, e - at);
            std::size_t colon = h.find(':');
            r.headers.push_back({h.substr(0, colon), std::string(manygil::http::trim_ows(h.substr(colon + 1)))});
            at = e + 2;
        }
        return r;
    };
    auto status = [&](const std::string& text) { return manygil::http::check_upgrade(parse(text)).status; };
    auto replace = [](std::string s, const std::string& from, const std::string& to) {
        s.replace(s.find(from), from.size(), to);
        return s;
    };
    std::string good = upgrade_request("/");
    EXPECT_EQ(status(good), 0);
    EXPECT_EQ(manygil::http::check_upgrade(parse(good)).accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    EXPECT_EQ(status(replace(good, "GET", "POST")), 400);
    EXPECT_EQ(status(replace(good, "HTTP/1.1", "HTTP/1.0")), 400);
    EXPECT_EQ(status(replace(good, "Connection: keep-alive, Upgrade\r\n", "")), 400);
    EXPECT_EQ(status(replace(good, "Connection: keep-alive, Upgrade", "Connection: keep-alive")), 400);
    EXPECT_EQ(status(replace(good, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "")), 400);
    EXPECT_EQ(status(replace(good, "dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=")), 400);                  // 5 bytes
    EXPECT_EQ(status(replace(good, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR==")), 400);  // not canonical
    EXPECT_EQ(status(replace(good, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j!Q==")), 400);
    EXPECT_EQ(status(replace(good, "Sec-WebSocket-Version: 13\r\n", "")), 426);
    EXPECT_EQ(status(replace(good, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8")), 426);
    EXPECT_TRUE(manygil::http::wants_websocket(parse(replace(good, "Upgrade: websocket", "Upgrade: h2c, WebSocket"))));
    EXPECT_FALSE(manygil::http::wants_websocket(parse(replace(good, "Upgrade: websocket", "Upgrade: h2c"))));
}

TEST(WebSocketFrames, TheScannerFindsBadHeadersInAnyPieces) {
    auto bad_at = [](const std::string& bytes, std::size_t piece) -> std::ptrdiff_t {
        manygil::http::FrameScanner s;
        std::size_t at = 0;
        while (at < bytes.size()) {
            std::size_t n = std::min(piece, bytes.size() - at);
            s.scan(reinterpret_cast<const unsigned char*>(bytes.data()) + at, n);
            EXPECT_LE(s.certified(), at + n);
            if (s.bad()) return static_cast<std::ptrdiff_t>(s.certified());
            at += n;
        }
        EXPECT_EQ(s.certified(), bytes.size());
        return -1;
    };
    std::string good = frame(1, "hello") + frame(2, std::string(300, 'x')) + frame(9, "p") + frame(1, std::string(70000, 'y'));
    for (std::size_t piece : {1u, 3u, 7u, 4096u, 1000000u}) {
        EXPECT_EQ(bad_at(good, piece), -1) << piece;
        EXPECT_EQ(bad_at(good + frame(9, "x", false), piece), static_cast<std::ptrdiff_t>(good.size())) << piece;
        EXPECT_EQ(bad_at(good + frame(8, std::string(126, 'c')), piece), static_cast<std::ptrdiff_t>(good.size())) << piece;
    }
    // A length in a longer form than it needs (RFC 6455 5.2: the minimal number of bytes MUST be used).
    std::string long_form = "\x81\xfe";
    long_form += std::string("\x00\x05", 2) + "abcd" + "hello";
    EXPECT_EQ(bad_at(long_form, 1), 0);
}

// ---- Over a real server --------------------------------------------------------------------------

TEST(WebSocketServer, EchoesTextAndBinaryAndReportsTheClientsClose) {
    WsHandler h;
    ServerOptions o = options();
    std::vector<std::string> lines;
    std::mutex lines_mu;
    o.access_log = true;
    o.log = [&](std::string_view line) {
        std::lock_guard lock(lines_mu);
        lines.emplace_back(line);
    };
    Server server(o, h);
    Client c(server.addresses()[0]);
    std::string head = c.upgrade("/echo", "Sec-WebSocket-Protocol: chat, superchat\r\n");
    EXPECT_EQ(head.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << head;
    EXPECT_NE(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos) << head;
    EXPECT_NE(head.find("Upgrade: websocket\r\n"), std::string::npos);
    EXPECT_NE(head.find("Connection: Upgrade\r\n"), std::string::npos);
    EXPECT_NE(head.find("Sec-WebSocket-Protocol: chat\r\n"), std::string::npos);
    EXPECT_NE(head.find("X-Extra: 1\r\n"), std::string::npos);
    EXPECT_EQ(h.last_protocols, "chat, superchat");

    c.send(frame(1, "héllo"));
    Frame f = c.next();
    EXPECT_EQ(f.opcode, 1);
    EXPECT_TRUE(f.fin);
    EXPECT_EQ(f.payload, "héllo");
    std::string binary("\x00\xff\x01", 3);
    c.send(frame(2, binary));
    f = c.next();
    EXPECT_EQ(f.opcode, 2);
    EXPECT_EQ(f.payload, binary);
    std::string big(200000, 'b');  // a 64-bit length
    c.send(frame(2, big));
    EXPECT_EQ(c.next().payload, big);
    auto stats = server.stats();
    EXPECT_EQ(stats.websockets_accepted, 1u);
    EXPECT_EQ(stats.websockets_open, 1u);
    EXPECT_EQ(stats.websocket_messages_in, 3u);

    c.send(frame(8, close_payload(1000, "bye")));
    f = c.next();
    EXPECT_EQ(f.opcode, 8);
    EXPECT_EQ(f.close_code(), 1000);
    EXPECT_TRUE(c.eof()) << "the server closes the TCP connection after the close handshake";
    ASSERT_TRUE(h.events.wait([&] { return !h.events.closes.empty(); }));
    EXPECT_EQ(h.events.closes, (std::vector<std::pair<int, std::string>>{{1000, "bye"}}));
    server.stop(1s);
    EXPECT_EQ(server.stats().websockets_open, 0u);
    std::lock_guard lock(lines_mu);
    bool logged = false;
    for (auto& l : lines) logged |= l.find("\"GET /echo HTTP/1.1\" 101") != std::string::npos;
    EXPECT_TRUE(logged) << "the access log has a line for the 101";
}

TEST(WebSocketServer, FragmentsAreReassembledAndPingsBetweenThemAnswered) {
    WsHandler h;
    Server server(options(), h);
    Client c(server.addresses()[0]);
    c.upgrade("/echo");
    c.send(frame(1, "one ", false) + frame(9, "ping!") + frame(0, "two ", false) + frame(10, "unasked pong") +
           frame(0, "three"));
    Frame pong = c.read();
    EXPECT_EQ(pong.opcode, 0xA);
    EXPECT_EQ(pong.payload, "ping!");
    Frame f = c.next();
    EXPECT_EQ(f.opcode, 1);
    EXPECT_EQ(f.payload, "one two three");
    // A UTF-8 character split across fragments is fine.
    std::string e_acute = "é";
    c.send(frame(1, "caf" + e_acute.substr(0, 1), false) + frame(0, e_acute.substr(1)));
    EXPECT_EQ(c.next().payload, "café");
    c.send(frame(8, close_payload(1000)));
    EXPECT_EQ(c.next().opcode, 8);
}

// Each protocol error closes with its code, which the listener hears too; the server never delivers
// the bad message.
TEST(WebSocketServer, ProtocolErrorsCloseWithTheRfcsCodes) {
    WsHandler h;
    ServerOptions o = options();
    o.websocket.max_message = 1000;
    Server server(o, h);
    struct Case {
        const char* what;
        std::string bytes;
        int code;
    };
    std::string bad_utf8 = "ok \xc3\x28 no";
    std::vector<Case> cases = {
        {"an unmasked frame", frame(1, "hi", true, false), 1002},
        {"opcode 3", frame(3, "x"), 1002},
        {"opcode 0xB", frame(0xB, "x"), 1002},
        {"a reserved bit", frame(1, "x", true, true, 4), 1002},
        {"a fragmented ping", frame(9, "x", false), 1002},
        {"a 126-byte ping", frame(9, std::string(126, 'p')), 1002},
        {"a continuation without a start", frame(0, "x"), 1002},
        {"a new message inside a fragmented one", frame(1, "a", false) + frame(1, "b"), 1002},
        {"invalid UTF-8", frame(1, bad_utf8), 1007},
        {"invalid UTF-8 across fragments", frame(1, "ok \xc3", false) + frame(0, "\x28"), 1007},
        {"a frame over max_message", frame(2, std::string(1001, 'x')), 1009},
        {"fragments over max_message", frame(2, std::string(600, 'x'), false) + frame(0, std::string(600, 'x')), 1009},
        {"a close code no one may send", frame(8, close_payload(1006)), 1002},
    };
    for (const Case& k : cases) {
        SCOPED_TRACE(k.what);
        std::size_t before;
        {
            std::lock_guard lock(h.events.mu);
            before = h.events.closes.size();
            h.events.messages.clear();
        }
        Client c(server.addresses()[0]);
        c.upgrade("/echo");
        c.send(k.bytes);
        Frame f = c.next();
        EXPECT_EQ(f.opcode, 8);
        EXPECT_EQ(f.close_code(), k.code);
        EXPECT_TRUE(c.eof());
        ASSERT_TRUE(h.events.wait([&] { return h.events.closes.size() > before; }));
        std::lock_guard lock(h.events.mu);
        EXPECT_EQ(h.events.closes.back().first, k.code);
        EXPECT_TRUE(h.events.messages.empty());
    }
}

TEST(WebSocketServer, BadUpgradesAreAnsweredByTheFrontEnd) {
    WsHandler h;
    Server server(options(), h);
    auto answer = [&](const std::string& request) {
        int fd = connect_to(server.addresses()[0]);
        send_all(fd, request);
        std::string got = manygil::testing::read_until_close(fd);
        ::close(fd);
        return got;
    };
    std::string good = upgrade_request("/echo");
    auto without = [&](const std::string& line) {
        std::string s = good;
        s.erase(s.find(line), line.size());
        return s;
    };
    EXPECT_EQ(answer(without("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")).rfind("HTTP/1.1 400 ", 0), 0u);
    EXPECT_EQ(answer(without("Connection: keep-alive, Upgrade\r\n")).rfind("HTTP/1.1 400 ", 0), 0u);
    EXPECT_EQ(answer(upgrade_request("/echo", "", "short")).rfind("HTTP/1.1 400 ", 0), 0u);
    std::string post = good;
    post.replace(0, 3, "POST");
    EXPECT_EQ(answer(post).rfind("HTTP/1.1 400 ", 0), 0u);
    std::string v8 = answer(without("Sec-WebSocket-Version: 13\r\n").insert(good.find("\r\n") + 2, "Sec-WebSocket-Version: 8\r\n"));
    EXPECT_EQ(v8.rfind("HTTP/1.1 426 ", 0), 0u) << v8;
    EXPECT_NE(v8.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos) << v8;
    // The handler's answers: a denial, and a dropped WebSocket (500).
    std::string denied = answer(upgrade_request("/deny"));
    EXPECT_EQ(denied.rfind("HTTP/1.1 403 ", 0), 0u) << denied;
    EXPECT_NE(denied.find("Connection: close"), std::string::npos);
    EXPECT_EQ(answer(upgrade_request("/drop")).rfind("HTTP/1.1 500 ", 0), 0u);
    // A request without Upgrade: websocket is an ordinary request.
    EXPECT_NE(answer("GET /plain HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").find("plain /plain"), std::string::npos);
    EXPECT_EQ(server.stats().websockets_accepted, 0u);
    EXPECT_GE(server.stats().rejected, 5u);
}

TEST(WebSocketServer, AHandlerThatTakesNoWebSocketsServesTheUpgradeAsARequest) {
    struct Plain final : Handler {
        void handle(Request request, Responder responder) override { responder.send(Response(200, "plain " + request.target)); }
    } h;
    Server server(options(), h);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, upgrade_request("/echo"));
    std::string got = manygil::testing::read_until_close(fd);
    ::close(fd);
    EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
    EXPECT_NE(got.find("plain /echo"), std::string::npos);
}

TEST(WebSocketServer, AClientVanishingMidMessageIsOneCloseWith1006) {
    WsHandler h;
    Server server(options(), h);
    {
        Client c(server.addresses()[0]);
        c.upgrade("/echo");
        std::string f = frame(2, std::string(5000, 'x'));
        c.send(f.substr(0, 2000));  // half a frame, then gone
    }
    ASSERT_TRUE(h.events.wait([&] { return !h.events.closes.empty(); }));
    std::this_thread::sleep_for(200ms);  // a second on_close would come now
    std::lock_guard lock(h.events.mu);
    ASSERT_EQ(h.events.closes.size(), 1u);
    EXPECT_EQ(h.events.closes[0].first, 1006);
    EXPECT_TRUE(h.events.messages.empty());
}

TEST(WebSocketServer, TheServerClosesWithTheApplicationsCode) {
    WsHandler h;
    Server server(options(), h);
    Client c(server.addresses()[0]);
    c.upgrade("/close");
    c.send(frame(1, "4001"));
    Frame f = c.next();
    EXPECT_EQ(f.opcode, 8);
    EXPECT_EQ(f.close_code(), 4001);
    EXPECT_EQ(f.payload.substr(2), "asked to");
    c.send(frame(8, close_payload(4001)));
    EXPECT_TRUE(c.eof());
    ASSERT_TRUE(h.events.wait([&] { return !h.events.closes.empty(); }));
    EXPECT_EQ(h.events.closes[0].first, 4001);
    // Codes a server may not send are refused before anything is sent.
    WebSocket none;
    EXPECT_THROW(none.close(1006), std::invalid_argument);
    EXPECT_THROW(none.close(1000, std::string(124, 'r')), std::invalid_argument);
    EXPECT_EQ(none.send(true, "x"), WebSocket::SendResult::Gone);
}

TEST(WebSocketServer, AFailingListenerOrAForgottenHandleClosesWith1011) {
    WsHandler h;
    std::vector<std::string> lines;
    std::mutex lines_mu;
    ServerOptions o = options();
    o.log = [&](std::string_view line) {
        std::lock_guard lock(lines_mu);
        lines.emplace_back(line);
    };
    Server server(o, h);
    for (const char* path : {"/throw", "/forget"}) {
        SCOPED_TRACE(path);
        Client c(server.addresses()[0]);
        ASSERT_EQ(c.upgrade(path).rfind("HTTP/1.1 101", 0), 0u);
        c.send(frame(1, "hello"));
        Frame f = c.next();
        EXPECT_EQ(f.opcode, 8);
        EXPECT_EQ(f.close_code(), 1011);
        c.send(frame(8, close_payload(1011)));
        EXPECT_TRUE(c.eof());
    }
    std::lock_guard lock(lines_mu);
    bool logged = false;
    for (auto& l : lines) logged |= l.find("a WebSocket listener failed: the listener broke") != std::string::npos;
    EXPECT_TRUE(logged);
}

TEST(WebSocketServer, StopSends1001AndAwaitsTheClientsClose) {
    WsHandler h;
    auto server = std::make_unique<Server>(options(), h);
    Client a(server->addresses()[0]), b(server->addresses()[0]);
    a.upgrade("/echo");
    b.upgrade("/echo");
    a.send(frame(1, "x"));
    EXPECT_EQ(a.next().payload, "x");
    std::thread stopper([&] { server->stop(20s); });
    Frame fa = a.next(), fb = b.next();
    EXPECT_EQ(fa.opcode, 8);
    EXPECT_EQ(fa.close_code(), 1001);
    EXPECT_EQ(fb.close_code(), 1001);
    a.send(frame(8, close_payload(1001)));  // a answers; b never does: dropped when the grace ends...
    EXPECT_TRUE(a.eof());
    ASSERT_TRUE(h.events.wait([&] { return h.events.closes.size() == 1; }));
    b.send(frame(8, close_payload(1001)));  // ...or when it answers, as it does here
    stopper.join();
    std::lock_guard lock(h.events.mu);
    ASSERT_EQ(h.events.closes.size(), 2u);
    EXPECT_EQ(h.events.closes[0].first, 1001);
    EXPECT_EQ(h.events.closes[1].first, 1001);
}

// A listener that does not acknowledge: the server stops reading that socket once receive_window is
// exceeded (the client's sends then fill the kernel buffers and would block), other connections go on,
// and acknowledging lets the rest in, nothing lost.
TEST(WebSocketServer, ReceiveBackpressureStopsReadingAnUnacknowledgingListener) {
    WsHandler h;
    ServerOptions o = options();
    o.websocket.receive_window = 64 * 1024;
    Server server(o, h);
    Client slow(server.addresses()[0]);
    slow.upgrade("/hold");
    int small = 16 * 1024;
    setsockopt(slow.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    fcntl(slow.fd, F_SETFL, fcntl(slow.fd, F_GETFL) | O_NONBLOCK);
    std::string msg = frame(2, std::string(16 * 1024, 'm'));
    int sent_messages = 0;
    std::size_t offset = 0;
    // Send until the socket would block for a while: the server has stopped reading.
    for (int idle = 0; idle < 20 && sent_messages < 10000;) {
        ssize_t n = ::send(slow.fd, msg.data() + offset, msg.size() - offset, MSG_NOSIGNAL);
        if (n > 0) {
            offset += static_cast<std::size_t>(n);
            if (offset == msg.size()) {
                offset = 0;
                ++sent_messages;
            }
            idle = 0;
            continue;
        }
        ++idle;
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_LT(sent_messages, 10000) << "the client's sends never blocked: the server kept reading";
    std::size_t delivered;
    {
        std::lock_guard lock(h.events.mu);
        delivered = h.events.messages.size();
    }
    EXPECT_LE(delivered * 16 * 1024, 64 * 1024 + 64 * 1024 + 16 * 1024) << "more than the window was delivered";
    EXPECT_LT(delivered, static_cast<std::size_t>(sent_messages));

    // Another connection is served meanwhile.
    Client other(server.addresses()[0]);
    other.upgrade("/echo");
    other.send(frame(1, "still here"));
    EXPECT_EQ(other.next().payload, "still here");

    // Acknowledge everything as it comes: the rest arrives.
    std::shared_ptr<EchoListener> holder;
    {
        std::lock_guard lock(h.mu);
        holder = h.listeners.front();
    }
    std::atomic<bool> done{false};
    std::thread acker([&] {
        while (!done.load()) {
            holder->ws.consumed(1 << 30);
            std::this_thread::sleep_for(5ms);
        }
    });
    fcntl(slow.fd, F_SETFL, fcntl(slow.fd, F_GETFL) & ~O_NONBLOCK);
    send_all(slow.fd, msg.substr(offset));
    ++sent_messages;
    EXPECT_TRUE(h.events.wait([&] { return h.events.messages.size() >= static_cast<std::size_t>(sent_messages) + 1; }))
        << "delivered " << h.events.messages.size() << " of " << sent_messages;  // + other's "still here"
    done.store(true);
    acker.join();
}

// A connection stopped by receive backpressure still completes the close handshake: once the server
// has sent its close (here stop()'s 1001), it reads again, past the window, to find the client's.
TEST(WebSocketServer, AClosingServerReadsPastTheWindowForTheClientsClose) {
    WsHandler h;
    ServerOptions o = options();
    o.websocket.receive_window = 32 * 1024;
    auto server = std::make_unique<Server>(o, h);
    Client c(server->addresses()[0]);
    c.upgrade("/hold");
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    std::string msg = frame(2, std::string(16 * 1024, 'm'));
    std::string pending;
    for (int idle = 0; idle < 20;) {  // until the server stops reading and the buffers are full
        if (pending.empty()) pending = msg;
        ssize_t n = ::send(c.fd, pending.data(), pending.size(), MSG_NOSIGNAL);
        if (n > 0) {
            pending.erase(0, static_cast<std::size_t>(n));
            idle = 0;
        } else {
            ++idle;
            std::this_thread::sleep_for(20ms);
        }
    }
    std::thread stopper([&] { server->stop(20s); });
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) & ~O_NONBLOCK);
    Frame f = c.next();
    EXPECT_EQ(f.opcode, 8);
    EXPECT_EQ(f.close_code(), 1001);
    send_all(c.fd, pending + frame(8, close_payload(1001)));
    EXPECT_TRUE(c.eof());
    stopper.join();
    std::lock_guard lock(h.events.mu);
    ASSERT_EQ(h.events.closes.size(), 1u);
    EXPECT_EQ(h.events.closes[0].first, 1001) << "the client's close frame was read";
}

// send() over send_window answers QueueFull (queued anyway); the sender waits for on_writable(),
// which fires once the client has read enough for the queue to drain below half; every message
// arrives. The flood is larger than the kernel's socket buffers, so the queue does stay full while
// the client reads nothing.
constexpr int kFloodMessages = 400;  // 25 MiB

struct FloodListener final : WebSocketListener {
    WebSocket ws;
    std::atomic<int> sent{0}, full{0}, writable{0};
    void pour() {
        while (sent.load() < kFloodMessages) {
            auto r = ws.send(false, std::string(64 * 1024, 'f'));
            sent.fetch_add(1);
            if (r == WebSocket::SendResult::QueueFull) {
                full.fetch_add(1);
                return;  // on_writable() goes on
            }
            EXPECT_EQ(r, WebSocket::SendResult::Sent);
        }
    }
    void on_message(bool, std::string) override {}
    void on_close(int, std::string) override {}
    void on_writable() override {
        writable.fetch_add(1);
        pour();
    }
};

TEST(WebSocketServer, SendQueueFullThenWritable) {
    struct Flood final : Handler {
        std::shared_ptr<FloodListener> listener = std::make_shared<FloodListener>();
        bool accepts_websockets() const noexcept override { return true; }
        void handle(Request, Responder) override {}
        void handle_websocket(Request, WebSocket ws) override {
            listener->ws = std::move(ws);
            listener->ws.accept(listener);
            listener->pour();
        }
    } h;
    ServerOptions o = options();
    o.websocket.send_window = 256 * 1024;
    Server server(o, h);
    Client c(server.addresses()[0]);
    c.upgrade("/flood");
    std::this_thread::sleep_for(300ms);
    EXPECT_LT(h.listener->sent.load(), kFloodMessages) << "the sender never had to wait";
    EXPECT_GE(h.listener->full.load(), 1);
    for (int i = 0; i < kFloodMessages; ++i) {
        Frame f = c.next();
        ASSERT_EQ(f.opcode, 2) << i;
        ASSERT_EQ(f.payload.size(), 64u * 1024);
    }
    EXPECT_EQ(h.listener->sent.load(), kFloodMessages);
    // The last on_writable() may follow the client's read of the last bytes by a moment.
    for (int i = 0; i < 1000 && h.listener->writable.load() < h.listener->full.load(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_GE(h.listener->writable.load(), 1);
    EXPECT_EQ(h.listener->writable.load(), h.listener->full.load()) << "one on_writable per QueueFull";
}

TEST(WebSocketServer, BroadcastAndManyConnectionsAtOnce) {
    WsHandler h;
    Server server(options(), h);
    constexpr int kClients = 40;
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.push_back(std::make_unique<Client>(server.addresses()[0]));
        ASSERT_EQ(clients.back()->upgrade("/broadcast").rfind("HTTP/1.1 101", 0), 0u);
    }
    ASSERT_TRUE(h.events.wait([&] { return server.stats().websockets_open == kClients; }, 20s));
    clients[0]->send(frame(1, "to everyone"));
    for (auto& c : clients) EXPECT_EQ(c->next().payload, "to everyone");
    // Each one speaks: each hears all.
    for (int i = 0; i < kClients; ++i) clients[i]->send(frame(1, "from " + std::to_string(i)));
    for (auto& c : clients) {
        std::set<std::string> heard;
        for (int i = 0; i < kClients; ++i) heard.insert(c->next().payload);
        EXPECT_EQ(heard.size(), static_cast<std::size_t>(kClients));
    }
    EXPECT_EQ(server.stats().websocket_messages_in, static_cast<std::uint64_t>(kClients + 1));
    EXPECT_EQ(server.stats().websocket_messages_out, static_cast<std::uint64_t>((kClients + 1) * kClients));
}

TEST(WebSocketServer, AClientThatAnswersNoPingIsClosed) {
    WsHandler h;
    ServerOptions o = options();
    o.websocket.ping_interval = 200ms;
    o.websocket.ping_timeout = 300ms;
    Server server(o, h);
    Client answering(server.addresses()[0]), silent(server.addresses()[0]);
    answering.upgrade("/echo");
    silent.upgrade("/echo");
    // The one that answers pings (next() does) is served all along.
    std::atomic<bool> done{false};
    int echoed = 0;
    std::thread talker([&] {
        while (!done.load()) {
            answering.send(frame(1, "alive"));
            if (answering.next().payload == "alive") ++echoed;
            std::this_thread::sleep_for(20ms);
        }
    });
    Frame ping = silent.read();
    EXPECT_EQ(ping.opcode, 9);
    Frame f = silent.read();  // no pong sent: the close follows
    EXPECT_EQ(f.opcode, 8);
    EXPECT_EQ(f.close_code(), 1011);
    EXPECT_TRUE(silent.eof());
    done.store(true);
    talker.join();
    EXPECT_GT(echoed, 0);
    std::lock_guard lock(h.events.mu);
    ASSERT_EQ(h.events.closes.size(), 1u);
    EXPECT_EQ(h.events.closes[0].first, 1006);
}

}  // namespace
