// manygil::udf: a Python function over Arrow columns on a Pool's own-GIL workers, row by row or batch
// by batch, for C++ hosts that hold Arrow data (an engine's chunks, a reader's record batches);
// manygil.duckdb's UDFs are built on it. The workers read the argument arrays in place (no copy, no
// pyarrow in their interpreters); the rows are split into one slice per worker (at least 64 rows
// each), each worker writes its slice of the result, and the slices are joined into one array.
//
// Types (Arrow formats): boolean "b", integers "c" "s" "i" "l" and unsigned "C" "S" "I" "L", floats
// "f" "g", utf8 "u" / "U", binary "z" / "Z", date32 "tdD", timestamps "ts{s,m,u,n}:" with or without
// a time zone, each with nulls. Anything else (nested, dictionary-encoded, decimals...) is refused
// with arrow::ArrowError naming the format.
//
// Blocking and threads: both calls block until every slice is done; call them without holding any
// GIL, from any thread, several at once (the slices queue on the pool like any task). The function is
// "module:qualname", imported by each worker (Pool::submit's rule). Errors, all thrown after every
// slice has finished with the columns: arrow::ArrowError (unsupported or mismatched columns, a bad
// result format), InvalidArgument (a malformed function name), UnknownFunctionError (the workers
// cannot load it), PythonError (it raised, or returned a value of the wrong type or range: the
// message starts with "row N: " or "rows A..B: ", and the traceback is the worker's), and what
// Pool::post throws for a shut-down pool.
//
// Typical C++ host:
//   manygil::Pool pool(runtime, {.workers = 4});
//   manygil::arrow::ExportedArray out = manygil::udf::map_rows(
//       pool, "scoring:score", {{&schema, &array}}, "g");   // a double per row of `array`
//   ... hand out.schema / out.array to the consumer, or let `out` release them ...
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "manygil/arrow_data.hpp"
#include "manygil/pool.hpp"

namespace manygil::udf {

// One argument column: the producer's structs, borrowed (the caller keeps them unreleased for as
// long as the call says).
struct ArgColumn {
    const ArrowSchema* schema;
    const ArrowArray* array;
};

// Calls `function` once per row with one Python value per argument column (NULL -> None; booleans,
// ints, floats, str, bytes; date32 -> datetime.date; timestamps -> datetime.datetime, aware in UTC
// when the column has a time zone) and returns its results as an array of `result_format` (None ->
// NULL; date and timestamp results may also be ints: days, or counts of the unit). With
// `skip_null_rows`, a row with a NULL argument is NULL without calling the function (SQL's rule).
// The argument arrays must stay valid until map_rows returns.
arrow::ExportedArray map_rows(Pool& pool, std::string_view function, const std::vector<ArgColumn>& args,
                              std::string_view result_format, bool skip_null_rows = false);

// Calls `function` once per slice with one argument per column and returns its results, a sequence
// of one value per row (the values map_rows accepts), as an array of `result_format`; a result that
// exports a buffer in the result column's own struct format (a memoryview like the arguments', an
// array.array) is read in C++, with no Python object per value. An argument is:
//   - integers, floats, date32 (days since 1970-01-01) and timestamps (a count of their unit): a
//     read-only typed memoryview ('b', 'h', 'i', 'q', 'B', 'H', 'I', 'Q', 'f', 'd') of the
//     producer's own buffer, no copy; NULL rows hold unspecified values;
//   - booleans: a '?' memoryview (unpacked from Arrow's bits);
//   - utf8 and binary: a list of str or bytes, None at NULL.
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
arrow::ExportedArray map_batches(Pool& pool, std::string_view function, const std::vector<ArgColumn>& args,
                                 std::string_view result_format, bool skip_null_rows,
                                 std::shared_ptr<const void> owner);

}  // namespace manygil::udf
