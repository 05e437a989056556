#include "manygil/http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "http/access_log.hpp"
#include "http/request_parser.hpp"
#include "http/response_head.hpp"
#include "http/tls.hpp"

namespace manygil::http {

using Clock = std::chrono::steady_clock;

struct Server::Shared {
    ServerOptions options;
    Handler* handler = nullptr;
    std::optional<AccessLogFormat> access_format;  // set when options.access_log
    std::unique_ptr<TlsContext> tls;               // set when options.tls; read-only once threads run
    std::atomic<std::size_t> pending{0};
    std::atomic<bool> stopping{false};
    std::atomic<long long> grace_ms{0};
    std::atomic<std::uint64_t> next_connection{1};
    std::atomic<std::uint64_t> accepted{0}, open{0}, requests{0}, responses{0}, rejected{0};

    void log(LogLevel level, std::string_view line) const {
        if (level >= options.log_level) write_line(line);
    }
    void write_line(std::string_view line) const {  // the access log's lines too: never filtered
        if (options.log) return options.log(line);
        std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    }
};

namespace {

// How long a connection that is being closed keeps reading (and dropping) what the client still
// sends, so that the client reads the final response instead of a reset.
constexpr auto kLinger = std::chrono::milliseconds(2000);
constexpr std::size_t kReadChunk = 64 * 1024;
// A file range on a TLS connection is read and encrypted this much at a time (no sendfile there).
constexpr std::size_t kTlsFilePiece = 64 * 1024;

std::system_error sys_error(const std::string& what) { return std::system_error(errno, std::generic_category(), what); }

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

// What a streaming Responder and its connection's I/O thread share: how many posted bytes are still
// unsent (the producer waits above Responder::kStreamWindow), and whether the stream can go on.
struct StreamState {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t queued = 0;  // (mu)
    bool closed = false;     // (mu) the connection is gone or the server stopped

    void release(std::size_t n) {
        {
            std::lock_guard lock(mu);
            queued -= std::min(queued, n);
        }
        cv.notify_all();
    }
    void close() {
        {
            std::lock_guard lock(mu);
            closed = true;
        }
        cv.notify_all();
    }
};

// What a Responder posts to the I/O thread.
struct Completion {
    enum class Kind { Response, Chunk, Finish, Abort };
    std::uint64_t connection = 0;
    Kind kind = Kind::Response;
    Response response;                    // Kind::Response
    std::string bytes;                    // Kind::Chunk
    std::shared_ptr<StreamState> stream;  // a streamed Kind::Response
};

// ---- one connection ------------------------------------------------------------------------------

struct Connection {
    enum class State {
        Reading,     // reading and parsing the next request
        Dispatched,  // a request is with the Handler (or waiting for capacity)
        Writing,     // writing the response
        Lingering,   // final response written, write side shut: dropping input until EOF
    };

    Connection(int fd_, std::uint64_t id_, const Limits& limits) : fd(fd_), id(id_), parser(limits) {}

    int fd;
    std::uint64_t id;
    RequestParser parser;
    State state = State::Reading;
    std::string in;  // received, not yet parsed (from in_pos)
    std::size_t in_pos = 0;
    std::string out;  // to write (from out_pos)
    std::size_t out_pos = 0;
    std::optional<Response> file_response;  // its file range is sent after `out`
    std::optional<Request> waiting;         // complete, waiting for the Handler to have room
    bool readable = false, keep_alive = true, head = false, sent_continue = false, http10 = false;
    bool hangup = false;  // the peer shut its side (or the socket failed): EOF or an error is due
    // A streamed response being written: how its body is framed, the bytes it may still send
    // (Framing::Length), and bytes appended to `out` not yet released to the producer.
    std::shared_ptr<StreamState> stream;
    Framing framing = Framing::Length;
    std::uint64_t stream_left = 0;
    std::size_t stream_credit = 0;
    Clock::time_point last_activity = Clock::now(), request_started{};
    Clock::time_point handed_over{};  // when the Dispatched request went to the Handler (not while waiting)
    std::pair<std::string, std::uint16_t> remote, local;
    std::optional<AccessRecord> access;  // the dispatched request's parts, when access_log is on
    // TLS (ServerOptions::tls): the session, and which readiness a TLS call that could not finish
    // waits for besides its own direction (reading may need to write, and writing to read).
    std::unique_ptr<TlsSession> tls;
    bool tls_read_wants_write = false, tls_write_wants_read = false;
    Clock::time_point opened = Clock::now();  // the handshake must be done header_timeout after it
};

// ---- one I/O thread -----------------------------------------------------------------------------

class IoThread : public std::enable_shared_from_this<IoThread> {
public:
    IoThread(std::shared_ptr<Server::Shared> shared, std::vector<int> listeners)
        : shared_(std::move(shared)), listeners_(std::move(listeners)) {
        epfd_ = epoll_create1(EPOLL_CLOEXEC);
        evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (epfd_ < 0 || evfd_ < 0) throw sys_error("cannot create the I/O thread's epoll instance");
        add(evfd_, EPOLLIN);
        for (int l : listeners_) add(l, EPOLLIN | EPOLLET);
    }
    ~IoThread() {
        for (int l : listeners_) ::close(l);
        if (epfd_ >= 0) ::close(epfd_);
        if (evfd_ >= 0) ::close(evfd_);
    }

