// The one translator from the runtime's C++ errors (manygil/errors.hpp) to Python exceptions, and the
// one place a worker's error is rebuilt in the caller's interpreter. The package's exception types
// and factories (manygil._errors) come from its hooks (cpython/interpreter_dict.hpp: package_hook),
// registered per interpreter when the package is imported, never imported here by name.
// Call with the GIL of the interpreter the exception is for.
#pragma once

#include <Python.h>

#include <exception>
#include <optional>
#include <string>

#include "manygil/errors.hpp"

namespace manygil::ext {

// A Python exception, as it travels back to the caller (C++ data only).
struct ErrorInfo {
    std::string type_name, message, traceback;
    std::optional<std::string> pickled;  // the exception itself, when it could be pickled

    static ErrorInfo of(const PythonError& e) { return {e.type_name(), e.message(), e.traceback(), std::nullopt}; }
};

// The exception to raise for `error` in the current interpreter: its own type when it can be rebuilt,
// with the remote traceback as __cause__ (the package's errors.rebuild). A new reference; never null
// unless even reporting that failed.
PyObject* rebuild_error(const ErrorInfo& error);

// The Python exception for a C++ error (a new reference, never null unless out of memory):
//   PythonError          -> rebuilt as its own type (rebuild_error)
//   ConversionError      -> manygil.NotShareableError (type_name, path; `path_prefix` + its path)
//   BrokenPoolError      -> manygil.BrokenPool (logged once; with its cause rebuilt, if it has one and
//                           with_cause is set: a task that failed with it, not a refused submit)
//   UnknownFunctionError -> ImportError
//   InvalidArgument      -> ValueError;  TimeoutError -> TimeoutError;  arrow::ArrowError -> TypeError
//   std::bad_alloc       -> MemoryError; anything else -> RuntimeError(what())
PyObject* exception_for(const std::exception& e, const char* path_prefix = "", bool with_cause = false);

// Raises exception_for(e, ...); returns nullptr, for `return raise_error(e);`.
PyObject* raise_error(const std::exception& e, const char* path_prefix = "");

// A C++ error caught where a task or a call ran, as it travels back to its caller: a PythonError as
// itself, UnknownFunctionError as ImportError("cannot load <load_what>: ..."), ConversionError as
// manygil.NotShareableError, anything else as SystemError("manygil <where>: ...").
ErrorInfo error_info_for(const std::exception& e, const char* load_what, const char* where);

// Raises `exc` (a new reference, consumed) as the current exception; returns nullptr.
PyObject* raise_exception(PyObject* exc);

}  // namespace manygil::ext
