// The ASGI HTTP connection scope (asgiref specs/www.rst), built by the worker straight from the C++
// request: keys interned once per interpreter; path %-decoded and read as UTF-8 (invalid sequences
// replaced, as urllib.parse.unquote does), raw_path and query_string as received (bytes); headers
// as a list of (lower-cased name, value) bytes pairs in arrival order; client (addr, port), None
// for a Unix-socket peer; server (addr, port); state: a shallow copy of the worker's lifespan state
// (absent when the application has none). GIL held.
#pragma once

#include <Python.h>

#include <string>

#include "cpython/py_ref.hpp"
#include "manygil/http.hpp"

namespace manygil::asgi::detail {

// A new scope dict. `state`: the lifespan state dict, or None. Throws PythonError.
manygil::detail::PyRef build_scope(const http::Request& request, const std::string& scheme,
                                   const std::string& root_path, PyObject* state);

}  // namespace manygil::asgi::detail
