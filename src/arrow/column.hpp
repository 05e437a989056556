// Columns in the Arrow C Data Interface, without an Arrow library: ColumnView reads one array a
// producer exported (DuckDB, pyarrow, a C++ host), ColumnBuilder writes one that a consumer imports.
// The first piece of Python UDFs over Arrow data (issue 15): workers read argument columns and write
// result columns with these, with no pyarrow in their interpreters.
//
// Types: the ones SQL UDFs need, each with nulls:
//   - boolean "b"; signed and unsigned integers of 8 to 64 bits "c" "s" "i" "l" "C" "S" "I" "L";
//     float32/64 "f" "g";
//   - utf8 and binary, 32- and 64-bit offsets: "u" "z" "U" "Z";
//   - date32 "tdD" (days); timestamps "ts{s,m,u,n}:TZ" (any time zone string, or none);
//   - time32 "tts" "ttm" and time64 "ttu" "ttn" (a count of the unit since midnight);
//   - decimal128 "d:P,S" (also spelled "d:P,S,128"; other bit widths are refused): the unscaled
//     value as a 128-bit two's-complement integer. DuckDB sends HUGEINT and UHUGEINT as "d:38,0"
//     too, so values are read as they are, never checked against the precision;
//   - interval month_day_nano "tin" (int32 months, int32 days, int64 nanoseconds);
//   - nested, to any depth: list "+l" and large list "+L" (one child), fixed-size list "+w:N",
//     struct "+s" (named children), map "+m" (a list of a struct "entries" of "key" and "value").
// Anything else (dictionary-encoded arrays, unions, other intervals, decimal256...) is refused with
// ArrowError naming the format.
//
// A ColumnType is the whole tree of a nested type. ColumnType::parse reads a type *spec*: a format
// string of the spec for flat types, and for nested ones the format followed by its children in
// angle brackets (a C++ host or manygil.duckdb names a nested result type this way):
//   "+l<i>" list of int32, "+L<u>" large list, "+w:3<g>" fixed-size list of 3 doubles,
//   "+s<a:i,b:+l<u>>" struct of a: int32 and b: list of utf8 (a name with ':' ',' '<' '>' '"' or
//   spaces is written in double quotes, "" for a quote), "+m<u,l>" map of utf8 to int64.
//
// No GIL, no Python: plain C++ over memory. A ColumnView borrows the producer's buffers (the producer
// keeps them until it calls release); a ColumnView is safe to read from several threads at once. A
// ColumnBuilder is used by one thread; what it exports owns its memory and frees it in release().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "manygil/arrow_data.hpp"

namespace manygil::arrow {

// GCC's and Clang's 128-bit integer: a decimal128 value unscaled, as its buffer holds it.
__extension__ using int128 = __int128;

// "123", "-1.50": an unscaled decimal128 value written with `scale` digits after the point.
std::string decimal_to_string(int128 unscaled, int scale);

enum class Kind {
    Bool,
    Int8, Int16, Int32, Int64,
    UInt8, UInt16, UInt32, UInt64,
    Float32, Float64,
    Utf8, Binary, LargeUtf8, LargeBinary,
    Date32,      // days since 1970-01-01
    Timestamp,   // an int64 count of `unit` since 1970-01-01 (UTC when a time zone is given)
    Time32,      // an int32 count of `unit` (Second, Milli) since midnight
    Time64,      // an int64 count of `unit` (Micro, Nano) since midnight
    Decimal128,  // a 128-bit unscaled value: `precision` digits, `scale` of them after the point
    Interval,    // month_day_nano: MonthDayNano
    List, LargeList,  // one child (the items), 32- or 64-bit offsets
    FixedSizeList,    // one child, `list_size` items per value
    Struct,           // one child per field
    Map,              // one child: a non-nullable struct "entries" of a non-nullable "key" and a "value"
};

enum class TimeUnit { Second, Milli, Micro, Nano };

// One value of an interval month_day_nano column, laid out as its buffer holds it.
struct MonthDayNano {
    std::int32_t months = 0, days = 0;
    std::int64_t nanoseconds = 0;
    bool operator==(const MonthDayNano&) const = default;
};

struct Field;

struct ColumnType {
    Kind kind = Kind::Int64;
    TimeUnit unit = TimeUnit::Micro;  // Timestamp, Time32, Time64
    std::string timezone;             // Timestamp only; empty: naive
    int precision = 0, scale = 0;     // Decimal128 only
    std::int32_t list_size = 0;       // FixedSizeList only
    std::vector<Field> children;      // the nested kinds: their children, as the Arrow schema has them

    // From a type spec (the header comment): a format string of the spec ("l", "tsu:UTC", "d:10,2")
    // or a nested format with its children ("+l<i>", "+m<u,l>"). Throws ArrowError.
    static ColumnType parse(std::string_view spec);
    // The whole type an exported schema describes, children included. Throws ArrowError naming the
    // field path for an unsupported format, a dictionary, or children that do not fit the format.
    static ColumnType from_schema(const ArrowSchema& schema);
    // This node's format string ("+l" for any list of 32-bit offsets, "d:10,2").
    std::string format() const;
    // The spec parse() reads back, children included ("+l<i>").
    std::string spec() const;
    // Bytes per value for fixed-width kinds (Decimal128 and Interval: 16); 0 for Bool (bit-packed),
    // the variable-width ones and the nested ones.
    std::size_t width() const noexcept;
    bool variable_width() const noexcept;  // utf8 and binary
    bool nested() const noexcept;          // has children
    bool operator==(const ColumnType&) const;
};

// A child of a nested type: its name in the schema, its type, and whether it may hold NULLs (map
// keys and a map's entries may not).
struct Field {
    std::string name;
    ColumnType type;
    bool nullable = true;
    bool operator==(const Field&) const = default;
};

// Read access to one array, nested ones included. Construction validates what the spec lets a
// consumer check (buffer and child counts, lengths, offsets within their child or buffer); it does
// not copy.
class ColumnView {
public:
    // Throws ArrowError: a released array, a dictionary type, an unsupported format, or buffers or
    // children that do not match the type; the message names the column and field.
    ColumnView(const ArrowSchema& schema, const ArrowArray& array);

