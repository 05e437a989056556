#include "manygil/udf.hpp"

#include <Python.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "arrow/column.hpp"
#include "cpython/interpreter_dict.hpp"
#include "cpython/py_ref.hpp"
#include "cpython/python_error.hpp"
#include "manygil/errors.hpp"
#include "runtime/call_target.hpp"
#include "runtime/interruptible_call.hpp"
#include "runtime/promise_job.hpp"
#include "udf/column_buffer.hpp"
#include "udf/python_values.hpp"

namespace manygil::udf {

using arrow::ArrowError;
using arrow::ColumnBuilder;
using arrow::ColumnType;
using arrow::ColumnView;
using arrow::ExportedArray;
using arrow::Kind;
using detail::PyRef;

void Stop::request(std::string reason) {
    std::vector<std::function<bool(const std::string&)>> interrupters;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (requested_.load(std::memory_order_relaxed)) return;
        reason_ = std::move(reason);
        requested_.store(true, std::memory_order_release);
        for (auto& [token, interrupter] : running_) interrupters.push_back(interrupter);
    }
    // Outside the lock: an interrupter only asks a worker's monitor and never waits for the call.
    for (auto& interrupter : interrupters) (void)interrupter(reason_);
}

std::string Stop::reason() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return reason_;
}

// The slices' side of Stop: a running slice's call is registered so that a request interrupts it.
struct StopAccess {
    static std::uint64_t enter(Stop& stop, std::function<bool(const std::string&)> interrupter) {
        std::lock_guard<std::mutex> lock(stop.mutex_);
        std::uint64_t token = ++stop.next_token_;
        stop.running_.emplace(token, std::move(interrupter));
        return token;
    }
    static void leave(Stop& stop, std::uint64_t token) noexcept {
        std::lock_guard<std::mutex> lock(stop.mutex_);
        stop.running_.erase(token);
    }
    // Waits for `f`, running the Stop's poll (if any) at its interval meanwhile.
    template <class Future>
    static void wait_polling(Stop& stop, Future& f) {
        if (!stop.poll_) return;
        while (f.wait_for(stop.poll_interval_) != std::future_status::ready) stop.poll_(stop);
    }
};

namespace {

// What a slice needs besides its rows: the task id its Python call is marked with (so that
// Pool::interrupt and the map's Stop can reach it) and the map's Stop, if any.
struct SliceContext {
    std::uint64_t task;
    Stop* stop;

