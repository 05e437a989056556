// What the I/O threads and one worker's event loop share (manygil/asgi.hpp): the worker's inbox of
// new requests and of wake-ups for requests it has in flight (a stream's window has room again, the
// client hung up), signalled through an eventfd the loop reads (loop.add_reader). Plain C++: the I/O
// threads never take a GIL; the loop drains the inbox with its own GIL held (src/asgi/worker.cpp).
//
// WebSockets fit the same shape: an Arrival holds the upgraded connection's WebSocket handle instead
// of a Responder, drain() turns it into a call like an HTTP request's, and its listener's events
// (a message, the close, room to send again) are queued on the call's C++ side and announced with
// wake(): the loop's receive() takes them without a GIL ever being taken on the I/O thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "manygil/asgi.hpp"
#include "manygil/http.hpp"

namespace manygil::asgi::detail {

// A request (or a WebSocket upgrade request) on its way to a worker.
struct Arrival {
    http::Request request;
    http::Responder responder;  // an HTTP request's
    std::string scheme;  // scope["scheme"]: the options', "https" over TLS, or a trusted proxy's
    http::WebSocket websocket;  // an upgrade request's (then `responder` is empty)
    bool is_websocket = false;
};

class Inbox {
public:
    // Throws std::system_error if the eventfd cannot be made.
    Inbox();
    ~Inbox();
    Inbox(const Inbox&) = delete;
    Inbox& operator=(const Inbox&) = delete;

    int fd() const noexcept { return efd_; }

    // Any thread, no GIL. Each wakes the loop if it was not already due to drain.
    void push(Arrival arrival);
    void wake(std::uint64_t call);  // the call `call` has news (window room, client gone, a message)
    void request_stop();

    // The worker's loop: everything queued since the last drain (and the eventfd reset).
    struct Drained {
        std::vector<Arrival> arrivals;
        std::vector<std::uint64_t> woken;
        bool stop = false;
    };
    Drained drain();

    // Requests handed to this worker and not yet finished: the I/O thread picks the least loaded.
    std::atomic<std::size_t> in_flight{0};

private:
    void signal_locked_was_idle(bool was_idle);

    int efd_ = -1;
    std::mutex mu_;
    std::vector<Arrival> arrivals_;     // (mu_)
    std::vector<std::uint64_t> woken_;  // (mu_)
    bool stop_ = false;                 // (mu_)
    bool signalled_ = false;            // (mu_) the eventfd was written since the last drain
};

struct AsgiShared {
    explicit AsgiShared(AsgiOptions o, std::size_t workers);

    const AsgiOptions options;
    std::vector<std::shared_ptr<Inbox>> inboxes;  // one per worker, claimed in order by the jobs
    std::atomic<std::size_t> next_inbox{0};
    std::atomic<std::uint64_t> next_call{1};

    // Start and stop bookkeeping.
    std::mutex mu;
    std::condition_variable cv;
    std::size_t started = 0, ended = 0;  // (mu) jobs past lifespan startup; jobs done (or abandoned)
    std::optional<std::string> failure;   // (mu) the first reason a worker could not start
    bool stopped = false;                 // (mu)

    void log(http::LogLevel level, const std::string& text) const;
    void mark_started(std::optional<std::string> failure);  // once per job
    void mark_ended(std::optional<std::string> failure);    // once per job; a failure before start counts
};

}  // namespace manygil::asgi::detail