    void start(std::size_t index) {
        thread_ = std::thread([self = shared_from_this(), index] { self->run(index); });
    }
    void join() {
        if (thread_.joinable()) thread_.join();
    }
    void wake() {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(evfd_, &one, sizeof one);
    }

    // Any thread. False once the thread has ended (the completion is dropped: a response's file is
    // closed on return).
    bool post(Completion completion) {
        bool was_empty;
        {
            std::lock_guard lock(mu_);
            if (exited_) return false;
            was_empty = completions_.empty();
            completions_.push_back(std::move(completion));
        }
        if (was_empty) wake();
        return true;
    }

    const std::vector<int>& listeners() const { return listeners_; }

private:
    void add(int fd, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) throw sys_error("epoll_ctl");
    }

    void run(std::size_t index) noexcept;
    void accept_all();
    void pump(Connection& c);
    void dispatch(Connection& c, Request request);
    void hand_over(Connection& c, Request request);
    void complete(Completion completion);
    void stream_chunk(Connection& c, std::string bytes);
    void end_stream(Connection& c, bool abort);
    void reject(Connection& c, int status, const std::string& reason);
    void write_response(Connection& c, Response response, bool keep_alive);
    void flush(Connection& c);
    void finish_response(Connection& c);
    void close(Connection& c);
    void sweep(Clock::time_point now);
    void begin_stop();
    void retry_waiting();
    void schedule_for_backlog(bool backlog);

    std::shared_ptr<Server::Shared> shared_;
    std::vector<int> listeners_;
    int epfd_ = -1, evfd_ = -1;
    std::thread thread_;

    std::mutex mu_;
    std::deque<Completion> completions_;  // (mu_)
    bool exited_ = false;                                          // (mu_)

