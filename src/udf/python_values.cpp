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
using arrow::Field;
using arrow::int128;
using arrow::Kind;
using detail::PyRef;

namespace {

// Dates, times, intervals and decimals to and from Python, defined once per interpreter from source
// (the datetime C API keeps process-wide pointers, which own-GIL interpreters must not share; the
// decimal module has none, but importing it here keeps every conversion in one place).
constexpr const char* kHelpers = R"(
import datetime as _dt
import decimal as _decimal
_EPOCH = _dt.datetime(1970, 1, 1)
_UNIX_DAY = 719163  # date(1970, 1, 1).toordinal()
_DAY_US = 86_400_000_000
# Exact for every decimal128 (38 digits) and for what unscaled_from_number lets through (81 + 38).
_CONTEXT = _decimal.Context(prec=200, rounding=_decimal.ROUND_HALF_UP, Emin=-999_999, Emax=999_999)

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

def time_from_count(count, per_second):
    us = count * 1_000_000 // per_second
    if not 0 <= us < _DAY_US:
        raise ValueError(f"a time of {count} units of 1/{per_second} s is not within a day")
    seconds, us = divmod(us, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    return _dt.time(minutes // 60, minutes % 60, seconds, us)

def count_from_time(value, per_second):
    if not isinstance(value, _dt.time):
        raise TypeError(f"expected a datetime.time, got {type(value).__name__}")
    if value.tzinfo is not None:
        raise ValueError(f"an aware datetime.time ({value}) for a time column, which has no time zone")
    seconds = (value.hour * 60 + value.minute) * 60 + value.second
    return seconds * per_second + value.microsecond * per_second // 1_000_000

def timedelta_from_interval(months, days, nanoseconds):
    # DuckDB's own conversion: a month is 30 days; nanoseconds are cut to microseconds.
    us = abs(nanoseconds) // 1000
    return _dt.timedelta(days=months * 30 + days, microseconds=us if nanoseconds >= 0 else -us)

def interval_from_timedelta(value):
    if not isinstance(value, _dt.timedelta):
        raise TypeError(f"expected a datetime.timedelta, got {type(value).__name__}")
    return value.days, (value.seconds * 1_000_000 + value.microseconds) * 1000

def decimal_from_unscaled(unscaled, scale):
    return _decimal.Decimal(unscaled).scaleb(-scale, _CONTEXT)

def unscaled_from_number(value, scale, format):
    # DuckDB's native UDFs round a result half away from zero to the column's scale, and read a
    # float as its shortest repr (0.15 -> 0.2 in DECIMAL(4,1)).
    if isinstance(value, bool) or not isinstance(value, (int, float, _decimal.Decimal)):
        raise TypeError(f"the function returned a {type(value).__name__} where a '{format}' value was expected")
    if isinstance(value, int):
        if scale >= 0:
            return value * 10**scale
        value = _decimal.Decimal(value)
    elif isinstance(value, float):
        value = _decimal.Decimal(repr(value))
    if not value.is_finite():
        raise ValueError(f"{value} has no value in a '{format}' column")
    if value.adjusted() > 80:  # far beyond 128 bits: say so before making a huge int
        raise OverflowError(f"{value} does not fit a '{format}' column")
    quantum = _decimal.Decimal(1).scaleb(-scale, _CONTEXT)
    return int(value.quantize(quantum, _decimal.ROUND_HALF_UP, _CONTEXT).scaleb(scale, _CONTEXT))
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

// "d:38,0": how DuckDB sends HUGEINT (and UHUGEINT, and DECIMAL(38,0), which look the same), whose
// values its native UDFs give as int.
bool hugeint(const ColumnType& t) { return t.kind == Kind::Decimal128 && t.precision == 38 && t.scale == 0; }

// ---- Arrow to Python --------------------------------------------------------------------------

PyObject* long_from_int128(int128 v) {
    if (v >= INT64_MIN && v <= INT64_MAX) return PyLong_FromLongLong(static_cast<long long>(v));
    PyRef high(PyLong_FromLongLong(static_cast<long long>(v >> 64)));  // arithmetic shift: the sign stays
    PyRef low(PyLong_FromUnsignedLongLong(static_cast<unsigned long long>(v)));
    PyRef shift(PyLong_FromLong(64));
    if (!high || !low || !shift) return nullptr;
    PyRef shifted(PyNumber_Lshift(high.get(), shift.get()));
    return shifted ? PyNumber_Or(shifted.get(), low.get()) : nullptr;
}

PyObject* decimal_value(const ColumnType& t, int128 unscaled) {
    PyRef n(long_from_int128(unscaled));
    if (!n || hugeint(t)) return n.release();
    return PyObject_CallFunction(helper("decimal_from_unscaled"), "Oi", n.get(), t.scale);
}

// The items of a list, fixed-size list: a list.
PyObject* list_value(const ColumnView& v, std::int64_t i) {
    auto [first, last] = v.list_range(i);
    PyRef list(PyList_New(static_cast<Py_ssize_t>(last - first)));
    if (!list) return nullptr;
    for (std::int64_t j = first; j < last; ++j) {
        PyObject* item = to_python_value(v.child(0), j);
        if (!item) return nullptr;
        PyList_SET_ITEM(list.get(), static_cast<Py_ssize_t>(j - first), item);
    }
    return list.release();
}

// A struct's row: a dict of field name -> value.
PyObject* struct_value(const ColumnView& v, std::int64_t i) {
    PyRef dict(PyDict_New());
    if (!dict) return nullptr;
    for (std::size_t k = 0; k < v.n_children(); ++k) {
        PyRef item(to_python_value(v.child(k), i));
        if (!item || PyDict_SetItemString(dict.get(), v.type().children[k].name.c_str(), item.get()) < 0) return nullptr;
    }
    return dict.release();
}

// A map's entries: a dict of key -> value, as DuckDB's native UDFs give it.
PyObject* map_value(const ColumnView& v, std::int64_t i) {
    const ColumnView& entries = v.child(0);
    auto [first, last] = v.list_range(i);
    PyRef dict(PyDict_New());
    if (!dict) return nullptr;
    for (std::int64_t j = first; j < last; ++j) {
        PyRef key(to_python_value(entries.child(0), j));
        PyRef value(key ? to_python_value(entries.child(1), j) : nullptr);
        if (!value || PyDict_SetItem(dict.get(), key.get(), value.get()) < 0) return nullptr;
    }
    return dict.release();
}

// ---- Python to Arrow --------------------------------------------------------------------------

// A Python int as 128 bits; throws ArrowError when it needs more.
int128 int128_from_long(PyObject* n, const ColumnType& t) {
    int overflow = 0;
    long long small = PyLong_AsLongLongAndOverflow(n, &overflow);
    if (!overflow) {
        if (small == -1 && PyErr_Occurred()) detail::throw_python_error();
        return small;
    }
    // Two halves: n >> 64 (the sign with it) and n & (2^64 - 1).
    PyRef shift(PyLong_FromLong(64));
    PyRef mask(PyLong_FromUnsignedLongLong(~0ull));
    if (!shift || !mask) detail::throw_python_error();
    PyRef high_obj(PyNumber_Rshift(n, shift.get()));
    PyRef low_obj(high_obj ? PyNumber_And(n, mask.get()) : nullptr);
    if (!low_obj) detail::throw_python_error();
    long long high = PyLong_AsLongLongAndOverflow(high_obj.get(), &overflow);
    if (overflow) {
        PyRef text(PyObject_Str(n));
        const char* s = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
        PyErr_Clear();
        throw ArrowError(std::string(s ? s : "an integer") + " does not fit a '" + t.format() + "' column (128 bits)");
    }
    unsigned long long low = PyLong_AsUnsignedLongLong(low_obj.get());
    return static_cast<int128>(static_cast<__uint128_t>(static_cast<std::uint64_t>(high)) << 64 | low);
}

void append_decimal(ColumnBuilder& b, PyObject* value) {
    const ColumnType& t = b.type();
    if (PyLong_CheckExact(value) && t.scale == 0) return b.append_decimal(int128_from_long(value, t));
    std::string format = t.format();
    PyRef unscaled(PyObject_CallFunction(helper("unscaled_from_number"), "Ois", value, t.scale, format.c_str()));
    if (!unscaled) detail::throw_python_error();
    b.append_decimal(int128_from_long(unscaled.get(), t));
}

// A list or tuple into a list column: its items into the child, then the list closed.
void append_list(ColumnBuilder& b, PyObject* value) {
    const ColumnType& t = b.type();
    if (!PyList_Check(value) && !PyTuple_Check(value)) wrong_type(value, t);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(value);
    if (t.kind == Kind::FixedSizeList && n != t.list_size) {
        throw PythonError("ValueError",
                          "the function returned a list of " + std::to_string(n) + " items where a '" + t.format() +
                              "' value has " + std::to_string(t.list_size),
                          "");
    }
    // An item's conversion may run Python code: hold each item, and read the size again each time.
    for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(value); ++k) {
        PyRef item(Py_NewRef(PySequence_Fast_GET_ITEM(value, k)));
        append_python_value(b.child(0), item.get());
    }
    b.append_list();
}

// The index of the struct field named by `key` (a str), or -1.
Py_ssize_t field_index(const ColumnType& t, PyObject* key) {
    if (!PyUnicode_Check(key)) return -1;
    Py_ssize_t size = 0;
    const char* name = PyUnicode_AsUTF8AndSize(key, &size);
    if (!name) {
        PyErr_Clear();
        return -1;
    }
    for (std::size_t k = 0; k < t.children.size(); ++k) {
        if (t.children[k].name == std::string_view(name, static_cast<std::size_t>(size))) return static_cast<Py_ssize_t>(k);
    }
    return -1;
}

[[noreturn]] void unknown_field(const ColumnType& t, PyObject* key) {
    PyRef text(PyObject_Repr(key));
    const char* s = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
    PyErr_Clear();
    std::string fields;
    for (const Field& f : t.children) fields += (fields.empty() ? "" : ", ") + f.name;
    throw PythonError("KeyError",
                      "the function returned a dict with key " + std::string(s ? s : "?") + ", which struct '" +
                          t.spec() + "' has no field of (fields: " + fields + ")",
                      "");
}

// A dict (field name -> value; a missing field is NULL) or a tuple (the fields in order) into a
// struct column.
void append_struct(ColumnBuilder& b, PyObject* value) {
    const ColumnType& t = b.type();
    std::vector<PyRef> items(t.children.size());  // null: a missing field
    if (PyDict_Check(value)) {
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            Py_ssize_t k = field_index(t, key);
            if (k < 0) unknown_field(t, key);
            items[static_cast<std::size_t>(k)] = PyRef(Py_NewRef(item));
        }
    } else if (PyTuple_Check(value)) {
        if (static_cast<std::size_t>(PyTuple_GET_SIZE(value)) != t.children.size()) {
            throw PythonError("ValueError",
                              "the function returned a tuple of " + std::to_string(PyTuple_GET_SIZE(value)) +
                                  " values where struct '" + t.spec() + "' has " + std::to_string(t.children.size()) +
                                  " fields",
                              "");
        }
        for (std::size_t k = 0; k < items.size(); ++k) {
            items[k] = PyRef(Py_NewRef(PyTuple_GET_ITEM(value, static_cast<Py_ssize_t>(k))));
        }
    } else {
        wrong_type(value, t);
    }
    for (std::size_t k = 0; k < items.size(); ++k) {
        if (items[k]) append_python_value(b.child(k), items[k].get());
        else b.child(k).append_null();
    }
    b.append_struct();
}

// A dict, or a list or tuple of (key, value) pairs, into a map column.
void append_map(ColumnBuilder& b, PyObject* value) {
    const ColumnType& t = b.type();
    PyRef pairs;
    if (PyDict_Check(value)) pairs = PyRef(PyDict_Items(value));  // a snapshot, whatever the conversions run
    else if (PyList_Check(value) || PyTuple_Check(value)) pairs = PyRef(PySequence_List(value));
    else wrong_type(value, t);
    if (!pairs) detail::throw_python_error();
    ColumnBuilder& entries = b.child(0);
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(pairs.get()); ++k) {
        PyObject* pair = PyList_GET_ITEM(pairs.get(), k);
        if (!(PyTuple_Check(pair) || PyList_Check(pair)) || PySequence_Fast_GET_SIZE(pair) != 2) {
            throw PythonError("TypeError",
                              std::string("the function returned a ") + Py_TYPE(pair)->tp_name + " in a '" +
                                  t.format() + "' value, where a (key, value) pair was expected",
                              "");
        }
        PyRef key(Py_NewRef(PySequence_Fast_GET_ITEM(pair, 0)));
        PyRef item(Py_NewRef(PySequence_Fast_GET_ITEM(pair, 1)));
        if (key.get() == Py_None) {
            throw PythonError("ValueError", "the function returned a map with a None key (map keys are never NULL)", "");
        }
        append_python_value(entries.child(0), key.get());
        append_python_value(entries.child(1), item.get());
        entries.append_struct();
    }
    b.append_list();
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
        case Kind::Time32: case Kind::Time64:
            return PyObject_CallFunction(helper("time_from_count"), "LL", static_cast<long long>(v.int_at(i)),
                                         static_cast<long long>(per_second(t.unit)));
        case Kind::Decimal128: return decimal_value(t, v.decimal_at(i));
        case Kind::Interval: {
            arrow::MonthDayNano d = v.interval_at(i);
            return PyObject_CallFunction(helper("timedelta_from_interval"), "iiL", static_cast<int>(d.months),
                                         static_cast<int>(d.days), static_cast<long long>(d.nanoseconds));
        }
        case Kind::List: case Kind::LargeList: case Kind::FixedSizeList: return list_value(v, i);
        case Kind::Struct: return struct_value(v, i);
        case Kind::Map: return map_value(v, i);
    }
    return Py_NewRef(Py_None);
}

