// manygil::udf: a Python function over Arrow columns on a Pool's own-GIL workers, row by row or batch
// by batch, for C++ hosts that hold Arrow data (an engine's chunks, a reader's record batches);
// manygil.duckdb's UDFs are built on it. The workers read the argument arrays in place (no copy, no
// pyarrow in their interpreters); the rows are split into one slice per worker (at least 64 rows
// each), each worker writes its slice of the result, and the slices are joined into one array.
//
// Types (Arrow formats), each with nulls: boolean "b", integers "c" "s" "i" "l" and unsigned "C" "S"
// "I" "L", floats "f" "g", utf8 "u" / "U", binary "z" / "Z", date32 "tdD", timestamps "ts{s,m,u,n}:TZ"
// (any time zone, or none), time32 "tts" "ttm", time64 "ttu" "ttn", decimal128 "d:P,S" (or
// "d:P,S,128"), interval month_day_nano "tin", and nested to any depth: list "+l", large list "+L",
// fixed-size list "+w:N", struct "+s", map "+m". DuckDB sends DECIMAL
// as "d:P,S", HUGEINT and UHUGEINT as "d:38,0" (UHUGEINT above 2^127 arrives negative: DuckDB's
// export wraps it), TIME as "ttu", INTERVAL as "tin", TIMESTAMPTZ as "tsu:Etc/UTC", LIST, STRUCT
// and MAP as "+l", "+s", "+m". Anything else (dictionary-encoded, unions, decimal256, other
// intervals...) is refused with arrow::ArrowError naming the format.
//
// `result_format` is a type spec (src/arrow/column.hpp): a flat type's format string, or a nested
// format followed by its children in angle brackets: "+l<i>" (list of int32), "+s<a:i,b:+l<u>>"
// (struct of a: int32, b: list of utf8), "+m<u,d:10,2>" (map of utf8 to DECIMAL(10,2)).
//
// Blocking and threads: both calls block until every slice is done; call them without holding any
// GIL, from any thread, several at once (the slices queue on the pool like any task). The function is
// a Function: "module:qualname", imported by each worker (Pool::submit's rule), or a pickled callable.
// Errors, all thrown after every slice has finished with the columns: arrow::ArrowError (unsupported
// or mismatched columns, a bad result format), InvalidArgument (a malformed function name),
// UnknownFunctionError (the workers cannot import or unpickle it), PythonError (it raised, or returned a value of the wrong type or range: the
// message starts with "row N: " or "rows A..B: ", and the traceback is the worker's), and what
// Pool::post throws for a shut-down pool.
//
// Typical C++ host:
//   manygil::Pool pool(runtime, {.workers = 4});
//   manygil::arrow::ExportedArray out = manygil::udf::map_rows(
//       pool, "scoring:score", {{&schema, &array}}, "g");   // a double per row of `array`
//   ... hand out.schema / out.array to the consumer, or let `out` release them ...
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "manygil/arrow_data.hpp"
#include "manygil/pool.hpp"

namespace manygil::udf {

// The Python callable a map runs on the workers. Cheap to copy; any thread.
class Function {
public:
    // By name: "module:qualname", imported by each worker (Pool::submit's rule; "__mp_main__:f" is a
    // function of the Python caller's main script, which workers run under that name). Implicit, so
    // a string names a function. A malformed name is refused by map_rows/map_batches.
    Function(std::string_view target) : data_(target), description_(target) {}  // NOLINT(google-explicit-constructor)
    Function(const char* target) : Function(std::string_view(target)) {}      // NOLINT(google-explicit-constructor)
    Function(const std::string& target) : Function(std::string_view(target)) {}  // NOLINT(google-explicit-constructor)

    // By value: a pickle of the callable (pickle.dumps; cloudpickle's for lambdas, closures and
    // functions of a REPL or notebook, which needs cloudpickle importable in the workers), loaded
    // with pickle.loads once per worker interpreter and kept there while the pool lives (at most a
    // few hundred distinct ones per interpreter). `description` names it in stats and messages.
    static Function pickled(std::string pickle, std::string description) {
        Function f(std::string_view{});
        f.data_ = std::move(pickle);
        f.description_ = std::move(description);
        f.by_value_ = true;
        return f;
    }

    bool by_value() const noexcept { return by_value_; }
    // The "module:qualname" name, or the pickle's bytes.
    const std::string& data() const noexcept { return data_; }
    const std::string& description() const noexcept { return description_; }

private:
    std::string data_, description_;
    bool by_value_ = false;
};

// Ends map calls early, from any thread (a query's cancel button, DuckDB's interrupt): slices not
// started yet do not run, row mode stops before its next row, and a running Python call gets
// TimeoutError at its next bytecode (Pool::interrupt's rule: a call inside C code, such as
// time.sleep, ends when that returns). Each call given the Stop then throws a PythonError whose
// type_name() is "manygil.Interrupted" and whose message is the reason, once its slices have ended.
// A request is final: calls that start later with the same Stop end at once. Thread-safe; share it
// with std::shared_ptr.
class Stop {
public:
    Stop() = default;
    Stop(const Stop&) = delete;
    Stop& operator=(const Stop&) = delete;

    // Idempotent (the first reason is kept); never waits for the slices.
    void request(std::string reason);
    bool requested() const noexcept { return requested_.load(std::memory_order_acquire); }
    // The first request's reason ("" before any).
    std::string reason() const;