    // The I/O thread's own state.
    std::unordered_map<int, std::unique_ptr<Connection>> by_fd_;
    std::unordered_map<std::uint64_t, Connection*> by_id_;
    std::deque<std::uint64_t> waiting_;  // connections with a request waiting for room, in order
    bool accept_ready_ = false, listening_ = true, stopping_ = false;
    Clock::time_point stop_deadline_{};
    DateCache date_;
    bool batch_ = false, batch_refused_ = false;  // this thread's policy is SCHED_BATCH; setting it failed
};

void IoThread::run(std::size_t index) noexcept {
    std::string name = "mg-http-" + std::to_string(index);
    pthread_setname_np(pthread_self(), name.c_str());
    // A write to a connection the peer has reset raises SIGPIPE, which ends the process unless it
    // is ignored (Python ignores it; a C++ host may not). send() here passes MSG_NOSIGNAL, but
    // sendfile() and OpenSSL's write() cannot: blocked on this thread, the signal stays pending and
    // the call fails with EPIPE instead.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    epoll_event events[256];
    Clock::time_point last_sweep = Clock::now();
    const std::size_t capacity = shared_->handler->capacity();
    for (;;) {
        if (capacity) schedule_for_backlog(shared_->pending.load() > capacity);
        bool busy = !waiting_.empty() || (accept_ready_ && listening_);
        int n = epoll_wait(epfd_, events, 256, busy ? 10 : 250);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            std::uint32_t ev = events[i].events;
            if (fd == evfd_) {
                std::uint64_t count;
                [[maybe_unused]] auto n = ::read(evfd_, &count, sizeof count);  // resets the counter
                std::deque<Completion> done;
                {
                    std::lock_guard lock(mu_);
                    done.swap(completions_);
                }
                for (Completion& completion : done) complete(std::move(completion));
                continue;
            }
            auto it = by_fd_.find(fd);
            if (it == by_fd_.end()) {
                accept_ready_ = true;  // a listener
                continue;
            }
            Connection& c = *it->second;
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                c.readable = true;
                if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c.hangup = true;  // read on until EOF
                pump(c);
                if (by_fd_.find(fd) == by_fd_.end()) continue;  // closed
                if (c.tls_write_wants_read) {
                    c.tls_write_wants_read = false;
                    flush(c);
                    if (by_fd_.find(fd) == by_fd_.end()) continue;
                }
            }
            if ((ev & EPOLLOUT) && c.tls_read_wants_write) {
                c.tls_read_wants_write = false;
                pump(c);
                if (by_fd_.find(fd) == by_fd_.end()) continue;
            }
            if (ev & EPOLLOUT) flush(c);
        }
        if (shared_->stopping.load() && !stopping_) begin_stop();
        retry_waiting();
        if (accept_ready_ && listening_) accept_all();
        auto now = Clock::now();
        if (now - last_sweep >= std::chrono::milliseconds(200)) {
            sweep(now);
            last_sweep = now;
        }
        if (stopping_ && (by_fd_.empty() || now >= stop_deadline_)) break;
    }
    // Done: nothing more is answered. Later responses are dropped by post().
    std::deque<Completion> dropped;
    {
        std::lock_guard lock(mu_);
        exited_ = true;
        dropped.swap(completions_);
    }
    for (Completion& completion : dropped) {
        if (completion.stream) completion.stream->close();
    }
    while (!by_fd_.empty()) close(*by_fd_.begin()->second);
}

// With a backlog (more requests with the Handler than it works on at once), SCHED_BATCH: the same
// CPU share as SCHED_OTHER, but a wakeup of this thread (a request arriving, an answer posted) does
// not preempt the thread running on the core, a worker in the middle of a request; this thread
// runs when a core is free or at that thread's next scheduling point, and then handles everything
// that became ready meanwhile in one pass: one context switch per batch of requests instead of one
// or two per request (the Flask page on 2 cores went from ~6,000 to ~7,500 req/s). Without a
// backlog, SCHED_OTHER: a request must not wait for a scheduler tick when a worker is free for it,
// even if other processes keep the cores busy. Unprivileged; if refused, it stays SCHED_OTHER.
void IoThread::schedule_for_backlog(bool backlog) {
    if (backlog == batch_ || batch_refused_) return;
    sched_param param{};  // priority 0, as both policies require
    if (pthread_setschedparam(pthread_self(), backlog ? SCHED_BATCH : SCHED_OTHER, &param) != 0) {
        batch_refused_ = true;
        return;
    }
    batch_ = backlog;
}

void IoThread::begin_stop() {
    stopping_ = true;
    stop_deadline_ = Clock::now() + std::chrono::milliseconds(shared_->grace_ms.load());
    for (int l : listeners_) ::close(l);  // new connections are refused from now on
    listeners_.clear();
    listening_ = false;
    std::vector<Connection*> idle;
    for (auto& [fd, c] : by_fd_) {
        if (c->state == Connection::State::Reading && !c->parser.mid_request() && c->in_pos == c->in.size()) {
            idle.push_back(c.get());
        }
    }
    for (Connection* c : idle) close(*c);
}

void IoThread::accept_all() {
    for (int l : listeners_) {
        for (;;) {
            if (shared_->pending.load() >= shared_->options.max_pending) return;  // backpressure: stay ready
            sockaddr_storage addr{};
            socklen_t len = sizeof addr;
            int fd = accept4(l, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (errno == EMFILE || errno == ENFILE) {
                    shared_->log(LogLevel::error, "manygil serve: out of file descriptors; not accepting for now");
                    return;  // accept_ready_ stays set: retried shortly
                }
                break;  // EAGAIN: this listener is drained
            }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            auto c = std::make_unique<Connection>(fd, shared_->next_connection.fetch_add(1), shared_->options.limits);
            if (shared_->tls) {
                try {
                    c->tls = std::make_unique<TlsSession>(*shared_->tls, fd);
                } catch (const std::bad_alloc&) {
                    ::close(fd);
                    continue;
                }
            }
            c->remote = describe(addr);
            sockaddr_storage local{};
            socklen_t local_len = sizeof local;
            if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0) c->local = describe(local);
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
            ev.data.fd = fd;
            if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
                ::close(fd);
                continue;
            }
            by_id_[c->id] = c.get();
            by_fd_[fd] = std::move(c);
            shared_->accepted.fetch_add(1);
            shared_->open.fetch_add(1);
        }
    }
    accept_ready_ = false;
}

