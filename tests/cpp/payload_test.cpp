// The payload wire format, without Python: Values survive the round trip exactly, and every kind of
// malformed input is a ConversionError, never a crash or an out-of-bounds read.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "manygil/channel.hpp"
#include "manygil/shared_buffer.hpp"
#include "manygil/value.hpp"
#include "codec/payload.hpp"

namespace {

using manygil::ConversionError;
using manygil::Value;
using manygil::detail::decode_value;
using manygil::detail::encode;
using manygil::detail::Payload;
using manygil::detail::PayloadWriter;
using manygil::detail::Tag;

Payload raw(std::string bytes) { return Payload{manygil::detail::ByteBuffer(bytes), {}}; }

std::string bytes_of(const Payload& p) { return std::string(p.bytes.view()); }

void expect_malformed(const Payload& p, const std::string& why) {
    try {
        decode_value(p);
        FAIL() << "decoded a malformed payload (" << why << ")";
    } catch (const ConversionError& e) {
        EXPECT_EQ(e.type_name(), "payload") << why;
        EXPECT_NE(e.reason().find("malformed"), std::string::npos) << e.what();
    }
}

TEST(Payload, ScalarsRoundTripExactly) {
    constexpr auto kMin = std::numeric_limits<std::int64_t>::min(), kMax = std::numeric_limits<std::int64_t>::max();
    for (const Value& v : {Value(), Value(true), Value(false), Value(0), Value(-1), Value(1), Value(127), Value(128),
                           Value(-64), Value(-65), Value(kMin), Value(kMax), Value(0.5), Value(-0.0), Value(1e308),
                           Value(""), Value("key"), Value("caf\xc3\xa9"), Value::bytes(std::string("\0\xff", 2)),
                           Value(manygil::BigInt{"-0x1" + std::string(40, '0')})}) {
        EXPECT_EQ(decode_value(encode(v)), v) << v.repr();
    }
}

TEST(Payload, SmallIntsTakeFewBytes) {
    // Varints: records of small numbers stay small (a tag plus one or two bytes).
    EXPECT_EQ(encode(Value(5)).bytes.size(), 2u);
    EXPECT_EQ(encode(Value(-300)).bytes.size(), 3u);
    EXPECT_EQ(encode(Value(std::numeric_limits<std::int64_t>::min())).bytes.size(), 11u);
}

TEST(Payload, ContainersRoundTripNestedAndOrdered) {
    Value v = Value::dict({{"z", Value::list({1, 2.5, "x", Value::tuple({})})},
                           {"a", Value::dict({{Value::tuple({1, "k"}), Value::bytes("b")}})},
                           {7, Value()}});
    EXPECT_EQ(decode_value(encode(v)), v);
}

TEST(Payload, HandlesTravelByReference) {
    manygil::SharedBuffer buffer(64);
    manygil::Channel channel;
    Payload p = encode(Value::list({Value(buffer), Value(channel), Value(manygil::Lock())}));
    EXPECT_EQ(p.handles.size(), 3u);
    Value back = decode_value(p);
    EXPECT_EQ(back.as_list()[0].as_buffer().data(), buffer.data());  // the same memory, not a copy
    EXPECT_TRUE(back.as_list()[1].as_channel() == channel);
    EXPECT_EQ(back.as_list()[2].kind(), Value::Kind::Sync);
}

TEST(Payload, TooDeepIsRefusedBothWays) {
    Value v;
    for (int i = 0; i <= manygil::detail::kMaxDepth + 1; ++i) v = Value::list({v});
    EXPECT_THROW(encode(v), ConversionError);
    std::string deep(manygil::detail::kMaxDepth + 2, static_cast<char>(Tag::List));
    std::string bytes;
    for (char c : deep) bytes += std::string{c, '\x01'};  // [ [ [ ... count 1 each
    bytes += static_cast<char>(Tag::None);
    expect_malformed(raw(bytes), "nested too deep");
}

TEST(Payload, PaddedCountsDecode) {
    // The map path writes a container's count last, padded to full width.
    PayloadWriter w;
    std::size_t at = w.tagged_count_later(Tag::List);
    w.tagged_int(1);
    w.tagged_int(2);
    w.patch_count(at, 2);
    Payload p{w.take(), {}};
    EXPECT_EQ(decode_value(p), Value::list({1, 2}));
}

TEST(Payload, EveryTruncationIsAnError) {
    Payload whole = encode(Value::dict({{"key", Value::list({1, -200, 2.5, "text", Value::bytes("xyz")})},
                                        {"big", Value(manygil::BigInt{"0x" + std::string(30, 'f')})}}));
    std::string bytes = bytes_of(whole);
    for (std::size_t n = 0; n < bytes.size(); ++n) expect_malformed(raw(bytes.substr(0, n)), "cut at " + std::to_string(n));
}

TEST(Payload, MalformedInputsAreErrors) {
    const char list = static_cast<char>(Tag::List), ascii = static_cast<char>(Tag::Ascii);
    expect_malformed(raw(""), "empty");
    expect_malformed(raw("\x7f"), "unknown tag");
    expect_malformed(raw(std::string{static_cast<char>(Tag::None), static_cast<char>(Tag::None)}), "trailing bytes");
    // A count far beyond the data must not allocate for it.
    expect_malformed(raw(std::string{list, '\xff', '\xff', '\xff', '\xff', '\x0f'}), "forged count");
    expect_malformed(raw(std::string{static_cast<char>(Tag::Dict), '\x02', static_cast<char>(Tag::None),
                                     static_cast<char>(Tag::None), static_cast<char>(Tag::None)}),
                     "dict count over its pairs");
    expect_malformed(raw(std::string{static_cast<char>(Tag::Int)} + std::string(10, '\xff') + "\x01"), "varint over 64 bits");
    expect_malformed(raw(std::string{static_cast<char>(Tag::Int), '\x80', '\x80', '\x80', '\x80', '\x80', '\x80', '\x80',
                                     '\x80', '\x80', '\x02'}),
                     "tenth varint byte over 1");
    expect_malformed(raw(std::string{ascii, '\x02', 'a', '\xe9'}), "non-ASCII in an ASCII str");
    expect_malformed(raw(std::string{static_cast<char>(Tag::Handle), '\x00'}), "handle without a table");
    expect_malformed(raw(std::string{static_cast<char>(Tag::Float), '\x00', '\x00'}), "short float");
}

TEST(Payload, HandleIndexIsChecked) {
    Payload p = encode(Value(manygil::SharedBuffer(8)));
    p.handles.clear();
    expect_malformed(p, "dangling handle");
}

}  // namespace