    bool stop_requested() const noexcept { return stop && stop->requested(); }
    [[noreturn]] void throw_stopped(const std::string& traceback = "") const {
        throw PythonError("manygil.Interrupted", stop->reason(), traceback);
    }
    // Marks the call, then catches a request made before the mark, which found nothing to interrupt.
    void started(detail::InterruptibleCall& call) const {
        if (stop_requested()) call.interrupt(stop->reason());
    }
};

constexpr Py_ssize_t kMaxUnpickledFunctions = 256;  // distinct lambdas must not grow the cache forever

// The callable in this worker's interpreter: imported by name, or unpickled once and kept in the
// interpreter's dict (every slice of every call would otherwise pay for pickle.loads).
PyRef resolve(const Function& function) {
    if (!function.by_value()) return detail::resolve_target(function.data());
    PyObject* cache = detail::per_interpreter("manygil.udf.functions", [] { return PyDict_New(); });
    PyRef key(PyBytes_FromStringAndSize(function.data().data(), static_cast<Py_ssize_t>(function.data().size())));
    if (!key) detail::throw_python_error();
    if (PyObject* fn = PyDict_GetItemWithError(cache, key.get())) return PyRef::borrow(fn);
    if (PyErr_Occurred()) detail::throw_python_error();
    PyRef pickle(PyImport_ImportModule("pickle"));
    PyRef fn(pickle ? PyObject_CallMethod(pickle.get(), "loads", "O", key.get()) : nullptr);
    if (!fn) throw UnknownFunctionError(function.description(), detail::fetch_python_error().what());
    if (!PyCallable_Check(fn.get())) {
        throw UnknownFunctionError(function.description(), "the pickle holds a '" +
                                                               detail::type_qualname(Py_TYPE(fn.get())) +
                                                               "', which is not callable");
    }
    if (PyDict_GET_SIZE(cache) >= kMaxUnpickledFunctions) PyDict_Clear(cache);
    if (PyDict_SetItem(cache, key.get(), fn.get()) < 0) detail::throw_python_error();
    return fn;
}

// The struct format of a kind's values when batch mode hands them over as a typed memoryview (and
// reads a result buffer in place); 0 for the kinds handed over as lists of Python values (strings,
// decimals, intervals, the nested kinds).
char struct_format(Kind kind) {
    switch (kind) {
        case Kind::Bool: return '?';
        case Kind::Int8: return 'b';
        case Kind::Int16: return 'h';
        case Kind::Int32: case Kind::Date32: case Kind::Time32: return 'i';
        case Kind::Int64: case Kind::Timestamp: case Kind::Time64: return 'q';
        case Kind::UInt8: return 'B';
        case Kind::UInt16: return 'H';
        case Kind::UInt32: return 'I';
        case Kind::UInt64: return 'Q';
        case Kind::Float32: return 'f';
        case Kind::Float64: return 'd';
        default: return 0;
    }
}

// A '?' memoryview of n flags, in memory the view owns.
PyRef flags_view(std::int64_t n, const std::function<bool(std::int64_t)>& flag) {
    auto bytes = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) (*bytes)[static_cast<std::size_t>(i)] = flag(i) ? 1 : 0;
    const void* data = bytes->data();
    return owned_memoryview(data, static_cast<Py_ssize_t>(n), '?', 1, std::move(bytes));
}

// Rows [begin, end) of one column as batch mode hands them over: numbers, dates, timestamps and
// times as a memoryview of the producer's buffer (held by `owner`), booleans unpacked into a '?'
// view, anything else (strings, bytes, decimals, intervals, nested values) as a list of the values
// row mode gives (None at NULL).
PyRef batch_values(const ColumnView& c, std::int64_t begin, std::int64_t end, const std::shared_ptr<const void>& owner) {
    std::int64_t n = end - begin;
    const ColumnType& t = c.type();
    if (t.kind == Kind::Bool) return flags_view(n, [&](std::int64_t i) { return c.bool_at(begin + i); });
    if (struct_format(t.kind) != 0) {
        return owned_memoryview(c.fixed_values_at(begin), static_cast<Py_ssize_t>(n), struct_format(t.kind),
                                static_cast<Py_ssize_t>(t.width()), owner);
    }
    PyRef list(PyList_New(static_cast<Py_ssize_t>(n)));
    if (!list) detail::throw_python_error();
    for (std::int64_t i = 0; i < n; ++i) {
        PyObject* value = to_python_value(c, begin + i);
        if (!value) detail::throw_python_error();
        PyList_SET_ITEM(list.get(), static_cast<Py_ssize_t>(i), value);
    }
    return list;
}

// Rows [begin, end) of one column's validity: a '?' view (True: a value), or None when all are valid.
PyRef batch_validity(const ColumnView& c, std::int64_t begin, std::int64_t end) {
    bool has_null = false;
    for (std::int64_t row = begin; row < end && !has_null; ++row) has_null = c.is_null(row);
    if (!has_null) return PyRef(Py_NewRef(Py_None));
    return flags_view(end - begin, [&](std::int64_t i) { return !c.is_null(begin + i); });
}

bool any_null(const std::vector<ColumnView>& cols, std::int64_t row) {
    return std::any_of(cols.begin(), cols.end(), [&](const ColumnView& c) { return c.is_null(row); });
}