void IoThread::pump(Connection& c) {
    thread_local std::string chunk(kReadChunk, '\0');
    for (;;) {
        if (c.state == Connection::State::Lingering) {
            ssize_t n = ::recv(c.fd, chunk.data(), chunk.size(), 0);
            if (n > 0) continue;
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                c.readable = false;
                return;
            }
            return close(c);  // EOF or error
        }
        if (c.state != Connection::State::Reading) return;  // the next request waits for this answer
        if (c.in_pos < c.in.size()) {
            bool was_mid = c.parser.mid_request();
            std::size_t used = c.parser.feed(c.in.data() + c.in_pos, c.in.size() - c.in_pos);
            c.in_pos += used;
            if (c.in_pos == c.in.size()) {
                c.in.clear();
                c.in_pos = 0;
            }
            if (!was_mid && c.parser.mid_request()) c.request_started = Clock::now();
            switch (c.parser.state()) {
                case RequestParser::State::Complete: dispatch(c, c.parser.take()); continue;
                case RequestParser::State::Failed: return reject(c, c.parser.error_status(), c.parser.error_reason());
                case RequestParser::State::Reading: break;
            }
            if (c.parser.wants_continue() && !c.sent_continue) {
                c.sent_continue = true;
                c.out += "HTTP/1.1 100 Continue\r\n\r\n";
                flush(c);
                if (by_id_.find(c.id) == by_id_.end()) return;
            }
        }
        if (!c.readable) return;
        if (c.tls) {
            // The handshake first; then records, each read whole (so a short read says nothing about
            // the socket: read on until WantRead).
            TlsSession::Result r = c.tls->established() ? c.tls->read(chunk.data(), chunk.size()) : c.tls->handshake();
            switch (r.status) {
                case TlsSession::Status::Ok:
                    if (r.bytes) {
                        c.last_activity = Clock::now();
                        c.in.append(chunk.data(), r.bytes);
                    }
                    continue;
                case TlsSession::Status::WantRead: c.readable = false; return;
                case TlsSession::Status::WantWrite: c.tls_read_wants_write = true; return;
                case TlsSession::Status::PlainHttp:
                    c.tls.reset();  // answered in the clear, then closed
                    return reject(c, 400, "a plain HTTP request on a TLS port (use https://)");
                case TlsSession::Status::Closed:
                case TlsSession::Status::Failed: return close(c);
            }
        }
        ssize_t n = ::recv(c.fd, chunk.data(), chunk.size(), 0);
        if (n > 0) {
            c.last_activity = Clock::now();
            c.in.append(chunk.data(), static_cast<std::size_t>(n));
            // A short read emptied the socket: bytes arriving later raise a new edge, so there is no
            // need for a recv() that would only say EAGAIN.
            if (static_cast<std::size_t>(n) < chunk.size() && !c.hangup) c.readable = false;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c.readable = false;
            return;
        }
        return close(c);  // the client closed (between requests, or mid-request: nothing to answer) or failed
    }
}

void IoThread::dispatch(Connection& c, Request request) {
    shared_->requests.fetch_add(1);
    c.state = Connection::State::Dispatched;
    c.head = request.method == "HEAD";
    c.keep_alive = request.keep_alive;
    c.http10 = request.version_major == 1 && request.version_minor == 0;
    c.sent_continue = false;
    c.request_started = {};
    request.tls = c.tls != nullptr;
    request.remote_addr = c.remote.first;
    request.remote_port = c.remote.second;
    request.server_addr = c.local.first;
    request.server_port = c.local.second;
    if (shared_->access_format) {
        AccessRecord& r = c.access.emplace();
        r.remote = c.remote.first;
        r.method = request.method;
        r.target = request.target;
        r.protocol = "HTTP/" + std::to_string(request.version_major) + "." + std::to_string(request.version_minor);
        if (shared_->access_format->needs_request_headers()) r.request_headers = request.headers;
        r.started = Clock::now();
    }
    if (shared_->pending.load() >= shared_->options.max_pending || !waiting_.empty()) {
        c.waiting = std::move(request);
        waiting_.push_back(c.id);
        return;
    }
    hand_over(c, std::move(request));
}

