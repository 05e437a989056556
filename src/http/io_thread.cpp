// The I/O thread's loop (io_thread.hpp): epoll over the eventfd (Responders' completions), the
// listeners and the connections; accepting while there is room (max_pending); the scheduling policy
// under a backlog; the graceful stop; closing a connection. What happens on a connection's events
// is connection.cpp's and flow.cpp's.
#include "http/io_thread.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "http/listeners.hpp"

namespace manygil::http {

IoThread::IoThread(std::shared_ptr<Server::Shared> shared, std::vector<int> listeners)
    : shared_(std::move(shared)), listeners_(std::move(listeners)) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd_ < 0 || evfd_ < 0) throw sys_error("cannot create the I/O thread's epoll instance");
    add(evfd_, EPOLLIN);
    for (int l : listeners_) add(l, EPOLLIN | EPOLLET);
}
IoThread::~IoThread() {
    for (int l : listeners_) ::close(l);
    if (epfd_ >= 0) ::close(epfd_);
    if (evfd_ >= 0) ::close(evfd_);
}

void IoThread::wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(evfd_, &one, sizeof one);
}

void IoThread::add(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) throw sys_error("epoll_ctl");
}

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
                if (c.hangup && c.on_gone) c.tell_gone();  // hung up while its response is awaited
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
        // A WebSocket accepted too late: its listener still hears on_close, exactly once.
        if (completion.websocket && completion.websocket->listener) {
            try {
                completion.websocket->listener->on_close(1001, "the server stopped");
            } catch (const std::exception& e) {
                shared_->log(LogLevel::error, std::string("manygil serve: a WebSocket listener failed: ") + e.what());
            }
        }
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
    std::vector<Connection*> idle, websockets;
    for (auto& [fd, c] : by_fd_) {
        if (c->state == Connection::State::WebSocket) websockets.push_back(c.get());
        if (c->state == Connection::State::Reading && !c->parser.mid_request() && c->in_pos == c->in.size()) {
            idle.push_back(c.get());
        }
    }
    for (Connection* c : idle) close(*c);
    // Open WebSockets: close 1001, and the client's answer awaited while the grace lasts.
    for (Connection* c : websockets) ws_begin_close(*c, 1001, "the server is shutting down");
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
            c->parser.set_streaming(shared_->stream_bodies);
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

void IoThread::close(Connection& c) {
    if (c.stream) c.stream->close();  // its producer stops
    if (c.body_in) std::exchange(c.body_in, nullptr)->fail("the client went away (or the connection closed) mid-body");
    c.tell_gone();
    if (c.ws) ws_closed(c);           // its listener hears on_close, if it has not
    if (c.tls) c.tls->shutdown();      // best effort: close_notify unless the session failed
    int fd = c.fd;
    by_id_.erase(c.id);
    ::close(fd);  // also leaves the epoll set
    shared_->open.fetch_sub(1);
    by_fd_.erase(fd);  // destroys c
}

}  // namespace manygil::http
