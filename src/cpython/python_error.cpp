#include "cpython/python_error.hpp"

#include "cpython/py_ref.hpp"

namespace manygil::detail {

namespace {

// str(obj) as UTF-8, or `fallback` if that fails (the failure is swallowed: we are already reporting
// an error and must not replace it with another).
std::string str_or(PyObject* obj, const std::string& fallback) {
    PyRef s(PyObject_Str(obj));
    if (!s) {
        PyErr_Clear();
        return fallback;
    }
    Py_ssize_t n = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(s.get(), &n);
    if (!utf8) {
        PyErr_Clear();
        return fallback;
    }
    return std::string(utf8, static_cast<std::size_t>(n));
}

std::string format_traceback(PyObject* exc) {
    PyRef traceback(PyImport_ImportModule("traceback"));
    if (!traceback) {
        PyErr_Clear();
        return {};
    }
    PyRef lines(PyObject_CallMethod(traceback.get(), "format_exception", "O", exc));
    if (!lines) {
        PyErr_Clear();
        return {};
    }
    PyRef empty(PyUnicode_FromString(""));
    PyRef joined(empty ? PyUnicode_Join(empty.get(), lines.get()) : nullptr);
    if (!joined) {
        PyErr_Clear();
        return {};
    }
    return str_or(joined.get(), {});
}

}  // namespace

std::string type_qualname(PyTypeObject* type) {
    PyRef qualname(PyType_GetQualName(type));
    std::string name = qualname ? str_or(qualname.get(), type->tp_name) : type->tp_name;
    if (!qualname) PyErr_Clear();
    PyRef module(PyObject_GetAttrString(reinterpret_cast<PyObject*>(type), "__module__"));
    if (!module) {
        PyErr_Clear();
        return name;
    }
    std::string module_name = str_or(module.get(), "");
    if (module_name.empty() || module_name == "builtins") return name;
    return module_name + "." + name;
}

PythonError fetch_python_error() {
    PyRef exc(PyErr_GetRaisedException());
    if (!exc) return PythonError("SystemError", "manygil: error reported without a Python exception", "");
    return describe_exception(exc.get());
}

PythonError describe_exception(PyObject* exc) {
    std::string type_name = type_qualname(Py_TYPE(exc));
    std::string message = str_or(exc, "<exception str() failed>");
    std::string traceback = format_traceback(exc);
    return PythonError(std::move(type_name), std::move(message), std::move(traceback));
}

void throw_python_error() { throw fetch_python_error(); }

std::string describe_status(const PyStatus& status) {
    std::string why = status.err_msg ? status.err_msg : "unknown error";
    return status.func ? std::string(status.func) + ": " + why : why;
}

}  // namespace manygil::detail
