// manygil::Channel: a multi-producer multi-consumer queue of values between any threads and
// interpreters. It lives outside every interpreter; each interpreter sees it through its own
// manygil.Channel wrapper. Blocking calls wait on a condition variable (no polling), after watching
// for their event for MANYGIL_SPIN_US microseconds (default 50, 0 = never; see the README); callers
// that hold a GIL must release it around them (the Python wrapper does).
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

    // maxsize 0: unbounded.
    explicit Channel(std::size_t maxsize = 0);

    // Channels may carry channels, themselves included. When a handle goes away and only messages
    // queued in channels still refer to its channel, the channels that no handle outside a queue can
    // reach any more are found and their queued messages dropped, so that cycles are freed too.
    ~Channel();
    Channel(const Channel&) = default;
    Channel(Channel&&) noexcept = default;
    Channel& operator=(const Channel&) = default;
    Channel& operator=(Channel&&) noexcept = default;

    // Blocks while full; false if the timeout passed first. Throws ChannelClosed.
    bool send(Value value, Timeout timeout = std::nullopt);
    // Blocks while empty; nullopt if the timeout passed first. Throws ChannelClosed once closed and drained.
    std::optional<Value> recv(Timeout timeout = std::nullopt);

    // Senders then get ChannelClosed; receivers get what is left, then ChannelClosed. Idempotent.
    void close();
    bool closed() const;
    std::size_t size() const;
    std::size_t maxsize() const noexcept;

    // True if both are the same channel.
    friend bool operator==(const Channel& a, const Channel& b) noexcept { return a.state_ == b.state_; }

    struct State;

private:
    friend struct detail::ChannelAccess;  // the Python wrapper's path, which skips Value
    std::shared_ptr<State> state_;
};

}  // namespace manygil
