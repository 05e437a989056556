// udf::map_rows from a C++ host: a Python row function over Arrow columns on a Pool's workers, with no
// Python in the test's thread (tests/cpp/python/mg_udf.py holds the functions).
#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"
#include "arrow/column.hpp"
#include "arrow_show.hpp"

namespace {

using namespace manygil::arrow;
using namespace manygil::arrow::show_values;
using manygil::udf::map_batches;
using manygil::udf::map_rows;

manygil::Pool& pool() {
    static manygil::Pool p(manygil::testing::runtime(), {.workers = 2});
    return p;
}

ExportedArray ints(std::int64_t n, bool with_nulls) {
    ColumnBuilder b(ColumnType::parse("l"));
    for (std::int64_t i = 0; i < n; ++i) {
        if (with_nulls && i % 10 == 3) b.append_null();
        else b.append_int(i);
    }
    return b.finish();
}

std::int64_t lcg(std::int64_t x) {
    for (int k = 0; k < 20; ++k) x = (x * 1103515245 + 12345) % 2147483648;
    return x;
}

TEST(UdfRows, RunsTheFunctionOnEveryRowAcrossWorkers) {
    ExportedArray in = ints(5000, true);
    ExportedArray out = map_rows(pool(), "mg_udf:lcg", {{&in.schema, &in.array}}, "l");
    ColumnView v(out.schema, out.array);
    ASSERT_EQ(v.length(), 5000);
    EXPECT_EQ(v.null_count(), 500);
    for (std::int64_t i = 0; i < 5000; ++i) {
        if (i % 10 == 3) EXPECT_TRUE(v.is_null(i)) << i;
        else EXPECT_EQ(v.int_at(i), lcg(i)) << i;
    }
}

TEST(UdfRows, TheSlicesRunAtOnceOnTwoWorkers) {
    // Each row waits until both workers have arrived: it finishes only if the two slices run at once.
    pool().wait_ready();
    char dir[] = "/tmp/mg-arrow-map-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    ColumnBuilder paths(ColumnType::parse("u"));
    for (int i = 0; i < 200; ++i) paths.append_bytes(dir);
    ExportedArray in = paths.finish();
    ExportedArray ids = map_rows(pool(), "mg_udf:meet", {{&in.schema, &in.array}}, "l");
    ColumnView idv(ids.schema, ids.array);
    std::set<std::int64_t> seen;
    for (std::int64_t i = 0; i < idv.length(); ++i) seen.insert(idv.int_at(i));
    EXPECT_EQ(seen.count(-1), 0u) << "a slice waited for the other in vain";
    EXPECT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen.count(0), 0u);  // never the main interpreter
    std::filesystem::remove_all(dir);
}

TEST(UdfRows, SeveralColumnsOfEveryKindWithNulls) {
    ColumnBuilder i(ColumnType::parse("i")), f(ColumnType::parse("g")), s(ColumnType::parse("u")),
        b(ColumnType::parse("z")), flag(ColumnType::parse("b"));
    i.append_int(1), f.append_float(2.5), s.append_bytes("caf\xc3\xa9"), b.append_bytes(std::string("\x00\xff", 2)),
        flag.append_bool(true);
    i.append_null(), f.append_null(), s.append_null(), b.append_null(), flag.append_null();
    ExportedArray ai = i.finish(), af = f.finish(), as = s.finish(), ab = b.finish(), aflag = flag.finish();
    ExportedArray out = map_rows(pool(), "mg_udf:describe",
                                 {{&ai.schema, &ai.array}, {&af.schema, &af.array}, {&as.schema, &as.array},
                                  {&ab.schema, &ab.array}, {&aflag.schema, &aflag.array}},
                                 "u");
    ColumnView v(out.schema, out.array);
    EXPECT_EQ(v.bytes_at(0), "1|2.5|CAF\xc3\x89|b'\\x00\\xff'|True");
    EXPECT_TRUE(v.is_null(1));
}

