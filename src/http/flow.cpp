// How fast a connection goes, on its I/O thread (io_thread.hpp): backpressure (a request waits
// while max_pending are with the Handler, handed over in arrival order as room frees), writing out
// (send; a file range with sendfile, or read and encrypted piece by piece over TLS; a stream's
// window credited back to its producer once written), and the timeouts the sweep enforces
// (header_timeout, keep_alive_timeout, the linger, response_timeout's 504).
#include "http/io_thread.hpp"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

namespace manygil::http {

namespace {

// How long a connection that is being closed keeps reading (and dropping) what the client still
// sends, so that the client reads the final response instead of a reset.
constexpr auto kLinger = std::chrono::milliseconds(2000);
// A file range on a TLS connection is read and encrypted this much at a time (no sendfile there).
constexpr std::size_t kTlsFilePiece = 64 * 1024;

}  // namespace

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
        if (c.ws) ws_written(c);  // a WebSocket's queued messages are out: its sender may go on
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

bool IoThread::slow_body(Connection& c, Clock::time_point now) {
    // A streamed body with no byte for header_timeout, unless its consumer paused it (backpressure).
    if (!c.body_in || now - c.last_activity <= shared_->options.header_timeout) return false;
    std::lock_guard lock(c.body_in->mu);
    return !c.body_in->paused;
}

void IoThread::sweep(Clock::time_point now) {
    const ServerOptions& o = shared_->options;
    std::vector<Connection*> expired, late, stuck, websockets, slow_bodies;
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
                if (slow_body(c, now)) {
                    slow_bodies.push_back(&c);
                    break;
                }
                if (now - c.last_activity > o.keep_alive_timeout) expired.push_back(&c);  // a client that stopped reading
                break;
            case Connection::State::Lingering:
                if (now - c.last_activity > kLinger) expired.push_back(&c);
                break;
            case Connection::State::WebSocket: websockets.push_back(&c); break;  // pings, the close handshake
            case Connection::State::Dispatched:  // the Handler's answer will come, unless it is stuck
                if (slow_body(c, now)) {
                    slow_bodies.push_back(&c);
                    break;
                }
                if (o.response_timeout.count() > 0 && !c.waiting && c.handed_over != Clock::time_point{} &&
                    now - c.handed_over > o.response_timeout) {
                    stuck.push_back(&c);
                }
                break;
        }
    }
    for (Connection* c : expired) close(*c);
    for (Connection* c : websockets) ws_sweep(*c, now);  // may close c, never another
    for (Connection* c : stuck) {
        // Answered now and closed after; the Handler's late answer finds the connection no longer
        // Dispatched and is dropped (complete()).
        reject(*c, 504, "no response within " + std::to_string(o.response_timeout.count()) +
                            " ms (the worker is still busy with it)");
    }
    for (Connection* c : slow_bodies) {
        refuse_body(*c, 408, "no byte of the request body for " + std::to_string(o.header_timeout.count()) + " ms");
    }
    for (Connection* c : late) {
        reject(*c, 408, "the request did not arrive within " + std::to_string(o.header_timeout.count()) + " ms");
    }
}

}  // namespace manygil::http
