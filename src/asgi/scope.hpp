// The ASGI HTTP and WebSocket connection scopes (asgiref specs/www.rst), built by the worker straight from the C++
// request: keys interned once per interpreter; path %-decoded and read as UTF-8 (invalid sequences
// replaced, as urllib.parse.unquote does), raw_path and query_string as received (bytes); headers
// as a list of (lower-cased name, value) bytes pairs in arrival order; client (addr, port), None
// for a Unix-socket peer; server (addr, port); state: a shallow copy of the worker's lifespan state
// (absent when the application has none). A WebSocket scope has no method, scheme ws / wss (for
// http / https), subprotocols (Sec-WebSocket-Protocol's tokens, in order) and extensions
// {"websocket.http.response": {}} (the denial response extension, which the worker implements).
// GIL held.
#pragma once

#include <Python.h>

#include <string>

#include "cpython/py_ref.hpp"
#include "manygil/http.hpp"

namespace manygil::asgi::detail {

// A new scope dict ("http", or "websocket" when `websocket`). `state`: the lifespan state dict, or
// None. Throws PythonError.
manygil::detail::PyRef build_scope(const http::Request& request, const std::string& scheme,
                                   const std::string& root_path, PyObject* state, bool websocket = false);

}  // namespace manygil::asgi::detail