// Rows [begin, end) of the columns, one call per row, on a worker with its interpreter attached.
ExportedArray row_slice(const Function& function, const std::vector<ColumnView>& cols, std::int64_t begin,
                        std::int64_t end, const ColumnType& result, bool skip_null_rows, const SliceContext& ctx) {
    PyRef fn = resolve(function);
    ColumnBuilder out(result);
    out.reserve(end - begin);
    auto n = static_cast<Py_ssize_t>(cols.size());
    std::vector<PyRef> args(cols.size());       // this row's values, owned
    std::vector<PyObject*> argv(cols.size());  // the same, as vectorcall takes them
    detail::InterruptibleCall marked(ctx.task, std::nullopt);  // Pool::interrupt_running, the map's Stop
    ctx.started(marked);
    for (std::int64_t row = begin; row < end; ++row) {
        if (ctx.stop_requested()) ctx.throw_stopped();
        if (skip_null_rows && any_null(cols, row)) {
            out.append_null();
            continue;
        }
        try {
            // Vectorcall: the arguments straight from this array, no tuple per row.
            for (std::size_t c = 0; c < cols.size(); ++c) {
                args[c] = PyRef(to_python_value(cols[c], row));
                if (!args[c]) detail::throw_python_error();
                argv[c] = args[c].get();
            }
            PyRef value(PyObject_Vectorcall(fn.get(), argv.data(), static_cast<std::size_t>(n), nullptr));
            if (!value) detail::throw_python_error();
            append_python_value(out, value.get());
        } catch (const PythonError& e) {
            if (ctx.stop_requested()) ctx.throw_stopped(e.traceback());  // its TimeoutError was the Stop's
            throw PythonError(e.type_name(), "row " + std::to_string(row) + ": " + e.message(), e.traceback());
        } catch (const ArrowError& e) {
            throw PythonError("OverflowError", "row " + std::to_string(row) + ": " + e.what(), "");
        }
    }
    return out.finish();
}

// What a batch function returned, read row by row: a buffer in the result column's own struct format
// (a memoryview like the arguments, an array.array) value by value in C++, with no Python object per
// value; any other sequence item by item. Throws PythonError for anything else.
class BatchResult {
public:
    BatchResult(PyObject* returned, const ColumnType& type) : type_(type) {
        if (PyUnicode_Check(returned)) {
            throw PythonError("TypeError", "the function returned a str where a sequence of values was expected", "");
        }
        if (PyObject_CheckBuffer(returned) &&
            PyObject_GetBuffer(returned, &buffer_, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) == 0) {
            if (buffer_.ndim == 1 && has_column_format()) {
                size_ = buffer_.shape ? buffer_.shape[0] : buffer_.len / buffer_.itemsize;
                return;
            }
            PyBuffer_Release(&buffer_);  // another format: item by item, which names a wrong one
        }
        PyErr_Clear();  // a buffer that is not contiguous (or none): item by item
        items_ = PyRef(PySequence_Fast(returned, "the function must return a sequence of values"));
        if (!items_) detail::throw_python_error();
        size_ = PySequence_Fast_GET_SIZE(items_.get());
    }
    ~BatchResult() {
        if (buffer_.obj) PyBuffer_Release(&buffer_);
    }
    BatchResult(const BatchResult&) = delete;
    BatchResult& operator=(const BatchResult&) = delete;

    Py_ssize_t size() const noexcept { return size_; }

    void append(ColumnBuilder& out, std::int64_t i) const {
        if (items_) return append_python_value(out, PySequence_Fast_GET_ITEM(items_.get(), static_cast<Py_ssize_t>(i)));
        const char* at = static_cast<const char*>(buffer_.buf) + i * buffer_.itemsize;
        switch (type_.kind) {
            case Kind::Bool: return out.append_bool(*at != 0);
            case Kind::Int8: return out.append_int(read<std::int8_t>(at));
            case Kind::Int16: return out.append_int(read<std::int16_t>(at));
            case Kind::Int32: case Kind::Date32: case Kind::Time32: return out.append_int(read<std::int32_t>(at));
            case Kind::Int64: case Kind::Timestamp: case Kind::Time64: return out.append_int(read<std::int64_t>(at));
            case Kind::UInt8: return out.append_uint(read<std::uint8_t>(at));
            case Kind::UInt16: return out.append_uint(read<std::uint16_t>(at));
            case Kind::UInt32: return out.append_uint(read<std::uint32_t>(at));
            case Kind::UInt64: return out.append_uint(read<std::uint64_t>(at));
            case Kind::Float32: return out.append_float(read<float>(at));
            case Kind::Float64: return out.append_float(read<double>(at));
            default: return;  // kinds without a struct format never take the buffer path
        }
    }

private:
    template <class T>
    static T read(const char* at) noexcept {
        T v;
        std::memcpy(&v, at, sizeof v);
        return v;
    }

