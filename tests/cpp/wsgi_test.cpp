// A C++ host serving a WSGI application with manygil::http::Server and manygil::wsgi::WsgiHandler on
// a Pool's own-GIL workers: no Python in the test's thread, the application in tests/cpp/python.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "loopback_client.hpp"
#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"

namespace {

using namespace std::chrono_literals;

using manygil::testing::round_trip;

struct Served {
    explicit Served(std::string app)
        : pool(manygil::testing::runtime(), {.workers = 2}),
          handler(pool, {.app = std::move(app), .log = [this](std::string_view line) {
                             std::lock_guard lock(mu);
                             logged.emplace_back(line);
                         }}),
          server({.bind = {"127.0.0.1:0"}, .log = [](std::string_view) {}}, handler) {}
    std::mutex mu;
    std::vector<std::string> logged;
    manygil::Pool pool;
    manygil::wsgi::WsgiHandler handler;
    manygil::http::Server server;
};

TEST(WsgiHandler, ServesAWsgiApplicationFromACppHost) {
    Served s("mg_wsgi:app");
    std::string got = round_trip(s.server.addresses().at(0),
                               "POST /hello HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndata");
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    EXPECT_NE(got.find("\r\n\r\nPOST /hello b'data'"), std::string::npos) << got;
    got = round_trip(s.server.addresses().at(0), "GET /raise HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(got.rfind("HTTP/1.1 500 ", 0), 0u) << got;
    s.server.stop(5s);
    std::lock_guard lock(s.mu);
    ASSERT_EQ(s.logged.size(), 1u);
    EXPECT_NE(s.logged[0].find("KeyError: 'on purpose'"), std::string::npos) << s.logged[0];
}

TEST(WsgiHandler, StreamsAGeneratorChunked) {
    Served s("mg_wsgi:chunks");
    std::string got = round_trip(s.server.addresses().at(0), "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got;
    EXPECT_NE(got.find("\r\n\r\n2\r\n0;\r\n2\r\n1;\r\n2\r\n2;\r\n0\r\n\r\n"), std::string::npos) << got;
}

TEST(WsgiHandler, RefusesAMalformedApplicationName) {
    manygil::Pool pool(manygil::testing::runtime(), {.workers = 1});
    EXPECT_THROW(manygil::wsgi::WsgiHandler(pool, {.app = "no colon"}), manygil::InvalidArgument);
}

}  // namespace
