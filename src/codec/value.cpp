// manygil::Value: accessors, equality and repr. Nothing here touches Python.
#include "manygil/value.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "manygil/errors.hpp"

namespace manygil {

namespace {
const char* const kTypeNames[] = {"NoneType", "bool", "int", "int", "float", "str",
                                  "bytes",    "tuple", "list", "dict", "pickled", "SharedBuffer", "Channel", "sync",
                                  "SharedDict"};

void append_quoted(std::string& out, const std::string& s, bool is_bytes) {
    if (is_bytes) out += 'b';
    out += '\'';
    for (unsigned char c : s) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '\'': out += "\\'"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                // Text is UTF-8: keep its multi-byte sequences; bytes show non-ASCII as escapes.
                if (c < 0x20 || c == 0x7f || (is_bytes && c >= 0x80)) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '\'';
}

void append_float(std::string& out, double d) {
    if (std::isnan(d)) { out += "nan"; return; }
    if (std::isinf(d)) { out += d > 0 ? "inf" : "-inf"; return; }
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    std::string s(buf, end);
    if (s.find_first_of(".en") == std::string::npos) s += ".0";  // Python shows 1.0, not 1
    out += s;
}

void append_repr(std::string& out, const Value& v);

void append_items(std::string& out, const std::vector<Value>& items, char open, char close, bool tuple) {
    out += open;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        append_repr(out, items[i]);
    }
    if (tuple && items.size() == 1) out += ',';
    out += close;
}

void append_repr(std::string& out, const Value& v) {
    switch (v.kind()) {
        case Value::Kind::None: out += "None"; break;
        case Value::Kind::Bool: out += v.as_bool() ? "True" : "False"; break;
        case Value::Kind::Int: out += std::to_string(v.as_int()); break;
        case Value::Kind::BigInt: out += v.as_bigint().hex; break;
        case Value::Kind::Float: append_float(out, v.as_float()); break;
        case Value::Kind::Str: append_quoted(out, v.as_str(), false); break;
        case Value::Kind::Bytes: append_quoted(out, v.as_bytes().data, true); break;
        case Value::Kind::Tuple: append_items(out, v.as_tuple(), '(', ')', true); break;
        case Value::Kind::List: append_items(out, v.as_list(), '[', ']', false); break;
        case Value::Kind::Pickled: out += "<pickled, " + std::to_string(v.as_pickled().data.size()) + " bytes>"; break;
        case Value::Kind::Buffer: out += "<SharedBuffer, " + std::to_string(v.as_buffer().size()) + " bytes>"; break;
        case Value::Kind::Channel: out += "<Channel>"; break;
        case Value::Kind::SharedDict: out += "<SharedDict>"; break;
        case Value::Kind::Sync: {
            static const char* const kNames[] = {"<Lock>", "<Event>", "<Semaphore>", "<Barrier>"};
            out += kNames[v.as_sync().index()];
            break;
        }
        case Value::Kind::Dict: {
            out += '{';
            bool first = true;
            for (const auto& [key, value] : v.as_dict()) {
                if (!first) out += ", ";
                first = false;
                append_repr(out, key);
                out += ": ";
                append_repr(out, value);
            }
            out += '}';
            break;
        }
    }
}
}  // namespace

const char* Value::type_name() const noexcept { return kTypeNames[v_.index()]; }

void Value::wrong_kind(const char* wanted) const {
    throw ValueTypeError(std::string("Value holds ") + type_name() + ", not " + wanted);
}

BigInt Value::unsigned_bigint(unsigned long long i) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, i, 16);
    return BigInt{"0x" + std::string(buf, end)};
}

#define MANYGIL_ACCESSOR(ret, name, alt, wanted)                     \
    ret Value::name() const {                                        \
        if (auto* p = std::get_if<alt>(&v_)) return *p;              \
        wrong_kind(wanted);                                          \
    }
MANYGIL_ACCESSOR(bool, as_bool, bool, "bool")
MANYGIL_ACCESSOR(std::int64_t, as_int, std::int64_t, "int (64-bit)")
MANYGIL_ACCESSOR(const BigInt&, as_bigint, manygil::BigInt, "int (BigInt)")
MANYGIL_ACCESSOR(double, as_float, double, "float")
MANYGIL_ACCESSOR(const std::string&, as_str, std::string, "str")
MANYGIL_ACCESSOR(const Bytes&, as_bytes, manygil::Bytes, "bytes")
MANYGIL_ACCESSOR(const Pickled&, as_pickled, manygil::Pickled, "pickled")
MANYGIL_ACCESSOR(const SharedBuffer&, as_buffer, manygil::SharedBuffer, "SharedBuffer")
MANYGIL_ACCESSOR(const Channel&, as_channel, manygil::Channel, "Channel")
MANYGIL_ACCESSOR(const SyncPrimitive&, as_sync, manygil::SyncPrimitive, "Lock/Event/Semaphore/Barrier")
MANYGIL_ACCESSOR(const SharedDict&, as_shared_dict, manygil::SharedDict, "SharedDict")
#undef MANYGIL_ACCESSOR

using DictItems = std::vector<std::pair<Value, Value>>;

#define MANYGIL_ITEMS(ret, name, alt, wanted)                               \
    const ret& Value::name() const {                                        \
        if (auto* p = std::get_if<alt>(&v_)) return p->items;               \
        wrong_kind(wanted);                                                 \
    }                                                                       \
    ret& Value::name() {                                                    \
        if (auto* p = std::get_if<alt>(&v_)) return p->items;               \
        wrong_kind(wanted);                                                 \
    }
MANYGIL_ITEMS(std::vector<Value>, as_tuple, manygil::Tuple, "tuple")
MANYGIL_ITEMS(std::vector<Value>, as_list, manygil::List, "list")
MANYGIL_ITEMS(DictItems, as_dict, manygil::Dict, "dict")
#undef MANYGIL_ITEMS

std::string Value::repr() const {
    std::string out;
    append_repr(out, *this);
    return out;
}

bool operator==(const Value& a, const Value& b) {
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Value::Kind::None: return true;
        case Value::Kind::Bool: return a.as_bool() == b.as_bool();
        case Value::Kind::Int: return a.as_int() == b.as_int();
        case Value::Kind::BigInt: return a.as_bigint() == b.as_bigint();
        case Value::Kind::Float: {
            double x = a.as_float(), y = b.as_float();
            return x == y || (std::isnan(x) && std::isnan(y));  // a NaN round trip is still equal
        }
        case Value::Kind::Str: return a.as_str() == b.as_str();
        case Value::Kind::Bytes: return a.as_bytes() == b.as_bytes();
        case Value::Kind::Tuple: return a.as_tuple() == b.as_tuple();
        case Value::Kind::List: return a.as_list() == b.as_list();
        case Value::Kind::Dict: return a.as_dict() == b.as_dict();
        case Value::Kind::Pickled: return a.as_pickled() == b.as_pickled();
        case Value::Kind::Buffer: return a.as_buffer() == b.as_buffer();  // the same memory
        case Value::Kind::Channel: return a.as_channel() == b.as_channel();  // the same queue
        case Value::Kind::Sync: return a.as_sync() == b.as_sync();           // the same primitive
        case Value::Kind::SharedDict: return a.as_shared_dict() == b.as_shared_dict();  // the same store
    }
    return false;
}

}  // namespace manygil
