#include "wsgi/start_response.hpp"

#include <new>
#include <string_view>

#include "cpython/interpreter_dict.hpp"
#include "cpython/python_error.hpp"

namespace manygil::wsgi {

namespace {

struct StartResponseObject {
    PyObject_HEAD
    StartResponseState state;  // placement-constructed by new_start_response(), destroyed in dealloc
};

StartResponseObject* as_object(PyObject* op) { return reinterpret_cast<StartResponseObject*>(op); }

// A str with latin-1 text only (PEP 3333's "native strings"), as bytes.
bool latin1(PyObject* s, const char* what, std::string& out) {
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "start_response(): %s must be a str, not %.100s", what, Py_TYPE(s)->tp_name);
        return false;
    }
    detail::PyRef bytes(PyUnicode_AsLatin1String(s));
    if (!bytes) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "start_response(): %s %R has characters outside latin-1", what, s);
        return false;
    }
    out.assign(PyBytes_AS_STRING(bytes.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes.get())));
    return true;
}

bool token_char(unsigned char c) {
    if (c >= 'a' && c <= 'z') return true;
    if (c >= 'A' && c <= 'Z') return true;
    if (c >= '0' && c <= '9') return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

PyObject* start_response_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    static const char* kw[] = {"status", "headers", "exc_info", nullptr};
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", const_cast<char**>(kw), &status, &headers,
                                     &exc_info)) {
        return nullptr;
    }
    StartResponseState& st = as_object(self)->state;
    // PEP 3333: a second call needs exc_info. The response is buffered, so nothing has been sent
    // yet and the error's status and headers simply replace the first ones.
    if (st.called && exc_info == Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called a second time without exc_info");
        return nullptr;
    }
    std::string line;
    if (!latin1(status, "the status", line)) return nullptr;
    if (line.size() < 5 || line[3] != ' ' || line.find_first_not_of("0123456789") != 3 ||
        line.find_first_of("\r\n") != std::string::npos) {
        PyErr_Format(PyExc_ValueError, "start_response(): the status %R is not of the form '200 OK'", status);
        return nullptr;
    }
    int code = std::stoi(line.substr(0, 3));
    if (code < 100) {
        PyErr_Format(PyExc_ValueError, "start_response(): the status code in %R is below 100", status);
        return nullptr;
    }
    if (!PyList_Check(headers)) {
        PyErr_Format(PyExc_TypeError, "start_response(): headers must be a list of (name, value) tuples, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return nullptr;
    }
    std::vector<http::Header> parsed;
    Py_ssize_t n = PyList_GET_SIZE(headers);
    parsed.reserve(static_cast<std::size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* item = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError, "start_response(): headers[%zd] is not a (name, value) tuple: %R", i, item);
            return nullptr;
        }
        http::Header h;
        if (!latin1(PyTuple_GET_ITEM(item, 0), "a header name", h.name) ||
            !latin1(PyTuple_GET_ITEM(item, 1), "a header value", h.value)) {
            return nullptr;
        }
        bool name_ok = !h.name.empty();
        for (unsigned char c : h.name) name_ok = name_ok && token_char(c);
        if (!name_ok) {
            PyErr_Format(PyExc_ValueError, "start_response(): headers[%zd] has an invalid name %R", i,
                         PyTuple_GET_ITEM(item, 0));
            return nullptr;
        }
        if (h.value.find_first_of("\r\n") != std::string::npos || h.value.find('\0') != std::string::npos) {
            PyErr_Format(PyExc_ValueError, "start_response(): the value of header %R has a line break",
                         PyTuple_GET_ITEM(item, 0));
            return nullptr;
        }
        if (http::iequals(h.name, "connection") || http::iequals(h.name, "transfer-encoding") ||
            http::iequals(h.name, "keep-alive")) {
            PyErr_Format(PyExc_ValueError, "start_response(): %R is a hop-by-hop header, which the server sets (PEP 3333)",
                         PyTuple_GET_ITEM(item, 0));
            return nullptr;
        }
        parsed.push_back(std::move(h));
    }
    st.called = true;
    st.status = code;
    st.reason = line.substr(4);
    st.headers = std::move(parsed);
    return PyObject_GetAttrString(self, "write");
}

PyObject* start_response_write(PyObject* self, PyObject* data) {
    StartResponseState& st = as_object(self)->state;
    if (!st.called) {
        PyErr_SetString(PyExc_RuntimeError, "write() called before start_response()");
        return nullptr;
    }
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "write() takes bytes, not %.100s", Py_TYPE(data)->tp_name);
        return nullptr;
    }
    st.written.append(PyBytes_AS_STRING(data), static_cast<std::size_t>(PyBytes_GET_SIZE(data)));
    Py_RETURN_NONE;
}

void start_response_dealloc(PyObject* op) {
    PyTypeObject* type = Py_TYPE(op);
    as_object(op)->state.~StartResponseState();
    type->tp_free(op);
    Py_DECREF(type);
}

PyMethodDef methods[] = {
    {"write", start_response_write, METH_O, "write(data: bytes) -> None: body bytes sent before the iterable's"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot slots[] = {
    {Py_tp_call, reinterpret_cast<void*>(start_response_call)},
    {Py_tp_dealloc, reinterpret_cast<void*>(start_response_dealloc)},
    {Py_tp_methods, methods},
    {Py_tp_doc, const_cast<char*>("start_response(status, headers, exc_info=None) -> write (PEP 3333)")},
    {0, nullptr},
};

PyType_Spec spec = {"manygil.wsgi.StartResponse", sizeof(StartResponseObject), 0,
                    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION, slots};

}  // namespace

detail::PyRef new_start_response() {
    auto* type = reinterpret_cast<PyTypeObject*>(
        detail::per_interpreter("manygil.wsgi.StartResponse", [] { return PyType_FromSpec(&spec); }));
    PyObject* self = type->tp_alloc(type, 0);
    if (!self) detail::throw_python_error();
    new (&as_object(self)->state) StartResponseState();
    return detail::PyRef(self);
}

StartResponseState& start_response_state(PyObject* start_response) { return as_object(start_response)->state; }

}  // namespace manygil::wsgi
