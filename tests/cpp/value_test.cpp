// manygil::Value on its own: construction, kinds, accessors, equality, repr. No Python involved.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "manygil/errors.hpp"
#include "manygil/value.hpp"

using manygil::Value;

TEST(Value, DefaultIsNone) {
    Value v;
    EXPECT_TRUE(v.is_none());
    EXPECT_EQ(v.kind(), Value::Kind::None);
    EXPECT_STREQ(v.type_name(), "NoneType");
}

TEST(Value, KindsFromCppTypes) {
    EXPECT_EQ(Value(true).kind(), Value::Kind::Bool);
    EXPECT_EQ(Value(42).kind(), Value::Kind::Int);
    EXPECT_EQ(Value(std::int64_t{-7}).as_int(), -7);
    EXPECT_EQ(Value(2.5).kind(), Value::Kind::Float);
    EXPECT_EQ(Value("text").kind(), Value::Kind::Str);
    EXPECT_EQ(Value(std::string("text")).as_str(), "text");
    EXPECT_EQ(Value::bytes("ab").kind(), Value::Kind::Bytes);
    EXPECT_EQ(Value::tuple({1, 2}).as_tuple().size(), 2u);
    EXPECT_EQ(Value::list({}).kind(), Value::Kind::List);
    EXPECT_EQ(Value::dict({{"a", 1}}).as_dict().at(0).second.as_int(), 1);
}

TEST(Value, UnsignedAboveInt64BecomesBigInt) {
    Value small(std::uint64_t{5});
    EXPECT_EQ(small.kind(), Value::Kind::Int);
    Value big(std::numeric_limits<std::uint64_t>::max());
    ASSERT_EQ(big.kind(), Value::Kind::BigInt);
    EXPECT_EQ(big.as_bigint().hex, "0xffffffffffffffff");
}

TEST(Value, WrongAccessorThrowsValueTypeError) {
    Value v("hello");
    try {
        (void)v.as_int();
        FAIL() << "as_int on a str did not throw";
    } catch (const manygil::ValueTypeError& e) {
        EXPECT_STREQ(e.what(), "Value holds str, not int (64-bit)");
    }
    EXPECT_THROW((void)Value(1).as_list(), manygil::ValueTypeError);
    EXPECT_THROW((void)Value().as_bool(), manygil::ValueTypeError);
}

TEST(Value, EqualityIsDeepAndKindSensitive) {
    EXPECT_EQ(Value::list({1, "a", Value::tuple({2.0})}), Value::list({1, "a", Value::tuple({2.0})}));
    EXPECT_NE(Value::list({1}), Value::tuple({1}));
    EXPECT_NE(Value(1), Value(1.0));
    EXPECT_NE(Value(true), Value(1));
    EXPECT_EQ(Value(std::nan("")), Value(std::nan("")));
    EXPECT_NE(Value::dict({{"a", 1}, {"b", 2}}), Value::dict({{"b", 2}, {"a", 1}}));  // order is kept
}

TEST(Value, ReprLooksLikePython) {
    EXPECT_EQ(Value().repr(), "None");
    EXPECT_EQ(Value(false).repr(), "False");
    EXPECT_EQ(Value(-3).repr(), "-3");
    EXPECT_EQ(Value(1.0).repr(), "1.0");
    EXPECT_EQ(Value(0.1).repr(), "0.1");
    EXPECT_EQ(Value(-INFINITY).repr(), "-inf");
    EXPECT_EQ(Value("it's\n").repr(), "'it\\'s\\n'");
    EXPECT_EQ(Value::bytes(std::string("a\0\xff", 3)).repr(), "b'a\\x00\\xff'");
    EXPECT_EQ(Value::tuple({1}).repr(), "(1,)");
    EXPECT_EQ(Value::dict({{"k", Value::list({1, 2})}}).repr(), "{'k': [1, 2]}");
}

TEST(Value, ContainersAreMutableThroughAccessors) {
    Value v = Value::list({});
    v.as_list().push_back(Value(1));
    v.as_list().push_back(Value("x"));
    EXPECT_EQ(v, Value::list({1, "x"}));
}