void IoThread::hand_over(Connection& c, Request request) {
    shared_->pending.fetch_add(1);
    c.handed_over = Clock::now();
    try {
        shared_->handler->handle(std::move(request), Responder(shared_from_this(), c.id));
    } catch (const std::exception& e) {
        // The Responder, destroyed while unwinding, has answered 500.
        shared_->log(LogLevel::error, std::string("manygil serve: the request handler failed: ") + e.what());
    }
}

void IoThread::retry_waiting() {
    while (!waiting_.empty() && shared_->pending.load() < shared_->options.max_pending) {
        std::uint64_t id = waiting_.front();
        waiting_.pop_front();
        auto it = by_id_.find(id);
        if (it == by_id_.end() || !it->second->waiting) continue;  // closed meanwhile
        Connection& c = *it->second;
        Request request = std::move(*c.waiting);
        c.waiting.reset();
        hand_over(c, std::move(request));
    }
}

void IoThread::complete(Completion completion) {
    using Kind = Completion::Kind;
    auto it = by_id_.find(completion.connection);
    Connection* c = it == by_id_.end() ? nullptr : it->second;
    switch (completion.kind) {
        case Kind::Response: {
            Response& response = completion.response;
            if (!response.stream) {
                shared_->pending.fetch_sub(1);
                shared_->responses.fetch_add(1);
            }
            if (!c || c->state != Connection::State::Dispatched) {  // the client went away, or it was answered 504
                if (completion.stream) completion.stream->close();
                return;
            }
            if (shared_->access_format && c->access) {
                std::optional<std::uint64_t> bytes;
                if (!response.stream) bytes = response.body.size() + (response.file ? response.file->length : 0);
                shared_->write_line(shared_->access_format->render(*c->access, response.status, bytes, response.headers));
            }
            bool keep_alive = c->keep_alive && !response.close && !shared_->stopping.load();
            if (!response.stream) return write_response(*c, std::move(response), keep_alive);
            // A stream: its framing follows from the application's headers and the client's version.
            c->stream = std::move(completion.stream);
            c->framing = Framing::Chunked;
            if (auto declared = declared_length(response.headers)) {
                c->framing = Framing::Length;
                c->stream_left = *declared > response.body.size() ? *declared - response.body.size() : 0;
                if (response.body.size() > *declared) response.body.resize(static_cast<std::size_t>(*declared));
            }
            if (c->framing == Framing::Chunked && c->http10) {
                c->framing = Framing::UntilClose;
                keep_alive = false;
            }
            c->state = Connection::State::Writing;
            c->keep_alive = keep_alive;
            c->last_activity = Clock::now();
            c->out += serialize_head(response, keep_alive, date_.now(), c->framing);
            std::string first = std::move(response.body);
            if (c->framing == Framing::Length) {
                if (!c->head) c->out += first;
                return flush(*c);
            }
            return stream_chunk(*c, std::move(first));
        }
        case Kind::Chunk:
            if (!c || !c->stream) return;
            c->stream_credit += completion.bytes.size();
            return stream_chunk(*c, std::move(completion.bytes));
        case Kind::Finish:
        case Kind::Abort:
            shared_->pending.fetch_sub(1);
            shared_->responses.fetch_add(1);
            if (!c || !c->stream) return;
            return end_stream(*c, completion.kind == Kind::Abort);
    }
}

void IoThread::stream_chunk(Connection& c, std::string bytes) {
    if (!bytes.empty() && !c.head) {
        if (c.framing == Framing::Chunked) {
            char size[20];
            int n = std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
            c.out.append(size, static_cast<std::size_t>(n));
            c.out += bytes;
            c.out += "\r\n";
        } else if (c.framing == Framing::Length) {
            std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(c.stream_left, bytes.size()));
            c.out.append(bytes, 0, take);  // no more than the application's Content-Length
            c.stream_left -= take;
        } else {
            c.out += bytes;
        }
    }
    flush(c);
}

