// manygil::Channel: a multi-producer multi-consumer FIFO queue of Values between any threads and
// interpreters. The queue lives in C++, outside every interpreter; each interpreter sees it through
// its own manygil.Channel wrapper, and C++ and Python ends of one channel exchange the same messages.
//
// Handles: a Channel is a reference, like a shared_ptr: copies (and a Value holding it, and every
// Python wrapper) name the same queue, which lives while any of them, or any message queued anywhere
// that carries it, does. Distinct handles may be used from any threads at once; one handle object
// must not be assigned while another thread uses it. A moved-from handle may only be destroyed or
// assigned to.
//
// Thread safety and ordering: every member is thread-safe. A send() happens-before the recv() that
// returns its message, and close() happens-before the ChannelClosed it causes.
//
// Blocking: send() and recv() wait as timeout.hpp says (spin, then sleep; interrupted only inside an
// interruptible call). No member needs or takes a GIL; hold none across a call that may block.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>

#include "manygil/errors.hpp"
#include "manygil/timeout.hpp"

namespace manygil {

class Value;
namespace detail {
struct ChannelAccess;
}

// send() on a closed channel, or recv() on a closed channel with nothing left.
class ChannelClosed : public Error {
public:
    ChannelClosed() : Error("the channel is closed") {}
};

class Channel {
public:
    using Timeout = manygil::Timeout;

    // A new, open, empty channel holding at most maxsize messages (0: unbounded).
    explicit Channel(std::size_t maxsize = 0);

    // Drops this handle. Channels may carry channels, themselves included: when only queued
    // messages still refer to this one, the channels no handle outside a queue can reach are found
    // and their queued messages dropped, so cycles are freed too. That search locks every channel
    // briefly; it never blocks on a full or empty queue.
    ~Channel();
    Channel(const Channel&) = default;
    Channel(Channel&&) noexcept = default;
    Channel& operator=(const Channel&) = default;
    Channel& operator=(Channel&&) noexcept = default;

    // Appends value, waiting while the channel is full: true once queued, false if the timeout passed
    // first (or the wait was interrupted). Throws ChannelClosed if closed (also while waiting), and
    // ConversionError for a Value nested too deeply.
    bool send(Value value, Timeout timeout = std::nullopt);
    // Takes the oldest message, waiting while the channel is empty: nullopt if the timeout passed first
    // (or the wait was interrupted). Throws ChannelClosed once the channel is closed and drained.
    std::optional<Value> recv(Timeout timeout = std::nullopt);

    // Closes the channel for every handle: waiting and later senders get ChannelClosed; receivers get
    // what is queued, then ChannelClosed. Never blocks (beyond a short lock). Idempotent, irreversible.
    void close();
    bool closed() const;
    // Messages queued now (a snapshot: other threads may change it at once).
    std::size_t size() const;
    std::size_t maxsize() const noexcept;

    // True if both are the same channel.
    friend bool operator==(const Channel& a, const Channel& b) noexcept { return a.state_ == b.state_; }

private:
    friend struct detail::ChannelAccess;  // the Python wrapper's path, which skips Value
    struct State;
    std::shared_ptr<State> state_;
};

}  // namespace manygil
