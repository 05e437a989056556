// Value <-> Payload: how C++ hosts' values enter and leave the wire format. No Python here, so the
// decoder can be fuzzed on its own.
#include <string>

#include "codec/payload.hpp"

namespace manygil::detail {

namespace {

void encode_at(PayloadWriter& w, std::vector<Value>& handles, const Value& v, int depth) {
    bool container = v.kind() == Value::Kind::Tuple || v.kind() == Value::Kind::List || v.kind() == Value::Kind::Dict;
    if (container && depth > kMaxDepth) {
        throw ConversionError(v.type_name(), "", "nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    auto items = [&](Tag tag, const std::vector<Value>& seq) {
        w.tagged_count(tag, seq.size());
        for (const Value& item : seq) encode_at(w, handles, item, depth + 1);
    };
    switch (v.kind()) {
        case Value::Kind::None: return w.tag(Tag::None);
        case Value::Kind::Bool: return w.tag(v.as_bool() ? Tag::True : Tag::False);
        case Value::Kind::Int: return w.tagged_int(v.as_int());
        case Value::Kind::BigInt: {
            const std::string& hex = v.as_bigint().hex;
            return w.tagged_bytes(Tag::BigInt, hex.data(), hex.size());
        }
        case Value::Kind::Float: return w.tagged_float(v.as_float());
        case Value::Kind::Str: {
            const std::string& s = v.as_str();
            return w.tagged_bytes(is_ascii(s.data(), s.size()) ? Tag::Ascii : Tag::Str, s.data(), s.size());
        }
        case Value::Kind::Bytes: {
            const std::string& b = v.as_bytes().data;
            return w.tagged_bytes(Tag::Bytes, b.data(), b.size());
        }
        case Value::Kind::Tuple: return items(Tag::Tuple, v.as_tuple());
        case Value::Kind::List: return items(Tag::List, v.as_list());
        case Value::Kind::Dict:
            w.tagged_count(Tag::Dict, v.as_dict().size());
            for (const auto& [key, item] : v.as_dict()) {
                encode_at(w, handles, key, depth + 1);
                encode_at(w, handles, item, depth + 1);
            }
            return;
        case Value::Kind::Pickled: {
            const std::string& p = v.as_pickled().data;
            return w.tagged_bytes(Tag::Pickled, p.data(), p.size());
        }
        case Value::Kind::Buffer:
        case Value::Kind::Channel:
        case Value::Kind::Sync:
        case Value::Kind::SharedDict:
            w.tagged_count(Tag::Handle, handles.size());
            handles.push_back(v);
            return;
    }
}

class ValueDecoder {
public:
    explicit ValueDecoder(const Payload& p) : r_(p.bytes), handles_(p.handles) {}

    Value run() {
        Value v = decode(0);
        if (!r_.at_end()) PayloadReader::malformed("bytes after the value");
        return v;
    }

private:
    Value decode(int depth) {
        switch (r_.tag()) {
            case Tag::None: return Value();
            case Tag::False: return Value(false);
            case Tag::True: return Value(true);
            case Tag::Int: return Value(r_.int64());
            case Tag::BigInt: return Value(BigInt{std::string(r_.sized())});
            case Tag::Float: return Value(r_.f64());
            case Tag::Ascii: {
                std::string_view s = r_.sized();
                if (!is_ascii(s.data(), s.size())) PayloadReader::malformed("non-ASCII byte in an ASCII str");
                return Value(std::string(s));
            }
            case Tag::Str: return Value(std::string(r_.sized()));
            case Tag::Bytes: return Value(manygil::Bytes{std::string(r_.sized())});
            case Tag::Tuple: return Value(Tuple{items(depth)});
            case Tag::List: return Value(List{items(depth)});
            case Tag::Dict: {
                enter(depth);
                std::size_t n = r_.count(2);
                Dict d;
                d.items.reserve(n);
                for (std::size_t i = 0; i < n; ++i) {
                    Value key = decode(depth + 1);
                    d.items.emplace_back(std::move(key), decode(depth + 1));
                }
                return Value(std::move(d));
            }
            case Tag::Pickled: return Value(Pickled{std::string(r_.sized())});
            case Tag::Handle: {
                std::uint64_t index = r_.varint();
                if (index >= handles_.size()) PayloadReader::malformed("a handle index out of range");
                return handles_[index];
            }
        }
        PayloadReader::malformed("unknown tag");
    }

    void enter(int depth) {
        if (depth > kMaxDepth) PayloadReader::malformed("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }

    std::vector<Value> items(int depth) {
        enter(depth);
        std::size_t n = r_.count(1);
        std::vector<Value> out;
        out.reserve(n);
        for (std::size_t i = 0; i < n; ++i) out.push_back(decode(depth + 1));
        return out;
    }

    PayloadReader r_;
    const std::vector<Value>& handles_;
};

}  // namespace

Payload encode(const Value& value) {
    Payload p;
    PayloadWriter w;
    encode_at(w, p.handles, value, 0);
    p.bytes = w.take();
    return p;
}

Value decode_value(const Payload& payload) { return ValueDecoder(payload).run(); }

}  // namespace manygil::detail