TEST(UdfRows, DatesAndTimestampsGoThroughDatetime) {
    ColumnBuilder d(ColumnType::parse("tdD")), t(ColumnType::parse("tsu:UTC"));
    d.append_int(0), d.append_null(), d.append_int(19000);
    t.append_int(1'500'000), t.append_null(), t.append_int(-1);
    ExportedArray ad = d.finish(), at = t.finish();
    ExportedArray nd = map_rows(pool(), "mg_udf:next_day", {{&ad.schema, &ad.array}}, "tdD");
    ColumnView dv(nd.schema, nd.array);
    EXPECT_EQ(dv.int_at(0), 1);
    EXPECT_TRUE(dv.is_null(1));
    EXPECT_EQ(dv.int_at(2), 19001);
    ExportedArray nt = map_rows(pool(), "mg_udf:plus_second", {{&at.schema, &at.array}}, "tsu:UTC");
    ColumnView tv(nt.schema, nt.array);
    EXPECT_EQ(tv.int_at(0), 2'500'000);
    EXPECT_TRUE(tv.is_null(1));
    EXPECT_EQ(tv.int_at(2), 999'999);
}

TEST(UdfRows, ErrorsNameTheRowAndThePoolGoesOn) {
    ExportedArray in = ints(20, false);
    try {
        map_rows(pool(), "mg_udf:fails_at_seven", {{&in.schema, &in.array}}, "l");
        ADD_FAILURE() << "no error";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "ValueError");
        EXPECT_EQ(e.message(), "row 7: seven is not welcome");
        EXPECT_NE(e.traceback().find("mg_udf.py"), std::string::npos) << e.traceback();
    }
    try {
        map_rows(pool(), "mg_udf:returns_str", {{&in.schema, &in.array}}, "l");
        ADD_FAILURE() << "no error";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "TypeError");
        EXPECT_NE(e.message().find("row 0: the function returned a str where a 'l' value was expected"),
                  std::string::npos) << e.message();
    }
    EXPECT_THROW(map_rows(pool(), "mg_udf:too_big", {{&in.schema, &in.array}}, "i"),
                 manygil::PythonError);
    EXPECT_THROW(map_rows(pool(), "mg_udf:missing", {{&in.schema, &in.array}}, "l"),
                 manygil::UnknownFunctionError);
    EXPECT_THROW(map_rows(pool(), "no-colon", {{&in.schema, &in.array}}, "l"),
                 manygil::InvalidArgument);
    ExportedArray shorter = ints(5, false);
    EXPECT_THROW(map_rows(pool(), "mg_udf:lcg", {{&in.schema, &in.array}, {&shorter.schema, &shorter.array}},
                          "l"),
                 ArrowError);
    ExportedArray fine = map_rows(pool(), "mg_udf:lcg", {{&in.schema, &in.array}}, "l");
    EXPECT_EQ(ColumnView(fine.schema, fine.array).int_at(1), lcg(1));
}

// ---- map_batches ----------------------------------------------------------------------------------

std::shared_ptr<const void> owning(ExportedArray& a) { return std::shared_ptr<const void>(&a, [](const void*) {}); }

TEST(UdfBatches, OneCallPerSliceWithNullRowsMasked) {
    ExportedArray in = ints(5000, true);
    ExportedArray out = map_batches(pool(), "mg_udf:twice_batch", {{&in.schema, &in.array}}, "l",
                                    true, owning(in));
    ColumnView v(out.schema, out.array);
    ASSERT_EQ(v.length(), 5000);
    EXPECT_EQ(v.null_count(), 500);
    for (std::int64_t i = 0; i < 5000; ++i) {
        if (i % 10 == 3) EXPECT_TRUE(v.is_null(i)) << i;
        else EXPECT_EQ(v.int_at(i), 2 * i) << i;
    }
}

