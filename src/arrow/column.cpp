#include "arrow/column.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <utility>

namespace manygil::arrow {

namespace {

static_assert(sizeof(MonthDayNano) == 16, "an interval month_day_nano value is 16 bytes in its buffer");

// Nesting deeper than this is refused: each level is a recursion of the readers and writers.
constexpr int kMaxDepth = 64;

struct Spelling {
    const char* format;
    Kind kind;
    TimeUnit unit;
};
// The flat formats that are one fixed string each.
constexpr Spelling kSpellings[] = {
    {"b", Kind::Bool, TimeUnit::Micro},        {"c", Kind::Int8, TimeUnit::Micro},
    {"s", Kind::Int16, TimeUnit::Micro},       {"i", Kind::Int32, TimeUnit::Micro},
    {"l", Kind::Int64, TimeUnit::Micro},       {"C", Kind::UInt8, TimeUnit::Micro},
    {"S", Kind::UInt16, TimeUnit::Micro},      {"I", Kind::UInt32, TimeUnit::Micro},
    {"L", Kind::UInt64, TimeUnit::Micro},      {"f", Kind::Float32, TimeUnit::Micro},
    {"g", Kind::Float64, TimeUnit::Micro},     {"u", Kind::Utf8, TimeUnit::Micro},
    {"z", Kind::Binary, TimeUnit::Micro},      {"U", Kind::LargeUtf8, TimeUnit::Micro},
    {"Z", Kind::LargeBinary, TimeUnit::Micro}, {"tdD", Kind::Date32, TimeUnit::Micro},
    {"tts", Kind::Time32, TimeUnit::Second},   {"ttm", Kind::Time32, TimeUnit::Milli},
    {"ttu", Kind::Time64, TimeUnit::Micro},    {"ttn", Kind::Time64, TimeUnit::Nano},
    {"tin", Kind::Interval, TimeUnit::Micro},  {"+l", Kind::List, TimeUnit::Micro},
    {"+L", Kind::LargeList, TimeUnit::Micro},  {"+s", Kind::Struct, TimeUnit::Micro},
    {"+m", Kind::Map, TimeUnit::Micro},
};

constexpr const char* kSupported =
    "supported: boolean, integers, float32/64, utf8, binary, date32, timestamps, time32/64, decimal128, "
    "interval month_day_nano, list, large list, fixed-size list, struct, map";

const char* unit_letter(TimeUnit u) {
    switch (u) {
        case TimeUnit::Second: return "s";
        case TimeUnit::Milli: return "m";
        case TimeUnit::Micro: return "u";
        case TimeUnit::Nano: return "n";
    }
    return "u";
}

// Kinds whose offsets are 64-bit.
bool large(Kind k) { return k == Kind::LargeUtf8 || k == Kind::LargeBinary || k == Kind::LargeList; }

// Kinds whose value i spans [offsets[i], offsets[i + 1]) of their data or child.
bool list_offsets(Kind k) { return k == Kind::List || k == Kind::LargeList || k == Kind::Map; }

// Buffers of an array of this kind, as the spec counts them (validity first).
std::int64_t buffer_count(const ColumnType& t) {
    if (t.kind == Kind::Struct || t.kind == Kind::FixedSizeList) return 1;
    return t.variable_width() ? 3 : 2;
}

bool bit(const std::uint8_t* bits, std::int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

void set_bit(std::vector<std::uint8_t>& bits, std::int64_t i, bool on) {
    auto byte = static_cast<std::size_t>(i >> 3);
    if (bits.size() <= byte) bits.resize(byte + 1, 0);
    if (on) bits[byte] = static_cast<std::uint8_t>(bits[byte] | (1u << (i & 7)));
    else bits[byte] = static_cast<std::uint8_t>(bits[byte] & ~(1u << (i & 7)));
}

// The signed range of a signed kind (Date32, Time32: int32).
std::pair<std::int64_t, std::int64_t> signed_range(Kind k) {
    switch (k) {
        case Kind::Int8: return {INT8_MIN, INT8_MAX};
        case Kind::Int16: return {INT16_MIN, INT16_MAX};
        case Kind::Int32: case Kind::Date32: case Kind::Time32: return {INT32_MIN, INT32_MAX};
        default: return {INT64_MIN, INT64_MAX};
    }
}

std::uint64_t unsigned_max(Kind k) {
    switch (k) {
        case Kind::UInt8: return UINT8_MAX;
        case Kind::UInt16: return UINT16_MAX;
        case Kind::UInt32: return UINT32_MAX;
        default: return UINT64_MAX;
    }
}

bool is_signed_int(Kind k) {
    return k == Kind::Int8 || k == Kind::Int16 || k == Kind::Int32 || k == Kind::Int64 || k == Kind::Date32 ||
           k == Kind::Timestamp || k == Kind::Time32 || k == Kind::Time64;
}
bool is_unsigned_int(Kind k) { return k == Kind::UInt8 || k == Kind::UInt16 || k == Kind::UInt32 || k == Kind::UInt64; }

template <class T>
void put(std::vector<std::uint8_t>& out, T v) {
    std::size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
}

std::string join_path(const std::string& parent, const std::string& name) {
    return parent.empty() ? name : parent + "." + name;
}

std::string where(const std::string& path) { return path.empty() ? std::string() : " (column '" + path + "')"; }

// "12" -> 12; nullopt for anything but a decimal number (with a leading '-' when `sign`).
bool parse_int(std::string_view s, bool sign, int& out) {
    bool negative = sign && !s.empty() && s.front() == '-';
    if (negative) s.remove_prefix(1);
    if (s.empty() || s.size() > 9) return false;
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    out = negative ? -v : v;
    return true;
}

// One node's format string of the spec, without children ("+l", "d:10,2", "tsu:UTC").
ColumnType parse_node(std::string_view format) {
    for (const Spelling& s : kSpellings) {
        if (format == s.format) {
            ColumnType t;
            t.kind = s.kind;
            t.unit = s.unit;
            return t;
        }
    }
    if (format.size() >= 4 && format.substr(0, 2) == "ts" && format[3] == ':') {
        ColumnType t;
        t.kind = Kind::Timestamp;
        t.timezone = std::string(format.substr(4));
        switch (format[2]) {
            case 's': t.unit = TimeUnit::Second; return t;
            case 'm': t.unit = TimeUnit::Milli; return t;
            case 'u': t.unit = TimeUnit::Micro; return t;
            case 'n': t.unit = TimeUnit::Nano; return t;
            default: break;
        }
    }
    if (format.substr(0, 2) == "d:") {  // d:P,S or d:P,S,BITS
        std::string_view rest = format.substr(2);
        std::size_t c1 = rest.find(',');
        std::size_t c2 = c1 == std::string_view::npos ? c1 : rest.find(',', c1 + 1);
        ColumnType t;
        t.kind = Kind::Decimal128;
        int bits = 128;
        bool ok = c1 != std::string_view::npos && parse_int(rest.substr(0, c1), false, t.precision) &&
                  parse_int(rest.substr(c1 + 1, c2 == std::string_view::npos ? c2 : c2 - c1 - 1), true, t.scale) &&
                  (c2 == std::string_view::npos || parse_int(rest.substr(c2 + 1), false, bits));
        if (ok && bits != 128) {
            throw ArrowError("unsupported Arrow format '" + std::string(format) + "': a " + std::to_string(bits) +
                             "-bit decimal (only 128-bit decimals are supported)");
        }
        if (ok && t.precision >= 1 && t.precision <= 38 && t.scale >= -38 && t.scale <= t.precision) return t;
        throw ArrowError("bad Arrow decimal format '" + std::string(format) +
                         "' (d:P,S with a precision of 1 to 38 and a scale of at most the precision)");
    }
    if (format.substr(0, 3) == "+w:") {
        int n = 0;
        if (!parse_int(format.substr(3), false, n) || n < 1) {
            throw ArrowError("bad Arrow fixed-size list format '" + std::string(format) + "' (+w:N, N >= 1)");
        }
        ColumnType t;
        t.kind = Kind::FixedSizeList;
        t.list_size = n;
        return t;
    }
    throw ArrowError("unsupported Arrow format '" + std::string(format) + "' (" + kSupported + ")");
}

// How many children the format of a node takes: exactly that many, or any (-1) for structs.
int child_count(Kind k) {
    switch (k) {
        case Kind::List: case Kind::LargeList: case Kind::FixedSizeList: case Kind::Map: return 1;
        case Kind::Struct: return -1;
        default: return 0;
    }
}

// A map's one child: a struct of a key and a value, which the spec requires as a non-nullable
// "entries" of a non-nullable "key" and a "value".
bool map_entries_fit(const Field& entries) {
    return entries.type.kind == Kind::Struct && entries.type.children.size() == 2;
}

Field map_entries(ColumnType key, ColumnType value) {
    ColumnType entries;
    entries.kind = Kind::Struct;
    entries.children.push_back(Field{"key", std::move(key), false});
    entries.children.push_back(Field{"value", std::move(value), true});
    return Field{"entries", std::move(entries), false};
}

// Reads a type spec (the header's grammar): a node's format, then for a nested one its children
// between '<' and '>', separated by ','.
class SpecParser {
public:
    explicit SpecParser(std::string_view spec) : s_(spec) {}

    ColumnType whole() {
        ColumnType t = type(0);
        if (pos_ != s_.size()) fail("unexpected '" + std::string(1, s_[pos_]) + "'");
        return t;
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw ArrowError("bad Arrow type spec '" + std::string(s_) + "' at position " + std::to_string(pos_) + ": " +
                         why);
    }
    bool at(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
    void expect(char c) {
        if (!at(c)) fail(std::string("expected '") + c + "'");
        ++pos_;
    }
    static bool delimiter(char c) { return c == ',' || c == '<' || c == '>'; }

    // The node's format: up to a delimiter, except that a decimal's own commas belong to it ("d:10,2"
    // and "d:10,2,128" when the third number is not a field name) and a time zone runs to ',' or '>'.
    std::string_view node_format() {
        std::size_t start = pos_;
        std::string_view rest = s_.substr(pos_);
        if (rest.substr(0, 2) == "d:") {
            std::size_t end = 2;
            for (int commas = 0; end < rest.size(); ++end) {
                char c = rest[end];
                if (c == ',') {
                    // A third number is the bit width only when a delimiter or the end follows it.
                    std::size_t next = end + 1;
                    while (next < rest.size() && (std::isdigit(static_cast<unsigned char>(rest[next])) || rest[next] == '-')) ++next;
                    if (commas == 0 || (commas == 1 && next > end + 1 && (next == rest.size() || delimiter(rest[next])))) {
                        ++commas;
                        continue;
                    }
                    break;
                }
                if (delimiter(c)) break;
            }
            pos_ += end;
        } else {
            bool timestamp = rest.substr(0, 2) == "ts";
            while (pos_ < s_.size() && !(s_[pos_] == ',' || s_[pos_] == '>' || (!timestamp && s_[pos_] == '<'))) ++pos_;
        }
        return s_.substr(start, pos_ - start);
    }

    // A struct field's name: up to ':', or in double quotes ("" for a quote).
    std::string field_name() {
        std::string name;
        if (at('"')) {
            ++pos_;
            for (;;) {
                if (pos_ >= s_.size()) fail("a field name without its closing quote");
                char c = s_[pos_++];
                if (c == '"') {
                    if (!at('"')) break;
                    ++pos_;
                }
                name += c;
            }
        } else {
            while (pos_ < s_.size() && s_[pos_] != ':' && !delimiter(s_[pos_]) && s_[pos_] != '"') name += s_[pos_++];
            if (name.empty()) fail("a struct field without a name (name:type)");
        }
        expect(':');
        return name;
    }

    ColumnType type(int depth) {
        if (depth > kMaxDepth) fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
        std::size_t start = pos_;
        std::string_view format = node_format();
        if (format.empty()) fail("a type expected");
        ColumnType t = parse_node(format);
        int want = child_count(t.kind);
        if (want == 0) return t;
        if (!at('<')) {
            pos_ = start;
            fail("a '" + std::string(format) + "' type needs its " +
                 (t.kind == Kind::Struct ? "fields, as in '+s<a:i,b:u>'"
                  : t.kind == Kind::Map  ? "key and value types, as in '+m<u,l>'"
                                         : "item type, as in '" + std::string(format) + "<i>'"));
        }
        ++pos_;
        if (t.kind == Kind::Struct) {
            while (!at('>')) {
                if (!t.children.empty()) expect(',');
                std::string name = field_name();
                t.children.push_back(Field{std::move(name), type(depth + 1), true});
            }
        } else if (t.kind == Kind::Map) {
            ColumnType key = type(depth + 1);
            expect(',');
            t.children.push_back(map_entries(std::move(key), type(depth + 1)));
        } else {
            t.children.push_back(Field{"item", type(depth + 1), true});
        }
        expect('>');
        return t;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

// A name in a spec: bare when the parser reads it back as it is, quoted otherwise.
std::string spec_name(const std::string& name) {
    bool bare = !name.empty() && name.find_first_of(":,<>\" \t\n") == std::string::npos;
    if (bare) return name;
    std::string out = "\"";
    for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

ColumnType type_from_schema(const ArrowSchema& schema, const std::string& path, int depth) {
    if (!schema.format) throw ArrowError("an Arrow schema without a format" + where(path));
    if (schema.dictionary) throw ArrowError("dictionary-encoded Arrow arrays are not supported" + where(path));
    if (depth > kMaxDepth) throw ArrowError("an Arrow type nested deeper than " + std::to_string(kMaxDepth) + " levels" + where(path));
    ColumnType t;
    try {
        t = parse_node(schema.format);
    } catch (const ArrowError& e) {
        throw ArrowError(e.what() + where(path));
    }
    int want = child_count(t.kind);
    if (schema.n_children < 0 || (schema.n_children > 0 && !schema.children) ||
        (want >= 0 && schema.n_children != want)) {
        throw ArrowError("an Arrow '" + std::string(schema.format) + "' schema with " +
                         std::to_string(schema.n_children) + " children (it takes " +
                         (want < 0 ? std::string("any number") : std::to_string(want)) + ")" + where(path));
    }
    for (std::int64_t k = 0; k < schema.n_children; ++k) {
        const ArrowSchema* child = schema.children[k];
        if (!child) throw ArrowError("an Arrow schema with a null child" + where(path));
        std::string name = child->name ? child->name : "";
        std::string child_path = join_path(path, name.empty() ? "[" + std::to_string(k) + "]" : name);
        t.children.push_back(
            Field{name, type_from_schema(*child, child_path, depth + 1), (child->flags & ARROW_FLAG_NULLABLE) != 0});
    }
    if (t.kind == Kind::Map && !map_entries_fit(t.children.front())) {
        throw ArrowError("an Arrow map whose child is not a struct of a key and a value" + where(path));
    }
    return t;
}

}  // namespace

std::string decimal_to_string(int128 unscaled, int scale) {
    __extension__ using uint128 = unsigned __int128;
    bool negative = unscaled < 0;
    uint128 magnitude = negative ? uint128(0) - static_cast<uint128>(unscaled) : static_cast<uint128>(unscaled);
    std::string digits;
    do {
        digits += static_cast<char>('0' + static_cast<int>(magnitude % 10));
        magnitude /= 10;
    } while (magnitude != 0);
    std::reverse(digits.begin(), digits.end());
    if (scale < 0) {
        digits.append(static_cast<std::size_t>(-scale), '0');
    } else if (scale > 0) {
        if (digits.size() <= static_cast<std::size_t>(scale)) {
            digits.insert(0, static_cast<std::size_t>(scale) + 1 - digits.size(), '0');
        }
        digits.insert(digits.size() - static_cast<std::size_t>(scale), ".");
    }
    return negative ? "-" + digits : digits;
}

// ---- ColumnType ---------------------------------------------------------------------------------

ColumnType ColumnType::parse(std::string_view spec) { return SpecParser(spec).whole(); }

ColumnType ColumnType::from_schema(const ArrowSchema& schema) {
    return type_from_schema(schema, schema.name ? schema.name : "", 0);
}

std::string ColumnType::format() const {
    switch (kind) {
        case Kind::Timestamp: return std::string("ts") + unit_letter(unit) + ":" + timezone;
        case Kind::Time32: case Kind::Time64: return std::string("tt") + unit_letter(unit);
        case Kind::Decimal128: return "d:" + std::to_string(precision) + "," + std::to_string(scale);
        case Kind::FixedSizeList: return "+w:" + std::to_string(list_size);
        default: break;
    }
    for (const Spelling& s : kSpellings) {
        if (s.kind == kind) return s.format;
    }
    return "?";
}

std::string ColumnType::spec() const {
    if (!nested()) return format();
    std::string out = format() + "<";
    if (kind == Kind::Map && !children.empty() && map_entries_fit(children.front())) {
        const auto& kv = children.front().type.children;
        out += kv[0].type.spec() + "," + kv[1].type.spec();
    } else if (kind == Kind::Struct) {
        for (std::size_t k = 0; k < children.size(); ++k) {
            out += (k ? "," : "") + spec_name(children[k].name) + ":" + children[k].type.spec();
        }
    } else if (!children.empty()) {
        out += children.front().type.spec();
    }
    return out + ">";
}

std::size_t ColumnType::width() const noexcept {
    switch (kind) {
        case Kind::Int8: case Kind::UInt8: return 1;
        case Kind::Int16: case Kind::UInt16: return 2;
        case Kind::Int32: case Kind::UInt32: case Kind::Float32: case Kind::Date32: case Kind::Time32: return 4;
        case Kind::Int64: case Kind::UInt64: case Kind::Float64: case Kind::Timestamp: case Kind::Time64: return 8;
        case Kind::Decimal128: case Kind::Interval: return 16;
        default: return 0;
    }
}

bool ColumnType::variable_width() const noexcept {
    return kind == Kind::Utf8 || kind == Kind::Binary || kind == Kind::LargeUtf8 || kind == Kind::LargeBinary;
}

bool ColumnType::nested() const noexcept { return child_count(kind) != 0; }

bool ColumnType::operator==(const ColumnType& o) const {
    return kind == o.kind && unit == o.unit && timezone == o.timezone && precision == o.precision &&
           scale == o.scale && list_size == o.list_size && children == o.children;
}

// ---- ColumnView ---------------------------------------------------------------------------------

namespace {

// The whole type of a top-level array, once its producer is known not to have released it.
ColumnType checked_type(const ArrowSchema& schema, const ArrowArray& array) {
    if (!schema.release) throw ArrowError("the Arrow schema was released already");
    if (!array.release) throw ArrowError("the Arrow array was released already");
    return ColumnType::from_schema(schema);
}

}  // namespace

ColumnView::ColumnView(const ArrowSchema& schema, const ArrowArray& array)
    : ColumnView(checked_type(schema, array), array, 0, -1, schema.name ? schema.name : "") {}

ColumnView::ColumnView(ColumnType type, const ArrowArray& array, std::int64_t base, std::int64_t length,
                       const std::string& path)
    : type_(std::move(type)) {
    std::string here = where(path);
    if (array.dictionary) throw ArrowError("dictionary-encoded Arrow arrays are not supported" + here);
    if (array.length < 0 || array.offset < 0 || array.null_count < -1) {
        throw ArrowError("an Arrow array with a negative length, offset or null count" + here);
    }
    length_ = length >= 0 ? length : array.length;
    offset_ = array.offset + base;
    if (base + length_ > array.length) {  // a struct's child must cover the struct's rows
        throw ArrowError("an Arrow array of " + std::to_string(array.length) + " values under a struct that reads " +
                         std::to_string(base + length_) + here);
    }
    check_buffers(array, here);
    read_validity(array, here);
    if (buffer_count(type_) >= 2) {
        values_ = array.buffers[1];
        if (length_ > 0 && !values_) throw ArrowError("an Arrow array without its values buffer" + here);
    }
    if (type_.variable_width()) {
        data_ = static_cast<const char*>(array.buffers[2]);
        check_string_offsets(here);
    }
    read_children(array, path, here);
    if (list_offsets(type_.kind)) check_list_offsets(here);
}

void ColumnView::check_buffers(const ArrowArray& array, const std::string& here) const {
    std::int64_t want = buffer_count(type_);
    if (array.n_buffers != want || !array.buffers) {
        throw ArrowError("an Arrow '" + type_.format() + "' array needs " + std::to_string(want) + " buffers, not " +
                         std::to_string(array.n_buffers) + here);
    }
}

// The validity bitmap, and the nulls among this view's rows: the producer's count when the view is
// its whole array, counted when the count is unknown (-1) or the view is a struct's slice of it.
void ColumnView::read_validity(const ArrowArray& array, const std::string& here) {
    validity_ = static_cast<const std::uint8_t*>(array.buffers[0]);
    bool whole = offset_ == array.offset && length_ == array.length;
    if (array.null_count == 0) {
        validity_ = nullptr;  // nothing to look up
        null_count_ = 0;
        return;
    }
    if (array.null_count > 0 && !validity_) throw ArrowError("an Arrow array with nulls but no validity bitmap" + here);
    if (whole && array.null_count > 0) {
        null_count_ = array.null_count;
        return;
    }
    null_count_ = 0;
    if (validity_) {
        for (std::int64_t i = 0; i < length_; ++i) null_count_ += is_null(i) ? 1 : 0;
    }
}

void ColumnView::check_string_offsets(const std::string& here) const {
    if (length_ == 0) return;
    std::int64_t first, last;
    if (large(type_.kind)) {
        const auto* o = static_cast<const std::int64_t*>(values_);
        first = o[offset_];
        last = o[offset_ + length_];
    } else {
        const auto* o = static_cast<const std::int32_t*>(values_);
        first = o[offset_];
        last = o[offset_ + length_];
    }
    if (first < 0 || last < first) throw ArrowError("an Arrow string array with bad offsets" + here);
    if (last > first && !data_) throw ArrowError("an Arrow string array without its data buffer" + here);
}

// The children's views: a struct's hold the struct's rows (its offset added to theirs), a list's its
// items whole.
void ColumnView::read_children(const ArrowArray& array, const std::string& path, const std::string& here) {
    auto want = static_cast<std::int64_t>(type_.children.size());
    if (array.n_children != want || (want > 0 && !array.children)) {
        throw ArrowError("an Arrow '" + type_.format() + "' array with " + std::to_string(array.n_children) +
                         " children where its schema has " + std::to_string(want) + here);
    }
    children_.reserve(type_.children.size());
    for (std::size_t k = 0; k < type_.children.size(); ++k) {
        const ArrowArray* child = array.children[k];
        const Field& field = type_.children[k];
        std::string child_path = join_path(path, field.name.empty() ? "[" + std::to_string(k) + "]" : field.name);
        if (!child) throw ArrowError("an Arrow array with a null child" + where(child_path));
        if (type_.kind == Kind::Struct) children_.push_back(ColumnView(field.type, *child, offset_, length_, child_path));
        else children_.push_back(ColumnView(field.type, *child, 0, -1, child_path));
    }
    if (type_.kind == Kind::FixedSizeList && (offset_ + length_) * type_.list_size > children_.front().length()) {
        throw ArrowError("an Arrow '" + type_.format() + "' array of " + std::to_string(offset_ + length_) +
                         " lists over " + std::to_string(children_.front().length()) + " items" + here);
    }
}

// Every offset this view reads stays within the child and never goes back, so that list_range's
// ranges are always rows of the child.
void ColumnView::check_list_offsets(const std::string& here) const {
    if (length_ == 0) return;
    std::int64_t items = children_.front().length(), previous = 0;
    for (std::int64_t i = 0; i <= length_; ++i) {
        std::int64_t o = large(type_.kind) ? static_cast<const std::int64_t*>(values_)[offset_ + i]
                                           : static_cast<const std::int32_t*>(values_)[offset_ + i];
        if (o < (i ? previous : 0) || o > items) {
            throw ArrowError("an Arrow '" + type_.format() + "' array with bad offsets (" + std::to_string(o) +
                             " at value " + std::to_string(i) + ", over " + std::to_string(items) + " items)" + here);
        }
        previous = o;
    }
}

bool ColumnView::is_null(std::int64_t i) const noexcept { return validity_ && !bit(validity_, offset_ + i); }

std::int64_t ColumnView::int_at(std::int64_t i) const noexcept {
    std::int64_t at = offset_ + i;
    switch (type_.kind) {
        case Kind::Int8: return static_cast<const std::int8_t*>(values_)[at];
        case Kind::Int16: return static_cast<const std::int16_t*>(values_)[at];
        case Kind::Int32: case Kind::Date32: case Kind::Time32: return static_cast<const std::int32_t*>(values_)[at];
        case Kind::Int64: case Kind::Timestamp: case Kind::Time64: return static_cast<const std::int64_t*>(values_)[at];
        default: return 0;
    }
}

std::uint64_t ColumnView::uint_at(std::int64_t i) const noexcept {
    std::int64_t at = offset_ + i;
    switch (type_.kind) {
        case Kind::UInt8: return static_cast<const std::uint8_t*>(values_)[at];
        case Kind::UInt16: return static_cast<const std::uint16_t*>(values_)[at];
        case Kind::UInt32: return static_cast<const std::uint32_t*>(values_)[at];
        case Kind::UInt64: return static_cast<const std::uint64_t*>(values_)[at];
        default: return 0;
    }
}

double ColumnView::float_at(std::int64_t i) const noexcept {
    std::int64_t at = offset_ + i;
    if (type_.kind == Kind::Float32) return static_cast<const float*>(values_)[at];
    if (type_.kind == Kind::Float64) return static_cast<const double*>(values_)[at];
    return 0;
}

bool ColumnView::bool_at(std::int64_t i) const noexcept {
    return type_.kind == Kind::Bool && bit(static_cast<const std::uint8_t*>(values_), offset_ + i);
}

std::string_view ColumnView::bytes_at(std::int64_t i) const noexcept {
    if (!type_.variable_width()) return {};
    std::int64_t at = offset_ + i, start, end;
    if (large(type_.kind)) {
        const auto* o = static_cast<const std::int64_t*>(values_);
        start = o[at];
        end = o[at + 1];
    } else {
        const auto* o = static_cast<const std::int32_t*>(values_);
        start = o[at];
        end = o[at + 1];
    }
    if (end <= start) return {};
    return std::string_view(data_ + start, static_cast<std::size_t>(end - start));
}

int128 ColumnView::decimal_at(std::int64_t i) const noexcept {
    int128 v = 0;  // little-endian two's complement, as the spec lays it out (and x86-64 and arm64 read it)
    if (type_.kind == Kind::Decimal128) std::memcpy(&v, fixed_values_at(i), sizeof v);
    return v;
}

MonthDayNano ColumnView::interval_at(std::int64_t i) const noexcept {
    MonthDayNano v;
    if (type_.kind == Kind::Interval) std::memcpy(&v, fixed_values_at(i), sizeof v);
    return v;
}

const void* ColumnView::fixed_values_at(std::int64_t i) const noexcept {
    std::size_t width = type_.width();
    if (width == 0) return nullptr;
    return static_cast<const std::uint8_t*>(values_) + static_cast<std::size_t>(offset_ + i) * width;
}

std::pair<std::int64_t, std::int64_t> ColumnView::list_range(std::int64_t i) const noexcept {
    std::int64_t at = offset_ + i;
    if (type_.kind == Kind::FixedSizeList) return {at * type_.list_size, (at + 1) * type_.list_size};
    if (!list_offsets(type_.kind)) return {0, 0};
    if (large(type_.kind)) {
        const auto* o = static_cast<const std::int64_t*>(values_);
        return {o[at], o[at + 1]};
    }
    const auto* o = static_cast<const std::int32_t*>(values_);
    return {o[at], o[at + 1]};
}

// ---- ExportedArray ------------------------------------------------------------------------------

ExportedArray::ExportedArray(ExportedArray&& other) noexcept : schema(other.schema), array(other.array) {
    other.schema.release = nullptr;
    other.array.release = nullptr;
}

ExportedArray& ExportedArray::operator=(ExportedArray&& other) noexcept {
    if (this != &other) {
        if (schema.release) schema.release(&schema);
        if (array.release) array.release(&array);
        schema = other.schema;
        array = other.array;
        other.schema.release = nullptr;
        other.array.release = nullptr;
    }
    return *this;
}

ExportedArray::~ExportedArray() {
    if (schema.release) schema.release(&schema);
    if (array.release) array.release(&array);
}

// ---- ColumnBuilder ------------------------------------------------------------------------------

struct ColumnBuilder::State {
    ColumnType type;
    std::string name;
    bool nullable = true;
    std::int64_t length = 0, null_count = 0;
    std::vector<std::uint8_t> validity;  // built once the first null comes
    std::vector<std::uint8_t> values;    // fixed width: the values; Bool: bits; strings and lists: offsets
    std::string data;                    // variable width: the bytes
    std::vector<ColumnBuilder> children;

    bool has_offsets() const { return type.variable_width() || list_offsets(type.kind); }
    void start_offsets() {
        values.clear();
        push_offset(0);
    }
    void push_offset(std::int64_t end) {
        if (large(type.kind)) put<std::int64_t>(values, end);
        else put<std::int32_t>(values, static_cast<std::int32_t>(end));
    }
    std::int64_t last_offset() const {
        if (large(type.kind)) return reinterpret_cast<const std::int64_t*>(values.data())[length];
        return reinterpret_cast<const std::int32_t*>(values.data())[length];
    }
    // Where the items appended so far end: bytes for strings, child rows for lists.
    std::int64_t items_end() const {
        return type.variable_width() ? static_cast<std::int64_t>(data.size()) : children.front().length();
    }
    void valid() {
        if (!validity.empty() || null_count) set_bit(validity, length, true);
        ++length;
    }
    std::string what() const { return "a '" + type.format() + "' column" + (name.empty() ? "" : " ('" + name + "')"); }

    // Throws ArrowError naming the field when a nested value was left open in this tree.
    void check_closed() const;
};

void ColumnBuilder::State::check_closed() const {
    for (const ColumnBuilder& c : children) c.s_->check_closed();
    if (type.kind == Kind::Struct) {
        for (const ColumnBuilder& c : children) {
            if (c.length() != length) {
                throw ArrowError("field '" + c.s_->name + "' of " + what() + " has " + std::to_string(c.length()) +
                                 " values for " + std::to_string(length) + " rows (a row not closed by append_struct)");
            }
        }
    } else if (type.kind == Kind::FixedSizeList) {
        if (children.front().length() != length * type.list_size) {
            throw ArrowError(what() + " has " + std::to_string(children.front().length()) + " items for " +
                             std::to_string(length) + " lists (a list not closed by append_list)");
        }
    } else if (list_offsets(type.kind) && children.front().length() != last_offset()) {
        throw ArrowError(what() + " has items after its last list (a list not closed by append_list)");
    }
}

namespace {

// What an exported schema and array own, freed by their release callbacks; a child's structs live
// here too, and are released first unless a consumer moved them out.
struct SchemaData {
    std::string format, name;
    std::vector<ArrowSchema> children;
    std::vector<ArrowSchema*> child_pointers;
};
struct ArrayData {
    std::vector<std::uint8_t> validity, values;
    std::string data;
    const void* buffers[3] = {nullptr, nullptr, nullptr};
    std::vector<ArrowArray> children;
    std::vector<ArrowArray*> child_pointers;
};

void release_schema(ArrowSchema* s) {
    auto* data = static_cast<SchemaData*>(s->private_data);
    for (ArrowSchema& c : data->children) {
        if (c.release) c.release(&c);
    }
    delete data;
    s->private_data = nullptr;
    s->release = nullptr;
}

void release_array(ArrowArray* a) {
    auto* data = static_cast<ArrayData*>(a->private_data);
    for (ArrowArray& c : data->children) {
        if (c.release) c.release(&c);
    }
    delete data;
    a->private_data = nullptr;
    a->release = nullptr;
}

// Checks a hand-made type's children against its kind before builders are made for them.
void check_shape(const ColumnType& t) {
    int want = child_count(t.kind);
    if ((want >= 0 && t.children.size() != static_cast<std::size_t>(want)) ||
        (t.kind == Kind::Map && !map_entries_fit(t.children.front())) ||
        (t.kind == Kind::FixedSizeList && t.list_size < 1)) {
        throw ArrowError("a '" + t.format() + "' column type with " + std::to_string(t.children.size()) +
                         " children (use ColumnType::parse)");
    }
}

// 10^digits, for digits up to 38 (below 2^127).
int128 power_of_ten(int digits) {
    int128 v = 1;
    for (int i = 0; i < digits; ++i) v *= 10;
    return v;
}

}  // namespace

ColumnBuilder::ColumnBuilder(ColumnType type, std::string name) : ColumnBuilder(std::move(type), std::move(name), true) {}

ColumnBuilder::ColumnBuilder(ColumnType type, std::string name, bool nullable) : s_(std::make_unique<State>()) {
    check_shape(type);
    s_->type = std::move(type);
    s_->name = std::move(name);
    s_->nullable = nullable;
    for (const Field& f : s_->type.children) s_->children.push_back(ColumnBuilder(f.type, f.name, f.nullable));
    if (s_->has_offsets()) s_->start_offsets();
}

ColumnBuilder::~ColumnBuilder() = default;
ColumnBuilder::ColumnBuilder(ColumnBuilder&&) noexcept = default;
ColumnBuilder& ColumnBuilder::operator=(ColumnBuilder&&) noexcept = default;

const ColumnType& ColumnBuilder::type() const noexcept { return s_->type; }
std::int64_t ColumnBuilder::length() const noexcept { return s_->length; }
std::size_t ColumnBuilder::n_children() const noexcept { return s_->children.size(); }

ColumnBuilder& ColumnBuilder::child(std::size_t k) {
    if (k >= s_->children.size()) {
        throw ArrowError(s_->what() + " has " + std::to_string(s_->children.size()) + " children, not a child " +
                         std::to_string(k));
    }
    return s_->children[k];
}

void ColumnBuilder::reserve(std::int64_t n) {
    std::size_t w = s_->type.width();
    if (w) s_->values.reserve(static_cast<std::size_t>(n) * w);
    else if (s_->has_offsets()) s_->values.reserve(static_cast<std::size_t>(n + 1) * (large(s_->type.kind) ? 8 : 4));
}

void ColumnBuilder::append_null() {
    State& s = *s_;
    if (!s.nullable) throw ArrowError("a NULL in non-nullable field '" + s.name + "'");
    // The slots the layout keeps under a NULL: a struct's fields, a fixed-size list's items.
    if (s.type.kind == Kind::Struct) {
        for (ColumnBuilder& c : s.children) c.append_null();
    } else if (s.type.kind == Kind::FixedSizeList) {
        for (std::int32_t k = 0; k < s.type.list_size; ++k) s.children.front().append_null();
    }
    if (s.validity.empty() && s.null_count == 0) {  // the first null: every value so far was valid
        for (std::int64_t i = 0; i < s.length; ++i) set_bit(s.validity, i, true);
    }
    set_bit(s.validity, s.length, false);
    ++s.null_count;
    // A slot in the values too, whatever it holds.
    if (s.type.kind == Kind::Bool) set_bit(s.values, s.length, false);
    else if (std::size_t w = s.type.width()) s.values.resize(s.values.size() + w, 0);
    else if (s.has_offsets()) s.push_offset(s.items_end());
    ++s.length;
}

void ColumnBuilder::append_int(std::int64_t v) {
    State& s = *s_;
    Kind k = s.type.kind;
    if (is_unsigned_int(k)) {
        if (v < 0) throw ArrowError(std::to_string(v) + " does not fit a " + s.type.format() + " (unsigned) column");
        return append_uint(static_cast<std::uint64_t>(v));
    }
    if (!is_signed_int(k)) throw ArrowError("an integer for a '" + s.type.format() + "' column");
    auto [lo, hi] = signed_range(k);
    if (v < lo || v > hi) throw ArrowError(std::to_string(v) + " does not fit a '" + s.type.format() + "' column");
    switch (s.type.width()) {
        case 1: put<std::int8_t>(s.values, static_cast<std::int8_t>(v)); break;
        case 2: put<std::int16_t>(s.values, static_cast<std::int16_t>(v)); break;
        case 4: put<std::int32_t>(s.values, static_cast<std::int32_t>(v)); break;
        default: put<std::int64_t>(s.values, v); break;
    }
    s.valid();
}

void ColumnBuilder::append_uint(std::uint64_t v) {
    State& s = *s_;
    Kind k = s.type.kind;
    if (is_signed_int(k)) {
        if (v > static_cast<std::uint64_t>(INT64_MAX)) {
            throw ArrowError(std::to_string(v) + " does not fit a '" + s.type.format() + "' column");
        }
        return append_int(static_cast<std::int64_t>(v));
    }
    if (!is_unsigned_int(k)) throw ArrowError("an integer for a '" + s.type.format() + "' column");
    if (v > unsigned_max(k)) throw ArrowError(std::to_string(v) + " does not fit a '" + s.type.format() + "' column");
    switch (s.type.width()) {
        case 1: put<std::uint8_t>(s.values, static_cast<std::uint8_t>(v)); break;
        case 2: put<std::uint16_t>(s.values, static_cast<std::uint16_t>(v)); break;
        case 4: put<std::uint32_t>(s.values, static_cast<std::uint32_t>(v)); break;
        default: put<std::uint64_t>(s.values, v); break;
    }
    s.valid();
}

void ColumnBuilder::append_float(double v) {
    State& s = *s_;
    if (s.type.kind == Kind::Float32) put<float>(s.values, static_cast<float>(v));
    else if (s.type.kind == Kind::Float64) put<double>(s.values, v);
    else throw ArrowError("a float for a '" + s.type.format() + "' column");
    s.valid();
}

void ColumnBuilder::append_bool(bool v) {
    State& s = *s_;
    if (s.type.kind != Kind::Bool) throw ArrowError("a bool for a '" + s.type.format() + "' column");
    set_bit(s.values, s.length, v);
    s.valid();
}

void ColumnBuilder::append_bytes(std::string_view v) {
    State& s = *s_;
    if (!s.type.variable_width()) throw ArrowError("bytes or a str for a '" + s.type.format() + "' column");
    if (!large(s.type.kind) && s.data.size() + v.size() > static_cast<std::size_t>(INT32_MAX)) {
        throw ArrowError("a '" + s.type.format() + "' column holds at most 2 GiB of text; use a large type");
    }
    s.data.append(v);
    s.push_offset(static_cast<std::int64_t>(s.data.size()));
    s.valid();
}

void ColumnBuilder::append_decimal(int128 unscaled) {
    State& s = *s_;
    const ColumnType& t = s.type;
    if (t.kind != Kind::Decimal128) throw ArrowError("a decimal for a '" + t.format() + "' column");
    // "d:38,0" is also DuckDB's HUGEINT, whose values use all 128 bits: there only the bits bound it.
    bool hugeint = t.precision == 38 && t.scale == 0;
    int128 limit = power_of_ten(t.precision);
    if (!hugeint && (unscaled >= limit || unscaled <= -limit)) {
        throw ArrowError(decimal_to_string(unscaled, t.scale) + " does not fit a '" + t.format() + "' column (" +
                         std::to_string(t.precision) + " digits, " + std::to_string(t.scale) + " after the point)");
    }
    put<int128>(s.values, unscaled);
    s.valid();
}

void ColumnBuilder::append_interval(MonthDayNano v) {
    State& s = *s_;
    if (s.type.kind != Kind::Interval) throw ArrowError("an interval for a '" + s.type.format() + "' column");
    put<MonthDayNano>(s.values, v);
    s.valid();
}

void ColumnBuilder::append_list() {
    State& s = *s_;
    if (s.type.kind == Kind::FixedSizeList) {
        std::int64_t items = s.children.front().length() - s.length * s.type.list_size;
        if (items != s.type.list_size) {
            throw ArrowError(s.what() + " takes lists of " + std::to_string(s.type.list_size) + " items, not " +
                             std::to_string(items));
        }
        return s.valid();
    }
    if (!list_offsets(s.type.kind)) throw ArrowError("a list for " + s.what());
    std::int64_t end = s.items_end();
    if (!large(s.type.kind) && end > INT32_MAX) {
        throw ArrowError(s.what() + " holds at most 2^31 items in all; use a large list");
    }
    s.push_offset(end);
    s.valid();
}

void ColumnBuilder::append_struct() {
    State& s = *s_;
    if (s.type.kind != Kind::Struct) throw ArrowError("a struct for " + s.what());
    for (const ColumnBuilder& c : s.children) {
        if (c.length() != s.length + 1) {
            throw ArrowError("field '" + c.s_->name + "' of " + s.what() + " has " + std::to_string(c.length()) +
                             " values for row " + std::to_string(s.length) + " (one value per field per row)");
        }
    }
    s.valid();
}

ExportedArray ColumnBuilder::finish() {
    State& s = *s_;
    s.check_closed();  // before any child is emptied, so that a refusal leaves the builder as it was
    std::vector<ExportedArray> children;
    for (ColumnBuilder& c : s.children) children.push_back(c.finish());

    auto schema_data = std::make_unique<SchemaData>();
    schema_data->format = s.type.format();
    schema_data->name = s.name;
    auto array_data = std::make_unique<ArrayData>();
    // The children's structs move into this array's and schema's data, which release them.
    for (ExportedArray& c : children) {
        schema_data->children.push_back(c.schema);
        array_data->children.push_back(c.array);
        c.schema.release = nullptr;
        c.array.release = nullptr;
    }
    for (ArrowSchema& c : schema_data->children) schema_data->child_pointers.push_back(&c);
    for (ArrowArray& c : array_data->children) array_data->child_pointers.push_back(&c);

    if (s.type.kind == Kind::Bool) s.values.resize(static_cast<std::size_t>((s.length + 7) / 8), 0);
    if (s.null_count) {
        s.validity.resize(static_cast<std::size_t>((s.length + 7) / 8), 0);
        array_data->validity = std::move(s.validity);
    }
    array_data->values = std::move(s.values);
    array_data->values.reserve(16);  // never a null pointer, even for an empty array
    array_data->data = std::move(s.data);
    array_data->buffers[0] = s.null_count ? array_data->validity.data() : nullptr;
    array_data->buffers[1] = array_data->values.data();
    array_data->buffers[2] = array_data->data.data();

    ExportedArray out;
    out.schema.format = schema_data->format.c_str();
    out.schema.name = schema_data->name.c_str();
    out.schema.metadata = nullptr;
    out.schema.flags = s.nullable ? ARROW_FLAG_NULLABLE : 0;  // never MAP_KEYS_SORTED: keys are as given
    out.schema.n_children = static_cast<std::int64_t>(schema_data->children.size());
    out.schema.children = schema_data->children.empty() ? nullptr : schema_data->child_pointers.data();
    out.schema.dictionary = nullptr;
    out.schema.release = release_schema;
    out.schema.private_data = schema_data.release();

    out.array.length = s.length;
    out.array.null_count = s.null_count;
    out.array.offset = 0;
    out.array.n_buffers = buffer_count(s.type);
    out.array.n_children = static_cast<std::int64_t>(array_data->children.size());
    out.array.buffers = array_data->buffers;
    out.array.children = array_data->children.empty() ? nullptr : array_data->child_pointers.data();
    out.array.dictionary = nullptr;
    out.array.release = release_array;
    out.array.private_data = array_data.release();

    // Empty again, ready for another array of the same type.
    s.length = s.null_count = 0;
    s.validity.clear();
    s.values.clear();
    s.data.clear();
    if (s.has_offsets()) s.start_offsets();
    return out;
}

// ---- Copying values -----------------------------------------------------------------------------

void append_value(ColumnBuilder& to, const ColumnView& from, std::int64_t i) {
    if (from.is_null(i)) return to.append_null();
    const ColumnType& t = from.type();
    if (to.type().kind != t.kind) {
        throw ArrowError("a '" + t.format() + "' value for a '" + to.type().format() + "' column");
    }
    switch (t.kind) {
        case Kind::Bool: return to.append_bool(from.bool_at(i));
        case Kind::UInt8: case Kind::UInt16: case Kind::UInt32: case Kind::UInt64: return to.append_uint(from.uint_at(i));
        case Kind::Float32: case Kind::Float64: return to.append_float(from.float_at(i));
        case Kind::Utf8: case Kind::Binary: case Kind::LargeUtf8: case Kind::LargeBinary:
            return to.append_bytes(from.bytes_at(i));
        case Kind::Decimal128: return to.append_decimal(from.decimal_at(i));
        case Kind::Interval: return to.append_interval(from.interval_at(i));
        case Kind::List: case Kind::LargeList: case Kind::FixedSizeList: case Kind::Map: {
            auto [first, last] = from.list_range(i);
            for (std::int64_t j = first; j < last; ++j) append_value(to.child(0), from.child(0), j);
            return to.append_list();
        }
        case Kind::Struct: {
            if (to.n_children() != from.n_children()) {
                throw ArrowError("a struct of " + std::to_string(from.n_children()) + " fields for one of " +
                                 std::to_string(to.n_children()));
            }
            for (std::size_t k = 0; k < from.n_children(); ++k) append_value(to.child(k), from.child(k), i);
            return to.append_struct();
        }
        default: return to.append_int(from.int_at(i));  // signed integers, dates, timestamps, times
    }
}

}  // namespace manygil::arrow
