// Python UDFs over Arrow data (manygil.duckdb): _core._udf_map runs a row or batch function over the
// columns of objects implementing the Arrow PyCapsule interface on a _core.Pool's workers (src/udf/),
// with the GIL released, and returns a _core.ArrowResult, which exports the result array once through
// __arrow_c_array__. Main interpreter.
#pragma once

#include <Python.h>

namespace manygil::ext {

extern PyType_Spec arrow_result_spec;
extern PyType_Spec udf_stop_spec;  // _core.UdfStop, a udf::Stop

// _arrow_result_format(obj) -> the result_format for the Arrow type obj exports (__arrow_c_schema__)
PyObject* py_arrow_result_format(PyObject* module, PyObject* obj);

// _udf_map(pool, function, columns, result_format, skip_null_rows, batch[, stop]) -> ArrowResult
PyObject* py_udf_map(PyObject* module, PyObject* const* argv, Py_ssize_t argc);

}  // namespace manygil::ext