TEST(UdfBatches, ArgumentsAreTypedViewsOrLists) {
    ColumnBuilder i8(ColumnType::parse("c")), u32(ColumnType::parse("I")), f(ColumnType::parse("f")),
        d(ColumnType::parse("tdD")), ts(ColumnType::parse("tsu:")), flag(ColumnType::parse("b")),
        s(ColumnType::parse("u")), b(ColumnType::parse("z"));
    i8.append_int(1), u32.append_uint(2), f.append_float(3), d.append_int(4), ts.append_int(5), flag.append_bool(true),
        s.append_bytes("x"), b.append_bytes("y");
    std::vector<ExportedArray> arrays;
    for (ColumnBuilder* c : {&i8, &u32, &f, &d, &ts, &flag, &s, &b}) arrays.push_back(c->finish());
    std::vector<manygil::udf::ArgColumn> args;
    for (const ExportedArray& a : arrays) args.push_back({&a.schema, &a.array});
    ExportedArray out = map_batches(pool(), "mg_udf:kinds_batch", args, "u", true,
                                    std::make_shared<int>(0));
    EXPECT_EQ(ColumnView(out.schema, out.array).bytes_at(0),
              "memoryview:b|memoryview:I|memoryview:f|memoryview:i|memoryview:q|memoryview:?|list|list");
}

TEST(UdfBatches, WithoutSkippingNullsEachArgumentCarriesItsValidity) {
    ExportedArray with = ints(300, true), without = ints(300, false);
    for (ExportedArray* in : {&with, &without}) {
        ExportedArray out = map_batches(pool(), "mg_udf:valid_or_minus_one_batch", {{&in->schema, &in->array}},
                                        "l", false, owning(*in));
        ColumnView v(out.schema, out.array);
        ASSERT_EQ(v.length(), 300);
        EXPECT_EQ(v.null_count(), 0);
        for (std::int64_t i = 0; i < 300; ++i) EXPECT_EQ(v.int_at(i), in == &with && i % 10 == 3 ? -1 : i) << i;
    }
}

TEST(UdfBatches, AViewKeptPastTheCallKeepsItsArraysAlive) {
    manygil::Pool one(manygil::testing::runtime(), {.workers = 1});  // one interpreter holds every kept view
    std::atomic<bool> released{false};
    auto watched = [&] {
        return std::shared_ptr<ExportedArray>(new ExportedArray(ints(100, false)), [&](ExportedArray* a) {
            delete a;
            released = true;
        });
    };
    {  // not kept: when map_batches returns, the caller holds the only reference
        std::shared_ptr<ExportedArray> in = watched();
        map_batches(one, "mg_udf:twice_batch", {{&in->schema, &in->array}}, "l", true, in);
        in.reset();
        EXPECT_TRUE(released.exchange(false));
    }
    std::shared_ptr<ExportedArray> in = watched();
    map_batches(one, "mg_udf:keep_view_batch", {{&in->schema, &in->array}}, "l", true, in);
    in.reset();
    EXPECT_FALSE(released) << "the arrays were released under a view the function kept";
    ExportedArray probe = ints(1, false);
    ExportedArray total = map_rows(one, "mg_udf:kept_total", {{&probe.schema, &probe.array}}, "l");
    EXPECT_EQ(ColumnView(total.schema, total.array).int_at(0), 99 * 100 / 2 - 9 * 10 / 2);  // rows 10..99, intact
    map_rows(one, "mg_udf:drop_kept", {{&probe.schema, &probe.array}}, "l");
    EXPECT_TRUE(released) << "dropping the last view did not release the arrays";
}

TEST(UdfBatches, BufferResultsAreReadInPlaceAndOtherFormatsItemByItem) {
    ExportedArray in = ints(300, true);
    ExportedArray same = map_batches(pool(), "mg_udf:same_batch", {{&in.schema, &in.array}}, "l", true, owning(in));
    ExportedArray plus = map_batches(pool(), "mg_udf:array_batch", {{&in.schema, &in.array}}, "l", true, owning(in));
    ColumnView sv(same.schema, same.array), pv(plus.schema, plus.array);
    for (std::int64_t i = 0; i < 300; ++i) {
        ASSERT_EQ(sv.is_null(i), i % 10 == 3) << i;
        ASSERT_EQ(pv.is_null(i), i % 10 == 3) << i;
        if (sv.is_null(i)) continue;
        EXPECT_EQ(sv.int_at(i), i);
        EXPECT_EQ(pv.int_at(i), i + 1);
    }
    ColumnBuilder flags(ColumnType::parse("b"));
    for (int i = 0; i < 70; ++i) flags.append_bool(i % 3 == 0);
    ExportedArray fin = flags.finish();
    ExportedArray fout = map_batches(pool(), "mg_udf:same_batch", {{&fin.schema, &fin.array}}, "b", true, owning(fin));
    ColumnView fv(fout.schema, fout.array);
    for (std::int64_t i = 0; i < 70; ++i) EXPECT_EQ(fv.bool_at(i), i % 3 == 0) << i;
    try {
        map_batches(pool(), "mg_udf:doubles_batch", {{&in.schema, &in.array}}, "l", true, owning(in));
        ADD_FAILURE() << "no error";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "TypeError");
        EXPECT_NE(e.message().find("row 0: the function returned a float where a 'l' value was expected"),
                  std::string::npos) << e.message();
    }
}

