// Columns in the Arrow C Data Interface, without an Arrow library: ColumnView reads one array a
// producer exported (DuckDB, pyarrow, a C++ host), ColumnBuilder writes one that a consumer imports.
// The first piece of Python UDFs over Arrow data (issue 15): workers read argument columns and write
// result columns with these, with no pyarrow in their interpreters.
//
// Types: the ones SQL UDFs need: boolean, signed and unsigned integers of 8 to 64 bits, float32/64,
// utf8 and binary (32- and 64-bit offsets), date32 (days) and timestamps (s, ms, us, ns; with or
// without a time zone), each with nulls. Anything else is refused with ArrowError naming the format.
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
#include <vector>

#include "manygil/arrow_data.hpp"

namespace manygil::arrow {

enum class Kind {
    Bool,
    Int8, Int16, Int32, Int64,
    UInt8, UInt16, UInt32, UInt64,
    Float32, Float64,
    Utf8, Binary, LargeUtf8, LargeBinary,
    Date32,     // days since 1970-01-01
    Timestamp,  // an int64 count of `unit` since 1970-01-01 (UTC when a time zone is given)
};

enum class TimeUnit { Second, Milli, Micro, Nano };

struct ColumnType {
    Kind kind = Kind::Int64;
    TimeUnit unit = TimeUnit::Micro;  // Timestamp only
    std::string timezone;             // Timestamp only; empty: naive

    // From a format string of the spec ("l", "u", "tsu:UTC", ...). Throws ArrowError.
    static ColumnType parse(std::string_view format);
    // The format string for this type.
    std::string format() const;
    // Bytes per value for fixed-width kinds; 0 for Bool (bit-packed) and the variable-width ones.
    std::size_t width() const noexcept;
    bool variable_width() const noexcept;
    bool operator==(const ColumnType&) const = default;
};

// Read access to one array. Construction validates what the spec lets a consumer check (buffer
// count, lengths, offsets within their buffer where the data says); it does not copy.
class ColumnView {
public:
    // Throws ArrowError: a released array, a nested or dictionary type, an unsupported format, or
    // buffers that do not match the type.
    ColumnView(const ArrowSchema& schema, const ArrowArray& array);

    const ColumnType& type() const noexcept { return type_; }
    std::int64_t length() const noexcept { return length_; }
    std::int64_t null_count() const noexcept { return null_count_; }
    bool is_null(std::int64_t i) const noexcept;

    // The value at i (not null) as the widest type of its family; the caller picks by kind().
    std::int64_t int_at(std::int64_t i) const noexcept;    // signed integers, Date32, Timestamp
    std::uint64_t uint_at(std::int64_t i) const noexcept;  // unsigned integers
    double float_at(std::int64_t i) const noexcept;        // Float32, Float64
    bool bool_at(std::int64_t i) const noexcept;           // Bool
    std::string_view bytes_at(std::int64_t i) const noexcept;  // Utf8, Binary and their Large forms
    // Where value i of a fixed-width kind (type().width() > 0) lies in the producer's buffer, for
    // readers that take values in place; null for Bool and the variable-width kinds.
    const void* fixed_values_at(std::int64_t i) const noexcept;

private:
    ColumnType type_;
    std::int64_t length_ = 0, offset_ = 0, null_count_ = 0;
    const std::uint8_t* validity_ = nullptr;  // null: no nulls
    const void* values_ = nullptr;            // fixed width and Bool: values; variable: offsets
    const char* data_ = nullptr;              // variable width: the bytes
};

// Builds one array of a given type, value by value. One thread at a time.
class ColumnBuilder {
public:
    explicit ColumnBuilder(ColumnType type, std::string name = "");
    ~ColumnBuilder();
    ColumnBuilder(ColumnBuilder&&) noexcept;
    ColumnBuilder& operator=(ColumnBuilder&&) noexcept;

    const ColumnType& type() const noexcept;
    std::int64_t length() const noexcept;
    void reserve(std::int64_t n);

    void append_null();
    // Checked against the type: a value that does not fit (300 into Int8, a string into Int64)
    // throws ArrowError and appends nothing.
    void append_int(std::int64_t v);
    void append_uint(std::uint64_t v);
    void append_float(double v);
    void append_bool(bool v);
    void append_bytes(std::string_view v);

    // The array and its schema; the builder is empty again afterwards.
    ExportedArray finish();

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace manygil::arrow
