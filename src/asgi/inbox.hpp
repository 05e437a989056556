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
#include <chrono>
#include <thread>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "manygil/asgi.hpp"
#include "manygil/http.hpp"
#include "manygil/pool.hpp"

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
    bool stop_requested();
    // Wakes the loop with nothing new (the stuck-loop watchdog's probe: a loop that is not blocked
    // drains at once).
    void poke();

    // Recycling (AsgiOptions::max_requests): its successor serves now and no request comes here any
    // more; the loop finishes what it has and ends (drain() says retire).
    void request_retire();

    // The worker's loop: everything queued since the last drain (and the eventfd reset).
    struct Drained {
        std::vector<Arrival> arrivals;
        std::vector<std::uint64_t> woken;
        bool stop = false;
        bool retire = false;       // request_retire() came
        bool recycle_due = false;  // this drain took the request past `limit` (said once)
    };
    Drained drain();

    // Requests handed to this worker and not yet finished: the I/O thread picks the least loaded.
    std::atomic<std::size_t> in_flight{0};

    // Set before the loop starts. limit: the requests (and WebSocket connections) after which
    // drain() says recycle_due (0: never). successor: this inbox's loop replaces `predecessor`'s
    // (recycling) once its lifespan startup is over.
    std::size_t limit = 0;
    std::weak_ptr<Inbox> predecessor;
    bool successor = false;
    bool recycling = false;  // a successor by recycling, on a new interpreter it started for its slot
    // The loop tried to recycle and could not: count a new share from here.
    void recycle_failed();
    // What has not been drained yet (a stuck loop's, handed to its successor).
    std::vector<Arrival> take_arrivals();

    // The stuck-loop watchdog's view (AsgiShared::watch). signalled_since: when the eventfd was
    // written with the loop idle (steady-clock ns; 0: drained since) -- a loop that leaves it
    // signalled past the timeout has not come back to its selector. serving: lifespan startup is
    // over and the job has not ended. task: the interruptible call its serve() runs as (Pool's
    // interrupt() by task id). interrupted: an interrupt was sent; the loop's next drain withdraws
    // it (a loop that came back is not replaced). stuck: the pool replaced its worker; its successor
    // takes what it has not drained.
    std::atomic<std::int64_t> signalled_since{0};
    std::atomic<bool> serving{false};
    std::atomic<std::uint64_t> task{0};
    std::atomic<std::int64_t> interpreter_id{-1};
    std::atomic<bool> interrupted{false};
    std::atomic<bool> stuck{false};
    int watch_stage = 0;  // the watchdog thread's only: 0 fine, 1 interrupted, 2 a successor posted

private:
    void signal_locked_was_idle(bool was_idle);

    int efd_ = -1;
    std::mutex mu_;
    std::vector<Arrival> arrivals_;     // (mu_)
    std::vector<std::uint64_t> woken_;  // (mu_)
    bool stop_ = false;                 // (mu_)
    bool retire_ = false;               // (mu_)
    std::size_t taken_ = 0;             // (mu_) arrivals drained since the start (or a failed recycle)
    bool recycle_said_ = false;         // (mu_)
    bool signalled_ = false;            // (mu_) the eventfd was written since the last drain
};

// A successor's inbox counts this many requests in flight until its loop has started: the I/O
// threads send it requests only when no started worker is left (they then wait in it).
inline constexpr std::size_t kStartingBias = std::size_t{1} << 20;

struct AsgiShared : std::enable_shared_from_this<AsgiShared> {
    AsgiShared(AsgiOptions o, std::size_t workers, Pool* pool);

    const AsgiOptions options;
    const std::size_t workers;  // the pool's: one loop each
    Pool* const pool;           // where successors' jobs are posted (recycling)
    std::atomic<std::uint64_t> next_call{1};

    // Where the I/O threads send requests: the serving loops' inboxes and a starting successor's.
    // A request is pushed with routes_mu held, so once an inbox is out of `routes`, nothing more
    // arrives in it.
    std::mutex routes_mu;
    std::vector<std::shared_ptr<Inbox>> routes;  // (routes_mu)

    // Start and stop bookkeeping.
    std::mutex mu;
    std::condition_variable cv;
    std::size_t started = 0;  // (mu) first jobs past lifespan startup (wait_started() waits for `workers`)
    std::size_t jobs = 0, ended = 0;  // (mu) jobs posted (first ones and successors); jobs done (or abandoned)
    std::vector<std::shared_ptr<Inbox>> live;  // (mu) the inboxes of jobs not ended: stop() stops them
    std::optional<std::string> failure;   // (mu) the first reason a worker could not start
    bool stopped = false;                 // (mu)

    void log(http::LogLevel level, const std::string& text) const;
    // A new inbox (limit drawn with the jitter), registered in `live` (and `jobs` counted). Null
    // once stopped.
    std::shared_ptr<Inbox> new_inbox();
    void add_route(const std::shared_ptr<Inbox>& inbox);
    void remove_route(const Inbox* inbox);
    void mark_started(std::optional<std::string> failure);  // once per first job
    void mark_ended(const Inbox* inbox);                    // once per job
    // The loop of `inbox` (on its worker thread) took its share of requests: starts a new interpreter
    // for its pool slot with a successor job on a new inbox. False if it cannot (it serves on).
    bool recycle(const std::shared_ptr<Inbox>& inbox);
    // A successor's lifespan startup is over: `failure` nullopt -> it takes the requests and its
    // predecessor retires; else it is dropped (logged once) and the predecessor serves on, and tries
    // again after another share (recycling: on_its_worker, called on the successor's worker thread,
    // also gives the pool slot back to the predecessor's worker, so that it can start another
    // successor and the failed interpreter ends instead of idling in the slot).
    void successor_started(Inbox& inbox, const std::optional<std::string>& failure, bool on_its_worker);
    // Posts a successor job for `inbox` (a new inbox routed with kStartingBias). With
    // `start_worker`, on the calling worker thread: also starts the interpreter to run it
    // (WorkerGroup::start_current_successor; recycling); without, the pool's stuck-worker
    // replacement has started one. False if nothing was posted.
    bool post_successor(const std::shared_ptr<Inbox>& inbox, bool start_worker);

    // The stuck-loop watchdog (options.timeout set): a loop that has not drained its inbox for the
    // timeout is interrupted; if the pool then replaces its worker as stuck
    // (PoolOptions::replace_stuck_after), a successor job takes its place.
    void watch();
    std::thread watchdog;
    bool watch_stop = false;  // (mu)
};

}  // namespace manygil::asgi::detail
