// Listening sockets and addresses: ServerOptions::bind's three forms (HOST:PORT, resolved with
// getaddrinfo; "unix:/path[?mode=660]"; "fd://N", an inherited listening socket), opened
// non-blocking, one set per I/O thread, and socket addresses as the server reports and logs them.
// Runs on the thread that starts the Server (open_listeners) or on an I/O thread (describe,
// format_address); no shared state. Internal to http/.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "manygil/http.hpp"

namespace manygil::http {

// Every address of o.bind, listening: per_thread[t] is I/O thread t's listeners (one SO_REUSEPORT
// socket per address and thread when there are several threads; a Unix or inherited socket is one
// socket, duplicated for each further thread). addresses: one per bind address, with the port
// actually bound ("127.0.0.1:41234", "unix:/run/app.sock"). Throws std::invalid_argument for a
// malformed address and std::system_error naming one that cannot be bound, having closed whatever
// it had opened; on success the caller owns every descriptor.
struct Listeners {
    std::vector<std::vector<int>> per_thread;
    std::vector<std::string> addresses;
};
Listeners open_listeners(const ServerOptions& o);

// "1.2.3.4" / "::1" and the port of a socket address ("" and 0 for a Unix socket's peer).
std::pair<std::string, std::uint16_t> describe(const sockaddr_storage& a);
// "1.2.3.4:80", "[::1]:80".
std::string format_address(const std::pair<std::string, std::uint16_t>& a);
// errno as a std::system_error, with what failed.
std::system_error sys_error(const std::string& what);

}  // namespace manygil::http
