// Arrow values as Python objects and back, one at a time, in the calling worker's interpreter (the
// UDF layer's conversions, shared by row and batch mode). The interpreter must be attached.
#pragma once

#include <Python.h>

#include <cstdint>

#include "arrow/column.hpp"

namespace manygil::udf {

// Row i of a column as a new reference: NULL (at any level) -> None; booleans, integers, floats, str
// (utf8), bytes (binary); date32 -> datetime.date; timestamps -> datetime.datetime, aware in UTC when
// the column has a time zone; time32/64 -> datetime.time; decimal128 -> decimal.Decimal at the
// column's scale ("d:38,0", DuckDB's HUGEINT: int); interval -> datetime.timedelta (30-day months);
// lists -> list; struct -> dict (field name -> value); map -> dict (key -> value). The choices are
// DuckDB's native Python UDFs'. Null with a Python error set when Python fails (memory, invalid
// UTF-8, an unhashable map key, a time or interval Python cannot hold).
PyObject* to_python_value(const arrow::ColumnView& column, std::int64_t i);

// Appends one Python value to the builder: None -> NULL; bool for booleans; int for integers (and,
// for date32, timestamp and time columns, a count of days or of the column's unit); int or float for
// floats; str, bytes; datetime.date; datetime.datetime (an aware one is converted to UTC);
// datetime.time (naive); for decimals int, float (its repr) or Decimal, rounded half away from zero
// to the scale as DuckDB does; timedelta for intervals (months 0); list or tuple for lists; dict
// (missing fields NULL) or a tuple of every field for structs; dict or (key, value) pairs for maps.
// Throws PythonError (TypeError naming the type found and the format wanted, KeyError for a dict key
// a struct has no field of, ValueError for a None map key or a fixed-size list of another size) or
// arrow::ArrowError (a value out of the column's range). A flat value that fails appends nothing; a
// nested one may leave part of itself in the children: the UDF layer then drops the builder.
void append_python_value(arrow::ColumnBuilder& builder, PyObject* value);

}  // namespace manygil::udf
