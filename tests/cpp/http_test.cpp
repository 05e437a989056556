// The HTTP/1.1 front end (src/http/): the request parser on its own, then a Server with a C++
// Handler over real loopback sockets. No interpreter: the front end never touches Python.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "http/access_log.hpp"
#include "http/request_parser.hpp"
#include "http/tls.hpp"
#include "loopback_client.hpp"
#include "manygil/http.hpp"

namespace {

using manygil::http::Limits;
using manygil::http::Request;
using manygil::http::RequestParser;
using State = RequestParser::State;
using namespace std::chrono_literals;
using manygil::testing::connect_to;
using manygil::testing::send_all;

// Feeds all of `bytes`, taking complete requests as they come.
std::vector<Request> parse_all(RequestParser& p, const std::string& bytes, std::size_t piece = 0) {
    std::vector<Request> out;
    std::size_t at = 0;
    while (at < bytes.size() && p.state() != State::Failed) {
        std::size_t n = piece ? std::min(piece, bytes.size() - at) : bytes.size() - at;
        std::size_t used = p.feed(bytes.data() + at, n);
        at += used;
        if (p.state() == State::Complete) out.push_back(p.take());
        else if (used < n && p.state() != State::Failed) ADD_FAILURE() << "stopped without a reason";
    }
    return out;
}

TEST(RequestParser, ParsesARequestWithHeadersAndBody) {
    RequestParser p(Limits{});
    auto got = parse_all(p, "POST /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-Thing:  v  \r\nContent-Length: 5\r\n\r\nhello");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].method, "POST");
    EXPECT_EQ(got[0].target, "/a/b?x=1");
    EXPECT_EQ(got[0].body, "hello");
    ASSERT_NE(got[0].find("x-thing"), nullptr);
    EXPECT_EQ(got[0].find("X-THING")->value, "v");
    EXPECT_TRUE(got[0].keep_alive);
    EXPECT_FALSE(got[0].chunked);
}

TEST(RequestParser, TakesPipelinedRequestsOneAtATimeAndInPieces) {
    std::string two = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    for (std::size_t piece : {0, 1, 3, 7}) {
        RequestParser p(Limits{});
        auto got = parse_all(p, two, piece);
        ASSERT_EQ(got.size(), 2u) << "piece " << piece;
        EXPECT_EQ(got[0].target, "/1");
        EXPECT_TRUE(got[0].keep_alive);
        EXPECT_EQ(got[1].target, "/2");
        EXPECT_FALSE(got[1].keep_alive);
    }
}

