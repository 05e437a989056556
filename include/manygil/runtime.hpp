// manygil::Runtime: the process-wide owner of the embedded CPython. Create one before any Interpreter
// or Pool, on the thread that will also destroy it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

struct _object;  // PyObject, without making every client include Python.h

namespace manygil {

namespace detail {
class WorkerGroup;
}

struct RuntimeOptions {
    // Directories put in front of sys.path in every interpreter (honoured only when this Runtime
    // initialises Python; an already running Python keeps its own path).
    std::vector<std::string> python_path;

    // Built-in extension modules the host provides to every interpreter: name and PyInit function.
    // Only honoured when this Runtime initialises Python. To import in worker interpreters a module
    // must use multi-phase init and declare Py_MOD_PER_INTERPRETER_GIL_SUPPORTED.
    std::vector<std::pair<std::string, _object* (*)()>> builtin_modules;

    // Let Python install its SIGINT handler (KeyboardInterrupt). Off by default: the host owns signals.
    bool install_signal_handlers = false;
};

class Runtime {
public:
    // Initialises the embedded main interpreter; or, if Python is already running (manygil used from
    // an extension module), attaches to it and will not finalise it. At most one Runtime exists at a
    // time: a second one throws manygil::Error.
    explicit Runtime(RuntimeOptions options = {});

    // close(), then Py_FinalizeEx() if this Runtime initialised Python.
    ~Runtime();

    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Shuts down every Pool and Interpreter created through this Runtime, waiting for their running
    // and queued tasks, and ends their interpreters. They are unusable afterwards (ShutdownError).
    void close();

    // True if this Runtime initialised Python (and so finalises it).
    bool owns_python() const noexcept { return owns_python_; }

    // "3.13.5": the version of the CPython this Runtime runs on.
    static std::string python_version();

    // The Runtime that exists now, or nullptr.
    static Runtime* current() noexcept;

private:
    friend class detail::WorkerGroup;
    void adopt(const std::shared_ptr<detail::WorkerGroup>& group);

    struct State;
    std::unique_ptr<State> state_;
    bool owns_python_ = false;
};

}  // namespace manygil