void IoThread::end_stream(Connection& c, bool abort) {
    std::shared_ptr<StreamState> stream = std::move(c.stream);
    stream->close();
    if (abort || (c.framing == Framing::Length && c.stream_left > 0)) {
        // The body is incomplete: the client must not take it for a whole response.
        shared_->log(LogLevel::warning, "manygil serve: a streamed response to " + format_address(c.remote) +
                     " ended early; closing the connection");
        c.keep_alive = false;
    }
    if (abort) {
        std::uint64_t id = c.id;
        flush(c);  // may close (and destroy) c
        if (auto it = by_id_.find(id); it != by_id_.end()) close(*it->second);
        return;
    }
    if (c.framing == Framing::Chunked && !c.head) c.out += "0\r\n\r\n";
    if (c.framing == Framing::UntilClose) c.keep_alive = false;
    flush(c);
}

void IoThread::reject(Connection& c, int status, const std::string& reason) {
    shared_->rejected.fetch_add(1);
    shared_->log(status >= 500 ? LogLevel::error : LogLevel::info,
                 "manygil serve: " + std::to_string(status) + " " + std::string(reason_phrase(status)) + " to " +
                 format_address(c.remote) + ": " + reason);
    c.head = false;
    write_response(c, Response(status, std::string(reason_phrase(status)) + ": " + reason + "\n"), false);
}

void IoThread::write_response(Connection& c, Response response, bool keep_alive) {
    // The bytes must match a Content-Length the handler set, or the connection's next response would
    // be misread: extra bytes are dropped; a short body closes the connection after it.
    auto declared = declared_length(response.headers);
    if (declared && !c.head && !bodyless_status(response.status)) {
        std::uint64_t have = response.body.size() + (response.file ? response.file->length : 0);
        if (have != *declared) {
            shared_->log(LogLevel::error, "manygil serve: a response to " + format_address(c.remote) + " declared " +
                         std::to_string(*declared) + " bytes and produced " + std::to_string(have));
        }
        if (have > *declared && response.body.size() >= *declared) {
            response.body.resize(static_cast<std::size_t>(*declared));
            response.file.reset();
        } else if (have > *declared) {
            response.file->length = *declared - response.body.size();
        } else if (have < *declared) {
            keep_alive = false;
        }
    }
    c.state = Connection::State::Writing;
    c.keep_alive = keep_alive;
    c.last_activity = Clock::now();
    c.out += serialize_head(response, keep_alive, date_.now());
    if (!c.head) {
        c.out += response.body;
        if (response.file && response.file->length > 0) c.file_response = std::move(response);
    }
    flush(c);
}

void IoThread::flush(Connection& c) {
    for (;;) {
        while (c.out_pos < c.out.size()) {
            if (c.tls) {
                TlsSession::Result r = c.tls->write(c.out.data() + c.out_pos, c.out.size() - c.out_pos);
                if (r.status == TlsSession::Status::Ok) {
                    c.out_pos += r.bytes;
                    c.last_activity = Clock::now();
                    continue;
                }
                if (r.status == TlsSession::Status::WantWrite) return;  // EPOLLOUT resumes
                if (r.status == TlsSession::Status::WantRead) {
                    c.tls_write_wants_read = true;  // EPOLLIN resumes
                    return;
                }
                return close(c);
            }
            ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
            if (n > 0) {
                c.out_pos += static_cast<std::size_t>(n);
                c.last_activity = Clock::now();
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // EPOLLOUT resumes
            return close(c);
        }
        c.out.clear();
        c.out_pos = 0;
        if (c.stream && c.stream_credit) {
            c.stream->release(c.stream_credit);  // written: the producer may queue more
            c.stream_credit = 0;
        }
        if (!c.tls || !c.file_response) break;
        // TLS: no sendfile; the file's next piece goes through `out` like any bytes.
        FileRange& f = *c.file_response->file;
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(f.length, kTlsFilePiece));
        ssize_t n = 0;
        if (want > 0) {
            c.out.resize(want);
            do n = ::pread(f.fd, c.out.data(), want, static_cast<off_t>(f.offset));
            while (n < 0 && errno == EINTR);
            if (n <= 0) {
                c.out.clear();
                shared_->log(LogLevel::error, "manygil serve: a file to send ended early (it shrank?); closing the connection");
                return close(c);
            }
            c.out.resize(static_cast<std::size_t>(n));
            f.offset += static_cast<std::uint64_t>(n);
            f.length -= static_cast<std::uint64_t>(n);
        }
        if (f.length == 0) c.file_response.reset();
    }
    while (c.file_response) {
        FileRange& f = *c.file_response->file;
        if (f.length == 0) {
            c.file_response.reset();
            break;
        }
        auto offset = static_cast<off_t>(f.offset);
        ssize_t n = ::sendfile(c.fd, f.fd, &offset, static_cast<std::size_t>(std::min<std::uint64_t>(f.length, 1 << 30)));
        if (n > 0) {
            f.offset += static_cast<std::uint64_t>(n);
            f.length -= static_cast<std::uint64_t>(n);
            c.last_activity = Clock::now();
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n == 0) {
            shared_->log(LogLevel::error, "manygil serve: a file to send ended early (it shrank?); closing the connection");
        }
        return close(c);  // the length was promised in Content-Length: the connection cannot go on
    }
    if (c.state == Connection::State::Writing && !c.stream) finish_response(c);
}

