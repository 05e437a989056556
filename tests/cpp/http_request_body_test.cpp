// Streamed request bodies (Handler::streams_request_bodies, RequestBody): the request reaches the
// handler with its head, the body follows in pieces in order (chunked decoded), the front end stops
// reading an upload whose consumer does not acknowledge (backpressure), refuses a body over max_body
// with 413 mid-stream, tells the consumer when the client vanishes, and keeps pipelined requests in
// order. A server with a C++ handler over loopback.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loopback_client.hpp"
#include "manygil/http.hpp"

namespace {

using namespace std::chrono_literals;
using manygil::http::Request;
using manygil::http::RequestBody;
using manygil::http::Responder;
using manygil::http::Response;
using manygil::testing::connect_to;
using manygil::testing::read_until;
using manygil::testing::send_all;

manygil::http::ServerOptions options() {
    manygil::http::ServerOptions o;
    o.bind = {"127.0.0.1:0"};
    o.log = [](std::string_view) {};
    return o;
}

struct Held {
    Request request;
    Responder responder;
};

// Streams bodies; keeps each request (and its Responder) for the test to drive.
class Streamer final : public manygil::http::Handler {
public:
    void handle(Request request, Responder responder) override {
        std::lock_guard lock(mu_);
        held_.push_back({std::move(request), std::move(responder)});
        cv_.notify_all();
    }
    bool streams_request_bodies() const noexcept override { return true; }
    std::optional<Held> take(std::chrono::milliseconds wait = 10s) {
        std::unique_lock lock(mu_);
        if (!cv_.wait_for(lock, wait, [&] { return !held_.empty(); })) return std::nullopt;
        Held h = std::move(held_.front());
        held_.pop_front();
        return h;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Held> held_;
};

// Reads a RequestBody to its end (or failure) the way an event loop would: read(), and when it says
// Waiting, when_ready() and wait for the call. Acknowledges what it reads when `ack`.
struct Reader {
    RequestBody body;
    std::string got;
    std::vector<std::size_t> pieces;
    RequestBody::Status last = RequestBody::Status::Waiting;

