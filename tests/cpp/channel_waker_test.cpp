// ChannelWaker (shared/channel_access.hpp), what Channel.recv_async's event loops wait on: a watch
// fires once, from the sender's thread, at a send or a close, or at once when armed on a channel that
// already has a message. No interpreter.
#include <gtest/gtest.h>
#include <poll.h>

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "manygil/channel.hpp"
#include "manygil/value.hpp"
#include "shared/channel_access.hpp"

using manygil::Channel;
using manygil::Value;
namespace {

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

}  // namespace

TEST(ChannelWaker, ArmedWatchesFireOnceOnSendOrClose) {
    using manygil::detail::ChannelAccess;
    auto waker = std::make_shared<manygil::detail::ChannelWaker>();
    Channel a, b, c;
    ChannelAccess::arm(a, waker, 1);
    ChannelAccess::arm(b, waker, 2);
    ChannelAccess::arm(c, waker, 3);
    EXPECT_FALSE(readable(waker->fd(), 0));
    std::thread sender([&] {
        a.send(Value(1));
        a.send(Value(2));  // the watch is one-shot: token 1 once
        c.close();
    });
    sender.join();
    ASSERT_TRUE(readable(waker->fd(), 5000));
    EXPECT_EQ(waker->take_ready(), (std::vector<std::uint64_t>{1, 3}));
    EXPECT_FALSE(readable(waker->fd(), 0));  // reset by take_ready
    ChannelAccess::disarm(b, waker.get(), 2);  // a cancelled wait: b's send wakes nobody
    b.send(Value(3));
    EXPECT_FALSE(readable(waker->fd(), 0));
    ChannelAccess::arm(b, waker, 4);  // b holds a message: fires at once
    ASSERT_TRUE(readable(waker->fd(), 0));
    EXPECT_EQ(waker->take_ready(), (std::vector<std::uint64_t>{4}));
}

TEST(ChannelWaker, AChannelKeepsItsWatchersWakerAlive) {
    using manygil::detail::ChannelAccess;
    Channel ch;
    std::weak_ptr<manygil::detail::ChannelWaker> weak;
    {
        auto waker = std::make_shared<manygil::detail::ChannelWaker>();
        weak = waker;
        ChannelAccess::arm(ch, waker, 7);
    }
    EXPECT_FALSE(weak.expired());  // its fd stays open while a sender may still write to it
    ch.send(Value(1));
    EXPECT_TRUE(weak.expired());  // fired: the channel let go
}