void IoThread::finish_response(Connection& c) {
    if (!c.keep_alive) {
        // Let the client read the response before the connection goes: shut our side, drop the
        // rest of what it sends, close on its EOF (or after kLinger). TLS: close_notify first.
        if (c.tls) c.tls->shutdown();
        ::shutdown(c.fd, SHUT_WR);
        c.state = Connection::State::Lingering;
        c.last_activity = Clock::now();
        c.in.clear();
        c.in_pos = 0;
        return pump(c);
    }
    c.state = Connection::State::Reading;
    c.last_activity = Clock::now();
    pump(c);
}

void IoThread::close(Connection& c) {
    if (c.stream) c.stream->close();  // its producer stops
    if (c.tls) c.tls->shutdown();      // best effort: close_notify unless the session failed
    int fd = c.fd;
    by_id_.erase(c.id);
    ::close(fd);  // also leaves the epoll set
    shared_->open.fetch_sub(1);
    by_fd_.erase(fd);  // destroys c
}

void IoThread::sweep(Clock::time_point now) {
    const ServerOptions& o = shared_->options;
    std::vector<Connection*> expired, late, stuck;
    for (auto& [fd, cp] : by_fd_) {
        Connection& c = *cp;
        switch (c.state) {
            case Connection::State::Reading:
                if (c.tls && !c.tls->established()) {
                    // The handshake counts against header_timeout; too late to answer: just close.
                    if (now - c.opened > o.header_timeout || stopping_) expired.push_back(&c);
                } else if (c.parser.mid_request()) {
                    bool slow = c.parser.headers_done() ? now - c.last_activity > o.header_timeout
                                                        : now - c.request_started > o.header_timeout;
                    if (slow) late.push_back(&c);
                } else if (now - c.last_activity > o.keep_alive_timeout || stopping_) {
                    expired.push_back(&c);
                }
                break;
            case Connection::State::Writing:
                if (now - c.last_activity > o.keep_alive_timeout) expired.push_back(&c);  // a client that stopped reading
                break;
            case Connection::State::Lingering:
                if (now - c.last_activity > kLinger) expired.push_back(&c);
                break;
            case Connection::State::Dispatched:  // the Handler's answer will come, unless it is stuck
                if (o.response_timeout.count() > 0 && !c.waiting && c.handed_over != Clock::time_point{} &&
                    now - c.handed_over > o.response_timeout) {
                    stuck.push_back(&c);
                }
                break;
        }
    }
    for (Connection* c : expired) close(*c);
    for (Connection* c : stuck) {
        // Answered now and closed after; the Handler's late answer finds the connection no longer
        // Dispatched and is dropped (complete()).
        reject(*c, 504, "no response within " + std::to_string(o.response_timeout.count()) +
                            " ms (the worker is still busy with it)");
    }
    for (Connection* c : late) {
        reject(*c, 408, "the request did not arrive within " + std::to_string(o.header_timeout.count()) + " ms");
    }
}

// ---- Responder ----------------------------------------------------------------------------------

