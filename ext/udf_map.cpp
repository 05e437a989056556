#include "udf_map.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cpython/private_api.hpp"
#include "cpython/py_ref.hpp"
#include "manygil/udf.hpp"
#include "manygil/errors.hpp"
#include "exception_translation.hpp"
#include "module_state.hpp"
#include "pool_object.hpp"

namespace manygil::ext {

using detail::PyRef;

namespace {

// _core.ArrowResult: an array map_rows made, handed to its consumer through the Arrow PyCapsule
// interface (__arrow_c_array__) once; no pyarrow needed to build it. Main interpreter.
struct ArrowResultObject {
    PyObject_HEAD
    arrow::ExportedArray* exported;  // null once consumed
};

ArrowResultObject* as_result(PyObject* op) { return reinterpret_cast<ArrowResultObject*>(op); }

void release_schema_capsule(PyObject* capsule) {
    auto* schema = static_cast<ArrowSchema*>(PyCapsule_GetPointer(capsule, "arrow_schema"));
    if (!schema) {
        PyErr_Clear();
        return;
    }
    if (schema->release) schema->release(schema);  // not taken by a consumer: ours to release
    delete schema;
}

void release_array_capsule(PyObject* capsule) {
    auto* array = static_cast<ArrowArray*>(PyCapsule_GetPointer(capsule, "arrow_array"));
    if (!array) {
        PyErr_Clear();
        return;
    }
    if (array->release) array->release(array);
    delete array;
}

PyObject* result_arrow_c_array(PyObject* op, PyObject* args, PyObject* kwargs) {
    static const char* kw[] = {"requested_schema", nullptr};
    PyObject* requested = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:__arrow_c_array__", const_cast<char**>(kw), &requested)) {
        return nullptr;
    }
    ArrowResultObject* self = as_result(op);
    if (!self->exported) {
        PyErr_SetString(PyExc_ValueError, "this Arrow result was consumed already (it can be exported once)");
        return nullptr;
    }
    // The structs move into capsules, which release them unless a consumer takes them first.
    auto schema = std::make_unique<ArrowSchema>(self->exported->schema);
    auto array = std::make_unique<ArrowArray>(self->exported->array);
    PyRef schema_capsule(PyCapsule_New(schema.get(), "arrow_schema", release_schema_capsule));
    if (!schema_capsule) return nullptr;
    schema.release();
    PyRef array_capsule(PyCapsule_New(array.get(), "arrow_array", release_array_capsule));
    if (!array_capsule) {
        // The schema capsule owns the schema now; the array is still ours.
        self->exported->schema.release = nullptr;
        return nullptr;
    }
    array.release();
    self->exported->schema.release = nullptr;  // moved
    self->exported->array.release = nullptr;
    delete self->exported;
    self->exported = nullptr;
    return PyTuple_Pack(2, schema_capsule.get(), array_capsule.get());
}

PyObject* result_len(PyObject* op, PyObject*) {
    ArrowResultObject* self = as_result(op);
    return PyLong_FromLongLong(self->exported ? self->exported->array.length : 0);
}

void result_dealloc(PyObject* op) {
    delete as_result(op)->exported;  // releases what was not consumed
    PyTypeObject* type = Py_TYPE(op);
    type->tp_free(op);
    Py_DECREF(type);
}

PyMethodDef result_methods[] = {
    {"__arrow_c_array__", reinterpret_cast<PyCFunction>(reinterpret_cast<void*>(result_arrow_c_array)),
     METH_VARARGS | METH_KEYWORDS, "__arrow_c_array__(requested_schema=None) -> (schema capsule, array capsule)"},
    {"length", result_len, METH_NOARGS, "length() -> rows (0 once consumed)"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot result_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(result_dealloc)},
    {Py_tp_methods, result_methods},
    {Py_tp_doc, const_cast<char*>("An Arrow array made by manygil, exported once through __arrow_c_array__")},
    {0, nullptr},
};

// _core.UdfStop: a udf::Stop for Python (manygil.duckdb requests it when a query is interrupted).
// Any interpreter may hold it; request() never waits for the slices.
struct StopObject {
    PyObject_HEAD
    std::shared_ptr<udf::Stop>* stop;  // a pointer: PyObject memory is not constructed by C++
};

StopObject* as_stop(PyObject* op) { return reinterpret_cast<StopObject*>(op); }

PyObject* stop_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "UdfStop() takes no arguments");
        return nullptr;
    }
    PyRef self(type->tp_alloc(type, 0));
    if (!self) return nullptr;
    as_stop(self.get())->stop = new std::shared_ptr<udf::Stop>(std::make_shared<udf::Stop>());
    return self.release();
}

PyObject* stop_request(PyObject* op, PyObject* reason) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(reason, &size);
    if (!text) return nullptr;
    std::string owned(text, static_cast<std::size_t>(size));
    Py_BEGIN_ALLOW_THREADS  // takes the Stop's lock, which a worker's slice may hold briefly
    (*as_stop(op)->stop)->request(std::move(owned));
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyObject* stop_requested(PyObject* op, void*) { return PyBool_FromLong((*as_stop(op)->stop)->requested()); }

