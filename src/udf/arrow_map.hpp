// A Python function over Arrow columns, row by row, on a Pool's own-GIL workers (issue 15's C++ side,
// engine-agnostic: DuckDB's UDF path and C++ hosts holding Arrow data both use it). The argument
// arrays are read in place by the workers (arrow/column.hpp: no copy, no pyarrow in the interpreters),
// the rows are split into one slice per worker, and each worker writes its slice of the result; the
// slices are joined into one array.
#pragma once

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

}  // namespace manygil::udf