Responder& Responder::operator=(Responder&& other) noexcept {
    if (this != &other) {
        if (stream_) end(End::Abort);
        else if (io_) send(Response(500, "the request was dropped by its handler\n"));
        io_ = std::move(other.io_);
        connection_ = other.connection_;
        stream_ = std::move(other.stream_);
    }
    return *this;
}

Responder::~Responder() {
    if (stream_) end(End::Abort);
    else if (io_) send(Response(500, "the request was dropped by its handler\n"));
}

void Responder::send(Response response) {
    if (!io_ || stream_) return;
    Completion c;
    c.connection = connection_;
    if (response.stream) {
        stream_ = std::make_shared<StreamState>();
        c.stream = stream_;
        c.response = std::move(response);
        if (!io_->post(std::move(c))) stream_->close();
        return;
    }
    c.response = std::move(response);
    std::shared_ptr<IoThread> io = std::move(io_);
    io->post(std::move(c));
}

bool Responder::send_chunk(std::string bytes) {
    if (!io_ || !stream_) return false;
    {
        std::unique_lock lock(stream_->mu);
        stream_->cv.wait(lock, [&] { return stream_->closed || stream_->queued < kStreamWindow; });
        if (stream_->closed) return false;
        stream_->queued += bytes.size();
    }
    Completion c;
    c.connection = connection_;
    c.kind = Completion::Kind::Chunk;
    c.bytes = std::move(bytes);
    if (io_->post(std::move(c))) return true;
    stream_->close();
    return false;
}

void Responder::finish() { end(End::Finish); }
void Responder::abort() { end(End::Abort); }

void Responder::end(End how) {
    if (!io_ || !stream_) return;
    Completion c;
    c.connection = connection_;
    c.kind = how == End::Finish ? Completion::Kind::Finish : Completion::Kind::Abort;
    std::shared_ptr<IoThread> io = std::move(io_);
    stream_.reset();
    io->post(std::move(c));
}

// ---- Server -------------------------------------------------------------------------------------

Server::Server(ServerOptions options, Handler& handler) : shared_(std::make_shared<Shared>()) {
    if (options.bind.empty()) throw std::invalid_argument("the server needs at least one address to bind");
    if (options.io_threads == 0) options.io_threads = 1;
    if (options.max_pending == 0) options.max_pending = 1;
    shared_->options = std::move(options);
    shared_->handler = &handler;
    if (shared_->options.access_log) {  // an unknown atom is refused here, before anything listens
        shared_->access_format.emplace(shared_->options.access_log_format.empty()
                                           ? kDefaultAccessLogFormat
                                           : std::string_view(shared_->options.access_log_format));
    }
    const ServerOptions& o = shared_->options;
    // The certificate first: a bad one is reported before anything listens.
    if (o.tls) shared_->tls = std::make_unique<TlsContext>(*o.tls);

    // Listeners: one set per I/O thread (SO_REUSEPORT) when there are several. A Unix or inherited
    // socket is one socket: each further I/O thread gets a duplicate of it (whichever is woken accepts).
    bool reuseport = o.io_threads > 1;
    std::vector<std::vector<int>> sets(o.io_threads);
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
                addresses_.push_back(bound_address(fd));
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
                    addresses_.push_back(bound_address(fd));
                }
            }
        }
        for (auto& set : sets) threads_.push_back(std::make_shared<IoThread>(shared_, std::move(set)));
    } catch (...) {
        for (auto& set : sets) {
            for (int fd : set) ::close(fd);
        }
        throw;
    }
    for (std::size_t t = 0; t < threads_.size(); ++t) threads_[t]->start(t);
}

Server::~Server() { stop(std::chrono::milliseconds(0)); }

std::vector<std::string> Server::addresses() const { return addresses_; }

void Server::stop(std::chrono::milliseconds grace) {
    if (stopped_) return;
    stopped_ = true;
    shared_->grace_ms.store(grace.count());
    shared_->stopping.store(true);
    for (auto& t : threads_) t->wake();
    for (auto& t : threads_) t->join();
}

ServerStats Server::stats() const {
    ServerStats s;
    s.connections_accepted = shared_->accepted.load();
    s.connections_open = shared_->open.load();
    s.requests = shared_->requests.load();
    s.responses = shared_->responses.load();
    s.rejected = shared_->rejected.load();
    s.pending = shared_->pending.load();
    return s;
}

}  // namespace manygil::http