    RequestBody::Status step(bool ack, std::chrono::milliseconds wait = 10s) {
        for (;;) {
            std::string bytes;
            RequestBody::Status s = body.read(bytes);
            if (s != RequestBody::Status::Waiting) {
                if (!bytes.empty()) pieces.push_back(bytes.size());
                got += bytes;
                if (ack) body.consumed(bytes.size());
                return last = s;
            }
            auto ready = std::make_shared<std::atomic<bool>>(false);
            body.when_ready([ready] { ready->store(true); });
            auto until = std::chrono::steady_clock::now() + wait;
            while (!ready->load() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
            if (!ready->load()) return last = RequestBody::Status::Waiting;
        }
    }
    RequestBody::Status to_end(bool ack = true) {
        while (step(ack) == RequestBody::Status::Data) {}
        return last;
    }
};

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return s;
}

TEST(RequestBodyStream, ArrivesInPiecesInOrderAfterTheHead) {
    Streamer handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses()[0]);
    std::string body = pattern(300'000);
    send_all(fd, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n" + body.substr(0, 1000));
    auto held = handler.take();  // the head is with the handler while most of the body is not sent
    ASSERT_TRUE(held);
    ASSERT_TRUE(held->request.body_stream);
    EXPECT_TRUE(held->request.body.empty());
    EXPECT_EQ(held->request.target, "/up");
    Reader r{held->request.body_stream};
    EXPECT_EQ(r.step(true), RequestBody::Status::Data);
    EXPECT_EQ(r.got, body.substr(0, 1000));
    send_all(fd, body.substr(1000, 100'000));
    std::this_thread::sleep_for(20ms);
    send_all(fd, body.substr(101'000));
    EXPECT_EQ(r.to_end(), RequestBody::Status::End);
    EXPECT_EQ(r.got, body);
    EXPECT_GE(r.pieces.size(), 2u);
    held->responder.send(Response(200, std::to_string(r.got.size())));
    std::string answer = read_until(fd, "300000");
    EXPECT_NE(answer.find("HTTP/1.1 200"), std::string::npos) << answer;
    close(fd);
}

TEST(RequestBodyStream, ASmallBodyWithItsHeadArrivesWhole) {
    Streamer handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    auto held = handler.take();
    ASSERT_TRUE(held);
    EXPECT_FALSE(held->request.body_stream);
    EXPECT_EQ(held->request.body, "hello");
    held->responder.send(Response(200, "ok"));
    EXPECT_NE(read_until(fd, "ok").find("200 OK"), std::string::npos);
    close(fd);
}

TEST(RequestBodyStream, ChunkedBodiesArriveDecoded) {
    Streamer handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    auto held = handler.take();
    ASSERT_TRUE(held);
    ASSERT_TRUE(held->request.body_stream);
    EXPECT_TRUE(held->request.chunked);
    Reader r{held->request.body_stream};
    EXPECT_EQ(r.step(true), RequestBody::Status::Data);
    EXPECT_EQ(r.got, "hello");
    send_all(fd, "6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    EXPECT_EQ(r.to_end(), RequestBody::Status::End);
    EXPECT_EQ(r.got, "hello world");
    held->responder.send(Response(200, "done"));
    EXPECT_NE(read_until(fd, "done").find("200 OK"), std::string::npos);
    close(fd);
}

TEST(RequestBodyStream, ExpectContinueIsAnsweredWhenTheRequestIsHandedOver) {
    Streamer handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    auto held = handler.take();
    ASSERT_TRUE(held);
    EXPECT_NE(read_until(fd, "\r\n\r\n").find("HTTP/1.1 100 Continue"), std::string::npos);
    send_all(fd, "data");
    Reader r{held->request.body_stream};
    EXPECT_EQ(r.to_end(), RequestBody::Status::End);
    EXPECT_EQ(r.got, "data");
    held->responder.send(Response(200, "fine"));
    EXPECT_NE(read_until(fd, "fine").find("200 OK"), std::string::npos);
    close(fd);
}

TEST(RequestBodyStream, AConsumerThatDoesNotAcknowledgeStopsTheUpload) {
    Streamer handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses()[0]);
    constexpr std::size_t kTotal = 64u << 20;  // more than the window plus any kernel buffers
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(kTotal) + "\r\n\r\n");
    std::atomic<std::size_t> sent{0};
    std::thread sender([&] {
        std::string piece(1 << 16, 'z');
        while (sent.load() < kTotal) {
            ssize_t n = send(fd, piece.data(), piece.size(), MSG_NOSIGNAL);
            if (n <= 0) return;
            sent.fetch_add(static_cast<std::size_t>(n));
        }
    });
    auto held = handler.take();
    ASSERT_TRUE(held);
    Reader r{held->request.body_stream};
    // Read without acknowledging until nothing more comes: the front end stopped reading.
    while (r.step(false, 500ms) == RequestBody::Status::Data) {}
    EXPECT_EQ(r.last, RequestBody::Status::Waiting);
    EXPECT_GT(r.got.size(), RequestBody::kWindow);
    EXPECT_LE(r.got.size(), RequestBody::kWindow + (256u << 10));  // one read's overshoot at most
    EXPECT_LT(sent.load(), kTotal);  // the client is held back (its kernel buffers are full)
    // Acknowledging resumes it: the rest arrives.
    r.body.consumed(r.got.size());
    std::size_t before = r.got.size();
    r.got.clear();
    EXPECT_EQ(r.to_end(true), RequestBody::Status::End);
    EXPECT_EQ(before + r.got.size(), kTotal);
    sender.join();
    held->responder.send(Response(200, "all"));
    EXPECT_NE(read_until(fd, "all").find("200 OK"), std::string::npos);
    close(fd);
}

TEST(RequestBodyStream, ABodyOverMaxBodyIsRefused413MidStream) {
    Streamer handler;
    auto o = options();
    o.limits.max_body = 100'000;
    manygil::http::Server server(o, handler);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n");
    auto held = handler.take();
    ASSERT_TRUE(held);
    Reader r{held->request.body_stream};
    EXPECT_EQ(r.step(true), RequestBody::Status::Data);
    std::string big(150'000, 'x');
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", big.size());
    send_all(fd, size + big + "\r\n");
    EXPECT_EQ(r.to_end(), RequestBody::Status::Failed);
    EXPECT_NE(r.body.error().find("413"), std::string::npos) << r.body.error();
    std::string answer = manygil::testing::read_until_close(fd);
    EXPECT_NE(answer.find("HTTP/1.1 413"), std::string::npos) << answer;
    held->responder.send(Response(200, "late"));  // dropped
    EXPECT_EQ(answer.find("late"), std::string::npos);
    close(fd);
}

TEST(RequestBodyStream, ABodyRefusedWithItsHeadNeverReachesTheHandler) {
    Streamer handler;
    auto o = options();
    o.limits.max_body = 10;
    manygil::http::Server server(o, handler);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + std::string(32, 'y') + "\r\n");
    std::string answer = manygil::testing::read_until_close(fd);
    EXPECT_NE(answer.find("HTTP/1.1 413"), std::string::npos) << answer;
    EXPECT_FALSE(handler.take(100ms));
    close(fd);
}

TEST(RequestBodyStream, ABodyWithNoByteForHeaderTimeoutIsRefused408) {
    Streamer handler;
    auto o = options();
    o.header_timeout = 300ms;
    manygil::http::Server server(o, handler);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + std::string(10, 'w'));
    auto held = handler.take();
    ASSERT_TRUE(held);
    Reader r{held->request.body_stream};
    EXPECT_EQ(r.to_end(), RequestBody::Status::Failed);  // the client sends nothing more
    EXPECT_NE(r.body.error().find("408"), std::string::npos) << r.body.error();
    std::string answer = manygil::testing::read_until_close(fd);
    EXPECT_NE(answer.find("HTTP/1.1 408"), std::string::npos) << answer;
    close(fd);
}

TEST(RequestBodyStream, AnUploadPausedByItsConsumerIsNotTimedOut) {
    Streamer handler;
    auto o = options();
    o.header_timeout = 200ms;
    manygil::http::Server server(o, handler);
    int fd = connect_to(server.addresses()[0]);
    constexpr std::size_t kTotal = 4u << 20;
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(kTotal) + "\r\n\r\n");
    std::thread sender([&] { send_all(fd, std::string(kTotal, 'p')); });
    auto held = handler.take();
    ASSERT_TRUE(held);
    Reader r{held->request.body_stream};
    while (r.step(false, 500ms) == RequestBody::Status::Data) {}
    ASSERT_EQ(r.last, RequestBody::Status::Waiting);  // paused: over the window, unacknowledged
    std::this_thread::sleep_for(1s);  // several header_timeouts: the pause is the consumer's
    r.body.consumed(r.got.size());
    EXPECT_EQ(r.to_end(true), RequestBody::Status::End) << r.body.error();
    EXPECT_EQ(r.got.size(), kTotal);
    sender.join();
    held->responder.send(Response(200, "kept"));
    EXPECT_NE(read_until(fd, "kept").find("200 OK"), std::string::npos);
    close(fd);
}

TEST(RequestBodyStream, AClientVanishingMidBodyIsHeardByTheConsumer) {
    Streamer handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + std::string(1000, 'q'));
    auto held = handler.take();
    ASSERT_TRUE(held);
    auto gone = std::make_shared<std::atomic<bool>>(false);
    held->responder.on_gone([gone] { gone->store(true); });
    Reader r{held->request.body_stream};
    EXPECT_EQ(r.step(true), RequestBody::Status::Data);
    send_all(fd, std::string(500, 'r'));
    close(fd);
    EXPECT_EQ(r.to_end(), RequestBody::Status::Failed);
    EXPECT_EQ(r.got, std::string(1000, 'q') + std::string(500, 'r'));  // what it sent, then the failure
    EXPECT_NE(r.body.error().find("went away"), std::string::npos) << r.body.error();
    for (int i = 0; i < 1000 && !gone->load(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(gone->load());
}

TEST(RequestBodyStream, PipelinedRequestsStayInOrder) {
    Streamer handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, "POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
    auto first = handler.take();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->request.target, "/one");
    // The rest of the body and the next request in one write.
    send_all(fd, "56789GET /two HTTP/1.1\r\nHost: x\r\n\r\n");
    Reader r{first->request.body_stream};
    EXPECT_EQ(r.to_end(), RequestBody::Status::End);
    EXPECT_EQ(r.got, "0123456789");
    EXPECT_FALSE(handler.take(200ms));  // the next request waits for this answer
    first->responder.send(Response(200, "first"));
    auto second = handler.take();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->request.target, "/two");
    second->responder.send(Response(200, "second"));
    std::string answer = read_until(fd, "second");
    EXPECT_LT(answer.find("first"), answer.find("second")) << answer;
    close(fd);
}

TEST(RequestBodyStream, AnAnswerBeforeTheBodyEndsClosesTheConnectionAfterIt) {
    Streamer handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + std::string(10, 'a'));
    auto held = handler.take();
    ASSERT_TRUE(held);
    Reader r{held->request.body_stream};
    held->responder.send(Response(200, "early"));
    std::string answer = manygil::testing::read_until_close(fd);
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
    EXPECT_EQ(r.to_end(), RequestBody::Status::Failed);
    close(fd);
}

TEST(RequestBodyStream, HandlersThatDoNotStreamGetWholeBodies) {
    class Whole final : public manygil::http::Handler {
    public:
        void handle(Request request, Responder responder) override {
            responder.send(Response(200, std::to_string(request.body.size()) + (request.body_stream ? "s" : "w")));
        }
    } handler;
    manygil::http::Server server(options(), handler);
    int fd = connect_to(server.addresses()[0]);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n");
    send_all(fd, std::string(200'000, 'w'));
    EXPECT_NE(read_until(fd, "200000w").find("200000w"), std::string::npos);
    close(fd);
}

}  // namespace
