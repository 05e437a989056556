// without_gil(fn): runs fn() with the calling thread's GIL released, for calls that wait on workers
// (which take the main GIL to settle futures and end their interpreters). A std::exception fn
// throws comes back as a RuntimeError set on return: the result is false then.
#pragma once

#include <Python.h>

#include <exception>
#include <optional>
#include <string>

namespace manygil::ext {

template <class Fn>
bool without_gil(Fn fn) {
    std::optional<std::string> error;
    Py_BEGIN_ALLOW_THREADS
    try {
        fn();
    } catch (const std::exception& e) {
        error = e.what();
    }
    Py_END_ALLOW_THREADS
    if (error) PyErr_SetString(PyExc_RuntimeError, error->c_str());
    return !error;
}

}  // namespace manygil::ext