    // The buffer holds the column's values as they are: its struct format ('@' or none: native) is
    // the one the arguments use, or 'l'/'L' for 8-byte integers (C long on LP64).
    bool has_column_format() const noexcept {
        std::string_view f = buffer_.format ? buffer_.format : "B";
        if (!f.empty() && f.front() == '@') f.remove_prefix(1);
        char want = struct_format(type_.kind);
        if (f.size() != 1 || want == 0) return false;
        std::size_t width = type_.kind == Kind::Bool ? 1 : type_.width();
        if (static_cast<std::size_t>(buffer_.itemsize) != width) return false;
        if (f[0] == want) return true;
        return width == 8 && ((want == 'q' && f[0] == 'l') || (want == 'Q' && f[0] == 'L'));
    }

    const ColumnType& type_;
    Py_buffer buffer_{};
    PyRef items_;
    Py_ssize_t size_ = 0;
};

// Rows [begin, end) of the columns, one call for all of them, on a worker with its interpreter attached.
ExportedArray batch_slice(const Function& function, const std::vector<ColumnView>& cols, std::int64_t begin,
                          std::int64_t end, const ColumnType& result, bool skip_null_rows,
                          const std::shared_ptr<const void>& owner, const SliceContext& ctx) {
    PyRef fn = resolve(function);
    std::string rows = "rows " + std::to_string(begin) + ".." + std::to_string(end - 1);
    auto n = static_cast<Py_ssize_t>(cols.size());
    detail::InterruptibleCall marked(ctx.task, std::nullopt);  // Pool::interrupt_running, the map's Stop
    ctx.started(marked);
    std::optional<BatchResult> result_items;
    try {
        PyRef args(PyTuple_New(n));
        if (!args) detail::throw_python_error();
        for (Py_ssize_t c = 0; c < n; ++c) {
            const ColumnView& col = cols[static_cast<std::size_t>(c)];
            PyRef arg = batch_values(col, begin, end, owner);
            if (!skip_null_rows) {  // the function sees NULLs: (values, valid) per argument
                PyRef valid = batch_validity(col, begin, end);
                arg = PyRef(PyTuple_Pack(2, arg.get(), valid.get()));
                if (!arg) detail::throw_python_error();
            }
            PyTuple_SET_ITEM(args.get(), c, arg.release());
        }
        PyRef returned(PyObject_Call(fn.get(), args.get(), nullptr));
        if (!returned) detail::throw_python_error();
        result_items.emplace(returned.get(), result);
        if (result_items->size() != end - begin) {
            throw PythonError("ValueError",
                              "the function returned " + std::to_string(result_items->size()) + " values for " +
                                  std::to_string(end - begin) + " rows",
                              "");
        }
    } catch (const PythonError& e) {
        if (ctx.stop_requested()) ctx.throw_stopped(e.traceback());  // its TimeoutError was the Stop's
        throw PythonError(e.type_name(), rows + ": " + e.message(), e.traceback());
    }
    ColumnBuilder out(result);
    out.reserve(end - begin);
    for (std::int64_t row = begin; row < end; ++row) {
        if (skip_null_rows && any_null(cols, row)) {  // SQL's rule, whatever the function said
            out.append_null();
            continue;
        }
        try {
            result_items->append(out, row - begin);
        } catch (const PythonError& e) {
            throw PythonError(e.type_name(), "row " + std::to_string(row) + ": " + e.message(), e.traceback());
        } catch (const ArrowError& e) {
            throw PythonError("OverflowError", "row " + std::to_string(row) + ": " + e.what(), "");
        }
    }
    return out.finish();
}

