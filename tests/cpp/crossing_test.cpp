// The codec's registry of types that cross by reference (codec/crossing.hpp): the codec knows no
// shared type until it registers; registration is idempotent and a new entry for a kind replaces the
// old; native values never consult the registry. Each test runs in a process of its own (ctest), in a
// plain embedded interpreter, so "nothing registered yet" is a real state here.
#include <Python.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "manygil/errors.hpp"
#include "manygil/shared_buffer.hpp"
#include "manygil/shared_dict.hpp"
#include "manygil/sync.hpp"
#include "codec/crossing.hpp"
#include "codec/payload_python.hpp"
#include "cpython/py_ref.hpp"
#include "pytypes/crossing_types.hpp"
#include "pytypes/shared_buffer_type.hpp"
#include "pytypes/shared_dict_type.hpp"
#include "pytypes/sync_types.hpp"

namespace {

using namespace manygil;
using namespace manygil::detail;

class Crossing : public ::testing::Test {
protected:
    static void SetUpTestSuite() { Py_InitializeEx(0); }
    static void TearDownTestSuite() { Py_FinalizeEx(); }

    // A payload holding one handle: what a C++ host's Value(buffer) argument becomes.
    static Payload handle_payload(Value handle) {
        Payload p;
        PayloadWriter w;
        w.tagged_count(Tag::Handle, 0);
        p.bytes = w.take();
        p.handles.push_back(std::move(handle));
        return p;
    }
};

TEST_F(Crossing, AHandleOfAKindNothingRegisteredIsRefused) {
    SharedBuffer buffer(8);
    try {
        decode_python(handle_payload(Value(buffer)));
        FAIL() << "decoded a handle no type registered for";
    } catch (const ConversionError& e) {
        EXPECT_NE(std::string(e.what()).find("no Python type is registered"), std::string::npos) << e.what();
    }
}

TEST_F(Crossing, TheSharedTypesRegisterHowTheyCross) {
    register_crossing_types();
    SharedBuffer buffer(8);
    PyRef decoded = decode_python(handle_payload(Value(buffer)));
    ASSERT_EQ(Py_TYPE(decoded.get()), buffer_type());
    ASSERT_NE(unwrap_buffer(decoded.get()), nullptr);
    EXPECT_EQ(*unwrap_buffer(decoded.get()), buffer);  // the same block, not a copy

    Payload back = encode_python(decoded.get());
    ASSERT_EQ(back.handles.size(), 1u);
    EXPECT_EQ(back.handles[0], Value(buffer));

    Lock lock;
    PyRef wrapper = wrap_sync(SyncPrimitive(lock));
    Payload p = encode_python(wrapper.get());
    ASSERT_EQ(p.handles.size(), 1u);
    EXPECT_EQ(p.handles[0].kind(), Value::Kind::Sync);

    SharedDict dict;
    PyRef dict_wrapper = decode_python(handle_payload(Value(dict)));
    ASSERT_NE(unwrap_shared_dict(dict_wrapper.get()), nullptr);
    EXPECT_EQ(Value(*unwrap_shared_dict(dict_wrapper.get())), Value(dict));  // the same store
    Payload d = encode_python(dict_wrapper.get());
    ASSERT_EQ(d.handles.size(), 1u);
    EXPECT_EQ(d.handles[0], Value(dict));
}

TEST_F(Crossing, CreatingATypeRegistersTheSharedTypes) {
    buffer_type();  // what a Python user does first: make the type (import manygil)
    SharedBuffer buffer(4);
    PyRef decoded = decode_python(handle_payload(Value(buffer)));
    EXPECT_EQ(Py_TYPE(decoded.get()), buffer_type());
}

constexpr CrossingType kFortyTwo{
    Value::Kind::Buffer,
    [](PyObject*, std::vector<Value>&) { return false; },
    [](const Value&) { return PyRef(PyLong_FromLong(42)); },
};

TEST_F(Crossing, ANewEntryForAKindReplacesTheOldAndRepeatsChangeNothing) {
    register_crossing_types();
    register_crossing_types();  // a repeat: nothing changes
    SharedBuffer buffer(8);
    EXPECT_EQ(Py_TYPE(decode_python(handle_payload(Value(buffer))).get()), buffer_type());

    register_crossing_type(kFortyTwo);
    EXPECT_EQ(crossing_type(Value::Kind::Buffer), &kFortyTwo);
    PyRef replaced = decode_python(handle_payload(Value(buffer)));
    EXPECT_EQ(PyLong_AsLong(replaced.get()), 42);

    register_crossing_types();  // the shared types' own entry again
    EXPECT_EQ(Py_TYPE(decode_python(handle_payload(Value(buffer))).get()), buffer_type());
}

std::atomic<int> g_unwraps{0};
constexpr CrossingType kCounting{
    Value::Kind::Channel,
    [](PyObject*, std::vector<Value>&) {
        g_unwraps.fetch_add(1);
        return false;
    },
    [](const Value&) { return PyRef(PyLong_FromLong(0)); },
};

TEST_F(Crossing, NativeValuesNeverConsultTheRegistry) {
    register_crossing_type(kCounting);
    PyRef native(Py_BuildValue("[i, d, s, y, O, (i), {s: [i, i]}]", 1, 2.5, "x", "b", Py_None, 3, "k", 4, 5));
    ASSERT_TRUE(native);
    encode_python(native.get());
    EXPECT_EQ(g_unwraps.load(), 0);

    PyRef other(PyObject_CallNoArgs(reinterpret_cast<PyObject*>(&PyBaseObject_Type)));  // object()
    EXPECT_THROW(encode_python(other.get()), ConversionError);  // no pickler: refused, after asking
    EXPECT_EQ(g_unwraps.load(), 1);
}

}  // namespace
