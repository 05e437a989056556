// One I/O thread of a Server: an epoll loop over its listeners, its connections and an eventfd
// that Responders wake it with. Everything a connection holds is this thread's alone (no locks);
// other threads reach it only through post() (Responders' completions) and wake() (Server::stop).
// No Python, no GIL, ever: a request reaches Python only through the Handler, which must not block.
//
// Its member functions are split by job: io_thread.cpp (the loop: epoll, accepting, scheduling
// policy, stopping, closing), connection.cpp (one connection's HTTP/1 state machine: parse,
// dispatch to the Handler, the answer, streams, rejections), flow.cpp (backpressure: requests that
// wait for room in max_pending; writing out with send, sendfile or TLS, a stream's window; the
// timeouts the sweep enforces), websocket_io.cpp (WebSocket upgrades and connections).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/connection.hpp"
#include "http/response_head.hpp"
#include "http/server_state.hpp"
#include "manygil/http.hpp"

namespace manygil::http {

struct WebSocketCallbacks;  // websocket_io.cpp: wslay's callbacks into the I/O thread

class IoThread : public std::enable_shared_from_this<IoThread> {
public:
    // Takes ownership of `listeners` (closed with the thread). Throws std::system_error when the
    // epoll instance or the eventfd cannot be made.
    IoThread(std::shared_ptr<Server::Shared> shared, std::vector<int> listeners);
    ~IoThread();

    void start(std::size_t index) {
        thread_ = std::thread([self = shared_from_this(), index] { self->run(index); });
    }
    void join() {
        if (thread_.joinable()) thread_.join();
    }
    // Any thread: the loop runs its next pass now.
    void wake();

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
    friend struct WebSocketCallbacks;
    void add(int fd, std::uint32_t events);

    // io_thread.cpp: the loop, accepting, stopping, closing.
    void run(std::size_t index) noexcept;
    void accept_all();
    void begin_stop();
    void schedule_for_backlog(bool backlog);
    void close(Connection& c);
    // connection.cpp: the HTTP/1 state machine of one connection.
    void pump(Connection& c);
    // One read from the socket (or TLS record, or handshake step) into c.in, for both state machines
    // (pump, ws_pump): More (read on), Stop (nothing more to read now: c.readable or the TLS flags
    // say why), PlainHttp (plain HTTP on a TLS port), Closed (the client closed or failed: close it).
    enum class ReadStep { More, Stop, PlainHttp, Closed };
    ReadStep read_some(Connection& c);
    void dispatch(Connection& c, Request request);
    void hand_over(Connection& c, Request request);
    // Streamed request bodies (Handler::streams_request_bodies()): the request goes over with its
    // head; a body the parser refuses is answered (not answered yet) or closes the connection.
    void begin_body(Connection& c, Request request, bool expects_continue);
    void refuse_body(Connection& c, int status, const std::string& reason);
    void complete(Completion completion);
    void stream_chunk(Connection& c, std::string bytes);
    void end_stream(Connection& c, bool abort);
    void reject(Connection& c, int status, const std::string& reason);
    void write_response(Connection& c, Response response, bool keep_alive);
    void finish_response(Connection& c);
    // flow.cpp: backpressure, writing out (send, sendfile, TLS), timeouts.
    void retry_waiting();
    void flush(Connection& c);
    void sweep(Clock::time_point now);
    bool slow_body(Connection& c, Clock::time_point now);
    // websocket_io.cpp: WebSocket upgrades and connections.
    bool prepare_websocket(Connection& c, const Request& request);
    void websocket_op(std::uint64_t connection, WebSocketOp& op);
    void ws_accept(Connection& c, WebSocketOp& op);
    void ws_pump(Connection& c);
    void ws_send_out(Connection& c);
    void ws_written(Connection& c);
    void ws_fail(Connection& c, int code, const std::string& why, int notify_code);
    void ws_begin_close(Connection& c, int code, const std::string& reason);
    void ws_finish(Connection& c);
    void ws_notify_close(Connection& c, int code, std::string reason);
    void ws_sweep(Connection& c, Clock::time_point now);
    void ws_closed(Connection& c);
    void ws_received(Connection& c, int opcode, const unsigned char* data, std::size_t length, int status);

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

}  // namespace manygil::http
