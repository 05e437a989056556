// ChannelWaker (shared/channel_access.hpp), what Channel.recv_async's and send_async's event loops
// wait on: a watch fires once, from the other thread, at a send (a receive, for room) or a close, or
// at once when armed on a channel that already has a message (room). No interpreter.
#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
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

// An event loop's shape under load: one thread arms, waits on the fd, takes the ready tokens and
// receives (disarming what did not fire), while senders on other threads race it. Every message
// arrives and no wake-up is lost (a lost one would hang the loop: the test's poll would time out).
TEST(ChannelWaker, ALoopThreadAndRacingSendersLoseNothing) {
    using manygil::detail::ChannelAccess;
    constexpr int kSenders = 3, kEach = 2000;
    auto waker = std::make_shared<manygil::detail::ChannelWaker>();
    std::vector<Channel> channels(kSenders);
    std::vector<std::thread> senders;
    for (int s = 0; s < kSenders; ++s) {
        senders.emplace_back([&, s] {
            for (int i = 0; i < kEach; ++i) channels[s].send(Value(i));
        });
    }
    std::vector<int> next(kSenders, 0);
    int received = 0;
    std::uint64_t token = 0;
    while (received < kSenders * kEach) {
        std::vector<std::uint64_t> armed;
        for (int s = 0; s < kSenders; ++s) {
            ChannelAccess::arm(channels[s], waker, ++token);
            armed.push_back(token);
        }
        ASSERT_TRUE(readable(waker->fd(), 10'000)) << "a wake-up was lost at " << received;
        waker->take_ready();
        for (int s = 0; s < kSenders; ++s) {
            ChannelAccess::disarm(channels[s], waker.get(), armed[static_cast<std::size_t>(s)]);
            while (auto v = channels[s].recv(std::chrono::duration<double>(0))) {
                ASSERT_EQ(v->as_int(), next[static_cast<std::size_t>(s)]++);
                ++received;
            }
        }
    }
    for (auto& t : senders) t.join();
    EXPECT_EQ(received, kSenders * kEach);
}

// Watches for room (Channel.send_async): a receive from another thread, or a close, fires them; a
// channel with room (or unbounded) fires one at once; message and room watches are kept apart.
TEST(ChannelWaker, RoomWatchesFireOnReceiveOrClose) {
    using manygil::detail::ChannelAccess;
    using Wait = ChannelAccess::Wait;
    auto waker = std::make_shared<manygil::detail::ChannelWaker>();
    Channel full(1), closing(1), unbounded;
    ASSERT_TRUE(full.send(Value(1)));
    ASSERT_TRUE(closing.send(Value(1)));
    ChannelAccess::arm(full, waker, 1, Wait::room);
    ChannelAccess::arm(closing, waker, 2, Wait::room);
    ChannelAccess::arm(full, waker, 3, Wait::message);  // it has a message: fires at once
    EXPECT_EQ(waker->take_ready(), (std::vector<std::uint64_t>{3}));
    EXPECT_FALSE(readable(waker->fd(), 0));
    std::thread receiver([&] { EXPECT_EQ(full.recv()->as_int(), 1); });
    receiver.join();
    ASSERT_TRUE(readable(waker->fd(), 5000));
    EXPECT_EQ(waker->take_ready(), (std::vector<std::uint64_t>{1}));
    std::thread closer([&] { closing.close(); });
    closer.join();
    ASSERT_TRUE(readable(waker->fd(), 5000));
    EXPECT_EQ(waker->take_ready(), (std::vector<std::uint64_t>{2}));

    ChannelAccess::arm(full, waker, 4, Wait::room);  // room now: at once
    ChannelAccess::arm(unbounded, waker, 5, Wait::room);  // never full: at once
    EXPECT_EQ(waker->take_ready(), (std::vector<std::uint64_t>{4, 5}));

    ASSERT_TRUE(full.send(Value(2)));
    ChannelAccess::arm(full, waker, 6, Wait::room);
    ChannelAccess::disarm(full, waker.get(), 6, Wait::message);  // the wrong kind drops nothing
    ChannelAccess::disarm(full, waker.get(), 6, Wait::room);  // a cancelled send: the receive wakes nobody
    EXPECT_EQ(full.recv()->as_int(), 2);
    EXPECT_FALSE(readable(waker->fd(), 0));
}

// A loop thread sending into a small bounded channel with room watches, while a receiver thread
// drains it: every message arrives once and in order, and no wake-up is lost (a lost one would hang
// the sender: the poll would time out).
TEST(ChannelWaker, ALoopThreadSendingIntoAFullChannelLosesNothing) {
    using manygil::detail::ChannelAccess;
    using Wait = ChannelAccess::Wait;
    constexpr int kCount = 5000;
    auto waker = std::make_shared<manygil::detail::ChannelWaker>();
    Channel channel(2);
    std::vector<int> got;
    std::thread receiver([&] {
        for (int i = 0; i < kCount; ++i) got.push_back(channel.recv()->as_int());
    });
    std::uint64_t token = 0;
    for (int i = 0; i < kCount;) {
        if (channel.send(Value(i), std::chrono::duration<double>(0))) {
            ++i;
            continue;
        }
        ChannelAccess::arm(channel, waker, ++token, Wait::room);
        ASSERT_TRUE(readable(waker->fd(), 10'000)) << "a wake-up for room was lost at " << i;
        EXPECT_EQ(waker->take_ready(), (std::vector<std::uint64_t>{token}));
        ChannelAccess::disarm(channel, waker.get(), token, Wait::room);  // already fired: a no-op
    }
    receiver.join();
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kCount));
    for (int i = 0; i < kCount; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i)], i);
}
