// Columns in the Arrow C Data Interface (src/arrow/column.hpp): what ColumnBuilder exports, ColumnView
// reads back, for every supported type with nulls; slices; and the refusals, with no Arrow library.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "arrow/column.hpp"

namespace {

using namespace manygil::arrow;

ColumnType type_of(const char* format) { return ColumnType::parse(format); }

TEST(ArrowColumn, FormatsParseAndPrintBack) {
    for (const char* f : {"b", "c", "s", "i", "l", "C", "S", "I", "L", "f", "g", "u", "z", "U", "Z", "tdD",
                          "tss:", "tsm:UTC", "tsu:Europe/Paris", "tsn:"}) {
        EXPECT_EQ(ColumnType::parse(f).format(), f);
    }
    EXPECT_EQ(ColumnType::parse("tsu:UTC").timezone, "UTC");
    EXPECT_EQ(ColumnType::parse("tsn:").unit, TimeUnit::Nano);
    for (const char* bad : {"e", "+s", "+l", "d:10,2", "tdm", "tsx:", "w:16", ""}) {
        EXPECT_THROW(ColumnType::parse(bad), ArrowError) << bad;
    }
}

TEST(ArrowColumn, IntegersOfEveryWidthRoundTripWithNulls) {
    struct Case {
        const char* format;
        std::int64_t lo, hi;
    };
    for (Case c : {Case{"c", INT8_MIN, INT8_MAX}, Case{"s", INT16_MIN, INT16_MAX}, Case{"i", INT32_MIN, INT32_MAX},
                   Case{"l", INT64_MIN, INT64_MAX}, Case{"tdD", INT32_MIN, INT32_MAX}, Case{"tsu:", INT64_MIN, INT64_MAX}}) {
        ColumnBuilder b(type_of(c.format), "x");
        b.append_int(c.lo);
        b.append_null();
        b.append_int(0);
        b.append_int(c.hi);
        ExportedArray out = b.finish();
        ColumnView v(out.schema, out.array);
        ASSERT_EQ(v.length(), 4) << c.format;
        EXPECT_EQ(v.null_count(), 1);
        EXPECT_EQ(v.int_at(0), c.lo);
        EXPECT_TRUE(v.is_null(1));
        EXPECT_FALSE(v.is_null(2));
        EXPECT_EQ(v.int_at(2), 0);
        EXPECT_EQ(v.int_at(3), c.hi);
        EXPECT_STREQ(out.schema.name, "x");
    }
    for (const char* f : {"C", "S", "I", "L"}) {
        ColumnBuilder b(type_of(f));
        b.append_uint(0);
        b.append_uint(b.type().width() == 8 ? UINT64_MAX : (std::uint64_t{1} << (8 * b.type().width())) - 1);
        ExportedArray out = b.finish();
        ColumnView v(out.schema, out.array);
        EXPECT_EQ(v.uint_at(0), 0u) << f;
        EXPECT_EQ(v.uint_at(1), b.type().width() == 8 ? UINT64_MAX : (std::uint64_t{1} << (8 * b.type().width())) - 1);
        EXPECT_EQ(v.null_count(), 0);
        EXPECT_EQ(out.array.buffers[0], nullptr);  // no nulls: no bitmap
    }
}

TEST(ArrowColumn, FloatsBoolsAndStringsRoundTrip) {
    ColumnBuilder f(type_of("g"));
    f.append_float(1.5);
    f.append_null();
    f.append_float(-INFINITY);
    ExportedArray fo = f.finish();
    ColumnView fv(fo.schema, fo.array);
    EXPECT_EQ(fv.float_at(0), 1.5);
    EXPECT_TRUE(fv.is_null(1));
    EXPECT_EQ(fv.float_at(2), -INFINITY);

    ColumnBuilder b(type_of("b"));
    std::vector<int> pattern;
    for (int i = 0; i < 19; ++i) {
        if (i % 5 == 4) {
            b.append_null();
            pattern.push_back(-1);
        } else {
            b.append_bool(i % 3 == 0);
            pattern.push_back(i % 3 == 0);
        }
    }
    ExportedArray bo = b.finish();
    ColumnView bv(bo.schema, bo.array);
    for (int i = 0; i < 19; ++i) {
        if (pattern[i] < 0) EXPECT_TRUE(bv.is_null(i)) << i;
        else EXPECT_EQ(bv.bool_at(i), pattern[i] == 1) << i;
    }

    for (const char* format : {"u", "z", "U", "Z"}) {
        ColumnBuilder s(type_of(format));
        s.append_bytes("caf\xc3\xa9");
        s.append_null();
        s.append_bytes("");
        s.append_bytes(std::string(1000, 'x'));
        ExportedArray so = s.finish();
        ColumnView sv(so.schema, so.array);
        EXPECT_EQ(sv.bytes_at(0), "caf\xc3\xa9") << format;
        EXPECT_TRUE(sv.is_null(1));
        EXPECT_EQ(sv.bytes_at(2), "");
        EXPECT_EQ(sv.bytes_at(3), std::string(1000, 'x'));
    }
}

TEST(ArrowColumn, SlicesReadFromTheirOffset) {
    ColumnBuilder b(type_of("u"));
    for (int i = 0; i < 10; ++i) {
        if (i == 6) b.append_null();
        else b.append_bytes(std::to_string(i));
    }
    ExportedArray out = b.finish();
    out.array.offset = 4;  // what a producer's slice looks like: same buffers, an offset
    out.array.length = 4;
    out.array.null_count = -1;  // "unknown": the view counts
    ColumnView v(out.schema, out.array);
    EXPECT_EQ(v.null_count(), 1);
    EXPECT_EQ(v.bytes_at(0), "4");
    EXPECT_TRUE(v.is_null(2));
    EXPECT_EQ(v.bytes_at(3), "7");
}

TEST(ArrowColumn, ValuesThatDoNotFitAreRefusedAndNothingIsAppended) {
    ColumnBuilder i8(type_of("c"));
    EXPECT_THROW(i8.append_int(300), ArrowError);
    EXPECT_THROW(i8.append_float(1.0), ArrowError);
    EXPECT_THROW(i8.append_bytes("1"), ArrowError);
    ColumnBuilder u8(type_of("C"));
    EXPECT_THROW(u8.append_int(-1), ArrowError);
    EXPECT_THROW(u8.append_uint(256), ArrowError);
    ColumnBuilder i64(type_of("l"));
    EXPECT_THROW(i64.append_uint(UINT64_MAX), ArrowError);
    EXPECT_THROW(i64.append_bool(true), ArrowError);
    EXPECT_EQ(i8.length() + u8.length() + i64.length(), 0);
}

TEST(ArrowColumn, MalformedArraysAreRefusedByName) {
    ColumnBuilder b(type_of("l"), "price");
    b.append_int(1);
    b.append_null();
    {
        ExportedArray out = b.finish();
        out.array.n_buffers = 3;
        try {
            ColumnView v(out.schema, out.array);
            ADD_FAILURE() << "accepted a wrong buffer count";
        } catch (const ArrowError& e) {
            EXPECT_NE(std::string(e.what()).find("column 'price'"), std::string::npos) << e.what();
        }
        out.array.n_buffers = 2;
        const void* keep = out.array.buffers[0];
        out.array.buffers[0] = nullptr;  // nulls claimed, no bitmap
        EXPECT_THROW(ColumnView(out.schema, out.array), ArrowError);
        out.array.buffers[0] = keep;
        out.array.release(&out.array);  // released: refused
        EXPECT_EQ(out.array.release, nullptr);
        EXPECT_THROW(ColumnView(out.schema, out.array), ArrowError);
    }
    ColumnBuilder s(type_of("u"));
    s.append_bytes("x");
    ExportedArray out = s.finish();
    ArrowSchema nested = out.schema;
    nested.n_children = 1;
    EXPECT_THROW(ColumnView(nested, out.array), ArrowError);
}

TEST(ArrowColumn, AConsumerTakesOwnershipAsTheSpecSays) {
    ColumnBuilder b(type_of("i"));
    b.append_int(7);
    ArrowArray taken;
    ArrowSchema taken_schema;
    {
        ExportedArray out = b.finish();
        taken = out.array;  // move the struct out and mark the source released
        taken_schema = out.schema;
        out.array.release = nullptr;
        out.schema.release = nullptr;
    }  // nothing freed here
    ColumnView v(taken_schema, taken);
    EXPECT_EQ(v.int_at(0), 7);
    taken.release(&taken);
    taken_schema.release(&taken_schema);
    EXPECT_EQ(taken.release, nullptr);
    // The builder is reusable after finish().
    b.append_int(8);
    ExportedArray again = b.finish();
    EXPECT_EQ(ColumnView(again.schema, again.array).int_at(0), 8);
}

}  // namespace
