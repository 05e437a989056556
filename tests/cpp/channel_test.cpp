// manygil::Channel from C++: semantics, and a C++ thread talking to an interpreter through channels.
#include <gtest/gtest.h>

#include <thread>

#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"

using manygil::Channel;
using manygil::Value;
using manygil::testing::runtime;

TEST(Channel, BoundedFifoTimeoutsAndClose) {
    Channel ch(2);
    EXPECT_TRUE(ch.send(Value(1)));
    EXPECT_TRUE(ch.send(Value("two")));
    EXPECT_FALSE(ch.send(Value(3), std::chrono::duration<double>(0)));  // full
    EXPECT_EQ(ch.size(), 2u);
    EXPECT_EQ(ch.recv(), std::optional<Value>(Value(1)));
    ch.close();
    EXPECT_THROW(ch.send(Value(4)), manygil::ChannelClosed);
    EXPECT_EQ(ch.recv(), std::optional<Value>(Value("two")));  // drained after close
    EXPECT_THROW(ch.recv(), manygil::ChannelClosed);
    Channel empty;
    EXPECT_EQ(empty.recv(std::chrono::duration<double>(0.01)), std::nullopt);
}

TEST(Channel, ACppThreadAndAnInterpreterTalk) {
    manygil::Interpreter interp(runtime());
    interp.exec("def echo(inbox, outbox):\n"
                "    for x in inbox:\n"
                "        outbox.send(x * 2)\n"
                "    outbox.close()\n");
    Channel inbox, outbox;
    auto done = interp.submit("__main__:echo", {Value(inbox), Value(outbox)});
    std::thread producer([&] {
        for (int i = 0; i < 1000; ++i) inbox.send(Value(i));
        inbox.close();
    });
    std::int64_t expected = 0, count = 0;
    try {
        while (auto v = outbox.recv()) {
            EXPECT_EQ(v->as_int(), expected);
            expected += 2;
            ++count;
        }
    } catch (const manygil::ChannelClosed&) {
    }
    producer.join();
    EXPECT_EQ(count, 1000);
    EXPECT_TRUE(done.get().is_none());
}

TEST(Channel, CyclesThroughQueuedMessagesAreFreed) {
    std::size_t before = manygil::SharedBuffer::live_blocks();
    {
        Channel self, a, b;
        self.send(Value(self));                    // holds itself
        self.send(Value(manygil::SharedBuffer(64)));
        a.send(Value(b));                          // a and b hold each other
        b.send(Value::list({Value(a), Value(manygil::SharedBuffer(64))}));
        EXPECT_EQ(manygil::SharedBuffer::live_blocks(), before + 2);
    }
    EXPECT_EQ(manygil::SharedBuffer::live_blocks(), before);
}

TEST(Channel, AChannelReachableThroughAnotherKeepsItsMessages) {
    Channel outer;
    {
        Channel inner;
        inner.send(Value(inner));
        inner.send(Value("kept"));
        outer.send(Value(inner));
    }
    Channel got = outer.recv()->as_channel();
    EXPECT_EQ(got.recv()->as_channel(), got);
    EXPECT_EQ(got.recv(), std::optional<Value>(Value("kept")));
}
