// The start_response callable of PEP 3333, one per request, as a Python type created once per
// interpreter. It validates what the application passes (a "NNN reason" status str, a list of
// (name, value) str pairs with no line breaks, latin-1 only) and raises TypeError/ValueError in the
// application on bad input, so the failure carries the application's traceback. It returns the
// write() callable, whose bytes come before the iterable's. GIL held.
#pragma once

#include <Python.h>

#include <string>
#include <vector>

#include "cpython/py_ref.hpp"
#include "manygil/http.hpp"

namespace manygil::wsgi {

// What the application said, read by the worker after the call.
struct StartResponseState {
    bool called = false;
    int status = 0;
    std::string reason;
    std::vector<http::Header> headers;
    std::string written;  // by write()
};

// A new start_response callable of the current interpreter. Throws PythonError.
detail::PyRef new_start_response();

// The state behind a start_response made by new_start_response().
StartResponseState& start_response_state(PyObject* start_response);

}  // namespace manygil::wsgi
