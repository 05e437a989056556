// Errors raised by the manygil runtime. Every error is a manygil::Error (a std::runtime_error), so a
// host can catch them all in one place, or by type when it cares which argument or task failed.
// Errors hold only C++ strings (no Python object): they may be copied, rethrown on any thread and kept
// after every interpreter, and the Runtime, are gone. A task's error reaches its caller through its
// Task's get() (task.hpp), or an Interpreter call's std::future. Implemented in src/cpython/errors.cpp,
// the bottom layer, since every layer throws them; the Python extension maps each to its Python
// exception in one place (ext/exception_translation.cpp).
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

namespace manygil {

// Base of every error manygil throws.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A Python exception raised by code running in an interpreter (a task, exec, an initializer).
class PythonError : public Error {
public:
    PythonError(std::string type_name, std::string message, std::string traceback);

    // Qualified name of the exception's type: "ValueError", "json.decoder.JSONDecodeError".
    const std::string& type_name() const noexcept { return type_name_; }
    // str(exception).
    const std::string& message() const noexcept { return message_; }
    // The traceback as Python formats it ("Traceback (most recent call last): ..."), chained causes
    // included; empty if it could not be formatted.
    const std::string& traceback() const noexcept { return traceback_; }

private:
    std::string type_name_, message_, traceback_;
};

// A value could not cross between C++ and Python. Names the Python type and where the value sat,
// e.g. type "set" at "args[1]['k']", or "result[0]".
class ConversionError : public Error {
public:
    ConversionError(std::string type_name, std::string path, std::string reason);

    const std::string& type_name() const noexcept { return type_name_; }
    const std::string& path() const noexcept { return path_; }
    const std::string& reason() const noexcept { return reason_; }

    // "cannot convert <type> at <path>: <reason>".
    const char* what() const noexcept override { return message_.c_str(); }

    // For the converter, while unwinding out of a container: the path grows from the inside out.
    void prepend_path(const std::string& outer);

private:
    void update_message();
    std::string type_name_, path_, reason_, message_;
};

// A "module:function" target that does not resolve to a callable in the worker.
class UnknownFunctionError : public Error {
public:
    UnknownFunctionError(std::string target, std::string reason);
    const std::string& target() const noexcept { return target_; }
    const std::string& reason() const noexcept { return reason_; }

private:
    std::string target_, reason_;
};

// An argument that is malformed before anything runs (e.g. a target without ':').
class InvalidArgument : public Error {
public:
    using Error::Error;
};

// An interpreter could not be created (Interpreter's constructor; a Pool's worker, as the cause of
// its BrokenPoolError). Use after close() is a ShutdownError.
class InterpreterError : public Error {
public:
    using Error::Error;
};

// The task was cancelled before it started (shutdown with cancel_pending).
class CancelledError : public Error {
public:
    using Error::Error;
};

// Work was submitted after shutdown()/close() began, or to a closed Runtime.
class ShutdownError : public Error {
public:
    using Error::Error;
};

// A worker failed to start (its interpreter could not be created, or the initializer raised): the pool
// accepts no more work and fails every pending task with this error. cause() is the original error
// (a PythonError from the initializer, or an InterpreterError).
class BrokenPoolError : public Error {
public:
    BrokenPoolError(const std::string& what, std::exception_ptr cause);
    std::exception_ptr cause() const noexcept { return cause_; }

private:
    std::exception_ptr cause_;
};

// A wait gave up: call_in_main's timeout passed (main_call.hpp), or the interruptible call it was
// made from was interrupted (interrupted() is then true; timeout.hpp).
class TimeoutError : public Error {
public:
    TimeoutError(const std::string& what, bool interrupted) : Error(what), interrupted_(interrupted) {}
    bool interrupted() const noexcept { return interrupted_; }

private:
    bool interrupted_;
};

// A Value accessor was used on a Value of another kind (as_int() on a str, ...).
class ValueTypeError : public Error {
public:
    using Error::Error;
};

}  // namespace manygil