TEST(RequestParser, DecodesChunkedBodies) {
    RequestParser p(Limits{});
    auto got = parse_all(p, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n", 4);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].body, "hello world");
    EXPECT_TRUE(got[0].chunked);
}

TEST(RequestParser, HttpOneZeroClosesUnlessKeptAlive) {
    RequestParser p(Limits{});
    auto got = parse_all(p, "GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ASSERT_EQ(got.size(), 1u);  // the first one ends the connection: the parser stops there
    EXPECT_FALSE(got[0].keep_alive);
    EXPECT_EQ(got[0].version_minor, 0);
}

TEST(RequestParser, AnUpgradeRequestIsServedAndEndsTheConnection) {
    // Found by fuzz_http_request: llhttp stops for good after an Upgrade; the parser must not hand
    // out the same request again and again.
    RequestParser p(Limits{});
    std::string bytes =
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
    std::size_t used = p.feed(bytes.data(), bytes.size());
    ASSERT_EQ(p.state(), State::Complete);
    Request r = p.take();
    EXPECT_EQ(r.target, "/");
    EXPECT_FALSE(r.keep_alive);
    p.feed(bytes.data() + used, bytes.size() - used);
    EXPECT_EQ(p.state(), State::Failed);
    EXPECT_EQ(p.error_status(), 400);
}

TEST(RequestParser, WantsContinueOnlyWhileTheBodyIsDue) {
    RequestParser p(Limits{});
    std::string head = "PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    EXPECT_EQ(p.feed(head.data(), head.size()), head.size());
    EXPECT_EQ(p.state(), State::Reading);
    EXPECT_TRUE(p.wants_continue());
    EXPECT_TRUE(p.headers_done());
    p.feed("abc", 3);
    ASSERT_EQ(p.state(), State::Complete);
    EXPECT_FALSE(p.wants_continue());
    EXPECT_EQ(p.take().body, "abc");
}

struct Refusal {
    std::string bytes;
    int status;
    std::string reason_part;
};

TEST(RequestParser, RefusesBadInputWithTheRightStatus) {
    Limits small;
    small.max_header_bytes = 256;
    small.max_body = 10;
    small.max_headers = 5;
    std::vector<Refusal> cases = {
        {"GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n", 400, "malformed"},
        {"G@T / HTTP/1.1\r\n\r\n", 400, "malformed"},
        {"GET / HTTP/9.9\r\n\r\n", 505, "HTTP/9.9 is not supported"},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 431, "256 bytes"},
        {"GET /" + std::string(300, 'a') + " HTTP/1.1\r\n\r\n", 431, "256 bytes"},
        {"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\n\r\n", 431, "more than 5 headers"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", 413, "Content-Length 11"},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n", 413,
         "over 10 bytes"},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "'gzip'"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc", 400, ""},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, ""},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, ""},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "malformed"},
        {"GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", 417, "something"},
        {"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501, "CONNECT"},
        // Issue 23, RFC 9112 / 9110 by the letter:
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host given more than once"},
        {"GET / HTTP/1.1\r\n\r\n", 400, "without Host"},
        {"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400, "Host given more than once"},
        {"FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 501, "'FOO' is not implemented"},
        {"-BLARGH / HTTP/1.1\r\nHost: h\r\n\r\n", 501, "'-BLARGH' is not implemented"},
        {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed"},
        {"NOT HTTP AT ALL\r\n\r\n", 400, "malformed"},
        {"FOO /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed"},
        {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "OPTIONS only"},
        {"PUT s://]ufd/: HTTP/1.1\r\nHost: h\r\n\r\n", 400, "neither a path nor an http(s) URI"},
        {"GET http://]bad[/x HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
        {"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "no valid authority"},
        {"GET /foo HTTP/2.0\r\nHost: h\r\n\r\n", 505, "HTTP/2.0 is not supported"},
        {"GET /foo HTTP/0.9\r\nHost: h\r\n\r\n", 505, "HTTP/0.9 is not supported"},
        {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "not a valid host[:port]"},
        {"GET / HTTP/1.1\r\nHost: user@h\r\n\r\n", 400, "not a valid host[:port]"},
        {"GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n", 400, "not a valid host[:port]"},
        {"GET /foo HTTP/1.10\r\nHost: h\r\n\r\n", 400, "malformed"},
    };
    for (const Refusal& r : cases) {
        RequestParser p(small);
        auto got = parse_all(p, r.bytes);
        EXPECT_TRUE(got.empty()) << r.bytes;
        EXPECT_EQ(p.state(), State::Failed) << r.bytes;
        EXPECT_EQ(p.error_status(), r.status) << r.bytes << " -> " << p.error_reason();
        EXPECT_NE(p.error_reason().find(r.reason_part), std::string::npos) << p.error_reason();
    }
}

TEST(RequestParser, TrailerFieldsNeverBecomeHeaders) {
    // RFC 9110 6.5.2: a trailer must not be merged into the header section (request smuggling of
    // Host, Authorization, X-Forwarded-For past a proxy that checked the headers).
    RequestParser p(Limits{});
    auto got = parse_all(p,
                         "POST /t HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n0\r\nHost: evil.example.com\r\nAuthorization: Bearer x\r\n"
                         "X-Forwarded-For: 6.6.6.6\r\n\r\n"
                         "GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ASSERT_EQ(got.size(), 2U) << p.error_reason();
    EXPECT_EQ(got[0].body, "hello");
    ASSERT_EQ(got[0].headers.size(), 2U);  // Host and Transfer-Encoding, nothing of the trailer
    EXPECT_EQ(got[0].find("host")->value, "example.com");
    EXPECT_EQ(got[0].find("authorization"), nullptr);
    EXPECT_EQ(got[0].find("x-forwarded-for"), nullptr);
    EXPECT_EQ(got[1].target, "/next");
}

TEST(RequestParser, TargetsAsRfc9112AllowsThem) {
    RequestParser p(Limits{});
    auto got = parse_all(p,
                         "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"
                         "GET http://h:8080/a?b HTTP/1.1\r\nHost: h\r\n\r\n"
                         "GET /foo#frag HTTP/1.1\r\nHost: h\r\n\r\n"
                         "GET /foo?x=1#frag HTTP/1.1\r\nHost: h\r\n\r\n"
                         "PURGE /cache HTTP/1.1\r\nHost: h\r\n\r\n"
                         "GET / HTTP/1.2\r\nHost: h\r\n\r\n"  // a higher 1.x is served as 1.1
                         "GET / HTTP/1.0\r\n\r\n");  // Host is optional in HTTP/1.0 (it closes, so last)
    ASSERT_EQ(got.size(), 7U) << p.error_reason();
    EXPECT_EQ(got[5].version_minor, 1);
    EXPECT_EQ(got[0].target, "*");
    EXPECT_EQ(got[1].target, "http://h:8080/a?b");
    EXPECT_EQ(got[2].target, "/foo");  // a fragment never reaches the app
    EXPECT_EQ(got[3].target, "/foo?x=1");
    EXPECT_EQ(got[4].method, "PURGE");
    EXPECT_EQ(got[6].version_minor, 0);
}

TEST(RequestParser, HostFormsAndFaultyFramingInHttp10) {
    RequestParser p(Limits{});
    auto got = parse_all(p,
                         "GET / HTTP/1.1\r\nHost:\r\n\r\n"  // empty: a target without authority
                         "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"
                         "GET / HTTP/1.1\r\nHost: example.com:80\r\nX-A: a\r\n b\r\n\r\n"  // obs-fold -> SP
                         // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is served, then the connection closes.
                         "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "1\r\na\r\n0\r\n\r\n");
    ASSERT_EQ(got.size(), 4U) << p.error_reason();
    EXPECT_TRUE(got[2].keep_alive);
    EXPECT_EQ(got[2].find("x-a")->value, "a b");  // RFC 9112 5.2: each obs-fold replaced by SP
    EXPECT_EQ(got[3].body, "a");
    EXPECT_FALSE(got[3].keep_alive);
}

TEST(RequestParser, ChunkExtensionsAreSkipped) {
    // RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), and
    // a recipient ignores the extensions it does not understand. llhttp (8.1 and 9.3) refuses the
    // BWS (whitespace around ';' and '='), which senders MUST NOT generate (see below).
    RequestParser p(Limits{});
    auto got = parse_all(p,
                         "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5;name=value\r\nhello\r\n"
                         "1;some;parameters=stuff\r\n!\r\n"
                         "2;q=\"quoted; string\"\r\n!!\r\n0\r\n\r\n");
    ASSERT_EQ(got.size(), 1U) << p.error_reason();
    EXPECT_EQ(got[0].body, "hello!!!");
}

TEST(RequestParser, ChunkExtensionsWithBlanksAreRefused) {
    // The one RFC 9112 rule not followed, on purpose (docs/http.md, 7.1.1): a chunk line with blanks
    // around ';' is refused as a whole, never read differently from what a proxy may have read.
    for (const char* line : {"5; some; parameters=stuff", "5 ;a=b", "5;a = b"}) {
        RequestParser p(Limits{});
        auto got = parse_all(p, std::string("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n") +
                                    line + "\r\nhello\r\n0\r\n\r\n");
        EXPECT_TRUE(got.empty()) << line;
        EXPECT_EQ(p.state(), RequestParser::State::Failed) << line;
        EXPECT_EQ(p.error_status(), 400) << line;
    }
}

// ---- the server ---------------------------------------------------------------------------------

// Answers each request from its own thread (as pool workers do): echoes method, target and body.
// With `hold`, it keeps the requests until release() is called.
class EchoHandler final : public manygil::http::Handler {
public:
    void handle(Request request, manygil::http::Responder responder) override {
        std::unique_lock lock(mu_);
        ++handled_;
        if (hold_) {
            held_.emplace_back(std::move(request), std::move(responder));
            cv_.notify_all();
            return;
        }
        lock.unlock();
        answer(std::move(request), std::move(responder));
    }
    void hold() {
        std::lock_guard lock(mu_);
        hold_ = true;
    }
    void set_capacity(std::size_t n) { capacity_ = n; }
    std::size_t capacity() const noexcept override { return capacity_; }
    // Waits until `n` requests are held.
    bool wait_held(std::size_t n) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, 10s, [&] { return held_.size() >= n; });
    }
    void release() {
        std::deque<std::pair<Request, manygil::http::Responder>> held;
        {
            std::lock_guard lock(mu_);
            hold_ = false;
            held.swap(held_);
        }
        for (auto& [request, responder] : held) answer(std::move(request), std::move(responder));
    }
    std::size_t handled() {
        std::lock_guard lock(mu_);
        return handled_;
    }

private:
    static void answer(Request request, manygil::http::Responder responder) {
        std::thread([request = std::move(request), responder = std::move(responder)]() mutable {
            responder.send(manygil::http::Response(200, request.method + " " + request.target + " " + request.body));
        }).detach();
    }
    std::mutex mu_;
    std::condition_variable cv_;
    bool hold_ = false;
    std::size_t handled_ = 0;
    std::size_t capacity_ = 0;
    std::deque<std::pair<Request, manygil::http::Responder>> held_;
};

// Reads until `count` complete responses are in (Content-Length framed; 0: one interim response)
// or the peer closes.
std::string read_responses(int fd, std::size_t count, std::chrono::milliseconds timeout = 10s) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto complete = [&] {
        if (count == 0) return got.find("\r\n\r\n") != std::string::npos;  // an interim response
        std::size_t at = 0, n = 0;
        while (n < count) {
            auto end = got.find("\r\n\r\n", at);
            if (end == std::string::npos) return false;
            auto cl = got.find("Content-Length: ", at);
            std::size_t len = cl != std::string::npos && cl < end ? std::stoul(got.substr(cl + 16, 20)) : 0;
            if (got.compare(at, 12, "HTTP/1.1 100") == 0) len = 0;
            else ++n;
            if (got.size() < end + 4 + len) return false;
            at = end + 4 + len;
        }
        return true;
    };
    while (!complete() && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

std::size_t count(const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
}

manygil::http::ServerOptions options() {
    manygil::http::ServerOptions o;
    o.bind = {"127.0.0.1:0"};
    o.log = [](std::string_view) {};
    return o;
}

TEST(HttpServer, KeepsConnectionsAliveAndAnswersPipelinedRequestsInOrder) {
    EchoHandler handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses().at(0));
    std::string pipelined;
    for (int i = 0; i < 20; ++i) pipelined += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(fd, pipelined);
    std::string got = read_responses(fd, 20);
    ASSERT_EQ(count(got, "HTTP/1.1 200 OK"), 20u) << got;
    std::size_t at = 0;
    for (int i = 0; i < 20; ++i) {
        auto next = got.find("GET /" + std::to_string(i) + " ", at);
        ASSERT_NE(next, std::string::npos) << "response " << i << " out of order";
        at = next;
    }
    EXPECT_EQ(count(got, "Connection: keep-alive"), 20u);
    EXPECT_EQ(count(got, "\r\nDate: "), 20u);
    // The same connection still serves.
    send_all(fd, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
    EXPECT_NE(read_responses(fd, 1).find("POST /x abc"), std::string::npos);
    close(fd);
}

TEST(HttpServer, AnswersHeadWithoutABodyAndSendsContinue) {
    EchoHandler handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses().at(0));
    send_all(fd, "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n");
    std::string head = read_responses(fd, 1);
    EXPECT_NE(head.find("Content-Length: 8\r\n"), std::string::npos) << head;  // "HEAD /h "
    EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "");
    send_all(fd, "PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    std::string interim = read_responses(fd, 0, 2s);
    EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    send_all(fd, "body");
    EXPECT_NE(read_responses(fd, 1).find("PUT /u body"), std::string::npos);
    close(fd);
}

TEST(HttpServer, BadRequestsAreAnsweredByTheFrontEndAndNeighboursGoOn) {
    EchoHandler handler;
    std::vector<std::string> logged;
    std::mutex log_mu;
    auto o = options();
    o.limits.max_body = 100;
    o.log = [&](std::string_view line) {
        std::lock_guard lock(log_mu);
        logged.emplace_back(line);
    };
    manygil::http::Server server(o, handler);
    int good = connect_to(server.addresses().at(0));
    for (const char* bad : {"GARBAGE\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n",
                            "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
        int fd = connect_to(server.addresses().at(0));
        send_all(fd, bad);
        std::string got = read_responses(fd, 1);
        EXPECT_TRUE(got.rfind("HTTP/1.1 400", 0) == 0 || got.rfind("HTTP/1.1 413", 0) == 0) << got;
        EXPECT_NE(got.find("Connection: close"), std::string::npos);
        close(fd);
    }
    send_all(good, "GET /fine HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_NE(read_responses(good, 1).find("GET /fine"), std::string::npos);
    close(good);
    EXPECT_EQ(handler.handled(), 1u);  // none of the bad ones reached the handler
    std::lock_guard lock(log_mu);
    ASSERT_EQ(logged.size(), 3u);
    EXPECT_NE(logged[1].find("413"), std::string::npos) << logged[1];
    EXPECT_EQ(server.stats().rejected, 3u);
}

TEST(HttpServer, ASlowClientTimesOutWithoutReachingTheHandler) {
    EchoHandler handler;
    auto o = options();
    o.header_timeout = 300ms;
    manygil::http::Server server(o, handler);
    int slow = connect_to(server.addresses().at(0));
    send_all(slow, "GET / HTTP/1.1\r\nHost:");  // and nothing more
    int fast = connect_to(server.addresses().at(0));
    send_all(fast, "GET /meanwhile HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_NE(read_responses(fast, 1).find("GET /meanwhile"), std::string::npos);
    std::string got = read_responses(slow, 1);
    EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0u) << got;
    EXPECT_EQ(handler.handled(), 1u);
    close(slow);
    close(fast);
}

TEST(HttpServer, BackpressureCountsRequestsAndNothingIsLost) {
    EchoHandler handler;
    handler.hold();
    auto o = options();
    o.max_pending = 2;
    manygil::http::Server server(o, handler);
    std::vector<int> fds;
    for (int i = 0; i < 6; ++i) {
        fds.push_back(connect_to(server.addresses().at(0)));
        send_all(fds.back(), "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n");
    }
    ASSERT_TRUE(handler.wait_held(2));
    std::this_thread::sleep_for(200ms);  // give a wrong implementation time to hand over more
    EXPECT_EQ(handler.handled(), 2u);
    EXPECT_EQ(server.stats().pending, 2u);
    handler.release();  // answers those two; the rest come through unheld
    for (int i = 0; i < 6; ++i) {
        EXPECT_NE(read_responses(fds[i], 1).find("GET /" + std::to_string(i) + " "), std::string::npos) << i;
        close(fds[i]);
    }
    EXPECT_EQ(handler.handled(), 6u);
}

TEST(HttpServer, GracefulStopAnswersRequestsInFlightWithClose) {
    EchoHandler handler;
    handler.hold();
    manygil::http::Server server(options(), handler);
    std::string address = server.addresses().at(0);
    int busy = connect_to(address);
    send_all(busy, "GET /inflight HTTP/1.1\r\nHost: h\r\n\r\n");
    int idle = connect_to(address);
    ASSERT_TRUE(handler.wait_held(1));
    std::thread stopper([&] { server.stop(5s); });
    // Release the held request only once the stop is under way (the listeners are closed then).
    auto colon_at = address.rfind(':');
    sockaddr_in probe{};
    probe.sin_family = AF_INET;
    probe.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon_at + 1))));
    inet_pton(AF_INET, "127.0.0.1", &probe.sin_addr);
    for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        bool refused = connect(fd, reinterpret_cast<sockaddr*>(&probe), sizeof probe) != 0;
        close(fd);
        if (refused) break;
        std::this_thread::sleep_for(10ms);
    }
    handler.release();
    std::string got = read_responses(busy, 1);
    EXPECT_NE(got.find("GET /inflight"), std::string::npos) << got;
    EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
    stopper.join();
    char c;
    EXPECT_EQ(recv(idle, &c, 1, 0), 0);  // the idle connection was closed
    close(busy);
    close(idle);
    // No new connections.
    auto colon = address.rfind(':');
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_NE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    close(fd);
}

// A request arriving while its predecessor is with the handler waits for that answer, then is
// answered after it.
TEST(HttpServer, ARequestArrivingWhileThePreviousIsOutIsAnsweredAfterIt) {
    EchoHandler handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses().at(0));
    handler.hold();
    send_all(fd, "GET /held HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_TRUE(handler.wait_held(1));
    send_all(fd, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n");
    handler.release();
    std::string got = read_responses(fd, 2);
    auto held = got.find("GET /held "), after = got.find("GET /after ");
    ASSERT_NE(held, std::string::npos) << got;
    ASSERT_NE(after, std::string::npos) << got;
    EXPECT_LT(held, after);
    EXPECT_EQ(server.stats().responses, 2u);
    EXPECT_EQ(server.stats().pending, 0u);
    close(fd);
}

// Answers `size` bytes of 'x' from a thread of its own, and records when send() returned.
class BigHandler final : public manygil::http::Handler {
public:
    explicit BigHandler(std::size_t size) : size_(size) {}
    void handle(Request, manygil::http::Responder responder) override {
        std::thread([this, responder = std::move(responder)]() mutable {
            responder.send(manygil::http::Response(200, std::string(size_, 'x')));
            std::lock_guard lock(mu_);
            ++sent_;
            cv_.notify_all();
        }).detach();
    }
    bool wait_sent(std::size_t n) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, 10s, [&] { return sent_ >= n; });
    }

private:
    std::size_t size_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::size_t sent_ = 0;
};

// 64 MiB cannot fit in a loopback socket's buffers: send() returns while the client has read
// nothing, and the I/O thread writes the rest as the client reads; the connection goes on.
TEST(HttpServer, AResponseLargerThanTheSocketBuffersIsWrittenAsTheClientReads) {
    constexpr std::size_t kBig = 64u << 20;
    BigHandler handler(kBig);
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses().at(0));
    for (int i = 0; i < 2; ++i) {
        send_all(fd, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
        ASSERT_TRUE(handler.wait_sent(static_cast<std::size_t>(i + 1)));  // never waits for the client
        std::string got = read_responses(fd, 1, 60s);
        auto end = got.find("\r\n\r\n");
        ASSERT_NE(end, std::string::npos);
        EXPECT_NE(got.find("Content-Length: " + std::to_string(kBig) + "\r\n"), std::string::npos);
        ASSERT_EQ(got.size(), end + 4 + kBig);
        EXPECT_EQ(got.find_first_not_of('x', end + 4), std::string::npos);
    }
    close(fd);
}

// Waits (up to 10 s) until the server has no connection open.
bool all_closed(const manygil::http::Server& server) {
    for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
        if (server.stats().connections_open == 0) return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

TEST(HttpServer, AClientLeavingMidResponseOrBeforeItIsClosedAndOthersGoOn) {
    BigHandler big(64u << 20);
    manygil::http::Server server(options(), big);
    // Leaves after the start of its answer arrived; the rest is still to write.
    int fd = connect_to(server.addresses().at(0));
    send_all(fd, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_TRUE(big.wait_sent(1));
    char buf[1000];
    ASSERT_GT(recv(fd, buf, sizeof buf, 0), 0);
    close(fd);
    EXPECT_TRUE(all_closed(server));

    // Leaves while its request is with the handler: the answer finds the connection gone.
    EchoHandler echo;
    echo.hold();
    manygil::http::Server second(options(), echo);
    int gone = connect_to(second.addresses().at(0));
    send_all(gone, "GET /gone HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_TRUE(echo.wait_held(1));
    close(gone);
    echo.release();
    EXPECT_TRUE(all_closed(second));
    int fine = connect_to(second.addresses().at(0));
    send_all(fine, "GET /fine HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_NE(read_responses(fine, 1).find("GET /fine "), std::string::npos);
    close(fine);
    EXPECT_EQ(second.stats().pending, 0u);
}

// The thread id of this process's thread named `name` (-1 if none).
pid_t thread_named(const std::string& name) {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::string comm;
        std::getline(std::ifstream(task.path() / "comm"), comm);
        if (comm == name) return static_cast<pid_t>(std::stol(task.path().filename().string()));
    }
    return -1;
}

// Whether thread `tid` comes to run with `policy` within 10 s.
bool policy_becomes(pid_t tid, int policy) {
    for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
        if (sched_getscheduler(tid) == policy) return true;
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

// While more requests are out than the handler works on at once, the I/O thread runs SCHED_BATCH
// (its wakeups do not preempt a worker mid-request); otherwise SCHED_OTHER (a request a worker is
// free for is dispatched at once).
TEST(HttpServer, TheIoThreadYieldsToWorkersOnlyWhileRequestsWaitForThem) {
    EchoHandler handler;
    handler.set_capacity(1);
    handler.hold();
    manygil::http::Server server(options(), handler);
    std::vector<int> fds;
    fds.push_back(connect_to(server.addresses().at(0)));
    send_all(fds.back(), "GET /0 HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_TRUE(handler.wait_held(1));
    pid_t io = thread_named("mg-http-0");
    ASSERT_GT(io, 0);
    EXPECT_EQ(sched_getscheduler(io), SCHED_OTHER);  // one request out: no backlog
    for (int i = 1; i < 3; ++i) {
        fds.push_back(connect_to(server.addresses().at(0)));
        send_all(fds.back(), "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n");
    }
    ASSERT_TRUE(handler.wait_held(3));
    EXPECT_TRUE(policy_becomes(io, SCHED_BATCH));
    handler.release();
    for (std::size_t i = 0; i < fds.size(); ++i) {
        EXPECT_NE(read_responses(fds[i], 1).find("GET /" + std::to_string(i) + " "), std::string::npos);
        close(fds[i]);
    }
    EXPECT_TRUE(policy_becomes(io, SCHED_OTHER));
}

TEST(HttpServer, SeveralIoThreadsShareThePortAndBadBindsNameTheAddress) {
    EchoHandler handler;
    auto o = options();
    o.io_threads = 2;
    manygil::http::Server server(o, handler);
    std::vector<int> fds;
    for (int i = 0; i < 8; ++i) {
        fds.push_back(connect_to(server.addresses().at(0)));
        send_all(fds.back(), "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n");
    }
    for (int i = 0; i < 8; ++i) {
        EXPECT_NE(read_responses(fds[i], 1).find("GET /" + std::to_string(i) + " "), std::string::npos);
        close(fds[i]);
    }
    auto bad = options();
    bad.bind = {"127.0.0.1:notaport"};
    EXPECT_THROW(manygil::http::Server(bad, handler), std::invalid_argument);
    auto taken = options();
    taken.bind = {server.addresses().at(0)};
    try {
        manygil::http::Server second(taken, handler);
        ADD_FAILURE() << "bound a port already in use";
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find(server.addresses().at(0)), std::string::npos) << e.what();
    }
}

TEST(HttpServer, ListensOnAUnixSocketAndOnAnInheritedDescriptor) {
    EchoHandler handler;
    std::string path = (std::filesystem::temp_directory_path() / ("mg_http_" + std::to_string(getpid()) + ".sock")).string();
    {
        std::ofstream stale(path);  // a regular file in the way is an error, not replaced
    }
    auto o = options();
    o.bind = {"unix:" + path};
    EXPECT_THROW(manygil::http::Server(o, handler), std::invalid_argument);
    std::filesystem::remove(path);
    o.bind = {"unix:" + path + "?mode=600"};
    o.io_threads = 2;
    {
        manygil::http::Server server(o, handler);
        ASSERT_EQ(server.addresses().at(0), "unix:" + path);
        EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
                  std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        for (int i = 0; i < 4; ++i) {
            int fd = manygil::testing::connect_unix(server.addresses().at(0));
            send_all(fd, "GET /u" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n");
            EXPECT_NE(read_responses(fd, 1).find("GET /u" + std::to_string(i) + " "), std::string::npos);
            close(fd);
        }
    }
    {
        manygil::http::Server again(o, handler);  // the stale socket file of the last run is replaced
        EXPECT_EQ(again.addresses().at(0), "unix:" + path);
    }
    std::filesystem::remove(path);

    // fd://N: a listening socket made by someone else (a supervisor, systemd), left open by the server.
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(listener, 16), 0);
    auto inherited = options();
    inherited.bind = {"fd://" + std::to_string(listener)};
    std::string address;
    {
        manygil::http::Server server(inherited, handler);
        address = server.addresses().at(0);
        int fd = connect_to(address);
        send_all(fd, "GET /fd HTTP/1.1\r\nHost: h\r\n\r\n");
        EXPECT_NE(read_responses(fd, 1).find("GET /fd "), std::string::npos);
        close(fd);
    }
    {
        manygil::http::Server next(inherited, handler);  // the descriptor outlived the first server
        EXPECT_EQ(next.addresses().at(0), address);
        int fd = connect_to(address);
        send_all(fd, "GET /fd2 HTTP/1.1\r\nHost: h\r\n\r\n");
        EXPECT_NE(read_responses(fd, 1).find("GET /fd2 "), std::string::npos);
        close(fd);
    }
    close(listener);
    int not_listening = socket(AF_INET, SOCK_STREAM, 0);
    inherited.bind = {"fd://" + std::to_string(not_listening)};
    EXPECT_THROW(manygil::http::Server(inherited, handler), std::invalid_argument);
    close(not_listening);
    inherited.bind = {"fd://x"};
    EXPECT_THROW(manygil::http::Server(inherited, handler), std::invalid_argument);
}

TEST(HttpServer, AHandlerThatDoesNotAnswerInTimeGets504AndItsLateAnswerIsDropped) {
    EchoHandler handler;
    handler.hold();
    auto o = options();
    o.response_timeout = 300ms;
    manygil::http::Server server(o, handler);
    int fd = connect_to(server.addresses().at(0));
    auto sent = std::chrono::steady_clock::now();
    send_all(fd, "GET /stuck HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_TRUE(handler.wait_held(1));
    std::string answer = manygil::testing::read_until_close(fd);  // 504, then the server closes
    EXPECT_NE(answer.find("HTTP/1.1 504 "), std::string::npos) << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos);
    EXPECT_LT(std::chrono::steady_clock::now() - sent, 5s);
    close(fd);
    EXPECT_EQ(server.stats().pending, 1U);  // the Handler still has it
    handler.release();                      // its late answer goes nowhere
    for (int i = 0; i < 100 && server.stats().pending > 0; ++i) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(server.stats().pending, 0U);
    int again = connect_to(server.addresses().at(0));
    send_all(again, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_NE(read_responses(again, 1).find("GET /next "), std::string::npos);
    close(again);
}

TEST(AccessLog, GunicornsAtomsRender) {
    manygil::http::AccessRecord r;
    r.remote = "203.0.113.7";
    r.method = "GET";
    r.target = "/p?q=1";
    r.protocol = "HTTP/1.1";
    r.request_headers = {{"User-Agent", "curl/7.88"}, {"X-Id", "42"}};
    r.started = std::chrono::steady_clock::now() - 1500ms;
    manygil::http::AccessLogFormat standard;
    EXPECT_TRUE(standard.needs_request_headers());
    std::string line = standard.render(r, 200, 12, {});
    EXPECT_EQ(line.substr(0, 17), "203.0.113.7 - - [");
    EXPECT_NE(line.find(" +0000] \"GET /p?q=1 HTTP/1.1\" 200 12 \"-\" \"curl/7.88\""), std::string::npos) << line;
    manygil::http::AccessLogFormat custom("%(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(b)s %(T)s %(M)s %({x-id}i)s "
                                          "%({Content-Type}o)s %({MANYGIL_NO_SUCH_VAR}e)s 100%%");
    EXPECT_EQ(custom.render(r, 404, std::nullopt, {{"Content-Type", "text/plain"}}),
              "GET /p q=1 HTTP/1.1 404 - - 1 1500 42 text/plain - 100%");
    manygil::http::AccessLogFormat no_headers("%(h)s %(s)s");
    EXPECT_FALSE(no_headers.needs_request_headers());
    EXPECT_THROW(manygil::http::AccessLogFormat("%(zz)s"), std::invalid_argument);
    EXPECT_THROW(manygil::http::AccessLogFormat("%(h"), std::invalid_argument);
}

// TLS: a certificate or key the server cannot use is named when the Server starts, before anything
// listens (the handshakes themselves are tested with real clients in test_serve_tls.py).
TEST(TlsContext, NamesTheFileItCannotUse) {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("manygil_tls_test_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::string missing = (dir / "missing.pem").string(), not_pem = (dir / "not.pem").string();
    std::ofstream(not_pem) << "hello\n";
    using manygil::http::TlsContext;
    try {
        TlsContext context({.certfile = missing, .keyfile = ""});
        ADD_FAILURE() << "a missing certificate file was accepted";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_NE(std::string(e.what()).find("certfile " + missing), std::string::npos) << e.what();
    }
    try {
        TlsContext context({.certfile = not_pem, .keyfile = not_pem});
        ADD_FAILURE() << "a file with no certificate was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("certfile " + not_pem + ": no PEM certificate"), std::string::npos)
            << e.what();
    }
    EchoHandler handler;
    manygil::http::ServerOptions options;
    options.bind = {"127.0.0.1:0"};
    options.tls = manygil::http::TlsOptions{.certfile = not_pem, .keyfile = ""};
    EXPECT_THROW(manygil::http::Server(options, handler), std::invalid_argument);
    fs::remove_all(dir);
}

}  // namespace
