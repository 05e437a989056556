#include "udf/python_values.hpp"

#include <string>

#include "cpython/interpreter_dict.hpp"
#include "cpython/py_ref.hpp"
#include "cpython/python_error.hpp"
#include "manygil/errors.hpp"

namespace manygil::udf {

using arrow::ArrowError;
using arrow::ColumnBuilder;
using arrow::ColumnType;
using arrow::ColumnView;
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

[[noreturn]] void wrong_type(PyObject* value, const ColumnType& t) {
    throw PythonError("TypeError",
                      std::string("the function returned a ") + Py_TYPE(value)->tp_name + " where a '" + t.format() +
                          "' value was expected",
                      "");
}

}  // namespace

PyObject* to_python_value(const ColumnView& v, std::int64_t i) {
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

std::int64_t int_value(PyObject* value, const ColumnType& t) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow) throw ArrowError("an integer out of the range of a '" + t.format() + "' column");
    return v;
}

void append_python_value(ColumnBuilder& b, PyObject* value) {
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
            if (PyLong_Check(value)) return b.append_int(int_value(value, t));  // days since 1970-01-01
            PyRef days(PyObject_CallOneArg(helper("days_from_date"), value));
            if (!days) detail::throw_python_error();
            return b.append_int(PyLong_AsLongLong(days.get()));
        }
        case Kind::Timestamp: {
            if (PyLong_Check(value)) return b.append_int(int_value(value, t));  // a count of the column's unit
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


}  // namespace manygil::udf
