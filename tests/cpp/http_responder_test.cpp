// The Responder's calls for a handler that must never block (an event loop: ASGI):
// try_send_chunk (a full window says so and calls back once the client has read) and on_gone (the
// client left while its request was out). A server with C++ handlers over loopback.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "loopback_client.hpp"
#include "manygil/http.hpp"

namespace {

using namespace std::chrono_literals;
using manygil::http::Request;
using manygil::http::Responder;
using manygil::testing::connect_to;
using manygil::testing::read_until;
using manygil::testing::send_all;

manygil::http::ServerOptions options() {
    manygil::http::ServerOptions o;
    o.bind = {"127.0.0.1:0"};
    o.log = [](std::string_view) {};
    return o;
}

// Keeps each request's Responder for the test to drive.
class Keeper final : public manygil::http::Handler {
public:
    void handle(Request, Responder responder) override {
        std::lock_guard lock(mu_);
        held_ = std::move(responder);
        cv_.notify_all();
    }
    std::optional<Responder> take() {
        std::unique_lock lock(mu_);
        if (!cv_.wait_for(lock, 10s, [&] { return held_.has_value(); })) return std::nullopt;
        std::optional<Responder> out = std::move(held_);
        held_.reset();
        return out;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::optional<Responder> held_;
};

bool all_closed(const manygil::http::Server& server) {
    for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
        if (server.stats().connections_open == 0) return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

TEST(Responder, TrySendChunkNeverWaitsAndCallsBackOnceTheClientHasRead) {
    Keeper keeper;
    manygil::http::Server server(options(), keeper);
    int fd = connect_to(server.addresses().at(0));
    send_all(fd, "GET /stream HTTP/1.1\r\nHost: h\r\n\r\n");
    std::optional<Responder> r = keeper.take();
    ASSERT_TRUE(r);
    manygil::http::Response head(200, "", "application/octet-stream");  // no 'x' in the head
    head.stream = true;
    r->send(std::move(head));
    // The client reads nothing yet: the chunks pile up until the window is full, and no call waits.
    std::promise<void> ready;
    std::atomic<int> calls{0};
    const std::string piece(256 * 1024, 'x');
    std::size_t sent = 0;
    Responder::ChunkResult last = Responder::ChunkResult::Sent;
    for (int i = 0; i < 64 && last == Responder::ChunkResult::Sent; ++i) {
        last = r->try_send_chunk(piece, [&] {
            if (calls.fetch_add(1) == 0) ready.set_value();
        });
        sent += piece.size();
    }
    ASSERT_EQ(last, Responder::ChunkResult::Full);
    EXPECT_GE(sent, Responder::kStreamWindow);
    // Reading drains the window: the callback comes, once.
    std::future<void> drained = ready.get_future();
    std::size_t got_x = 0;
    char buf[65536];
    while (drained.wait_for(0ms) != std::future_status::ready) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        ASSERT_GT(n, 0);
        for (ssize_t i = 0; i < n; ++i) got_x += buf[i] == 'x';
    }
    EXPECT_EQ(r->try_send_chunk(piece, [] {}), Responder::ChunkResult::Sent);
    sent += piece.size();
    r->finish();
    std::string rest = read_until(fd, "0\r\n\r\n");
    for (char c : rest) got_x += c == 'x';
    EXPECT_EQ(got_x, sent);
    EXPECT_EQ(calls.load(), 1);
    close(fd);
}

TEST(Responder, OnGoneTellsWhenTheClientLeavesWhileItsRequestIsOut) {
    Keeper keeper;
    manygil::http::Server server(options(), keeper);
    int fd = connect_to(server.addresses().at(0));
    send_all(fd, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n");
    std::optional<Responder> r = keeper.take();
    ASSERT_TRUE(r);
    std::promise<void> gone;
    r->on_gone([&] { gone.set_value(); });
    close(fd);
    ASSERT_EQ(gone.get_future().wait_for(10s), std::future_status::ready);
    r->send(manygil::http::Response(200, "too late\n"));  // dropped, and counted as answered
    EXPECT_TRUE(all_closed(server));
    EXPECT_EQ(server.stats().pending, 0u);

    // Registered after the client left: told at once.
    int again = connect_to(server.addresses().at(0));
    send_all(again, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n");
    std::optional<Responder> late = keeper.take();
    ASSERT_TRUE(late);
    close(again);
    std::promise<void> told;  // whether or not the I/O thread has seen the hang-up yet, it tells
    late->on_gone([&] { told.set_value(); });
    EXPECT_EQ(told.get_future().wait_for(10s), std::future_status::ready);
    late->send(manygil::http::Response(200, "too late\n"));
    EXPECT_TRUE(all_closed(server));
}

TEST(Responder, OnGoneIsNotCalledOnceTheResponseIsComplete) {
    Keeper keeper;
    manygil::http::Server server(options(), keeper);
    int fd = connect_to(server.addresses().at(0));
    send_all(fd, "GET /fine HTTP/1.1\r\nHost: h\r\n\r\n");
    std::optional<Responder> r = keeper.take();
    ASSERT_TRUE(r);
    std::atomic<bool> called{false};
    r->on_gone([&] { called = true; });
    r->send(manygil::http::Response(200, "fine\n"));
    EXPECT_NE(read_until(fd, "fine\n").find("fine\n"), std::string::npos);
    close(fd);
    EXPECT_TRUE(all_closed(server));
    EXPECT_FALSE(called.load());
}

}  // namespace