// Appends every value of a finished slice (nested ones whole) to the joined result.
void append_all(ColumnBuilder& out, const ExportedArray& piece) {
    ColumnView v(piece.schema, piece.array);
    for (std::int64_t i = 0; i < v.length(); ++i) arrow::append_value(out, v, i);
}

using SliceFn =
    std::function<ExportedArray(const std::vector<ColumnView>&, std::int64_t, std::int64_t, const SliceContext&)>;

// Splits the rows into one slice per worker, runs `slice` on each in a worker and joins the results.
ExportedArray run_slices(Pool& pool, const Function& function, const std::vector<ArgColumn>& args,
                         const ColumnType& result, const char* what, const std::shared_ptr<Stop>& stop,
                         SliceFn slice) {
    if (!function.by_value()) detail::check_target(function.data());
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
        SliceContext ctx{detail::next_task_id(), stop.get()};
        // The job owns a reference to the Stop and keeps the interrupter registered while it runs.
        // Only a call with a Stop needs its slices' interrupters (Pool::interrupt_running reaches them anyway).
        std::function<bool(const std::string&)> interrupter;
        if (stop) interrupter = pool.interrupter(ctx.task);
        auto run = [columns, begin, end, slice, ctx, stop, interrupter = std::move(interrupter)] {
            if (ctx.stop_requested()) ctx.throw_stopped();  // not started: skipped
            if (!stop) return slice(*columns, begin, end, ctx);
            std::uint64_t token = StopAccess::enter(*stop, interrupter);
            struct Leave {
                Stop& stop;
                std::uint64_t token;
                ~Leave() { StopAccess::leave(stop, token); }
            } leave{*stop, token};
            return slice(*columns, begin, end, ctx);
        };
        auto job = std::make_unique<detail::PromiseJob<std::function<ExportedArray()>, ExportedArray>>(
            std::move(run), function.description() + what);
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
        if (stop) StopAccess::wait_polling(*stop, f);
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

}  // namespace

ExportedArray map_rows(Pool& pool, const Function& function, const std::vector<ArgColumn>& args,
                       std::string_view result_format, bool skip_null_rows, std::shared_ptr<Stop> stop) {
    ColumnType result = ColumnType::parse(result_format);
    return run_slices(pool, function, args, result, " (Arrow rows)", stop,
                      [function, result, skip_null_rows](const std::vector<ColumnView>& cols, std::int64_t begin,
                                                         std::int64_t end, const SliceContext& ctx) {
                          return row_slice(function, cols, begin, end, result, skip_null_rows, ctx);
                      });
}

ExportedArray map_batches(Pool& pool, const Function& function, const std::vector<ArgColumn>& args,
                          std::string_view result_format, bool skip_null_rows, std::shared_ptr<const void> owner,
                          std::shared_ptr<Stop> stop) {
    if (!owner) throw InvalidArgument("map_batches needs an owner that keeps the argument arrays alive");
    ColumnType result = ColumnType::parse(result_format);
    // The slices read `owner` from this frame, which outlives them (run_slices waits for every one):
    // once this returns, only the caller and the views a function kept hold it.
    return run_slices(pool, function, args, result, " (Arrow batches)", stop,
                      [function, result, skip_null_rows, owner = &owner](const std::vector<ColumnView>& cols,
                                                                         std::int64_t begin, std::int64_t end,
                                                                         const SliceContext& ctx) {
                          return batch_slice(function, cols, begin, end, result, skip_null_rows, *owner, ctx);
                      });
}

std::string result_format_of(const ArrowSchema& schema) { return ColumnType::from_schema(schema).spec(); }

}  // namespace manygil::udf
