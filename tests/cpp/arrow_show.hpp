// Arrow values as text for the tests' expectations (arrow_test.cpp, udf_test.cpp): value i of a
// ColumnView, nested values whole: "[1,null]", "{a:1,b:null}", "{'k'=>1}", "1.50", "1m2d3ns".
#pragma once

#include <string>
#include <vector>

#include "arrow/column.hpp"

namespace manygil::arrow::show_values {

using Rows = std::vector<std::string>;

inline std::string show(const ColumnView& v, std::int64_t i) {
    if (v.is_null(i)) return "null";
    const ColumnType& t = v.type();
    switch (t.kind) {
        case Kind::Bool: return v.bool_at(i) ? "true" : "false";
        case Kind::UInt8: case Kind::UInt16: case Kind::UInt32: case Kind::UInt64: return std::to_string(v.uint_at(i));
        case Kind::Float32: case Kind::Float64: return std::to_string(v.float_at(i));
        case Kind::Utf8: case Kind::Binary: case Kind::LargeUtf8: case Kind::LargeBinary:
            return "'" + std::string(v.bytes_at(i)) + "'";
        case Kind::Decimal128: return decimal_to_string(v.decimal_at(i), t.scale);
        case Kind::Interval: {
            MonthDayNano d = v.interval_at(i);
            return std::to_string(d.months) + "m" + std::to_string(d.days) + "d" + std::to_string(d.nanoseconds) + "ns";
        }
        case Kind::List: case Kind::LargeList: case Kind::FixedSizeList: {
            auto [first, last] = v.list_range(i);
            std::string out = "[";
            for (std::int64_t j = first; j < last; ++j) out += (j > first ? "," : "") + show(v.child(0), j);
            return out + "]";
        }
        case Kind::Struct: {
            std::string out = "{";
            for (std::size_t k = 0; k < v.n_children(); ++k) {
                out += (k ? "," : "") + t.children[k].name + ":" + show(v.child(k), i);
            }
            return out + "}";
        }
        case Kind::Map: {
            auto [first, last] = v.list_range(i);
            std::string out = "{";
            for (std::int64_t j = first; j < last; ++j) {
                out += (j > first ? "," : "") + show(v.child(0).child(0), j) + "=>" + show(v.child(0).child(1), j);
            }
            return out + "}";
        }
        default: return std::to_string(v.int_at(i));
    }
}

inline std::vector<std::string> show_all(const ColumnView& v) {
    std::vector<std::string> out;
    for (std::int64_t i = 0; i < v.length(); ++i) out.push_back(show(v, i));
    return out;
}

}  // namespace manygil::arrow::show_values
