// Channel messages as payloads: what the Python wrapper sends and receives, with no Value in
// between. Channel::send/recv (Values, for C++ hosts) encode and decode the same payloads, so C++
// and Python ends of one channel see the same messages.
#pragma once

#include <optional>

#include "manygil/channel.hpp"
#include "payload.hpp"

namespace manygil::detail {

struct ChannelAccess {
    // As Channel::send / Channel::recv.
    static bool send(Channel& channel, Payload payload, Channel::Timeout timeout);
    static std::optional<Payload> recv(Channel& channel, Channel::Timeout timeout);
};

}  // namespace manygil::detail
