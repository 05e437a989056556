#include "http/listeners.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>

namespace manygil::http {

std::system_error sys_error(const std::string& what) { return std::system_error(errno, std::generic_category(), what); }

// "1.2.3.4" / "::1" and the port of a socket address.
std::pair<std::string, std::uint16_t> describe(const sockaddr_storage& a) {
    if (a.ss_family == AF_UNIX) return {"", 0};  // a Unix socket's peer has no address (REMOTE_ADDR "")
    char host[INET6_ADDRSTRLEN] = "?";
    std::uint16_t port = 0;
    if (a.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    } else if (a.ss_family == AF_INET) {
        const auto* in4 = reinterpret_cast<const sockaddr_in*>(&a);
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        port = ntohs(in4->sin_port);
    }
    return {host, port};
}

std::string format_address(const std::pair<std::string, std::uint16_t>& a) {
    bool v6 = a.first.find(':') != std::string::npos;
    return (v6 ? "[" + a.first + "]" : a.first) + ":" + std::to_string(a.second);
}

namespace {

struct Endpoint {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = AF_INET;
};

Endpoint resolve(const std::string& bind) {
    std::string host, port;
    if (!bind.empty() && bind.front() == '[') {
        auto close = bind.find(']');
        if (close == std::string::npos || close + 1 >= bind.size() || bind[close + 1] != ':') {
            throw std::invalid_argument("bind address '" + bind + "' is not of the form [HOST]:PORT");
        }
        host = bind.substr(1, close - 1);
        port = bind.substr(close + 2);
    } else {
        auto colon = bind.rfind(':');
        if (colon == std::string::npos) throw std::invalid_argument("bind address '" + bind + "' is not of the form HOST:PORT");
        host = bind.substr(0, colon);
        port = bind.substr(colon + 1);
    }
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
        std::stoi(port) > 65535) {
        throw std::invalid_argument("bind address '" + bind + "' has no valid port (0-65535)");
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0 || !found) {
        throw std::invalid_argument("bind address '" + bind + "': " + gai_strerror(rc));
    }
    Endpoint e;
    std::memcpy(&e.addr, found->ai_addr, found->ai_addrlen);
    e.len = found->ai_addrlen;
    e.family = found->ai_family;
    freeaddrinfo(found);
    return e;
}

void set_port(Endpoint& e, std::uint16_t port) {
    if (e.family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&e.addr)->sin6_port = htons(port);
    else reinterpret_cast<sockaddr_in*>(&e.addr)->sin_port = htons(port);
}

int open_listener(const std::string& bind, Endpoint e, int backlog, bool reuseport) {
    int fd = ::socket(e.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw sys_error("cannot create a socket for " + bind);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (e.family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&e.addr), e.len) < 0 || ::listen(fd, backlog) < 0) {
        auto err = sys_error("cannot listen on " + bind);
        ::close(fd);
        throw err;
    }
    return fd;
}

// The two bind forms that are not HOST:PORT. "unix:/path" (gunicorn's spelling; "unix:/path?mode=660"
// sets the socket file's mode, default 0666 less the umask): a stale socket file there is replaced,
// any other file is an error. "fd://N": a listening socket the process inherited (socket activation,
// the supervisor of `manygil serve`); checked to be a listening stream socket, made non-blocking.
bool is_unix_bind(const std::string& bind) { return bind.rfind("unix:", 0) == 0; }
bool is_fd_bind(const std::string& bind) { return bind.rfind("fd://", 0) == 0; }

int open_unix_listener(const std::string& bind, int backlog) {
    std::string path = bind.substr(5);
    std::optional<mode_t> mode;
    if (auto q = path.find("?mode="); q != std::string::npos) {
        std::string digits = path.substr(q + 6);
        if (digits.empty() || digits.size() > 4 || digits.find_first_not_of("01234567") != std::string::npos) {
            throw std::invalid_argument("bind address '" + bind + "': mode must be octal, e.g. ?mode=660");
        }
        mode = static_cast<mode_t>(std::stoi(digits, nullptr, 8));
        path.resize(q);
    }
    sockaddr_un addr{};
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
        throw std::invalid_argument("bind address '" + bind + "': the socket path is empty or longer than " +
                                    std::to_string(sizeof addr.sun_path - 1) + " bytes");
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw std::invalid_argument("bind address '" + bind + "': " + path + " exists and is not a socket");
        ::unlink(path.c_str());  // a stale socket of an earlier run
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw sys_error("cannot create a socket for " + bind);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0 || ::listen(fd, backlog) < 0 ||
        (mode && ::chmod(path.c_str(), *mode) < 0)) {
        auto err = sys_error("cannot listen on " + bind);
        ::close(fd);
        throw err;
    }
    return fd;
}

int adopt_fd_listener(const std::string& bind) {
    std::string digits = bind.substr(5);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) {
        throw std::invalid_argument("bind address '" + bind + "' is not of the form fd://N");
    }
    int fd = std::stoi(digits);
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) throw sys_error("bind address '" + bind + "'");
    len = sizeof listening;
    if (type != SOCK_STREAM || ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
        throw std::invalid_argument("bind address '" + bind + "': the descriptor is not a listening stream socket");
    }
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);  // ours to close; the inherited one stays with its owner
    if (copy < 0) throw sys_error("bind address '" + bind + "'");
    ::fcntl(copy, F_SETFL, ::fcntl(copy, F_GETFL) | O_NONBLOCK);
    return copy;
}

// What a listening socket is bound to, as addresses() reports it: "127.0.0.1:8000", "unix:/path".
std::string bound_address(int fd) {
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    if (bound.ss_family == AF_UNIX) return std::string("unix:") + reinterpret_cast<const sockaddr_un*>(&bound)->sun_path;
    return format_address(describe(bound));
}

}  // namespace

Listeners open_listeners(const ServerOptions& o) {
    // A Unix or inherited socket is one socket: each further I/O thread gets a duplicate of it
    // (whichever is woken accepts).
    bool reuseport = o.io_threads > 1;
    Listeners out;
    std::vector<std::vector<int>>& sets = out.per_thread;
    sets.resize(o.io_threads);
    try {
        for (const std::string& bind : o.bind) {
            if (is_unix_bind(bind) || is_fd_bind(bind)) {
                int fd = is_unix_bind(bind) ? open_unix_listener(bind, o.backlog) : adopt_fd_listener(bind);
                sets[0].push_back(fd);
                for (std::size_t t = 1; t < o.io_threads; ++t) {
                    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
                    if (copy < 0) throw sys_error("cannot share " + bind + " between I/O threads");
                    sets[t].push_back(copy);
                }
                out.addresses.push_back(bound_address(fd));
                continue;
            }
            Endpoint e = resolve(bind);
            for (std::size_t t = 0; t < o.io_threads; ++t) {
                int fd = open_listener(bind, e, o.backlog, reuseport);
                sets[t].push_back(fd);
                if (t == 0) {
                    sockaddr_storage bound{};
                    socklen_t len = sizeof bound;
                    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
                    set_port(e, describe(bound).second);  // port 0: the others share the port the first got
                    out.addresses.push_back(bound_address(fd));
                }
            }
        }
    } catch (...) {
        for (auto& set : sets) {
            for (int fd : set) ::close(fd);
        }
        throw;
    }
    return out;
}

}  // namespace manygil::http
