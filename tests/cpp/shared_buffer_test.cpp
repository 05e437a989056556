// manygil::SharedBuffer from C++: zero-copy hand-over to interpreters, and lifetime across them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"

using manygil::SharedBuffer;
using manygil::Value;
using manygil::testing::runtime;

namespace {
constexpr const char* kHelpers = R"(
def fill(buf, value):
    view = memoryview(buf)
    view[:] = bytes([value]) * len(view)

def keep(buf):
    global kept
    kept = buf

def make_like(proto, n):
    buf = type(proto)(n)
    memoryview(buf)[0] = 99
    return buf
)";
}  // namespace

TEST(SharedBuffer, ZeroFilledFixedSizeAndIdentity) {
    std::size_t before = SharedBuffer::live_blocks();
    {
        SharedBuffer a(100);
        EXPECT_EQ(a.size(), 100u);
        EXPECT_TRUE(std::all_of(a.data(), a.data() + 100, [](std::byte b) { return b == std::byte{0}; }));
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % 64, 0u);
        SharedBuffer copy = a;  // shares, does not copy
        EXPECT_TRUE(copy == a);
        EXPECT_FALSE(SharedBuffer(100) == a);
        SharedBuffer from = SharedBuffer::from_bytes("abc");
        EXPECT_EQ(std::memcmp(from.data(), "abc", 3), 0);
        EXPECT_EQ(SharedBuffer::live_blocks(), before + 2);  // a (shared with copy) and from; the temporary is gone
    }
    EXPECT_EQ(SharedBuffer::live_blocks(), before);
}

TEST(SharedBuffer, AWorkerWritesIntoTheHostsMemory) {
    manygil::Interpreter interp(runtime());
    interp.exec(kHelpers);
    SharedBuffer buf(1 << 20);
    interp.call("__main__:fill", {Value(buf), 5});
    EXPECT_TRUE(std::all_of(buf.data(), buf.data() + buf.size(), [](std::byte b) { return b == std::byte{5}; }));
    Value back = interp.call("builtins:tuple", {Value::list({Value(buf)})});
    EXPECT_TRUE(back.as_tuple().at(0).as_buffer() == buf);  // returned by reference: the same memory
}

TEST(SharedBuffer, LivesUntilItsLastHolderInAnyInterpreter) {
    std::size_t before = SharedBuffer::live_blocks();
    manygil::Interpreter interp(runtime());
    interp.exec(kHelpers);
    {
        SharedBuffer buf(64);
        interp.call("__main__:keep", {Value(buf)});
    }
    EXPECT_EQ(SharedBuffer::live_blocks(), before + 1);  // the interpreter still holds it
    interp.close();
    EXPECT_EQ(SharedBuffer::live_blocks(), before);
}

TEST(SharedBuffer, ABufferMadeInAnInterpreterOutlivesIt) {
    Value made;
    {
        manygil::Interpreter interp(runtime());
        interp.exec(kHelpers);
        made = interp.call("__main__:make_like", {Value(SharedBuffer(1)), 4096});
    }
    const SharedBuffer& buf = made.as_buffer();
    EXPECT_EQ(buf.size(), 4096u);
    EXPECT_EQ(buf.data()[0], std::byte{99});
}
