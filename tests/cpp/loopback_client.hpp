// A minimal blocking HTTP client over loopback sockets, for the front end's tests (http_test.cpp,
// wsgi_test.cpp, the responder, request-body and WebSocket tests): bytes in, bytes out, nothing parsed for you.
#pragma once

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <string>

namespace manygil::testing {

// A connected socket to "127.0.0.1:port" (reads time out after 30 s); a failed test if it cannot.
inline int connect_to(const std::string& address) {
    auto colon = address.rfind(':');
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
    inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ADD_FAILURE() << "cannot connect to " << address;
    timeval tv{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

// The same for "unix:/path".
inline int connect_unix(const std::string& address) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string path = address.substr(5);
    std::memcpy(a.sun_path, path.data(), std::min(path.size(), sizeof a.sun_path - 1));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ADD_FAILURE() << "cannot connect to " << address;
    timeval tv{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

inline void send_all(int fd, const std::string& s) {
    std::size_t at = 0;
    while (at < s.size()) {
        ssize_t n = send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
        if (n <= 0) return;
        at += static_cast<std::size_t>(n);
    }
}

// Everything the server sends until it closes the connection (or 30 s pass without a byte).
inline std::string read_until_close(int fd) {
    std::string got;
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<std::size_t>(n));
    return got;
}

// One request on a fresh connection (send it with "Connection: close"); everything the server sent.
inline std::string round_trip(const std::string& address, const std::string& request) {
    int fd = connect_to(address);
    send_all(fd, request);
    std::string got = read_until_close(fd);
    close(fd);
    return got;
}

// What the server sends until `end` has arrived, it closes, or 10 s pass without a byte.
inline std::string read_until(int fd, const std::string& end) {
    std::string got;
    char buf[65536];
    while (got.find(end) == std::string::npos) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 10'000) <= 0) break;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

}  // namespace manygil::testing
