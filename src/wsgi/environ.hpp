// The WSGI environ (PEP 3333), built by the worker straight from the C++ request: keys interned
// once per interpreter, constant values (wsgi.version, wsgi.errors, ...) made once per interpreter,
// header names turned into HTTP_* keys here. Values are native strings (str of latin-1 text).
// wsgi.input is an io.BytesIO over the received body (already complete: wsgi.input_terminated).
// GIL held.
#pragma once

#include <Python.h>

#include <string>

#include "cpython/py_ref.hpp"
#include "manygil/http.hpp"

namespace manygil::wsgi {

// A new environ dict for `request`. Throws PythonError.
detail::PyRef build_environ(const http::Request& request, const std::string& url_scheme);

// The path of a request-target, %-decoded, as PATH_INFO; and its query. "http://h/p?q" -> "/p", "q".
void split_target(const std::string& target, std::string& path, std::string& query);

// manygil._wsgi.FileWrapper of this interpreter (borrowed). Throws PythonError.
PyObject* file_wrapper_type();

}  // namespace manygil::wsgi
