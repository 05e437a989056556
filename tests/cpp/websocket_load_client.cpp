// A WebSocket echo load generator for bench/websocket_echo.py: C++, one thread, poll() over N
// connections, so that the client is not what is measured (a Python client tops out far below the
// servers). Each connection upgrades, then keeps one message in flight: it sends a masked text
// message of SIZE bytes and, when the echo is back whole, the next. Prints
// "messages N seconds S p50_us P p99_us Q" (round-trip latency) after DURATION seconds.
//
//   websocket_load_client HOST:PORT PATH CONNECTIONS DURATION_S SIZE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
    int fd = -1;
    std::string in, out;
    std::size_t out_pos = 0;
    bool upgraded = false;
    Clock::time_point sent_at;
};

std::string masked_text(std::size_t n) {
    std::string f;
    f += static_cast<char>(0x81);
    if (n < 126) {
        f += static_cast<char>(0x80 | n);
    } else {
        f += static_cast<char>(0x80 | 126);
        f += static_cast<char>(n >> 8);
        f += static_cast<char>(n & 0xff);
    }
    const char key[4] = {0x11, 0x22, 0x33, 0x44};
    f.append(key, 4);
    for (std::size_t i = 0; i < n; ++i) f += static_cast<char>('m' ^ key[i % 4]);
    return f;
}

// The length of the first whole server frame in `in`, or 0.
std::size_t whole_frame(const std::string& in) {
    if (in.size() < 2) return 0;
    std::size_t len = static_cast<unsigned char>(in[1]) & 0x7f, at = 2;
    if (len == 126) {
        if (in.size() < 4) return 0;
        len = (static_cast<unsigned char>(in[2]) << 8) | static_cast<unsigned char>(in[3]);
        at = 4;
    } else if (len == 127) {
        return 0;  // not sent by this benchmark's servers for its sizes
    }
    return in.size() >= at + len ? at + len : 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: %s HOST:PORT PATH CONNECTIONS DURATION_S SIZE\n", argv[0]);
        return 2;
    }
    std::string address = argv[1], path = argv[2];
    int connections = std::atoi(argv[3]);
    double duration = std::atof(argv[4]);
    std::size_t size = static_cast<std::size_t>(std::atol(argv[5]));
    std::string host = address.substr(0, address.rfind(':'));
    int port = std::atoi(address.substr(address.rfind(':') + 1).c_str());
    const std::string message = masked_text(size);
    const std::string upgrade = "GET " + path + " HTTP/1.1\r\nHost: " + address +
                                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    std::vector<Conn> conns(static_cast<std::size_t>(connections));
    for (Conn& c : conns) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        inet_pton(AF_INET, host.c_str(), &a.sin_addr);
        c.fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            std::perror("connect");
            return 1;
        }
        int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c.out = upgrade;
    }
    std::vector<pollfd> fds(conns.size());
    std::vector<double> latencies;
    latencies.reserve(1 << 20);
    long messages = 0;
    auto start = Clock::now(), measure_from = start;
    bool measuring = false;
    char buf[65536];
    for (;;) {
        auto now = Clock::now();
        if (!measuring && std::all_of(conns.begin(), conns.end(), [](const Conn& c) { return c.upgraded; })) {
            measuring = true;
            measure_from = now;
        }
        if (measuring && std::chrono::duration<double>(now - measure_from).count() >= duration) break;
        if (!measuring && now - start > std::chrono::seconds(30)) {
            std::fprintf(stderr, "the upgrades did not complete\n");
            return 1;
        }
        for (std::size_t i = 0; i < conns.size(); ++i) {
            fds[i].fd = conns[i].fd;
            fds[i].events = POLLIN | (conns[i].out_pos < conns[i].out.size() ? POLLOUT : 0);
            fds[i].revents = 0;
        }
        if (poll(fds.data(), fds.size(), 100) < 0) return 1;
        for (std::size_t i = 0; i < conns.size(); ++i) {
            Conn& c = conns[i];
            if (fds[i].revents & POLLOUT) {
                ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
                if (n > 0) c.out_pos += static_cast<std::size_t>(n);
                if (c.out_pos == c.out.size()) c.out.clear(), c.out_pos = 0;
            }
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
            if (n <= 0) {
                std::fprintf(stderr, "a connection closed\n");
                return 1;
            }
            c.in.append(buf, static_cast<std::size_t>(n));
            if (!c.upgraded) {
                std::size_t end = c.in.find("\r\n\r\n");
                if (end == std::string::npos) continue;
                if (c.in.rfind("HTTP/1.1 101", 0) != 0) {
                    std::fprintf(stderr, "no 101: %s\n", c.in.substr(0, end).c_str());
                    return 1;
                }
                c.in.erase(0, end + 4);
                c.upgraded = true;
                c.out += message;
                c.sent_at = Clock::now();
                continue;
            }
            while (std::size_t len = whole_frame(c.in)) {
                unsigned opcode = static_cast<unsigned char>(c.in[0]) & 0x0f;
                c.in.erase(0, len);
                if (opcode != 1) continue;  // pings and the like
                auto t = Clock::now();
                if (measuring) {
                    ++messages;
                    latencies.push_back(std::chrono::duration<double, std::micro>(t - c.sent_at).count());
                }
                c.out += message;
                c.sent_at = t;
            }
        }
    }
    double seconds = std::chrono::duration<double>(Clock::now() - measure_from).count();
    std::sort(latencies.begin(), latencies.end());
    auto pct = [&](double p) { return latencies.empty() ? 0.0 : latencies[static_cast<std::size_t>(p * (latencies.size() - 1))]; };
    std::printf("messages %ld seconds %.3f p50_us %.0f p99_us %.0f\n", messages, seconds, pct(0.5), pct(0.99));
    for (Conn& c : conns) ::close(c.fd);
    return 0;
}
