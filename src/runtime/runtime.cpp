#include "manygil/runtime.hpp"

#include <Python.h>

#include <cstdlib>
#include <deque>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "manygil/errors.hpp"
#include "cpython/python_error.hpp"
#include "pytypes/crossing_types.hpp"
#include "runtime/crash_note.hpp"
#include "runtime/idle_workers.hpp"
#include "runtime/main_calls.hpp"
#include "runtime/worker_group.hpp"

namespace manygil {

void Runtime::note_jobs_on_fatal_signals() { detail::install_crash_notes(); }

namespace {

std::mutex g_current_mu;
Runtime* g_current = nullptr;

// PyImport_AppendInittab keeps the name pointer for the rest of the process.
std::deque<std::string>& inittab_names() {
    static std::deque<std::string> names;
    return names;
}

using ModuleInit = PyObject* (*)();

void initialise_python(const RuntimeOptions& options, const std::vector<std::pair<std::string, ModuleInit>>& modules) {
    for (const auto& [name, init] : modules) {
        inittab_names().push_back(name);
        if (PyImport_AppendInittab(inittab_names().back().c_str(), init) < 0) {
            throw Error("cannot register built-in module '" + name + "'");
        }
    }
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = options.install_signal_handlers ? 1 : 0;
    config.parse_argv = 0;
    std::string path;
    for (const auto& dir : options.python_path) path += (path.empty() ? "" : ":") + dir;
    if (const char* env = std::getenv("PYTHONPATH"); env && *env) path += (path.empty() ? "" : ":") + std::string(env);
    PyStatus status = PyStatus_Ok();
    if (!path.empty()) status = PyConfig_SetBytesString(&config, &config.pythonpath_env, path.c_str());
    if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) throw Error("cannot initialise Python: " + detail::describe_status(status));
}

}  // namespace

namespace detail {

// The one instantiation: a PyInit function converts to the opaque pointer and back unchanged
// ([expr.reinterpret.cast]: a function pointer survives a round trip through another function
// pointer type).
template <class Module>
ErasedModuleInit erase_module_init(Module* (*init)()) noexcept {
    static_assert(std::is_same_v<Module, PyObject>);
    return reinterpret_cast<ErasedModuleInit>(init);
}
template ErasedModuleInit erase_module_init<PyObject>(PyObject* (*)()) noexcept;

}  // namespace detail

struct Runtime::State {
    std::mutex mu;
    std::vector<std::weak_ptr<detail::WorkerGroup>> groups;
    bool closed = false;
    PyThreadState* main_tstate = nullptr;  // saved while we own Python, restored to finalise
};

Runtime::Runtime(RuntimeOptions options) : state_(std::make_unique<State>()) {
    // A host's SharedBuffer, Channel or sync Value reaches a worker as that worker's Python object
    // before any of those types exists there: the codec must know them from the start.
    detail::register_crossing_types();
    {
        std::lock_guard lock(g_current_mu);
        if (g_current) throw Error("a manygil::Runtime already exists in this process");
        g_current = this;
    }
    try {
        if (!Py_IsInitialized()) {
            std::vector<std::pair<std::string, ModuleInit>> modules;
            for (const BuiltinModule& m : options.builtin_modules) {
                modules.emplace_back(m.name_, reinterpret_cast<ModuleInit>(m.init_));
            }
            initialise_python(options, modules);
            owns_python_ = true;
            // Release the main GIL: worker threads take it briefly to create their interpreters.
            state_->main_tstate = PyEval_SaveThread();
        }
        detail::IdleWorkers::instance().resume();  // a Runtime closed before this one drained it
        detail::MainCalls::instance().open();
    } catch (...) {
        std::lock_guard lock(g_current_mu);
        g_current = nullptr;
        throw;
    }
}

Runtime::~Runtime() {
    close();
    if (owns_python_) {
        PyEval_RestoreThread(state_->main_tstate);
        Py_FinalizeEx();
    }
    std::lock_guard lock(g_current_mu);
    g_current = nullptr;
}

void Runtime::close() {
    std::vector<std::shared_ptr<detail::WorkerGroup>> groups;
    {
        std::lock_guard lock(state_->mu);
        state_->closed = true;
        for (auto& weak : state_->groups) {
            if (auto group = weak.lock()) groups.push_back(std::move(group));
        }
        state_->groups.clear();
    }
    for (auto& group : groups) group->close();
    // Every worker has left its group: the parked ones end their interpreters now, then no worker
    // thread runs any more (the caller may finalise Python next).
    detail::IdleWorkers::instance().drain();
    detail::WorkerGroup::wait_for_worker_threads();
    // Last: until every worker has returned, their tasks may still call into main (a pool's queued
    // tasks run during its shutdown). Then no thread attaches the main interpreter any more.
    detail::MainCalls::instance().close();
}

void Runtime::adopt(const std::shared_ptr<detail::WorkerGroup>& group) {
    std::lock_guard lock(state_->mu);
    if (state_->closed) throw ShutdownError("the manygil::Runtime is closed");
    std::erase_if(state_->groups, [](const auto& weak) { return weak.expired(); });
    state_->groups.push_back(group);
}

std::string Runtime::python_version() {
    std::string version = Py_GetVersion();  // "3.13.5 (main, ...) [GCC ...]"
    return version.substr(0, version.find(' '));
}

Runtime* Runtime::current() noexcept {
    std::lock_guard lock(g_current_mu);
    return g_current;
}

}  // namespace manygil
