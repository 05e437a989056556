// Columns in the Arrow C Data Interface (src/arrow/column.hpp): what ColumnBuilder exports, ColumnView
// reads back, for every supported type with nulls; slices; and the refusals, with no Arrow library.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "arrow/column.hpp"
#include "arrow_show.hpp"

namespace {

using namespace manygil::arrow;
using namespace manygil::arrow::show_values;

ColumnType type_of(const char* format) { return ColumnType::parse(format); }

TEST(ArrowColumn, FormatsParseAndPrintBack) {
    for (const char* f : {"b", "c", "s", "i", "l", "C", "S", "I", "L", "f", "g", "u", "z", "U", "Z", "tdD",
                          "tss:", "tsm:UTC", "tsu:Europe/Paris", "tsn:", "tsu:Etc/UTC", "tsu:+05:30", "tts", "ttm",
                          "ttu", "ttn", "tin", "d:10,2", "d:38,0", "d:1,0", "d:5,-2"}) {
        EXPECT_EQ(ColumnType::parse(f).format(), f);
    }
    EXPECT_EQ(ColumnType::parse("tsu:UTC").timezone, "UTC");
    EXPECT_EQ(ColumnType::parse("tsn:").unit, TimeUnit::Nano);
    EXPECT_EQ(ColumnType::parse("ttm").kind, Kind::Time32);
    EXPECT_EQ(ColumnType::parse("ttn").kind, Kind::Time64);
    ColumnType d = ColumnType::parse("d:10,2,128");  // the bit width spelled out
    EXPECT_EQ(d.format(), "d:10,2");
    EXPECT_EQ(d.precision, 10);
    EXPECT_EQ(d.scale, 2);
    for (const char* bad : {"e", "+s", "+l", "+m", "+w:2", "tdm", "tsx:", "w:16", "", "tiM", "tiD", "d:39,0", "d:0,0",
                            "d:10", "d:10,11", "+w:0<i>", "+l<i", "+l<>", "+m<u>", "+s<:i>", "+s<a:i,>", "+l<i>x",
                            "+ud:1,0"}) {
        EXPECT_THROW(ColumnType::parse(bad), ArrowError) << bad;
    }
    try {
        ColumnType::parse("d:40,2,256");
        ADD_FAILURE() << "a decimal256 accepted";
    } catch (const ArrowError& e) {
        EXPECT_NE(std::string(e.what()).find("256-bit decimal"), std::string::npos) << e.what();
    }
}

TEST(ArrowColumn, NestedSpecsParseIntoTheSchemaTree) {
    for (const char* spec : {"+l<i>", "+L<u>", "+w:3<g>", "+s<a:i,b:+l<u>>", "+m<u,l>", "+l<+s<x:d:10,2,y:tsu:UTC>>",
                             "+m<d:10,2,+m<i,+l<b>>>", "+s<\"a b\":i,\"x,\"\"y\"\"\":tin>", "+s<>",
                             "+s<a:+s<b:+s<c:ttu>>>"}) {
        EXPECT_EQ(ColumnType::parse(spec).spec(), spec);
    }
    ColumnType s = ColumnType::parse("+s<a:d:10,2,128,b:i>");  // a decimal's commas, then the next field
    ASSERT_EQ(s.children.size(), 2u);
    EXPECT_EQ(s.children[0].type.format(), "d:10,2");
    EXPECT_EQ(s.children[1].name, "b");
    ColumnType m = ColumnType::parse("+m<u,l>");
    ASSERT_EQ(m.children.size(), 1u);  // as Arrow lays a map out: entries: struct<key, value>
    const Field& entries = m.children[0];
    EXPECT_EQ(entries.name, "entries");
    EXPECT_FALSE(entries.nullable);
    ASSERT_EQ(entries.type.children.size(), 2u);
    EXPECT_EQ(entries.type.children[0].name, "key");
    EXPECT_FALSE(entries.type.children[0].nullable);
    EXPECT_EQ(entries.type.children[1].name, "value");
    EXPECT_EQ(entries.type.children[1].type.kind, Kind::Int64);
    EXPECT_EQ(ColumnType::parse("+s<\"a b\":i>").children[0].name, "a b");
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

// ---- decimals, times, intervals and nested types -------------------------------------------------

TEST(ArrowColumn, DecimalsRoundTripUnscaledWithTheirPrecisionChecked) {
    EXPECT_EQ(decimal_to_string(15, 1), "1.5");
    EXPECT_EQ(decimal_to_string(-5, 3), "-0.005");
    EXPECT_EQ(decimal_to_string(0, 2), "0.00");
    EXPECT_EQ(decimal_to_string(12, -2), "1200");
    int128 max = ~(static_cast<int128>(1) << 127), min = -max - 1;
    EXPECT_EQ(decimal_to_string(max, 0), "170141183460469231731687303715884105727");
    EXPECT_EQ(decimal_to_string(min, 0), "-170141183460469231731687303715884105728");

    ColumnBuilder b(type_of("d:5,2"), "price");
    b.append_decimal(12345);
    b.append_null();
    b.append_decimal(-99999);
    b.append_decimal(0);
    EXPECT_THROW(b.append_decimal(100000), ArrowError);  // six digits
    EXPECT_THROW(b.append_int(1), ArrowError);           // not a decimal's unscaled value
    EXPECT_EQ(b.length(), 4);
    ExportedArray out = b.finish();
    EXPECT_STREQ(out.schema.format, "d:5,2");
    EXPECT_EQ(out.array.n_buffers, 2);
    ColumnView v(out.schema, out.array);
    EXPECT_EQ(show_all(v), (Rows{"123.45", "null", "-999.99", "0.00"}));
    out.array.offset = 2;  // a slice
    out.array.length = 2;
    out.array.null_count = -1;
    ColumnView sliced(out.schema, out.array);
    EXPECT_EQ(show_all(sliced), (Rows{"-999.99", "0.00"}));
    EXPECT_EQ(sliced.null_count(), 0);

    // "d:38,0" is HUGEINT too: the whole 128 bits, beyond 38 digits.
    ColumnBuilder huge(type_of("d:38,0"));
    huge.append_decimal(max);
    huge.append_decimal(min);
    ExportedArray ho = huge.finish();
    ColumnView hv(ho.schema, ho.array);
    EXPECT_EQ(hv.decimal_at(0), max);
    EXPECT_EQ(hv.decimal_at(1), min);
    try {
        ColumnBuilder small(type_of("d:4,1"));
        small.append_decimal(12345);
        ADD_FAILURE() << "1234.5 fitted DECIMAL(4,1)";
    } catch (const ArrowError& e) {
        EXPECT_NE(std::string(e.what()).find("1234.5 does not fit a 'd:4,1' column"), std::string::npos) << e.what();
    }
}

TEST(ArrowColumn, TimesAndIntervalsRoundTrip) {
    ColumnBuilder t32(type_of("ttm")), t64(type_of("ttn")), iv(type_of("tin"));
    t32.append_int(86'399'999), t32.append_null(), t32.append_int(0);
    EXPECT_THROW(t32.append_int(INT64_C(1) << 40), ArrowError);  // time32 holds int32
    t64.append_int(86'399'999'999'999), t64.append_null(), t64.append_int(1);
    iv.append_interval({1, -2, 3'000'000'000}), iv.append_null(), iv.append_interval({0, 0, -1});
    EXPECT_THROW(iv.append_int(1), ArrowError);
    ExportedArray a32 = t32.finish(), a64 = t64.finish(), ai = iv.finish();
    for (const ExportedArray* a : {&a32, &a64, &ai}) EXPECT_EQ(a->array.n_buffers, 2);
    EXPECT_EQ(show_all(ColumnView(a32.schema, a32.array)), (Rows{"86399999", "null", "0"}));
    EXPECT_EQ(show_all(ColumnView(a64.schema, a64.array)), (Rows{"86399999999999", "null", "1"}));
    EXPECT_EQ(show_all(ColumnView(ai.schema, ai.array)), (Rows{"1m-2d3000000000ns", "null", "0m0d-1ns"}));
    ai.array.offset = 1;
    ai.array.length = 2;
    EXPECT_EQ(show_all(ColumnView(ai.schema, ai.array)), (Rows{"null", "0m0d-1ns"}));
    EXPECT_EQ(ColumnView(ai.schema, ai.array).interval_at(1), (MonthDayNano{0, 0, -1}));
}

// [[1, null], [], null, [null, [3]]]-like values of list<list<int32>>, with nulls at every level.
ExportedArray nested_lists(const char* spec) {
    ColumnBuilder b(type_of(spec), "x");
    ColumnBuilder& inner = b.child(0);
    ColumnBuilder& ints = inner.child(0);
    ints.append_int(1), ints.append_null(), inner.append_list();  // [1, null]
    inner.append_list();                                          // []
    b.append_list();                                              // [[1, null], []]
    b.append_null();
    inner.append_null();
    ints.append_int(3), inner.append_list();
    b.append_list();  // [null, [3]]
    b.append_list();  // []
    return b.finish();
}

TEST(ArrowColumn, ListsRoundTripWithNullsAtEveryLevelAndSlices) {
    for (const char* spec : {"+l<+l<i>>", "+L<+l<i>>", "+l<+L<i>>"}) {
        ExportedArray out = nested_lists(spec);
        EXPECT_EQ(out.array.n_buffers, 2);
        ASSERT_EQ(out.array.n_children, 1);
        EXPECT_STREQ(out.schema.children[0]->name, "item");
        EXPECT_EQ(ColumnType::from_schema(out.schema).spec(), spec);
        ColumnView v(out.schema, out.array);
        EXPECT_EQ(show_all(v), (Rows{"[[1,null],[]]", "null", "[null,[3]]", "[]"})) << spec;
        EXPECT_EQ(v.null_count(), 1);
        out.array.offset = 1;  // the producer's slice: the offsets are read from there
        out.array.length = 2;
        out.array.null_count = -1;
        EXPECT_EQ(show_all(ColumnView(out.schema, out.array)), (Rows{"null", "[null,[3]]"})) << spec;
    }
    ColumnBuilder fixed(type_of("+w:2<u>"));
    fixed.child(0).append_bytes("a"), fixed.child(0).append_null(), fixed.append_list();
    fixed.append_null();  // two NULL items under it
    fixed.child(0).append_bytes("b");
    EXPECT_THROW(fixed.append_list(), ArrowError);  // one item of two
    fixed.child(0).append_bytes("c"), fixed.append_list();
    ExportedArray fo = fixed.finish();
    EXPECT_EQ(fo.array.n_buffers, 1);
    EXPECT_EQ(fo.array.children[0]->length, 6);
    EXPECT_EQ(show_all(ColumnView(fo.schema, fo.array)), (Rows{"['a',null]", "null", "['b','c']"}));
    fo.array.offset = 2;
    fo.array.length = 1;
    EXPECT_EQ(show_all(ColumnView(fo.schema, fo.array)), (Rows{"['b','c']"}));
}

ExportedArray people() {
    ColumnBuilder b(type_of("+s<name:u,tags:+l<u>,age:s>"), "p");
    auto row = [&](const char* name, std::vector<const char*> tags, int age) {
        if (name) b.child(0).append_bytes(name);
        else b.child(0).append_null();
        for (const char* t : tags) b.child(1).child(0).append_bytes(t);
        b.child(1).append_list();
        if (age >= 0) b.child(2).append_int(age);
        else b.child(2).append_null();
        b.append_struct();
    };
    row("ann", {"a", "b"}, 30);
    b.append_null();
    row(nullptr, {}, -1);
    row("bob", {"c"}, 40);
    return b.finish();
}

TEST(ArrowColumn, StructsRoundTripWithNullsAndSlices) {
    ExportedArray out = people();
    EXPECT_EQ(out.array.n_buffers, 1);
    ASSERT_EQ(out.schema.n_children, 3);
    EXPECT_STREQ(out.schema.children[1]->name, "tags");
    EXPECT_EQ(out.schema.children[1]->flags, ARROW_FLAG_NULLABLE);
    EXPECT_EQ(out.array.children[0]->length, 4);  // a NULL row has a slot in every field
    ColumnView v(out.schema, out.array);
    EXPECT_EQ(show_all(v), (Rows{"{name:'ann',tags:['a','b'],age:30}", "null", "{name:null,tags:[],age:null}",
                                 "{name:'bob',tags:['c'],age:40}"}));
    out.array.offset = 2;  // the struct's offset applies to its fields too
    out.array.length = 2;
    out.array.null_count = -1;
    ColumnView sliced(out.schema, out.array);
    EXPECT_EQ(sliced.null_count(), 0);
    EXPECT_EQ(sliced.child(0).null_count(), 1);
    EXPECT_EQ(show_all(sliced), (Rows{"{name:null,tags:[],age:null}", "{name:'bob',tags:['c'],age:40}"}));

    ColumnBuilder open(type_of("+s<a:i,b:i>"));
    open.child(0).append_int(1);
    EXPECT_THROW(open.append_struct(), ArrowError);  // b has no value for the row
    EXPECT_THROW(open.finish(), ArrowError);         // and the row is still open
    open.child(1).append_int(2), open.append_struct();
    ExportedArray closed = open.finish();
    EXPECT_EQ(show_all(ColumnView(closed.schema, closed.array)), (Rows{"{a:1,b:2}"}));
}

TEST(ArrowColumn, MapsRoundTripAsAListOfEntries) {
    ColumnBuilder b(type_of("+m<u,+l<i>>"), "m");
    ColumnBuilder& entries = b.child(0);
    entries.child(0).append_bytes("k"), entries.child(1).child(0).append_int(1), entries.child(1).append_list(),
        entries.append_struct();
    entries.child(0).append_bytes("j"), entries.child(1).append_null(), entries.append_struct();
    b.append_list();
    b.append_null();
    b.append_list();  // {}
    EXPECT_THROW(entries.child(0).append_null(), ArrowError);  // map keys are never NULL
    ExportedArray out = b.finish();
    EXPECT_STREQ(out.schema.format, "+m");
    EXPECT_EQ(out.schema.flags, ARROW_FLAG_NULLABLE);  // and not ARROW_FLAG_MAP_KEYS_SORTED
    EXPECT_EQ(out.array.n_buffers, 2);
    const ArrowSchema& e = *out.schema.children[0];
    EXPECT_STREQ(e.name, "entries");
    EXPECT_STREQ(e.format, "+s");
    EXPECT_EQ(e.flags, 0);
    EXPECT_STREQ(e.children[0]->name, "key");
    EXPECT_EQ(e.children[0]->flags, 0);
    EXPECT_STREQ(e.children[1]->name, "value");
    EXPECT_EQ(e.children[1]->flags, ARROW_FLAG_NULLABLE);
    EXPECT_EQ(out.array.children[0]->n_buffers, 1);
    ColumnView v(out.schema, out.array);
    EXPECT_EQ(show_all(v), (Rows{"{'k'=>[1],'j'=>null}", "null", "{}"}));
    EXPECT_EQ(ColumnType::from_schema(out.schema).spec(), "+m<u,+l<i>>");
}

// Arrays put together by hand, as another producer lays them out (children with offsets of their own).
struct RawArray {
    ArrowArray array{};
    std::vector<const void*> buffers;
    std::vector<ArrowArray*> children;
    RawArray(std::int64_t length, std::int64_t offset, std::vector<const void*> bufs, std::vector<RawArray*> kids = {})
        : buffers(std::move(bufs)) {
        for (RawArray* k : kids) children.push_back(&k->array);
        array.length = length;
        array.offset = offset;
        array.null_count = -1;
        array.n_buffers = static_cast<std::int64_t>(buffers.size());
        array.buffers = buffers.data();
        array.n_children = static_cast<std::int64_t>(children.size());
        array.children = children.empty() ? nullptr : children.data();
        array.release = [](ArrowArray* a) { a->release = nullptr; };
    }
};
struct RawSchema {
    ArrowSchema schema{};
    std::vector<ArrowSchema*> children;
    RawSchema(const char* format, const char* name, std::vector<RawSchema*> kids = {}) {
        for (RawSchema* k : kids) children.push_back(&k->schema);
        schema.format = format;
        schema.name = name;
        schema.flags = ARROW_FLAG_NULLABLE;
        schema.n_children = static_cast<std::int64_t>(children.size());
        schema.children = children.empty() ? nullptr : children.data();
        schema.release = [](ArrowSchema* s) { s->release = nullptr; };
    }
};

TEST(ArrowColumn, ChildrenWithOffsetsOfTheirOwnAreReadFromThere) {
    // struct<a: int32, b: list<int16>> at offset 1, a at offset 2, b's items at offset 1.
    const std::int32_t a_values[] = {-2, -1, 10, 11, 12, 13};
    const std::int16_t items[] = {-9, 1, 2, 3, 4};
    const std::int32_t b_offsets[] = {0, 0, 2, 2, 4};  // b: [], [1, 2], [], [3, 4]
    const std::uint8_t struct_valid[] = {0b1011};      // row 2 (physical) is NULL
    RawArray a(6, 2, {nullptr, a_values}), item_array(4, 1, {nullptr, items});
    RawArray b(4, 0, {nullptr, b_offsets}, {&item_array});
    RawArray s(3, 1, {struct_valid}, {&a, &b});
    RawSchema as("i", "a"), is("s", "item"), bs("+l", "b", {&is}), ss("+s", "s", {&as, &bs});
    ColumnView v(ss.schema, s.array);
    EXPECT_EQ(v.null_count(), 1);
    EXPECT_EQ(show_all(v), (Rows{"{a:11,b:[1,2]}", "null", "{a:13,b:[3,4]}"}));
    // A list whose offsets point past its child, or go back, is refused by name.
    const std::int32_t past[] = {0, 2, 5};
    RawArray bad(2, 0, {nullptr, past}, {&item_array});
    RawSchema list_schema("+l", "tags", {&is});
    try {
        ColumnView bv(list_schema.schema, bad.array);
        ADD_FAILURE() << "offsets past the child accepted";
    } catch (const ArrowError& e) {
        EXPECT_NE(std::string(e.what()).find("bad offsets"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("column 'tags'"), std::string::npos) << e.what();
    }
    const std::int32_t back[] = {0, 3, 2};
    RawArray backwards(2, 0, {nullptr, back}, {&item_array});
    EXPECT_THROW(ColumnView(list_schema.schema, backwards.array), ArrowError);
}

TEST(ArrowColumn, MalformedNestedArraysAreRefusedByName) {
    auto message = [](const ArrowSchema& schema, const ArrowArray& array) -> std::string {
        try {
            ColumnView v(schema, array);
        } catch (const ArrowError& e) {
            return e.what();
        }
        return "accepted";
    };
    ExportedArray p = people();
    // A struct field shorter than the struct.
    ArrowArray* name = p.array.children[0];
    name->length = 3;
    EXPECT_NE(message(p.schema, p.array).find("column 'p.name'"), std::string::npos) << message(p.schema, p.array);
    name->length = 4;
    // A field with the wrong buffer count, named by its path.
    ArrowArray* items = p.array.children[1]->children[0];
    items->n_buffers = 2;
    EXPECT_NE(message(p.schema, p.array).find("column 'p.tags.item'"), std::string::npos) << message(p.schema, p.array);
    items->n_buffers = 3;
    // Children that do not match the schema's.
    p.array.n_children = 2;
    EXPECT_NE(message(p.schema, p.array).find("2 children where its schema has 3"), std::string::npos);
    p.array.n_children = 3;
    EXPECT_EQ(message(p.schema, p.array), "accepted");
    // A list schema without its child, a map whose child is no struct of two, an unsupported child.
    RawSchema lonely("+l", "x");
    RawArray empty(0, 0, {nullptr, nullptr});
    EXPECT_NE(message(lonely.schema, empty.array).find("0 children"), std::string::npos);
    RawSchema key("u", "key"), entries("+s", "entries", {&key}), map("+m", "m", {&entries});
    EXPECT_NE(message(map.schema, empty.array).find("not a struct of a key and a value"), std::string::npos);
    RawSchema dense("+ud:0,1", "u"), holder("+l", "h", {&dense});
    EXPECT_NE(message(holder.schema, empty.array).find("unsupported Arrow format '+ud:0,1'"),
              std::string::npos) << message(holder.schema, empty.array);
    EXPECT_NE(message(holder.schema, empty.array).find("(column 'h.u')"), std::string::npos);
    // A fixed-size list over too few items.
    ExportedArray f = [] {
        ColumnBuilder b(type_of("+w:2<i>"));
        b.child(0).append_int(1), b.child(0).append_int(2), b.append_list();
        return b.finish();
    }();
    f.array.children[0]->length = 1;
    EXPECT_NE(message(f.schema, f.array).find("1 lists over 1 items"), std::string::npos) << message(f.schema, f.array);
}

TEST(ArrowColumn, AppendValueCopiesAnyValueWholeFromSlices) {
    ExportedArray lists = nested_lists("+l<+l<i>>");
    lists.array.offset = 2;
    lists.array.length = 2;
    ExportedArray records = people();
    records.array.offset = 1;
    records.array.length = 3;
    ColumnBuilder d(type_of("d:20,3")), iv(type_of("tin")), m(type_of("+m<i,u>"));
    d.append_decimal(-1234567), d.append_null();
    iv.append_interval({1, 2, 3}), iv.append_null();
    m.child(0).child(0).append_int(1), m.child(0).child(1).append_bytes("one"), m.child(0).append_struct(), m.append_list();
    m.append_null();
    ExportedArray decimals = d.finish(), intervals = iv.finish(), maps = m.finish();
    for (ExportedArray* a : {&lists, &records, &decimals, &intervals, &maps}) {
        ColumnView from(a->schema, a->array);
        ColumnBuilder to(ColumnType::from_schema(a->schema));
        for (std::int64_t i = 0; i < from.length(); ++i) append_value(to, from, i);
        for (std::int64_t i = 0; i < from.length(); ++i) append_value(to, from, i);  // twice: offsets go on
        ExportedArray copy = to.finish();
        ColumnView back(copy.schema, copy.array);
        Rows want = show_all(from), twice = want;
        twice.insert(twice.end(), want.begin(), want.end());
        EXPECT_EQ(show_all(back), twice) << from.type().spec();
    }
    ColumnBuilder wrong(type_of("+l<i>"));
    ColumnView from(decimals.schema, decimals.array);
    EXPECT_THROW(append_value(wrong, from, 0), ArrowError);
}

TEST(ArrowColumn, AConsumerMayMoveAChildOutBeforeReleasingTheParent) {
    ExportedArray out = people();
    ArrowArray tags = *out.array.children[1];  // moved out, as the spec lets a consumer do
    ArrowSchema tags_schema = *out.schema.children[1];
    out.array.children[1]->release = nullptr;
    out.schema.children[1]->release = nullptr;
    out.array.release(&out.array);  // frees the rest, not the moved child
    out.schema.release(&out.schema);
    ColumnView v(tags_schema, tags);
    EXPECT_EQ(show_all(v), (Rows{"['a','b']", "null", "[]", "['c']"}));  // NULL under the NULL row
    tags.release(&tags);
    tags_schema.release(&tags_schema);
    EXPECT_EQ(tags.release, nullptr);
}

}  // namespace
