#include "arrow/column.hpp"

#include <cstring>
#include <limits>
#include <utility>

namespace manygil::arrow {

namespace {

struct Spelling {
    const char* format;
    Kind kind;
};
constexpr Spelling kSpellings[] = {
    {"b", Kind::Bool},      {"c", Kind::Int8},      {"s", Kind::Int16},     {"i", Kind::Int32},
    {"l", Kind::Int64},     {"C", Kind::UInt8},     {"S", Kind::UInt16},    {"I", Kind::UInt32},
    {"L", Kind::UInt64},    {"f", Kind::Float32},   {"g", Kind::Float64},   {"u", Kind::Utf8},
    {"z", Kind::Binary},    {"U", Kind::LargeUtf8}, {"Z", Kind::LargeBinary}, {"tdD", Kind::Date32},
};

const char* unit_letter(TimeUnit u) {
    switch (u) {
        case TimeUnit::Second: return "s";
        case TimeUnit::Milli: return "m";
        case TimeUnit::Micro: return "u";
        case TimeUnit::Nano: return "n";
    }
    return "u";
}

bool large(Kind k) { return k == Kind::LargeUtf8 || k == Kind::LargeBinary; }

bool bit(const std::uint8_t* bits, std::int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

void set_bit(std::vector<std::uint8_t>& bits, std::int64_t i, bool on) {
    auto byte = static_cast<std::size_t>(i >> 3);
    if (bits.size() <= byte) bits.resize(byte + 1, 0);
    if (on) bits[byte] = static_cast<std::uint8_t>(bits[byte] | (1u << (i & 7)));
    else bits[byte] = static_cast<std::uint8_t>(bits[byte] & ~(1u << (i & 7)));
}

// The signed range of a signed kind (Date32: int32).
std::pair<std::int64_t, std::int64_t> signed_range(Kind k) {
    switch (k) {
        case Kind::Int8: return {INT8_MIN, INT8_MAX};
        case Kind::Int16: return {INT16_MIN, INT16_MAX};
        case Kind::Int32: case Kind::Date32: return {INT32_MIN, INT32_MAX};
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
           k == Kind::Timestamp;
}
bool is_unsigned_int(Kind k) { return k == Kind::UInt8 || k == Kind::UInt16 || k == Kind::UInt32 || k == Kind::UInt64; }

template <class T>
void put(std::vector<std::uint8_t>& out, T v) {
    std::size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
}

}  // namespace

// ---- ColumnType ---------------------------------------------------------------------------------

ColumnType ColumnType::parse(std::string_view format) {
    for (const Spelling& s : kSpellings) {
        if (format == s.format) return ColumnType{s.kind, TimeUnit::Micro, ""};
    }
    if (format.size() >= 4 && format.substr(0, 2) == "ts" && format[3] == ':') {
        ColumnType t{Kind::Timestamp, TimeUnit::Micro, std::string(format.substr(4))};
        switch (format[2]) {
            case 's': t.unit = TimeUnit::Second; return t;
            case 'm': t.unit = TimeUnit::Milli; return t;
            case 'u': t.unit = TimeUnit::Micro; return t;
            case 'n': t.unit = TimeUnit::Nano; return t;
            default: break;
        }
    }
    throw ArrowError("unsupported Arrow format '" + std::string(format) +
                     "' (supported: boolean, integers, float32/64, utf8, binary, date32, timestamps)");
}

std::string ColumnType::format() const {
    if (kind == Kind::Timestamp) return std::string("ts") + unit_letter(unit) + ":" + timezone;
    for (const Spelling& s : kSpellings) {
        if (s.kind == kind) return s.format;
    }
    return "?";
}

std::size_t ColumnType::width() const noexcept {
    switch (kind) {
        case Kind::Int8: case Kind::UInt8: return 1;
        case Kind::Int16: case Kind::UInt16: return 2;
        case Kind::Int32: case Kind::UInt32: case Kind::Float32: case Kind::Date32: return 4;
        case Kind::Int64: case Kind::UInt64: case Kind::Float64: case Kind::Timestamp: return 8;
        default: return 0;
    }
}

bool ColumnType::variable_width() const noexcept {
    return kind == Kind::Utf8 || kind == Kind::Binary || kind == Kind::LargeUtf8 || kind == Kind::LargeBinary;
}

// ---- ColumnView ---------------------------------------------------------------------------------

ColumnView::ColumnView(const ArrowSchema& schema, const ArrowArray& array) {
    if (!schema.release) throw ArrowError("the Arrow schema was released already");
    if (!array.release) throw ArrowError("the Arrow array was released already");
    std::string name = schema.name ? std::string(schema.name) : std::string();
    auto where = [&] { return name.empty() ? std::string() : " (column '" + name + "')"; };
    if (!schema.format) throw ArrowError("an Arrow schema without a format" + where());
    if (schema.dictionary || array.dictionary) throw ArrowError("dictionary-encoded Arrow arrays are not supported" + where());
    if (schema.n_children != 0 || array.n_children != 0) {
        throw ArrowError("nested Arrow type '" + std::string(schema.format) + "' is not supported" + where());
    }
    try {
        type_ = ColumnType::parse(schema.format);
    } catch (const ArrowError& e) {
        throw ArrowError(e.what() + where());
    }
    std::int64_t want = type_.variable_width() ? 3 : 2;
    if (array.n_buffers != want || !array.buffers) {
        throw ArrowError("an Arrow '" + type_.format() + "' array needs " + std::to_string(want) + " buffers, not " +
                         std::to_string(array.n_buffers) + where());
    }
    if (array.length < 0 || array.offset < 0 || array.null_count < -1) {
        throw ArrowError("an Arrow array with a negative length, offset or null count" + where());
    }
    length_ = array.length;
    offset_ = array.offset;
    validity_ = static_cast<const std::uint8_t*>(array.buffers[0]);
    values_ = array.buffers[1];
    if (length_ > 0 && !values_) throw ArrowError("an Arrow array without its values buffer" + where());
    if (array.null_count == -1) {  // unknown: count it
        null_count_ = 0;
        if (validity_) {
            for (std::int64_t i = 0; i < length_; ++i) null_count_ += is_null(i) ? 1 : 0;
        }
    } else {
        null_count_ = array.null_count;
        if (null_count_ > 0 && !validity_) throw ArrowError("an Arrow array with nulls but no validity bitmap" + where());
        if (null_count_ == 0) validity_ = nullptr;  // nothing to look up
    }
    if (type_.variable_width()) {
        data_ = static_cast<const char*>(array.buffers[2]);
        if (length_ > 0) {
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
            if (first < 0 || last < first) throw ArrowError("an Arrow string array with bad offsets" + where());
            if (last > first && !data_) throw ArrowError("an Arrow string array without its data buffer" + where());
        }
    }
}

bool ColumnView::is_null(std::int64_t i) const noexcept { return validity_ && !bit(validity_, offset_ + i); }

std::int64_t ColumnView::int_at(std::int64_t i) const noexcept {
    std::int64_t at = offset_ + i;
    switch (type_.kind) {
        case Kind::Int8: return static_cast<const std::int8_t*>(values_)[at];
        case Kind::Int16: return static_cast<const std::int16_t*>(values_)[at];
        case Kind::Int32: case Kind::Date32: return static_cast<const std::int32_t*>(values_)[at];
        case Kind::Int64: case Kind::Timestamp: return static_cast<const std::int64_t*>(values_)[at];
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

const void* ColumnView::fixed_values_at(std::int64_t i) const noexcept {
    std::size_t width = type_.width();
    if (width == 0) return nullptr;
    return static_cast<const std::uint8_t*>(values_) + static_cast<std::size_t>(offset_ + i) * width;
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
    std::int64_t length = 0, null_count = 0;
    std::vector<std::uint8_t> validity;  // built once the first null comes
    std::vector<std::uint8_t> values;    // fixed width: the values; Bool: bits; variable: offsets
    std::string data;                    // variable width: the bytes

    void start_offsets() {
        values.clear();
        if (large(type.kind)) put<std::int64_t>(values, 0);
        else put<std::int32_t>(values, 0);
    }
    void valid() {
        if (!validity.empty() || null_count) set_bit(validity, length, true);
        ++length;
    }
};

namespace {

// What an exported schema and array own, freed by their release callbacks.
struct SchemaData {
    std::string format, name;
};
struct ArrayData {
    std::vector<std::uint8_t> validity, values;
    std::string data;
    const void* buffers[3] = {nullptr, nullptr, nullptr};
};

void release_schema(ArrowSchema* s) {
    delete static_cast<SchemaData*>(s->private_data);
    s->private_data = nullptr;
    s->release = nullptr;
}

void release_array(ArrowArray* a) {
    delete static_cast<ArrayData*>(a->private_data);
    a->private_data = nullptr;
    a->release = nullptr;
}

}  // namespace

ColumnBuilder::ColumnBuilder(ColumnType type, std::string name) : s_(std::make_unique<State>()) {
    s_->type = std::move(type);
    s_->name = std::move(name);
    if (s_->type.variable_width()) s_->start_offsets();
}

ColumnBuilder::~ColumnBuilder() = default;
ColumnBuilder::ColumnBuilder(ColumnBuilder&&) noexcept = default;
ColumnBuilder& ColumnBuilder::operator=(ColumnBuilder&&) noexcept = default;

const ColumnType& ColumnBuilder::type() const noexcept { return s_->type; }
std::int64_t ColumnBuilder::length() const noexcept { return s_->length; }

void ColumnBuilder::reserve(std::int64_t n) {
    std::size_t w = s_->type.width();
    if (w) s_->values.reserve(static_cast<std::size_t>(n) * w);
    else if (s_->type.variable_width()) s_->values.reserve(static_cast<std::size_t>(n + 1) * (large(s_->type.kind) ? 8 : 4));
}

void ColumnBuilder::append_null() {
    State& s = *s_;
    if (s.validity.empty() && s.null_count == 0) {  // the first null: every value so far was valid
        for (std::int64_t i = 0; i < s.length; ++i) set_bit(s.validity, i, true);
    }
    set_bit(s.validity, s.length, false);
    ++s.null_count;
    // A slot in the values too, whatever it holds.
    if (s.type.kind == Kind::Bool) set_bit(s.values, s.length, false);
    else if (std::size_t w = s.type.width()) s.values.resize(s.values.size() + w, 0);
    else if (large(s.type.kind)) put<std::int64_t>(s.values, static_cast<std::int64_t>(s.data.size()));
    else put<std::int32_t>(s.values, static_cast<std::int32_t>(s.data.size()));
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
    if (large(s.type.kind)) put<std::int64_t>(s.values, static_cast<std::int64_t>(s.data.size()));
    else put<std::int32_t>(s.values, static_cast<std::int32_t>(s.data.size()));
    s.valid();
}

ExportedArray ColumnBuilder::finish() {
    State& s = *s_;
    auto schema_data = std::make_unique<SchemaData>();
    schema_data->format = s.type.format();
    schema_data->name = s.name;
    auto array_data = std::make_unique<ArrayData>();
    if (s.type.kind == Kind::Bool) s.values.resize(static_cast<std::size_t>((s.length + 7) / 8), 0);
    if (s.null_count) {
        s.validity.resize(static_cast<std::size_t>((s.length + 7) / 8), 0);
        array_data->validity = std::move(s.validity);
    }
    array_data->values = std::move(s.values);
    array_data->values.reserve(8);  // never a null pointer, even for an empty array
    array_data->data = std::move(s.data);
    array_data->buffers[0] = s.null_count ? array_data->validity.data() : nullptr;
    array_data->buffers[1] = array_data->values.data();
    array_data->buffers[2] = array_data->data.data();

    ExportedArray out;
    out.schema.format = schema_data->format.c_str();
    out.schema.name = schema_data->name.c_str();
    out.schema.metadata = nullptr;
    out.schema.flags = ARROW_FLAG_NULLABLE;
    out.schema.n_children = 0;
    out.schema.children = nullptr;
    out.schema.dictionary = nullptr;
    out.schema.release = release_schema;
    out.schema.private_data = schema_data.release();

    out.array.length = s.length;
    out.array.null_count = s.null_count;
    out.array.offset = 0;
    out.array.n_buffers = s.type.variable_width() ? 3 : 2;
    out.array.n_children = 0;
    out.array.buffers = array_data->buffers;
    out.array.children = nullptr;
    out.array.dictionary = nullptr;
    out.array.release = release_array;
    out.array.private_data = array_data.release();

    // Empty again, ready for another array of the same type.
    s.length = s.null_count = 0;
    s.validity.clear();
    s.values.clear();
    s.data.clear();
    if (s.type.variable_width()) s.start_offsets();
    return out;
}

}  // namespace manygil::arrow