void stop_dealloc(PyObject* op) {
    delete as_stop(op)->stop;
    PyTypeObject* type = Py_TYPE(op);
    type->tp_free(op);
    Py_DECREF(type);
}

PyMethodDef stop_methods[] = {
    {"request", stop_request, METH_O,
     "request(reason) -> None: ends the map calls given this stop (they raise manygil.Interrupted(reason))"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef stop_getset[] = {
    {"requested", stop_requested, nullptr, "whether request() was called", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot stop_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(stop_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(stop_dealloc)},
    {Py_tp_methods, stop_methods},
    {Py_tp_getset, stop_getset},
    {Py_tp_doc, const_cast<char*>("UdfStop(): ends _udf_map calls early from another thread (udf::Stop)")},
    {0, nullptr},
};

// The argument arrays of one call, taken from their producers' capsules (the spec lets a consumer move
// the structs out). Batch mode hands memoryviews of them to the workers, and a view a function keeps
// keeps them (udf::map_batches), so the last reference may drop in a worker. Their release callbacks
// may need the main interpreter (pyarrow's take the GIL with PyGILState_Ensure, which on a worker
// thread would find the worker's interpreter), so they are released only in the main interpreter:
// at once when the last reference drops there, otherwise at the next call.
struct TakenColumns {
    std::vector<arrow::ExportedArray> arrays;
};

std::mutex deferred_mutex;

// Dropped outside the main interpreter, not released yet. Never destroyed: what is still here at exit
// is left to the process's end rather than released by a static destructor after Python (and
// perhaps the producer's library) are gone.
std::vector<std::unique_ptr<TakenColumns>>& deferred() {
    static auto* list = new std::vector<std::unique_ptr<TakenColumns>>();
    return *list;
}

bool in_main_interpreter() {
    PyThreadState* attached = PyThreadState_GetUnchecked();
    return attached && PyThreadState_GetInterpreter(attached) == PyInterpreterState_Main();
}

void release_taken(TakenColumns* taken) {
    if (in_main_interpreter()) {
        delete taken;
        return;
    }
    std::lock_guard<std::mutex> lock(deferred_mutex);
    deferred().emplace_back(taken);
}

// Releases what was dropped elsewhere since the last call. Main interpreter, GIL held.
void release_deferred() {
    std::vector<std::unique_ptr<TakenColumns>> due;
    {
        std::lock_guard<std::mutex> lock(deferred_mutex);
        due.swap(deferred());
    }
}

// Moves the schema and array behind obj.__arrow_c_array__() into `out`.
bool take(PyObject* obj, Py_ssize_t index, std::vector<arrow::ExportedArray>& out) {
    PyRef pair(PyObject_CallMethod(obj, "__arrow_c_array__", nullptr));
    if (!pair) return false;
    if (!PyTuple_Check(pair.get()) || PyTuple_GET_SIZE(pair.get()) != 2) {
        PyErr_Format(PyExc_TypeError, "argument %zd: __arrow_c_array__() did not return a (schema, array) pair", index);
        return false;
    }
    auto* schema = static_cast<ArrowSchema*>(PyCapsule_GetPointer(PyTuple_GET_ITEM(pair.get(), 0), "arrow_schema"));
    auto* array = static_cast<ArrowArray*>(PyCapsule_GetPointer(PyTuple_GET_ITEM(pair.get(), 1), "arrow_array"));
    if (!schema || !array) return false;
    if (!schema->release || !array->release) {
        PyErr_Format(PyExc_ValueError, "argument %zd: its Arrow capsules were consumed already", index);
        return false;
    }
    arrow::ExportedArray& taken = out.emplace_back();
    taken.schema = *schema;  // moved: the capsules' destructors see release == null and leave them
    taken.array = *array;
    schema->release = nullptr;
    array->release = nullptr;
    return true;
}

// "module:qualname" (str), or (pickle bytes, description) for a callable sent by value.
std::optional<udf::Function> function_of(PyObject* spec) {
    if (PyUnicode_Check(spec)) {
        const char* name = PyUnicode_AsUTF8(spec);
        if (!name) return std::nullopt;
        return udf::Function(name);
    }
    char* data = nullptr;
    Py_ssize_t size = 0;
    const char* description = nullptr;
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(spec, 0)) ||
        PyBytes_AsStringAndSize(PyTuple_GET_ITEM(spec, 0), &data, &size) < 0 ||
        !(description = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 1)))) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "function must be 'module:qualname' or a (pickle, description) pair");
        }
        return std::nullopt;
    }
    return udf::Function::pickled(std::string(data, static_cast<std::size_t>(size)), description);
}

}  // namespace

PyType_Spec arrow_result_spec = {"manygil._core.ArrowResult", sizeof(ArrowResultObject), 0,
                                 Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                                 result_slots};

PyType_Spec udf_stop_spec = {"manygil._core.UdfStop", sizeof(StopObject), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, stop_slots};

