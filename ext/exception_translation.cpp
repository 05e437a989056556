#include "exception_translation.hpp"

#include <new>

#include "manygil/arrow_data.hpp"
#include "cpython/interpreter_dict.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::ext {

using detail::PyRef;

namespace {

// The package's hook `name` (borrowed), or null with no error set when there is none.
PyObject* hook(const char* name) {
    try {
        return detail::package_hook(name);
    } catch (const std::exception&) {
        PyErr_Clear();  // the caller falls back to a builtin exception
        return nullptr;
    }
}

PyObject* new_exception(PyObject* type, const std::string& message) {
    return PyObject_CallFunction(type, "s#", message.data(), static_cast<Py_ssize_t>(message.size()));
}

// Rebuilding failed, or the package is not there: report that rather than nothing.
PyObject* fallback(PyObject* type, const std::string& message) {
    if (PyObject* raised = PyErr_GetRaisedException()) return raised;
    PyObject* exc = new_exception(type, message);
    return exc ? exc : PyErr_GetRaisedException();
}

}  // namespace

PyObject* rebuild_error(const ErrorInfo& error) {
    PyObject* rebuild = hook("errors.rebuild");
    PyRef pickled = error.pickled ? PyRef(PyBytes_FromStringAndSize(error.pickled->data(),
                                                                    static_cast<Py_ssize_t>(error.pickled->size())))
                                  : PyRef::borrow(Py_None);
    PyObject* exc = rebuild && pickled
                        ? PyObject_CallFunction(rebuild, "s#s#s#O", error.type_name.data(),
                                                static_cast<Py_ssize_t>(error.type_name.size()), error.message.data(),
                                                static_cast<Py_ssize_t>(error.message.size()), error.traceback.data(),
                                                static_cast<Py_ssize_t>(error.traceback.size()), pickled.get())
                        : nullptr;
    if (exc) return exc;
    return fallback(PyExc_SystemError, "manygil: could not rebuild a worker's error: " + error.type_name + ": " +
                                           error.message);
}

PyObject* exception_for(const std::exception& e, const char* path_prefix, bool with_cause) {
    if (auto* p = dynamic_cast<const PythonError*>(&e)) return rebuild_error(ErrorInfo::of(*p));
    if (auto* c = dynamic_cast<const ConversionError*>(&e)) {
        std::string path = path_prefix + c->path();
        PyObject* factory = hook("errors.not_shareable");
        PyObject* exc = factory ? PyObject_CallFunction(factory, "sss", c->type_name().c_str(), path.c_str(),
                                                        c->reason().c_str())
                                : nullptr;
        return exc ? exc : fallback(PyExc_TypeError, e.what());
    }
    if (auto* b = dynamic_cast<const BrokenPoolError*>(&e)) {
        PyObject* exc = nullptr;
        if (with_cause && b->cause()) {
            std::string cause_type = "RuntimeError", cause_message, cause_traceback;
            try {
                std::rethrow_exception(b->cause());
            } catch (const PythonError& cause) {
                cause_type = cause.type_name();
                cause_message = cause.message();
                cause_traceback = cause.traceback();
            } catch (const std::exception& cause) {
                cause_message = cause.what();
            } catch (...) {
            }
            PyObject* factory = hook("errors.broken_pool");
            exc = factory ? PyObject_CallFunction(factory, "ssss", e.what(), cause_type.c_str(), cause_message.c_str(),
                                                  cause_traceback.c_str())
                          : nullptr;
        } else {
            PyObject* factory = hook("errors.broken_pool_now");
            exc = factory ? PyObject_CallFunction(factory, "s", e.what()) : nullptr;
        }
        return exc ? exc : fallback(PyExc_RuntimeError, e.what());
    }
    if (dynamic_cast<const UnknownFunctionError*>(&e)) return fallback(PyExc_ImportError, e.what());
    if (dynamic_cast<const InvalidArgument*>(&e)) return fallback(PyExc_ValueError, e.what());
    if (dynamic_cast<const TimeoutError*>(&e)) return fallback(PyExc_TimeoutError, e.what());
    if (dynamic_cast<const arrow::ArrowError*>(&e)) return fallback(PyExc_TypeError, e.what());
    if (dynamic_cast<const std::bad_alloc*>(&e)) return fallback(PyExc_MemoryError, e.what());
    return fallback(PyExc_RuntimeError, e.what());
}

ErrorInfo error_info_for(const std::exception& e, const char* load_what, const char* where) {
    if (auto* p = dynamic_cast<const PythonError*>(&e)) return ErrorInfo::of(*p);
    if (dynamic_cast<const UnknownFunctionError*>(&e)) {
        return {"ImportError", std::string("cannot load ") + load_what + ": " + e.what(), "", std::nullopt};
    }
    if (dynamic_cast<const ConversionError*>(&e)) return {"manygil.NotShareableError", e.what(), "", std::nullopt};
    return {"SystemError", std::string("manygil ") + where + ": " + e.what(), "", std::nullopt};
}

PyObject* raise_exception(PyObject* exc) {
    if (exc) {
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);  // chains a handled exception, as raise does
        Py_DECREF(exc);
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_SystemError, "manygil: could not build an exception");
    }
    return nullptr;
}

PyObject* raise_error(const std::exception& e, const char* path_prefix) {
    return raise_exception(exception_for(e, path_prefix));
}

}  // namespace manygil::ext
