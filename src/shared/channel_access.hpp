// Channel messages as payloads: what the Python wrapper sends and receives, with no Value in
// between. Channel::send/recv (Values, for C++ hosts) encode and decode the same payloads, so C++
// and Python ends of one channel see the same messages.
#pragma once

#include <optional>

#include "manygil/channel.hpp"
#include "codec/payload.hpp"

namespace manygil::detail {

struct ChannelAccess {
    // Channel's private state, named for the channel's own code (channel.cpp's registry and collector).
    using State = Channel::State;

    // As Channel::send / Channel::recv.
    static bool send(Channel& channel, Payload payload, Channel::Timeout timeout);
    static std::optional<Payload> recv(Channel& channel, Channel::Timeout timeout);

    // For the cycle collector: a channel's state, and the bookkeeping of handles inside queued
    // messages (Channel::State::queued_refs) as a message enters and leaves a queue.
    static State* state_of(const Channel& channel) noexcept { return channel.state_.get(); }
    static void queued(const Payload& payload);
    static void unqueued(const Payload& payload);
};

// Empties the queues of the channels that no handle outside a queue can reach (cycles of channels
// carrying each other, or themselves). Channel's destructor calls it when its channel may have
// become such; it takes every channel's mutex, so no caller may hold one.
void collect_unreachable_channels();

}  // namespace manygil::detail
