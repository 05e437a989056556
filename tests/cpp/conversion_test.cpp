// Values crossing into a worker interpreter and back: every kind round-trips exactly, and what cannot
// cross is refused with a ConversionError naming the type and where it sat.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"

using manygil::Value;

namespace {

class Conversion : public ::testing::Test {
protected:
    static void SetUpTestSuite() { interp_ = new manygil::Interpreter(manygil::testing::runtime()); }
    static void TearDownTestSuite() {
        delete interp_;
        interp_ = nullptr;
    }
    static Value roundtrip(const Value& v) { return interp_->call("mg_tasks:identity", {v}); }
    static manygil::Interpreter* interp_;
};
manygil::Interpreter* Conversion::interp_ = nullptr;

}  // namespace

TEST_F(Conversion, ScalarsRoundTrip) {
    for (const Value& v : {Value(), Value(true), Value(false), Value(0), Value(-1),
                           Value(std::numeric_limits<std::int64_t>::max()),
                           Value(std::numeric_limits<std::int64_t>::min()), Value(3.25), Value(-0.0),
                           Value(INFINITY), Value(std::nan("")), Value(""), Value("h\xc3\xa9llo \xe2\x82\xac"),
                           Value::bytes(std::string("\0\x01\xff", 3))}) {
        EXPECT_EQ(roundtrip(v), v) << v.repr();
    }
}

TEST_F(Conversion, RepeatedKeysFromCxxKeepTheLastValueEveryTime) {
    // A C++ Dict may repeat a key; Python keeps the last value. Sent several times (the worker's
    // decoder learns a dict's keys from the dicts before it) and mixed with the distinct-key dict of
    // the same first keys, each still decodes to exactly its own keys.
    Value repeated = Value::dict({{"a", 1}, {"a", 2}, {"b", 3}});
    Value distinct = Value::dict({{"a", 1}, {"b", 3}});
    Value expected_repeated = Value::dict({{"a", 2}, {"b", 3}});
    Value pair_of_a = Value::dict({{"a", 1}, {"a", 2}});
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(roundtrip(repeated), expected_repeated) << i;
        EXPECT_EQ(roundtrip(distinct), distinct) << i;
        EXPECT_EQ(roundtrip(pair_of_a), Value::dict({{"a", 2}})) << i;
    }
    for (int i = 0; i < 4; ++i) EXPECT_EQ(roundtrip(repeated), expected_repeated) << i;
    for (int i = 0; i < 4; ++i) EXPECT_EQ(roundtrip(pair_of_a), Value::dict({{"a", 2}})) << i;
}

TEST_F(Conversion, BigIntsRoundTripBeyond64Bits) {
    for (const char* hex : {"0x10000000000000000", "-0x8000000000000001", "0x123456789abcdef0123456789abcdef"}) {
        Value v(manygil::BigInt{hex});
        EXPECT_EQ(roundtrip(v), v) << hex;
    }
    // Computed in Python: 2**100 arrives as a BigInt; 2**62 stays a 64-bit int.
    interp_->exec("big = 2 ** 100\nsmall = 2 ** 62\ndef get(name): return globals()[name]");
    EXPECT_EQ(interp_->call("__main__:get", {"big"}), Value(manygil::BigInt{"0x10000000000000000000000000"}));
    EXPECT_EQ(interp_->call("__main__:get", {"small"}), Value(std::int64_t{1} << 62));
}

TEST_F(Conversion, HugeIntIsNotLimitedByIntStrDigits) {
    // 10**5000 has more digits than Python's default int<->str limit (4300).
    interp_->exec("def huge(): return 10 ** 5000\ndef is_huge(x): return x == 10 ** 5000");
    Value v = interp_->call("__main__:huge");
    ASSERT_EQ(v.kind(), Value::Kind::BigInt);
    EXPECT_EQ(interp_->call("__main__:is_huge", {v}), Value(true));
}

TEST_F(Conversion, ContainersRoundTripNestedAndOrdered) {
    Value v = Value::dict({{"z", Value::list({1, 2.5, Value::tuple({"a", Value()})})},
                           {"a", Value::dict({{Value::tuple({1, 2}), Value::bytes("b")}})},
                           {7, Value::tuple({})}});
    EXPECT_EQ(roundtrip(v), v);
}

TEST_F(Conversion, PythonTypesArriveAsThePythonKinds) {
    interp_->exec("def kinds(): return [type(x).__name__ for x in (None, True, 1, 2**70, 1.5, 's', b'b', (), [], {})]");
    EXPECT_EQ(interp_->call("__main__:kinds"),
              Value::list({"NoneType", "bool", "int", "int", "float", "str", "bytes", "tuple", "list", "dict"}));
    interp_->exec("def typeof(x): return type(x).__name__");
    EXPECT_EQ(interp_->call("__main__:typeof", {Value::tuple({})}), Value("tuple"));
    EXPECT_EQ(interp_->call("__main__:typeof", {Value::bytes("")}), Value("bytes"));
    EXPECT_EQ(interp_->call("__main__:typeof", {Value(manygil::BigInt{"0x1"})}), Value("int"));
}

