// Channel messages as payloads: what the Python wrapper sends and receives, with no Value in
// between. Channel::send/recv (Values, for C++ hosts) encode and decode the same payloads, so C++
// and Python ends of one channel see the same messages.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "manygil/channel.hpp"
#include "codec/payload.hpp"

namespace manygil::detail {

// An event loop's wake-up for the channels it waits on (manygil.Channel.recv_async / send_async): an
// eventfd that becomes readable once a channel armed with it (ChannelAccess::arm) may have a message
// (or room) for it; take_ready() says which waits to retry, by the tokens given to arm(). Thread-safe. The fd
// lives as long as the object, which every channel still armed with it keeps alive: a sender never
// writes to a descriptor that was closed and reused.
class ChannelWaker {
public:
    ChannelWaker();  // throws Error if no eventfd can be made
    ~ChannelWaker();
    ChannelWaker(const ChannelWaker&) = delete;
    ChannelWaker& operator=(const ChannelWaker&) = delete;

    int fd() const noexcept { return fd_; }
    // Marks token ready and makes the fd readable (once per batch). Any thread; never blocks.
    void ready(std::uint64_t token);
    // The tokens marked since the last call, each once, in order; the fd is unreadable after.
    std::vector<std::uint64_t> take_ready();

private:
    int fd_;
    std::mutex mu_;
    std::vector<std::uint64_t> ready_;
};

struct ChannelAccess {
    // What a watch waits for: a message to receive (recv_async) or room to send (send_async).
    enum class Wait { message, room };

    // Channel's private state, named for the channel's own code (channel.cpp's registry and collector).
    using State = Channel::State;

    // As Channel::send / Channel::recv.
    static bool send(Channel& channel, Payload payload, Channel::Timeout timeout);
    static std::optional<Payload> recv(Channel& channel, Channel::Timeout timeout);

    // A one-shot watch. Wait::message: waker->ready(token) at the channel's next send or close, or at
    // once if it holds a message or is closed now (so a recv that found it empty just before cannot
    // miss one). Wait::room: at the channel's next receive or close, or at once if it has room (or is
    // unbounded) or is closed now (so a send that found it full just before cannot miss the room).
    // Every watch of its kind fires at each such event: the woken waits race to retry, and those that
    // lose arm again. The channel holds the waker (not the reverse) until the watch fires or is
    // dropped. disarm() drops a watch that has not fired (a cancelled wait), with the same Wait it
    // was armed with; a fired one is already gone. Neither blocks beyond the channel's short lock.
    static void arm(Channel& channel, std::shared_ptr<ChannelWaker> waker, std::uint64_t token,
                    Wait what = Wait::message);
    static void disarm(Channel& channel, const ChannelWaker* waker, std::uint64_t token, Wait what = Wait::message);

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