TEST(UdfBatches, AResultOfTheWrongLengthNamesTheRows) {
    ExportedArray in = ints(100, false);
    try {
        map_batches(pool(), "mg_udf:wrong_length_batch", {{&in.schema, &in.array}}, "l", true,
                    owning(in));
        ADD_FAILURE() << "no error";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "ValueError");
        EXPECT_EQ(e.message(), "rows 0..49: the function returned 1 values for 50 rows");  // the first of 2 slices
    }
    EXPECT_THROW(map_batches(pool(), "mg_udf:twice_batch", {{&in.schema, &in.array}}, "l", true, nullptr),
                 manygil::InvalidArgument);
}

// ---- decimals, times, intervals, nested types -----------------------------------------------------

// What mg_udf:typed_repr says of each row of `in` ("type:repr").
std::vector<std::string> python_reprs(const ExportedArray& in) {
    ExportedArray out = map_rows(pool(), "mg_udf:typed_repr", {{&in.schema, &in.array}}, "u");
    ColumnView v(out.schema, out.array);
    std::vector<std::string> rows;
    for (std::int64_t i = 0; i < v.length(); ++i) rows.emplace_back(v.bytes_at(i));
    return rows;
}

TEST(UdfTypes, RowValuesAreWhatDuckDBsNativeUdfsGive) {
    ColumnBuilder dec(ColumnType::parse("d:4,1")), huge(ColumnType::parse("d:38,0")), t64(ColumnType::parse("ttu")),
        t32(ColumnType::parse("tts")), iv(ColumnType::parse("tin")), list(ColumnType::parse("+l<i>")),
        rec(ColumnType::parse("+s<a:i,b:u>")), map(ColumnType::parse("+m<u,i>")), tz(ColumnType::parse("tsu:Etc/UTC"));
    dec.append_decimal(15), dec.append_decimal(-10);
    huge.append_decimal(~(static_cast<int128>(1) << 127)), huge.append_decimal(-1);
    t64.append_int(43'201'500'000), t64.append_null();
    t32.append_int(3600), t32.append_int(0);
    iv.append_interval({1, 2, 10'800'000'000'000}), iv.append_interval({0, -1, 1'000});
    list.child(0).append_int(1), list.child(0).append_null(), list.append_list(), list.append_list();
    rec.child(0).append_int(1), rec.child(1).append_null(), rec.append_struct(), rec.append_null();
    map.child(0).child(0).append_bytes("k"), map.child(0).child(1).append_int(1), map.child(0).append_struct();
    map.append_list(), map.append_null();
    tz.append_int(0), tz.append_null();
    auto reprs = [](ColumnBuilder& b) { return python_reprs(b.finish()); };
    EXPECT_EQ(reprs(dec), (Rows{"Decimal:Decimal('1.5')", "Decimal:Decimal('-1.0')"}));
    // HUGEINT arrives as "d:38,0": an int, as DuckDB's native UDFs give it.
    EXPECT_EQ(reprs(huge), (Rows{"int:170141183460469231731687303715884105727", "int:-1"}));
    EXPECT_EQ(reprs(t64), (Rows{"time:datetime.time(12, 0, 1, 500000)", "NoneType:None"}));
    EXPECT_EQ(reprs(t32), (Rows{"time:datetime.time(1, 0)", "time:datetime.time(0, 0)"}));
    // A month is 30 days, as in DuckDB's own conversion.
    EXPECT_EQ(reprs(iv), (Rows{"timedelta:datetime.timedelta(days=32, seconds=10800)",
                               "timedelta:datetime.timedelta(days=-1, microseconds=1)"}));
    EXPECT_EQ(reprs(list), (Rows{"list:[1, None]", "list:[]"}));
    EXPECT_EQ(reprs(rec), (Rows{"dict:{'a': 1, 'b': None}", "NoneType:None"}));
    EXPECT_EQ(reprs(map), (Rows{"dict:{'k': 1}", "NoneType:None"}));
    EXPECT_EQ(reprs(tz), (Rows{"datetime:datetime.datetime(1970, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)",
                               "NoneType:None"}));
}

ExportedArray results(const char* function, std::int64_t n, const char* spec) {
    ExportedArray in = ints(n, false);
    return map_rows(pool(), function, {{&in.schema, &in.array}}, spec);
}

Rows shown(const ExportedArray& a) { return show_all(ColumnView(a.schema, a.array)); }

TEST(UdfTypes, ResultsOfTheNewTypes) {
    // Rounded half away from zero to the column's scale, a float read as its repr: DuckDB's rule.
    EXPECT_EQ(shown(results("mg_udf:decimal_result", 6, "d:4,1")), (Rows{"1.3", "2.0", "0.2", "-1.3", "null", "7.0"}));
    EXPECT_EQ(shown(results("mg_udf:decimal_result", 6, "d:38,0")), (Rows{"1", "2", "0", "-1", "null", "7"}));
    EXPECT_EQ(shown(results("mg_udf:time_result", 3, "ttu")), (Rows{"43201500000", "3600000000", "null"}));
    EXPECT_EQ(shown(results("mg_udf:time_result", 3, "ttn")), (Rows{"43201500000000", "3600000000", "null"}));
    EXPECT_THROW(results("mg_udf:time_result", 3, "ttm"), manygil::PythonError);  // 3600000000 ms: not int32
    EXPECT_EQ(shown(results("mg_udf:interval_result", 3, "tin")), (Rows{"0m40d5000ns", "0m-1d0ns", "null"}));
    // Lists from lists or tuples, structs from dicts (missing fields NULL), maps from dicts or pairs.
    EXPECT_EQ(shown(results("mg_udf:nested_result", 4, "+l<+s<a:+l<i>,m:+m<u,d:4,1>>>")),
              (Rows{"[{a:[1,null],m:{'x'=>1.5,'y'=>null}},null,{a:null,m:null}]", "null", "[]",
                    "[{a:null,m:{'z'=>2.0}}]"}));
}

TEST(UdfTypes, ResultsThatDoNotFitNameTheRowAndTheValue) {
    auto error = [](const char* function, const char* spec) -> std::pair<std::string, std::string> {
        try {
            results(function, 1, spec);
        } catch (const manygil::PythonError& e) {
            return {e.type_name(), e.message()};
        }
        return {"none", ""};
    };
    auto [type, message] = error("mg_udf:too_precise", "d:4,1");
    EXPECT_EQ(type, "OverflowError");
    EXPECT_EQ(message, "row 0: 1234.5 does not fit a 'd:4,1' column (4 digits, 1 after the point)");
    std::tie(type, message) = error("mg_udf:bool_for_decimal", "d:4,1");
    EXPECT_EQ(type, "TypeError");
    EXPECT_NE(message.find("a bool where a 'd:4,1' value was expected"), std::string::npos) << message;
    std::tie(type, message) = error("mg_udf:unknown_field", "+s<a:i,b:u>");
    EXPECT_EQ(type, "KeyError");
    EXPECT_NE(message.find("key 'c', which struct '+s<a:i,b:u>' has no field of"), std::string::npos) << message;
    std::tie(type, message) = error("mg_udf:none_map_key", "+m<i,i>");
    EXPECT_EQ(type, "ValueError");
    std::tie(type, message) = error("mg_udf:wrong_fixed_size", "+w:2<i>");
    EXPECT_EQ(type, "ValueError");
    EXPECT_NE(message.find("a list of 3 items where a '+w:2' value has 2"), std::string::npos) << message;
    std::tie(type, message) = error("mg_udf:time_result", "tin");
    EXPECT_EQ(type, "TypeError");
    EXPECT_EQ(error("mg_udf:returns_str", "+l<i>").first, "TypeError");
}

TEST(UdfTypes, NestedValuesRoundTripThroughRowsAndBatchesAcrossSlices) {
    // 300 rows: two slices, joined by append_all, in each direction.
    ExportedArray in = ints(300, false);
    const char* spec = "+l<+s<d:d:10,2,t:ttu,iv:tin,m:+m<u,+l<l>>>>";
    ExportedArray made = map_rows(pool(), "mg_udf:make_nested", {{&in.schema, &in.array}}, spec);
    Rows want = shown(made);
    ASSERT_EQ(want.size(), 300u);
    EXPECT_EQ(want[0], "[]");
    EXPECT_EQ(want[1], "[{d:0.10,t:60000000,iv:0m1d0ns,m:{}}]");
    EXPECT_EQ(want[3], "null");
    EXPECT_EQ(want[5], "[null]");
    EXPECT_EQ(want[7], "[{d:0.70,t:420000000,iv:0m7d0ns,m:{}},{d:0.71,t:4020000000,iv:0m7d1000ns,m:{'k0'=>[0,null]}},"
                       "{d:0.72,t:7620000000,iv:0m7d2000ns,m:{'k0'=>[0,null],'k1'=>null}}]");
    ExportedArray rows = map_rows(pool(), "mg_udf:identity", {{&made.schema, &made.array}}, spec);
    EXPECT_EQ(shown(rows), want);
    ExportedArray batches = map_batches(pool(), "mg_udf:same_batch", {{&made.schema, &made.array}}, spec, true,
                                        owning(made));
    EXPECT_EQ(shown(batches), want);
    made.array.offset = 5;  // a slice of it, read from its offset at every level
    made.array.length = 200;
    made.array.null_count = -1;
    Rows sliced(want.begin() + 5, want.begin() + 205);
    EXPECT_EQ(shown(map_rows(pool(), "mg_udf:identity", {{&made.schema, &made.array}}, spec)), sliced);
    EXPECT_EQ(shown(map_batches(pool(), "mg_udf:same_batch", {{&made.schema, &made.array}}, spec, true, owning(made))),
              sliced);
}

TEST(UdfTypes, BatchArgumentsAreTimeViewsOrListsOfRowValues) {
    ColumnBuilder t64(ColumnType::parse("ttu")), t32(ColumnType::parse("tts")), dec(ColumnType::parse("d:4,1")),
        iv(ColumnType::parse("tin")), list(ColumnType::parse("+l<i>")), rec(ColumnType::parse("+s<a:i>")),
        map(ColumnType::parse("+m<u,i>"));
    for (int i = 0; i < 100; ++i) {
        t64.append_int(i), t32.append_int(i), dec.append_decimal(i), iv.append_interval({0, i, 0});
        list.child(0).append_int(i), list.append_list();
        rec.child(0).append_int(i), rec.append_struct();
        map.append_list();
    }
    std::vector<ExportedArray> arrays;
    for (ColumnBuilder* c : {&t64, &t32, &dec, &iv, &list, &rec, &map}) arrays.push_back(c->finish());
    std::vector<manygil::udf::ArgColumn> args;
    for (const ExportedArray& a : arrays) args.push_back({&a.schema, &a.array});
    ExportedArray out = map_batches(pool(), "mg_udf:kinds_rows_batch", args, "u", true, std::make_shared<int>(0));
    EXPECT_EQ(ColumnView(out.schema, out.array).bytes_at(0),
              "memoryview:q|memoryview:i|list:Decimal|list:timedelta|list:list|list:dict|list:dict");
    // A time64 argument's own view comes back as a buffer, read in place.
    ExportedArray same = map_batches(pool(), "mg_udf:same_batch", {args[0]}, "ttu", true, std::make_shared<int>(0));
    ColumnView sv(same.schema, same.array);
    for (std::int64_t i = 0; i < 100; ++i) EXPECT_EQ(sv.int_at(i), i);
    ExportedArray firsts = map_batches(pool(), "mg_udf:first_of_list_batch", {args[4]}, "i", true,
                                       std::make_shared<int>(0));
    ColumnView fv(firsts.schema, firsts.array);
    for (std::int64_t i = 0; i < 100; ++i) EXPECT_EQ(fv.int_at(i), i);
}

}  // namespace
