// manygil::Runtime: the process-wide owner of the embedded CPython, and of every Pool and Interpreter
// made through it. At most one exists at a time.
//
// Threads and GILs: when it initialises Python, construct and destroy it on the same thread (the one
// that finalises Python), holding no GIL; the constructor then returns with the main GIL released.
// close() and the destructor wait for workers, which need the MAIN interpreter's GIL: never hold it
// across them. Every other member may be called from any thread, close() concurrently with the work
// it ends.
//
// Lifetime: it must outlive the construction of every Pool and Interpreter it makes; those may
// outlive it, closed. No Value, Channel, SharedBuffer or sync primitive depends on it.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace manygil {

namespace detail {
class WorkerGroup;

using ErasedModuleInit = void (*)();
// Defined in the library and instantiated there for CPython's module object type only: any other
// pointer type fails to link. Keeps this header free of CPython's names.
template <class Module>
ErasedModuleInit erase_module_init(Module* (*init)()) noexcept;
}  // namespace detail

// A built-in extension module the host links in: its name and its PyInit function, exactly as
// Python.h declares one (PyObject* PyInit_x(void)): {"_mymod", PyInit__mymod}. A function of another
// type does not compile (a pointer to a non-class) or does not link (to another class).
class BuiltinModule {
public:
    template <class Module>
        requires std::is_class_v<Module>  // CPython's module object type, deduced, never named here
    BuiltinModule(std::string name, Module* (*init)()) : name_(std::move(name)), init_(detail::erase_module_init(init)) {}

    const std::string& name() const noexcept { return name_; }

private:
    friend class Runtime;
    std::string name_;
    detail::ErasedModuleInit init_;
};

struct RuntimeOptions {
    // Directories put in front of sys.path in every interpreter (honoured only when this Runtime
    // initialises Python; an already running Python keeps its own path).
    std::vector<std::string> python_path;

    // Built-in extension modules the host provides to every interpreter. Only honoured when this
    // Runtime initialises Python. To import in worker interpreters a module must use multi-phase init
    // and declare Py_MOD_PER_INTERPRETER_GIL_SUPPORTED.
    std::vector<BuiltinModule> builtin_modules;

    // Let Python install its SIGINT handler (KeyboardInterrupt). Off by default: the host owns signals.
    bool install_signal_handlers = false;
};

class Runtime {
public:
    // Initialises the embedded main interpreter and releases its GIL; or, if Python is already
    // running (manygil used from an extension module), uses it and will not finalise it. Throws Error
    // if another Runtime exists or Python cannot be initialised.
    explicit Runtime(RuntimeOptions options = {});

    // close(), then Py_FinalizeEx() if this Runtime initialised Python.
    ~Runtime();

    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Shuts down every Pool and Interpreter created through this Runtime, waiting for their running
    // and queued tasks, and ends their interpreters. They, and the Runtime, refuse new work afterwards
    // (ShutdownError). Idempotent.
    void close();

    // True if this Runtime initialised Python (and so finalises it).
    bool owns_python() const noexcept { return owns_python_; }

    // "3.13.5": the version of the CPython this Runtime runs on.
    static std::string python_version();

    // The Runtime that exists now, or nullptr.
    static Runtime* current() noexcept;

    // Makes a crash say what it hit: installs handlers for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT
    // that write one line to stderr, "manygil: fatal SIGSEGV in <pool> worker <i> while running <job>"
    // (the job as stats() names it: "module:function", "WSGI GET /path"), then give the signal to the
    // handler installed before (Python's faulthandler, a sanitizer's, or the default action): call it
    // after installing those. Process-wide and idempotent; any thread, no GIL needed; does not need a
    // Runtime to exist. `manygil serve` does it in its server process.
    static void note_jobs_on_fatal_signals();

private:
    friend class detail::WorkerGroup;
    void adopt(const std::shared_ptr<detail::WorkerGroup>& group);

    struct State;
    std::unique_ptr<State> state_;
    bool owns_python_ = false;
};

}  // namespace manygil