std::int64_t int_value(PyObject* value, const ColumnType& t) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow) throw ArrowError("an integer out of the range of a '" + t.format() + "' column");
    return v;
}

// A count of the column's unit from `helper_name`(value, per_second) (a datetime or a time).
std::int64_t count_value(PyObject* value, const ColumnType& t, const char* helper_name) {
    PyRef count(PyObject_CallFunction(helper(helper_name), "OL", value, static_cast<long long>(per_second(t.unit))));
    if (!count) detail::throw_python_error();
    int overflow = 0;
    long long c = PyLong_AsLongLongAndOverflow(count.get(), &overflow);
    if (overflow) throw ArrowError("a value out of the range of a '" + t.format() + "' column");
    return c;
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
        case Kind::Timestamp:
            if (PyLong_Check(value)) return b.append_int(int_value(value, t));  // a count of the column's unit
            return b.append_int(count_value(value, t, "count_from_datetime"));
        case Kind::Time32: case Kind::Time64:
            if (PyLong_Check(value)) return b.append_int(int_value(value, t));  // a count of the column's unit
            return b.append_int(count_value(value, t, "count_from_time"));
        case Kind::Decimal128: return append_decimal(b, value);
        case Kind::Interval: {
            PyRef parts(PyObject_CallOneArg(helper("interval_from_timedelta"), value));
            if (!parts) detail::throw_python_error();
            long long days = 0, nanoseconds = 0;
            if (!PyArg_ParseTuple(parts.get(), "LL", &days, &nanoseconds)) detail::throw_python_error();
            if (days < INT32_MIN || days > INT32_MAX) throw ArrowError("a timedelta out of the range of a 'tin' column");
            return b.append_interval({0, static_cast<std::int32_t>(days), nanoseconds});
        }
        case Kind::List: case Kind::LargeList: case Kind::FixedSizeList: return append_list(b, value);
        case Kind::Struct: return append_struct(b, value);
        case Kind::Map: return append_map(b, value);
    }
}

}  // namespace manygil::udf
