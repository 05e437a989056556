// manygil::Value: the data that crosses interpreters. It is owned by C++ and never holds a PyObject*,
// so it can be built on one thread, moved through queues and turned into Python objects by whichever
// interpreter receives it. Kinds mirror Python's: None, bool, int (64-bit, or arbitrary size as
// BigInt), float, str (UTF-8), bytes, tuple, list, dict (insertion-ordered); plus, by reference, the
// shared objects (SharedBuffer, Channel, Lock/Event/Semaphore/Barrier, SharedDict) and, from the Python package,
// pickles of other objects.
//
// A Value is a plain value type (copies are deep, except for the shared objects, which stay shared): no
// member needs a GIL or blocks, and it is thread-compatible like std::vector (concurrent const use is
// safe; a Value being modified must not be used by another thread). It has no lifetime tie to any
// interpreter or Runtime.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "manygil/channel.hpp"
#include "manygil/shared_buffer.hpp"
#include "manygil/shared_dict.hpp"
#include "manygil/sync.hpp"

namespace manygil {

class Value;

struct None {
    friend bool operator==(None, None) noexcept { return true; }
};

// An int outside the 64-bit range, as signed hexadecimal digits ("0x1f", "-0x10000000000000000"):
// hexadecimal because Python's int<->str conversion limit does not apply to it.
struct BigInt {
    std::string hex;
    friend bool operator==(const BigInt&, const BigInt&) = default;
};

// Python bytes (str holds text, Bytes holds octets).
struct Bytes {
    std::string data;
    friend bool operator==(const Bytes&, const Bytes&) = default;
};

// An object of another type, as a pickle (protocol 5). Only produced when a pickle fallback is asked
// for (the Python package does; the plain C++ API refuses such objects with ConversionError).
// Turned back into the object with pickle.loads by the interpreter that receives it.
struct Pickled {
    std::string data;
    friend bool operator==(const Pickled&, const Pickled&) = default;
};

struct Tuple {
    std::vector<Value> items;
};
struct List {
    std::vector<Value> items;
};
// Insertion-ordered key/value pairs, as in a Python dict. Keys must be hashable in Python
// (not list or dict); that is checked when the dict is turned into a Python object.
struct Dict {
    std::vector<std::pair<Value, Value>> items;
};

// One value of any kind. Constructors are implicit, so Args{1, "a", 2.5} and {{"k", v}} read naturally.
class Value {
public:
    enum class Kind { None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict, Pickled, Buffer, Channel, Sync,
                      SharedDict };

    Value() noexcept : v_(manygil::None{}) {}
    Value(manygil::None) noexcept : v_(manygil::None{}) {}
    Value(bool b) noexcept : v_(b) {}
    template <std::integral T>
        requires(!std::same_as<T, bool> && !std::same_as<T, char>)
    Value(T i) : v_(from_integral(i)) {}
    Value(double d) noexcept : v_(d) {}
    Value(std::string s) noexcept : v_(std::move(s)) {}
    Value(std::string_view s) : v_(std::string(s)) {}
    Value(const char* s) : v_(std::string(s)) {}
    Value(manygil::BigInt i) noexcept : v_(std::move(i)) {}
    Value(manygil::Bytes b) noexcept : v_(std::move(b)) {}
    Value(manygil::Tuple t) noexcept : v_(std::move(t)) {}
    Value(manygil::List l) noexcept : v_(std::move(l)) {}
    Value(manygil::Dict d) noexcept : v_(std::move(d)) {}
    Value(manygil::Pickled p) noexcept : v_(std::move(p)) {}
    // Shares the buffer (no copy): it arrives in Python as a manygil.SharedBuffer over the same memory.
    Value(manygil::SharedBuffer b) noexcept : v_(std::move(b)) {}
    // Shares the channel: it arrives in Python as a manygil.Channel over the same queue.
    Value(manygil::Channel c) noexcept : v_(std::move(c)) {}
    // Shares the primitive: it arrives in Python as manygil.Lock / Event / Semaphore / Barrier.
    Value(manygil::SyncPrimitive s) noexcept : v_(std::move(s)) {}
    // Shares the store: it arrives in Python as a manygil.SharedDict over the same entries.
    Value(manygil::SharedDict d) noexcept : v_(std::move(d)) {}
    Value(manygil::Lock l) noexcept : v_(manygil::SyncPrimitive(std::move(l))) {}
    Value(manygil::Event e) noexcept : v_(manygil::SyncPrimitive(std::move(e))) {}
    Value(manygil::Semaphore s) noexcept : v_(manygil::SyncPrimitive(std::move(s))) {}
    Value(manygil::Barrier b) noexcept : v_(manygil::SyncPrimitive(std::move(b))) {}

    static Value tuple(std::initializer_list<Value> items) { return manygil::Tuple{items}; }
    static Value list(std::initializer_list<Value> items) { return manygil::List{items}; }
    static Value dict(std::initializer_list<std::pair<Value, Value>> items) { return manygil::Dict{items}; }
    static Value bytes(std::string_view data) { return manygil::Bytes{std::string(data)}; }

    Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
    // The Python type name of this kind: "NoneType", "bool", "int", "float", "str", "bytes", ...
    const char* type_name() const noexcept;
    bool is_none() const noexcept { return kind() == Kind::None; }

    // Accessors throw ValueTypeError when the Value holds another kind.
    bool as_bool() const;
    std::int64_t as_int() const;
    const manygil::BigInt& as_bigint() const;
    double as_float() const;
    const std::string& as_str() const;
    const manygil::Bytes& as_bytes() const;
    const std::vector<Value>& as_tuple() const;
    const std::vector<Value>& as_list() const;
    const std::vector<std::pair<Value, Value>>& as_dict() const;
    const manygil::Pickled& as_pickled() const;
    const manygil::SharedBuffer& as_buffer() const;
    const manygil::Channel& as_channel() const;
    const manygil::SyncPrimitive& as_sync() const;
    const manygil::SharedDict& as_shared_dict() const;
    std::vector<Value>& as_tuple();
    std::vector<Value>& as_list();
    std::vector<std::pair<Value, Value>>& as_dict();

    // A Python-like repr, for messages and tests (BigInt shows its hexadecimal digits).
    std::string repr() const;

    // Same kind and equal contents (NaN equals NaN, so a round trip compares equal); shared objects
    // compare by identity (the same buffer, channel, primitive).
    friend bool operator==(const Value& a, const Value& b);

private:
    using Storage = std::variant<manygil::None, bool, std::int64_t, manygil::BigInt, double, std::string,
                                 manygil::Bytes, manygil::Tuple, manygil::List, manygil::Dict, manygil::Pickled,
                                 manygil::SharedBuffer, manygil::Channel, manygil::SyncPrimitive, manygil::SharedDict>;

    template <class T>
    static Storage from_integral(T i) {
        if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
            if (i > static_cast<T>(std::numeric_limits<std::int64_t>::max())) return unsigned_bigint(i);
        }
        return static_cast<std::int64_t>(i);
    }
    static manygil::BigInt unsigned_bigint(unsigned long long i);
    [[noreturn]] void wrong_kind(const char* wanted) const;

    Storage v_;
};

// Positional and keyword arguments of a call.
using Args = std::vector<Value>;
using Kwargs = std::vector<std::pair<std::string, Value>>;

}  // namespace manygil