// _arrow_result_format(obj) -> str: udf::result_format_of(the schema behind obj.__arrow_c_schema__())
PyObject* py_arrow_result_format(PyObject*, PyObject* obj) {
    PyRef capsule(PyObject_CallMethod(obj, "__arrow_c_schema__", nullptr));
    if (!capsule) return nullptr;
    auto* schema = static_cast<ArrowSchema*>(PyCapsule_GetPointer(capsule.get(), "arrow_schema"));
    if (!schema) return nullptr;
    if (!schema->release) {
        PyErr_SetString(PyExc_ValueError, "the Arrow schema capsule was consumed already");
        return nullptr;
    }
    try {
        std::string format = udf::result_format_of(*schema);  // borrowed: the capsule releases it
        return PyUnicode_FromStringAndSize(format.data(), static_cast<Py_ssize_t>(format.size()));
    } catch (const arrow::ArrowError& e) {
        PyErr_SetString(PyExc_TypeError, e.what());
        return nullptr;
    }
}

// _udf_map(pool, function, columns, result_format, skip_null_rows, batch[, stop]) -> ArrowResult
PyObject* py_udf_map(PyObject* module, PyObject* const* argv, Py_ssize_t argc) {
    if (argc != 6 && argc != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "_udf_map(pool, function, columns, result_format, skip_null_rows, batch[, stop])");
        return nullptr;
    }
    if (!in_main_interpreter()) {
        PyErr_SetString(PyExc_RuntimeError, "_udf_map runs in the main interpreter only");
        return nullptr;
    }
    release_deferred();
    ModuleState* state = static_cast<ModuleState*>(PyModule_GetState(module));
    Pool* pool = pool_of(argv[0], state->pool_type);
    if (!pool) return nullptr;
    std::shared_ptr<udf::Stop> stop;
    if (argc == 7 && argv[6] != Py_None) {
        if (!PyObject_TypeCheck(argv[6], state->udf_stop_type)) {
            PyErr_Format(PyExc_TypeError, "stop must be a _core.UdfStop or None, not %s", Py_TYPE(argv[6])->tp_name);
            return nullptr;
        }
        stop = *as_stop(argv[6])->stop;
    }
    std::optional<udf::Function> function = function_of(argv[1]);
    const char* format = PyUnicode_AsUTF8(argv[3]);
    int skip = PyObject_IsTrue(argv[4]);
    int batch = PyObject_IsTrue(argv[5]);
    if (!function || !format || skip < 0 || batch < 0) return nullptr;
    PyRef seq(PySequence_Fast(argv[2], "columns must be a sequence of objects with __arrow_c_array__"));
    if (!seq) return nullptr;
    std::shared_ptr<TakenColumns> taken(new TakenColumns, release_taken);
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq.get()); ++i) {
        if (!take(PySequence_Fast_GET_ITEM(seq.get(), i), i, taken->arrays)) return nullptr;
    }
    std::vector<udf::ArgColumn> columns;
    for (const arrow::ExportedArray& a : taken->arrays) columns.push_back({&a.schema, &a.array});
    std::unique_ptr<arrow::ExportedArray> result;
    std::exception_ptr error;
    // The wait happens without this GIL (the workers never need it; other Python threads, DuckDB's,
    // may). On the main thread a long wait would also hold back signal handlers, Ctrl-C's
    // KeyboardInterrupt: every 100 ms the wait takes the GIL back to run them, and one that raises
    // stops the slices and is raised here.
    if (!stop) stop = std::make_shared<udf::Stop>();
    PyThreadState* saved = nullptr;
    PyObject* signalled = nullptr;  // what a signal handler raised (owned)
    stop->set_poll(
        [&saved, &signalled](udf::Stop& s) {
            PyEval_RestoreThread(saved);
            if (!signalled && PyErr_CheckSignals() < 0) {
                signalled = PyErr_GetRaisedException();
                s.request(std::string("the caller's thread got ") + Py_TYPE(signalled)->tp_name);
            }
            saved = PyEval_SaveThread();
        },
        std::chrono::milliseconds(100));
    saved = PyEval_SaveThread();
    try {
        result = std::make_unique<arrow::ExportedArray>(
            batch ? udf::map_batches(*pool, *function, columns, format, skip != 0, taken, stop)
                  : udf::map_rows(*pool, *function, columns, format, skip != 0, stop));
    } catch (...) {
        error = std::current_exception();
    }
    PyEval_RestoreThread(saved);
    stop->set_poll(nullptr, std::chrono::milliseconds(100));  // it refers to this frame
    taken.reset();  // released here unless a function kept a view of them
    if (signalled) {  // Ctrl-C: the interrupt wins over the result or the slices' Interrupted
        PyErr_SetRaisedException(signalled);
        return nullptr;
    }
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            // A PythonError as the function's own exception type, with the worker's traceback as its
            // cause; a bad column as TypeError, an unknown function as ImportError (errors.hpp).
            return raise_error(e);
        } catch (...) {
            PyErr_SetString(PyExc_RuntimeError, "manygil: a UDF slice failed");
        }
        return nullptr;
    }
    auto* type = state->arrow_result_type;
    PyObject* self = type->tp_alloc(type, 0);
    if (!self) return nullptr;
    as_result(self)->exported = result.release();
    return self;
}

}  // namespace manygil::ext