TEST_F(Conversion, LoneSurrogatesSurvive) {
    interp_->exec("def surrogate(): return 'a\\ud800b'\ndef is_surrogate(s): return s == 'a\\ud800b'");
    Value v = interp_->call("__main__:surrogate");
    EXPECT_EQ(interp_->call("__main__:is_surrogate", {v}), Value(true));
}

TEST_F(Conversion, UnsupportedResultNamesTypeAndPath) {
    try {
        interp_->call("mg_tasks:return_set");
        FAIL() << "a set result converted";
    } catch (const manygil::ConversionError& e) {
        EXPECT_EQ(e.type_name(), "set");
        EXPECT_EQ(e.path(), "result");
    }
    try {
        interp_->call("mg_tasks:return_nested_bad");
        FAIL() << "an object() result converted";
    } catch (const manygil::ConversionError& e) {
        EXPECT_EQ(e.type_name(), "object");
        EXPECT_EQ(e.path(), "result[1]['k']");
        EXPECT_NE(std::string(e.what()).find("result[1]['k']"), std::string::npos) << e.what();
    }
}

TEST_F(Conversion, SubclassesAreRefusedNotFlattened) {
    interp_->exec("import enum\nclass Color(enum.IntEnum):\n    RED = 1\ndef red(): return [Color.RED]");
    try {
        interp_->call("__main__:red");
        FAIL() << "an IntEnum converted";
    } catch (const manygil::ConversionError& e) {
        EXPECT_EQ(e.type_name(), "__main__.Color");
        EXPECT_EQ(e.path(), "result[0]");
    }
}

TEST_F(Conversion, BadArgumentsNameTheirPath) {
    try {
        interp_->call("mg_tasks:identity", {Value::list({1, Value::dict({{"k", Value(std::string("\xff"))}})})});
        FAIL() << "invalid UTF-8 converted";
    } catch (const manygil::ConversionError& e) {
        EXPECT_EQ(e.type_name(), "str");
        EXPECT_EQ(e.path(), "args[0][1]['k']");
    }
    try {
        interp_->call("mg_tasks:identity", {Value::dict({{Value::list({}), 1}})});
        FAIL() << "a list dict key converted";
    } catch (const manygil::ConversionError& e) {
        EXPECT_EQ(e.type_name(), "list");
        EXPECT_EQ(e.path(), "args[0]<key []>");
        EXPECT_NE(e.reason().find("unhashable"), std::string::npos) << e.reason();
    }
    try {
        interp_->call("mg_tasks:add", {1}, {{"b", Value(std::string("\xfe"))}});
        FAIL() << "invalid UTF-8 kwarg converted";
    } catch (const manygil::ConversionError& e) {
        EXPECT_EQ(e.path(), "kwargs['b']");
    }
}

TEST_F(Conversion, SelfContainingListIsRefusedNotACrash) {
    interp_->exec("def loop():\n    x = []\n    x.append(x)\n    return x");
    try {
        interp_->call("__main__:loop");
        FAIL() << "a self-containing list converted";
    } catch (const manygil::ConversionError& e) {
        EXPECT_NE(e.reason().find("nested deeper than"), std::string::npos) << e.what();
    }
}

TEST_F(Conversion, InterpreterStaysUsableAfterConversionErrors) {
    EXPECT_THROW(interp_->call("mg_tasks:return_set"), manygil::ConversionError);
    EXPECT_EQ(interp_->call("mg_tasks:add", {2, 3}), Value(5));
}

TEST_F(Conversion, PickledValuesArriveAsTheOriginalObject) {
    interp_->exec("import pickle\ndef pickled_set(): return pickle.dumps({1, 2}, 5)\n"
                  "def describe(x): return [type(x).__name__, sorted(x)]");
    Value data = interp_->call("__main__:pickled_set");
    Value pickled(manygil::Pickled{data.as_bytes().data});
    EXPECT_EQ(pickled.kind(), Value::Kind::Pickled);
    EXPECT_EQ(interp_->call("__main__:describe", {pickled}), Value::list({"set", Value::list({1, 2})}));
    // The strict C++ API still refuses to turn a set into a Value.
    EXPECT_THROW(interp_->call("mg_tasks:identity", {pickled}), manygil::ConversionError);
}

TEST_F(Conversion, CorruptPickleIsAConversionError) {
    try {
        interp_->call("mg_tasks:identity", {Value(manygil::Pickled{"not a pickle"})});
        FAIL() << "a corrupt pickle converted";
    } catch (const manygil::ConversionError& e) {
        EXPECT_EQ(e.path(), "args[0]");
        EXPECT_NE(e.reason().find("cannot be unpickled"), std::string::npos) << e.reason();
    }
}
