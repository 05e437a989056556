// Arrow values as Python objects and back, one at a time, in the calling worker's interpreter (the
// UDF layer's conversions, shared by row and batch mode). The interpreter must be attached.
#pragma once

#include <Python.h>

#include <cstdint>

#include "arrow/column.hpp"

namespace manygil::udf {

// Row i of a column as a new reference: NULL -> None; booleans, integers, floats, str (utf8), bytes
// (binary); date32 -> datetime.date; timestamps -> datetime.datetime, aware in UTC when the column
// has a time zone. Null with a Python error set when Python fails (memory, invalid UTF-8).
PyObject* to_python_value(const arrow::ColumnView& column, std::int64_t i);

// Appends one Python value to the builder: None -> NULL; bool for booleans; int for integers (and,
// for date32 and timestamp columns, a count of days or of the column's unit); int or float for
// floats; str, bytes; datetime.date; datetime.datetime (an aware one is converted to UTC).
// Throws PythonError (TypeError naming the type found and the format wanted) or arrow::ArrowError
// (a value out of the column's range); appends nothing then.
void append_python_value(arrow::ColumnBuilder& builder, PyObject* value);

}  // namespace manygil::udf