    const ColumnType& type() const noexcept { return type_; }
    std::int64_t length() const noexcept { return length_; }
    std::int64_t null_count() const noexcept { return null_count_; }
    bool is_null(std::int64_t i) const noexcept;

    // The value at i (not null) as the widest type of its family; the caller picks by kind().
    std::int64_t int_at(std::int64_t i) const noexcept;    // signed integers, Date32, Timestamp, Time32/64
    std::uint64_t uint_at(std::int64_t i) const noexcept;  // unsigned integers
    double float_at(std::int64_t i) const noexcept;        // Float32, Float64
    bool bool_at(std::int64_t i) const noexcept;           // Bool
    std::string_view bytes_at(std::int64_t i) const noexcept;  // Utf8, Binary and their Large forms
    int128 decimal_at(std::int64_t i) const noexcept;      // Decimal128: the unscaled value
    MonthDayNano interval_at(std::int64_t i) const noexcept;  // Interval
    // Where value i of a fixed-width kind (type().width() > 0) lies in the producer's buffer, for
    // readers that take values in place; null for Bool, the variable-width and the nested kinds.
    const void* fixed_values_at(std::int64_t i) const noexcept;

    // Nested kinds. A struct's child k holds field k of row i at its own row i (the struct's offset
    // is applied already). A list's, fixed-size list's or map's value i is rows [first, second) of
    // child(0) (for a map, child(0) is the entries struct: child(0).child(0) the keys,
    // child(0).child(1) the values).
    std::size_t n_children() const noexcept { return children_.size(); }
    const ColumnView& child(std::size_t k) const noexcept { return children_[k]; }
    std::pair<std::int64_t, std::int64_t> list_range(std::int64_t i) const noexcept;

private:
    // One node of the tree: `type` is from_schema's for this node; `base` is added to the array's own
    // offset (a struct's children: the struct's offset), `length` replaces the array's when >= 0.
    ColumnView(ColumnType type, const ArrowArray& array, std::int64_t base, std::int64_t length,
               const std::string& path);
    void check_buffers(const ArrowArray& array, const std::string& where) const;
    void read_validity(const ArrowArray& array, const std::string& where);
    void check_string_offsets(const std::string& where) const;
    void read_children(const ArrowArray& array, const std::string& path, const std::string& where);
    void check_list_offsets(const std::string& where) const;

    ColumnType type_;
    std::int64_t length_ = 0, offset_ = 0, null_count_ = 0;
    const std::uint8_t* validity_ = nullptr;  // null: no nulls
    const void* values_ = nullptr;            // fixed width and Bool: values; variable and lists: offsets
    const char* data_ = nullptr;              // variable width: the bytes
    std::vector<ColumnView> children_;
};

// Builds one array of a given type, value by value. One thread at a time. A nested type's builder
// has a builder per child: append a nested value's parts to child(k), then close the value with
// append_list() or append_struct().
class ColumnBuilder {
public:
    explicit ColumnBuilder(ColumnType type, std::string name = "");
    ~ColumnBuilder();
    ColumnBuilder(ColumnBuilder&&) noexcept;
    ColumnBuilder& operator=(ColumnBuilder&&) noexcept;

    const ColumnType& type() const noexcept;
    std::int64_t length() const noexcept;
    void reserve(std::int64_t n);

    // A NULL; for a struct also a NULL in every child, for a fixed-size list list_size NULL items
    // (the slots the layout needs under it). Throws ArrowError for a non-nullable field (map keys).
    void append_null();
    // Checked against the type: a value that does not fit (300 into Int8, a string into Int64)
    // throws ArrowError and appends nothing.
    void append_int(std::int64_t v);  // integers, Date32, Timestamp, Time32/64 (counts of the unit)
    void append_uint(std::uint64_t v);
    void append_float(double v);
    void append_bool(bool v);
    void append_bytes(std::string_view v);
    // Decimal128: the unscaled value, checked to have at most `precision` digits, except for
    // "d:38,0", DuckDB's HUGEINT, whose values fill the 128 bits.
    void append_decimal(int128 unscaled);
    void append_interval(MonthDayNano v);

    // List, LargeList, Map: closes a value holding the items appended to child(0) since the previous
    // value; FixedSizeList: the same, which must be list_size items. Struct: closes a row whose fields
    // were appended, one to each child. Throws ArrowError (appending nothing) when the children do
    // not add up.
    void append_list();
    void append_struct();
    std::size_t n_children() const noexcept;
    ColumnBuilder& child(std::size_t k);  // throws ArrowError past n_children()

    // The array and its schema; the builder is empty again afterwards. Throws ArrowError when a
    // nested value was left open (children appended and no append_list/append_struct).
    ExportedArray finish();

private:
    ColumnBuilder(ColumnType type, std::string name, bool nullable);
    struct State;
    std::unique_ptr<State> s_;
};

// Appends value i of `from` (NULL or not, a nested value with all its parts) to `to`, whose type
// must have from's shape. Joins and copies arrays of any supported type; throws ArrowError when the
// types differ.
void append_value(ColumnBuilder& to, const ColumnView& from, std::int64_t i);

}  // namespace manygil::arrow