    // While a call given this Stop waits for its slices, it runs `poll` on the waiting thread every
    // `interval`, until the slices end (a host checks there for its own cancel signal, e.g. Ctrl-C,
    // and calls request()). Set it before the calls start; `poll` must not throw.
    void set_poll(std::function<void(Stop&)> poll, std::chrono::milliseconds interval) {
        poll_ = std::move(poll);
        poll_interval_ = interval;
    }

private:
    friend struct StopAccess;  // the slices register their running calls (src/udf/map.cpp)
    mutable std::mutex mutex_;
    std::atomic<bool> requested_{false};
    std::string reason_;
    std::uint64_t next_token_ = 0;
    std::map<std::uint64_t, std::function<bool(const std::string&)>> running_;  // token -> interrupter
    std::function<void(Stop&)> poll_;
    std::chrono::milliseconds poll_interval_{100};
};

// One argument column: the producer's structs, borrowed (the caller keeps them unreleased for as
// long as the call says).
struct ArgColumn {
    const ArrowSchema* schema;
    const ArrowArray* array;
};

// Calls `function` once per row with one Python value per argument column and returns its results
// as an array of `result_format`. NULL at any level <-> None. Arguments, as DuckDB's own native
// Python UDFs give them:
//   - booleans, ints, floats, str, bytes; date32 -> datetime.date; timestamps -> datetime.datetime,
//     aware in UTC when the column has a time zone; time32/64 -> datetime.time;
//   - decimal128 -> decimal.Decimal with exactly the column's scale (Decimal('1.5') in DECIMAL(4,1)),
//     except "d:38,0" -> int (DuckDB's HUGEINT; a DECIMAL(38,0) looks the same and gives int too);
//   - interval -> datetime.timedelta, a month counted as 30 days (DuckDB's conversion), nanoseconds
//     cut to microseconds;
//   - lists (all three kinds) -> list; struct -> dict of field name -> value; map -> dict of key ->
//     value.
// Results: the same types, and also: ints for date and timestamp (days, or counts of the unit) and
// time columns (counts of the unit); for decimals an int, float or Decimal, rounded half away from
// zero to the column's scale as DuckDB's native UDFs round (a float is read as its repr: 0.15 ->
// 0.2), checked against the precision (except "d:38,0": the 128 bits); bool is refused; a timedelta
// for an interval (months 0, the days, the rest in nanoseconds); a list or tuple for a list (a
// fixed-size list: exactly N items); a dict for a struct (a missing field is NULL, an unknown key a
// KeyError naming it) or a tuple of every field in order; a dict or a sequence of (key, value) pairs
// for a map (a None key: ValueError). With `skip_null_rows`, a row with a NULL argument is NULL
// without calling the function (SQL's rule). A `stop` ends the call early when requested (Stop).
// The argument arrays must stay valid until map_rows returns.
arrow::ExportedArray map_rows(Pool& pool, const Function& function, const std::vector<ArgColumn>& args,
                              std::string_view result_format, bool skip_null_rows = false,
                              std::shared_ptr<Stop> stop = nullptr);

// Calls `function` once per slice with one argument per column and returns its results, a sequence
// of one value per row (the values map_rows accepts), as an array of `result_format`; a result that
// exports a buffer in the result column's own struct format (a memoryview like the arguments', an
// array.array) is read in C++, with no Python object per value. An argument is:
//   - integers, floats, date32 (days since 1970-01-01), timestamps and times (a count of their unit
//     since the epoch or midnight): a read-only typed memoryview ('b', 'h', 'i', 'q', 'B', 'H', 'I',
//     'Q', 'f', 'd'; time32 'i', time64 'q') of the producer's own buffer, no copy; NULL rows hold
//     unspecified values;
//   - booleans: a '?' memoryview (unpacked from Arrow's bits);
//   - anything else (utf8, binary, decimals, intervals, lists, structs, maps): a list of the values
//     map_rows would give, None at NULL.
// With `skip_null_rows` (SQL's rule) each argument is those values, and a row with a NULL argument
// is NULL whatever the function returned for it; without, each argument is a (values, valid) pair
// where valid is a '?' memoryview (True: not NULL) or None when the slice has no NULL. A result of
// the wrong length is a PythonError (ValueError) naming the slice's rows.
//
// Lifetime: the argument arrays must stay valid while `owner` lives (a null owner: InvalidArgument).
// Each memoryview holds a reference to `owner`, so a view the function keeps past its call (in a
// global, say) keeps the arrays instead of dangling. When map_batches returns, only the caller and
// such kept views hold `owner`; a kept view's reference is dropped later on that worker's thread,
// with its interpreter attached, so `owner`'s deleter must be safe there (manygil.duckdb's defers
// the release to the main interpreter, since pyarrow's release takes the main GIL).
arrow::ExportedArray map_batches(Pool& pool, const Function& function, const std::vector<ArgColumn>& args,
                                 std::string_view result_format, bool skip_null_rows,
                                 std::shared_ptr<const void> owner, std::shared_ptr<Stop> stop = nullptr);

// The `result_format` for results of the type `schema` describes, children included ("l",
// "+s<a:i,b:+l<u>>"): a host that holds the schema its consumer expects (DuckDB's own export of
// the return type, for manygil.duckdb) names the result type with it. Borrows `schema`. Throws
// arrow::ArrowError naming the field of a type map_rows does not support (dictionaries, unions...).
std::string result_format_of(const ArrowSchema& schema);

}  // namespace manygil::udf
