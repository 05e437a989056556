// A Python function over Arrow columns, row by row or batch by batch, on a Pool's own-GIL workers (issue 15's C++ side,
// engine-agnostic: DuckDB's UDF path and C++ hosts holding Arrow data both use it). The argument
// arrays are read in place by the workers (arrow/column.hpp: no copy, no pyarrow in the interpreters),
// the rows are split into one slice per worker, and each worker writes its slice of the result; the
// slices are joined into one array.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "arrow/column.hpp"
#include "manygil/pool.hpp"

namespace manygil::udf {

struct ArgColumn {
    const ArrowSchema* schema;
    const ArrowArray* array;  // borrowed: the caller keeps it alive (unreleased) until map_rows returns
};

// Calls `function` ("module:qualname", importable by the workers) once per row with one Python value
// per argument column (NULL -> None; date32 -> datetime.date; timestamps -> datetime.datetime, aware in
// UTC when the column has a time zone) and returns its results as an array of `result` (None -> NULL).
// With `skip_null_rows`, a row with a NULL argument gets NULL without calling the function (SQL's
// usual rule; DuckDB's null_handling="default").
//
// Blocks until every slice is done: call it without holding any GIL. Throws arrow::ArrowError for
// unsupported or mismatched columns, UnknownFunctionError when the workers cannot load `function`,
// PythonError when it raises or returns a value of the wrong type (the message names the row), and
// what Pool::post throws for a shut-down pool.
arrow::ExportedArray map_rows(Pool& pool, std::string_view function, const std::vector<ArgColumn>& args,
                              const arrow::ColumnType& result, bool skip_null_rows = false);

// Calls `function` once per slice (one slice per worker, at least 64 rows each) with one argument
// per column and returns its results, a sequence of one value per row (the values map_rows accepts,
// plus ints for date32 and timestamp results), as an array of `result`. An argument is:
//   - integers, floats, date32 (days since 1970-01-01) and timestamps (a count of their unit): a
//     read-only typed memoryview ('b', 'h', 'i', 'q', 'B', 'H', 'I', 'Q', 'f', 'd') of the
//     producer's own buffer, no copy; NULL rows hold unspecified values;
//   - booleans: a '?' memoryview (unpacked from Arrow's bits);
//   - utf8 and binary: a list of str or bytes, None at NULL.
// With `skip_null_rows` (SQL's rule) each argument is those values, and a row with a NULL argument
// is NULL whatever the function returned for it; without, each argument is a (values, valid) pair
// where valid is a '?' memoryview (True: not NULL) or None when the slice has no NULL.
//
// Lifetime: the argument arrays must stay valid (unreleased) while `owner` lives. Each memoryview
// holds a reference to `owner`, so a view the function keeps past its call (in a global, say) keeps
// the arrays instead of dangling; such a last reference is dropped later on that worker's thread,
// with its interpreter attached, so `owner`'s deleter must be safe there (the Python binding defers
// the release to the main interpreter). Blocks like map_rows and throws what it throws, plus
// std::invalid_argument for a null `owner`; a result of the wrong length is a PythonError
// (ValueError) naming the slice's rows.
arrow::ExportedArray map_batches(Pool& pool, std::string_view function, const std::vector<ArgColumn>& args,
                                 const arrow::ColumnType& result, bool skip_null_rows,
                                 std::shared_ptr<const void> owner);

}  // namespace manygil::udf
