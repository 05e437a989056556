#include "udf/arrow_map.hpp"

#include <Python.h>

#include <algorithm>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <utility>

#include "cpython/interpreter_dict.hpp"
#include "cpython/py_ref.hpp"
#include "cpython/python_error.hpp"
#include "manygil/errors.hpp"
#include "runtime/call_target.hpp"
#include "runtime/interruptible_call.hpp"
#include "runtime/promise_job.hpp"

namespace manygil::udf {

using arrow::ArrowError;
using arrow::ColumnBuilder;
using arrow::ColumnType;
using arrow::ColumnView;
using arrow::ExportedArray;
using arrow::Kind;
using detail::PyRef;

namespace {

// Dates and timestamps to and from Python, defined once per interpreter from source (the datetime
// C API keeps process-wide pointers, which own-GIL interpreters must not share).
constexpr const char* kHelpers = R"(
import datetime as _dt
_EPOCH = _dt.datetime(1970, 1, 1)
_UNIX_DAY = 719163  # date(1970, 1, 1).toordinal()

def date_from_days(days):
    return _dt.date.fromordinal(days + _UNIX_DAY)

def days_from_date(value):
    if type(value) is not _dt.date:
        raise TypeError(f"expected a datetime.date, got {type(value).__name__}")
    return value.toordinal() - _UNIX_DAY

def datetime_from_count(count, per_second, aware):
    seconds, rest = divmod(count, per_second)
    value = _EPOCH + _dt.timedelta(seconds=seconds, microseconds=rest * 1_000_000 // per_second)
    return value.replace(tzinfo=_dt.timezone.utc) if aware else value

def count_from_datetime(value, per_second):
    if not isinstance(value, _dt.datetime):
        raise TypeError(f"expected a datetime.datetime, got {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * per_second + delta.microseconds * per_second // 1_000_000
)";

PyObject* helper(const char* name) {
    PyObject* globals = detail::per_interpreter("manygil.udf.helpers", []() -> PyObject* {
        PyRef g(PyDict_New());
        if (!g || PyDict_SetItemString(g.get(), "__builtins__", PyEval_GetBuiltins()) < 0) return nullptr;
        PyRef done(PyRun_String(kHelpers, Py_file_input, g.get(), g.get()));
        return done ? g.release() : nullptr;
    });
    PyObject* fn = PyDict_GetItemString(globals, name);  // borrowed
    if (!fn) throw PythonError("SystemError", std::string("manygil: no UDF helper ") + name, "");
    return fn;
}

std::int64_t per_second(arrow::TimeUnit unit) {
    switch (unit) {
        case arrow::TimeUnit::Second: return 1;
        case arrow::TimeUnit::Milli: return 1'000;
        case arrow::TimeUnit::Micro: return 1'000'000;
        case arrow::TimeUnit::Nano: return 1'000'000'000;
    }
    return 1'000'000;
}

// The Python value of row i of a column (a new reference), or null with a Python error.
PyObject* to_python(const ColumnView& v, std::int64_t i) {
    if (v.is_null(i)) return Py_NewRef(Py_None);
    const ColumnType& t = v.type();
    switch (t.kind) {
        case Kind::Bool: return PyBool_FromLong(v.bool_at(i));
        case Kind::Int8: case Kind::Int16: case Kind::Int32: case Kind::Int64: return PyLong_FromLongLong(v.int_at(i));
        case Kind::UInt8: case Kind::UInt16: case Kind::UInt32: case Kind::UInt64:
            return PyLong_FromUnsignedLongLong(v.uint_at(i));
        case Kind::Float32: case Kind::Float64: return PyFloat_FromDouble(v.float_at(i));
        case Kind::Utf8: case Kind::LargeUtf8: {
            std::string_view s = v.bytes_at(i);
            return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
        }
        case Kind::Binary: case Kind::LargeBinary: {
            std::string_view s = v.bytes_at(i);
            return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
        }
        case Kind::Date32: return PyObject_CallFunction(helper("date_from_days"), "L", static_cast<long long>(v.int_at(i)));
        case Kind::Timestamp:
            return PyObject_CallFunction(helper("datetime_from_count"), "LLi", static_cast<long long>(v.int_at(i)),
                                         static_cast<long long>(per_second(t.unit)), t.timezone.empty() ? 0 : 1);
    }
    return Py_NewRef(Py_None);
}

[[noreturn]] void wrong_type(PyObject* value, const ColumnType& t) {
    throw PythonError("TypeError",
                      std::string("the function returned a ") + Py_TYPE(value)->tp_name + " where a '" + t.format() +
                          "' value was expected",
                      "");
}

// Appends a function's result to the builder. Throws PythonError or ArrowError.
void append(ColumnBuilder& b, PyObject* value) {
    if (value == Py_None) return b.append_null();
    const ColumnType& t = b.type();
    switch (t.kind) {
        case Kind::Bool:
            if (!PyBool_Check(value)) wrong_type(value, t);
            return b.append_bool(value == Py_True);
        case Kind::Int8: case Kind::Int16: case Kind::Int32: case Kind::Int64:
        case Kind::UInt8: case Kind::UInt16: case Kind::UInt32: case Kind::UInt64: {
            if (!PyLong_Check(value)) wrong_type(value, t);
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
            if (overflow > 0) {
                unsigned long long u = PyLong_AsUnsignedLongLong(value);
                if (u == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
                    PyErr_Clear();
                    throw ArrowError("an integer too large for a '" + t.format() + "' column");
                }
                return b.append_uint(u);
            }
            if (overflow < 0) throw ArrowError("an integer too small for a '" + t.format() + "' column");
            return b.append_int(v);
        }
        case Kind::Float32: case Kind::Float64: {
            if (!PyFloat_Check(value) && !PyLong_Check(value)) wrong_type(value, t);
            double d = PyFloat_AsDouble(value);
            if (d == -1.0 && PyErr_Occurred()) detail::throw_python_error();
            return b.append_float(d);
        }
        case Kind::Utf8: case Kind::LargeUtf8: {
            if (!PyUnicode_Check(value)) wrong_type(value, t);
            Py_ssize_t n = 0;
            const char* s = PyUnicode_AsUTF8AndSize(value, &n);
            if (!s) detail::throw_python_error();  // lone surrogates
            return b.append_bytes(std::string_view(s, static_cast<std::size_t>(n)));
        }
        case Kind::Binary: case Kind::LargeBinary: {
            if (!PyBytes_Check(value)) wrong_type(value, t);
            return b.append_bytes(std::string_view(PyBytes_AS_STRING(value), static_cast<std::size_t>(PyBytes_GET_SIZE(value))));
        }
        case Kind::Date32: {
            PyRef days(PyObject_CallOneArg(helper("days_from_date"), value));
            if (!days) detail::throw_python_error();
            return b.append_int(PyLong_AsLongLong(days.get()));
        }
        case Kind::Timestamp: {
            PyRef count(PyObject_CallFunction(helper("count_from_datetime"), "OL", value,
                                              static_cast<long long>(per_second(t.unit))));
            if (!count) detail::throw_python_error();
            int overflow = 0;
            long long c = PyLong_AsLongLongAndOverflow(count.get(), &overflow);
            if (overflow) throw ArrowError("a datetime out of the range of a '" + t.format() + "' column");
            return b.append_int(c);
        }
    }
}

// Rows [begin, end) of the columns, on a worker with its interpreter attached.
ExportedArray map_slice(const std::string& function, const std::vector<ColumnView>& cols, std::int64_t begin,
                        std::int64_t end, const ColumnType& result, bool skip_null_rows) {
    PyRef fn = detail::resolve_target(function);
    ColumnBuilder out(result);
    out.reserve(end - begin);
    auto n = static_cast<Py_ssize_t>(cols.size());
    detail::InterruptibleCall marked(detail::next_task_id(), std::nullopt);  // Pool::interrupt_running
    for (std::int64_t row = begin; row < end; ++row) {
        if (skip_null_rows && std::any_of(cols.begin(), cols.end(), [&](const ColumnView& c) { return c.is_null(row); })) {
            out.append_null();
            continue;
        }
        try {
            PyRef args(PyTuple_New(n));
            if (!args) detail::throw_python_error();
            for (Py_ssize_t c = 0; c < n; ++c) {
                PyObject* value = to_python(cols[static_cast<std::size_t>(c)], row);
                if (!value) detail::throw_python_error();
                PyTuple_SET_ITEM(args.get(), c, value);
            }
            PyRef value(PyObject_Call(fn.get(), args.get(), nullptr));
            if (!value) detail::throw_python_error();
            append(out, value.get());
        } catch (const PythonError& e) {
            throw PythonError(e.type_name(), "row " + std::to_string(row) + ": " + e.message(), e.traceback());
        } catch (const ArrowError& e) {
            throw PythonError("OverflowError", "row " + std::to_string(row) + ": " + e.what(), "");
        }
    }
    return out.finish();
}

// Appends every value of a finished slice to the joined result.
void append_all(ColumnBuilder& out, const ExportedArray& piece) {
    ColumnView v(piece.schema, piece.array);
    for (std::int64_t i = 0; i < v.length(); ++i) {
        if (v.is_null(i)) {
            out.append_null();
            continue;
        }
        switch (v.type().kind) {
            case Kind::Bool: out.append_bool(v.bool_at(i)); break;
            case Kind::UInt8: case Kind::UInt16: case Kind::UInt32: case Kind::UInt64: out.append_uint(v.uint_at(i)); break;
            case Kind::Float32: case Kind::Float64: out.append_float(v.float_at(i)); break;
            case Kind::Utf8: case Kind::Binary: case Kind::LargeUtf8: case Kind::LargeBinary: out.append_bytes(v.bytes_at(i)); break;
            default: out.append_int(v.int_at(i)); break;
        }
    }
}

}  // namespace

ExportedArray map_rows(Pool& pool, std::string_view function, const std::vector<ArgColumn>& args,
                       const ColumnType& result, bool skip_null_rows) {
    detail::check_target(function);
    auto columns = std::make_shared<std::vector<ColumnView>>();
    for (const ArgColumn& a : args) {
        if (!a.schema || !a.array) throw ArrowError("an argument column without its schema or array");
        columns->emplace_back(*a.schema, *a.array);
    }
    std::int64_t rows = columns->empty() ? 0 : columns->front().length();
    for (std::size_t i = 1; i < columns->size(); ++i) {
        if ((*columns)[i].length() != rows) {
            throw ArrowError("argument columns of different lengths: " + std::to_string(rows) + " and " +
                             std::to_string((*columns)[i].length()) + " rows (argument " + std::to_string(i) + ")");
        }
    }
    // One slice per worker (at least 64 rows each, so that small inputs do not pay for many hand-overs).
    auto slices = static_cast<std::int64_t>(std::max<std::size_t>(1, pool.size()));
    slices = std::max<std::int64_t>(1, std::min(slices, (rows + 63) / 64));
    std::vector<std::future<ExportedArray>> pending;
    std::exception_ptr first_error;
    for (std::int64_t s = 0; s < slices && !first_error; ++s) {
        std::int64_t begin = rows * s / slices, end = rows * (s + 1) / slices;
        auto job = std::make_unique<detail::PromiseJob<std::function<ExportedArray()>, ExportedArray>>(
            [function = std::string(function), columns, begin, end, result, skip_null_rows] {
                return map_slice(function, *columns, begin, end, result, skip_null_rows);
            },
            std::string(function) + " (Arrow rows)");
        auto future = job->future();
        try {
            pool.post(std::move(job));  // a refused job is destroyed unrun: its future reports broken_promise
            pending.push_back(std::move(future));
        } catch (...) {
            first_error = std::current_exception();  // the slices already posted still read the columns
        }
    }
    std::vector<ExportedArray> pieces;
    for (auto& f : pending) {  // wait for all (the columns must outlive every slice), report the first error
        try {
            pieces.push_back(f.get());
        } catch (...) {
            if (!first_error) first_error = std::current_exception();
        }
    }
    if (first_error) std::rethrow_exception(first_error);
    if (pieces.size() == 1) return std::move(pieces.front());
    ColumnBuilder joined(result);
    joined.reserve(rows);
    for (const ExportedArray& piece : pieces) append_all(joined, piece);
    return joined.finish();
}

}  // namespace manygil::udf
