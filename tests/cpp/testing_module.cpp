#include "testing_module.hpp"

#include <Python.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "manygil/errors.hpp"
#include "manygil/main_call.hpp"

namespace manygil::testing {

namespace {

// Process-wide state shared by every interpreter: plain C++, no PyObject.
std::mutex g_mu;
std::condition_variable g_cv;
std::map<std::string, int> g_arrived;
std::map<std::string, bool> g_events;

std::chrono::steady_clock::time_point deadline_after(double seconds) {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

bool rendezvous(const std::string& name, int parties, double timeout) {
    std::unique_lock lock(g_mu);
    ++g_arrived[name];
    g_cv.notify_all();
    return g_cv.wait_until(lock, deadline_after(timeout), [&] { return g_arrived[name] >= parties; });
}

PyObject* py_rendezvous(PyObject*, PyObject* args) {
    const char* name;
    int parties;
    double timeout;
    if (!PyArg_ParseTuple(args, "sid", &name, &parties, &timeout)) return nullptr;
    // Deliberately NOT releasing the GIL: if interpreters shared one GIL, the other party could never
    // run Python code to arrive, and this would time out.
    return PyBool_FromLong(rendezvous(name, parties, timeout));
}

PyObject* py_set_event(PyObject*, PyObject* args) {
    const char* name;
    if (!PyArg_ParseTuple(args, "s", &name)) return nullptr;
    set_event(name);
    Py_RETURN_NONE;
}

PyObject* py_wait_event(PyObject*, PyObject* args) {
    const char* name;
    double timeout;
    if (!PyArg_ParseTuple(args, "sd", &name, &timeout)) return nullptr;
    std::string key(name);
    bool ok;
    Py_BEGIN_ALLOW_THREADS ok = wait_event(key, timeout);
    Py_END_ALLOW_THREADS return PyBool_FromLong(ok);
}

// call_in_main(target, *str_args, timeout=None) -> repr of the result: manygil::call_in_main, the C++
// API, from Python code (a task in a worker). Its TimeoutError says whether it was an interrupt.
PyObject* py_call_in_main(PyObject*, PyObject* args, PyObject* kwargs) {
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n < 1) {
        PyErr_SetString(PyExc_TypeError, "call_in_main(target, *str_args)");
        return nullptr;
    }
    std::vector<std::string> strings;
    for (Py_ssize_t i = 0; i < n; ++i) {
        const char* s = PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, i));
        if (!s) return nullptr;
        strings.emplace_back(s);
    }
    Timeout timeout;
    PyObject* t = kwargs ? PyDict_GetItemString(kwargs, "timeout") : nullptr;
    if (t && t != Py_None) timeout = std::chrono::duration<double>(PyFloat_AsDouble(t));
    Args call_args(strings.begin() + 1, strings.end());
    std::string repr, error;
    bool timed_out = false;
    // The C++ API releases this worker's GIL itself while it waits.
    try {
        repr = call_in_main(strings[0], std::move(call_args), {}, timeout).repr();
    } catch (const TimeoutError& e) {
        timed_out = true;
        error = std::string(e.what()) + (e.interrupted() ? " (interrupted=1)" : " (interrupted=0)");
    } catch (const std::exception& e) {
        error = e.what();
    }
    if (!error.empty()) {
        PyErr_SetString(timed_out ? PyExc_TimeoutError : PyExc_RuntimeError, error.c_str());
        return nullptr;
    }
    return PyUnicode_FromStringAndSize(repr.data(), static_cast<Py_ssize_t>(repr.size()));
}

PyMethodDef g_methods[] = {
    {"call_in_main", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_call_in_main)),
     METH_VARARGS | METH_KEYWORDS, "call_in_main(target, *str_args, timeout=None) -> repr of the result"},
    {"rendezvous", py_rendezvous, METH_VARARGS, "rendezvous(name, parties, timeout) -> bool, holding the GIL"},
    {"set_event", py_set_event, METH_VARARGS, "set_event(name)"},
    {"wait_event", py_wait_event, METH_VARARGS, "wait_event(name, timeout) -> bool"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef_Slot g_slots[] = {
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, nullptr},
};

PyModuleDef g_module = {PyModuleDef_HEAD_INIT, "_manygil_testing", nullptr, 0, g_methods, g_slots,
                        nullptr, nullptr, nullptr};

PyObject* init_testing() { return PyModuleDef_Init(&g_module); }

// Single-phase init: loads in the main interpreter only.
PyModuleDef g_legacy = {PyModuleDef_HEAD_INIT, "_manygil_testing_legacy", nullptr, -1, nullptr, nullptr,
                        nullptr, nullptr, nullptr};

PyObject* init_legacy() { return PyModule_Create(&g_legacy); }

}  // namespace

void set_event(const std::string& name) {
    std::lock_guard lock(g_mu);
    g_events[name] = true;
    g_cv.notify_all();
}

bool wait_event(const std::string& name, double timeout) {
    std::unique_lock lock(g_mu);
    return g_cv.wait_until(lock, deadline_after(timeout), [&] { return g_events[name]; });
}

RuntimeOptions runtime_options() {
    RuntimeOptions options;
    options.python_path = {MANYGIL_TEST_PYTHON_DIR};
    options.builtin_modules = {{"_manygil_testing", init_testing}, {"_manygil_testing_legacy", init_legacy}};
    return options;
}

}  // namespace manygil::testing
