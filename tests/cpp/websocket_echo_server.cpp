// A WebSocket echo server for tests/python/test_websocket.py (the `websockets` client library against
// the C++ front end): a manygil::http::Server with a C++ Handler, no Python. Built with the tests and
// run by path (build/tests/cpp/websocket_echo_server). It prints "listening HOST:PORT" once serving,
// and stops gracefully (Server::stop, 5 s) when its standard input closes.
//
//   websocket_echo_server [--certfile PEM --keyfile PEM] [--max-message BYTES]
//
// Every message is echoed. A text message "close CODE [REASON]" makes the server close with that code
// instead. Sec-WebSocket-Protocol: the first offered one is accepted. The request's path "/deny"
// is denied (403).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "manygil/http.hpp"

namespace {

using namespace manygil::http;

class Echo final : public WebSocketListener {
public:
    WebSocket ws;
    void on_message(bool text, std::string data) override {
        std::size_t n = data.size();
        if (text && data.rfind("close ", 0) == 0) {
            std::string rest = data.substr(6);
            std::size_t space = rest.find(' ');
            int code = std::stoi(rest.substr(0, space));
            ws.close(code, space == std::string::npos ? "" : rest.substr(space + 1));
        } else {
            ws.send(text, std::move(data));
        }
        ws.consumed(n);
    }
    void on_close(int code, std::string reason) override {
        std::fprintf(stderr, "on_close %d %s\n", code, reason.c_str());
    }
};

class EchoHandler final : public manygil::http::Handler {
public:
    bool accepts_websockets() const noexcept override { return true; }
    void handle(Request, Responder responder) override { responder.send(Response(200, "a WebSocket echo server\n")); }
    void handle_websocket(Request request, WebSocket ws) override {
        if (request.target == "/deny") return ws.deny(Response(403, "denied\n"));
        std::string protocol;
        if (const Header* h = request.find("sec-websocket-protocol")) protocol = h->value.substr(0, h->value.find(','));
        auto echo = std::make_shared<Echo>();
        echo->ws = std::move(ws);
        echo->ws.accept(echo, protocol);
    }
};

}  // namespace

int main(int argc, char** argv) {
    ServerOptions options;
    options.bind = {"127.0.0.1:0"};
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--certfile") {
            if (!options.tls) options.tls.emplace();
            options.tls->certfile = value;
        } else if (flag == "--keyfile") {
            if (!options.tls) options.tls.emplace();
            options.tls->keyfile = value;
        } else if (flag == "--max-message") {
            options.websocket.max_message = std::stoull(value);
        } else {
            std::fprintf(stderr, "unknown option %s\n", flag.c_str());
            return 2;
        }
    }
    EchoHandler handler;
    Server server(options, handler);
    std::printf("listening %s\n", server.addresses()[0].c_str());
    std::fflush(stdout);
    char buf[256];
    while (::read(0, buf, sizeof buf) > 0) {
    }
    server.stop(std::chrono::seconds(5));
    return 0;
}
