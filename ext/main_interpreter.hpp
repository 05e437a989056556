// MainInterpreterScope: makes the main interpreter attached on the calling thread for a scope, from
// any state (already attached to it, attached to another interpreter, or nothing attached). For the
// rare paths that must touch main-interpreter objects from a thread that does not normally do so
// (a future failed by a worker that could not start). Hot paths use the worker's own main state.
#pragma once

#include <Python.h>

#include "cpython/private_api.hpp"

namespace manygil::ext {

class MainInterpreterScope {
public:
    MainInterpreterScope() noexcept {
        PyThreadState* current = PyThreadState_GetUnchecked();
        if (current && PyThreadState_GetInterpreter(current) == PyInterpreterState_Main()) return;
        if (current) previous_ = PyEval_SaveThread();
        temporary_ = PyThreadState_New(PyInterpreterState_Main());
        if (!temporary_) Py_FatalError("manygil: cannot create a thread state in the main interpreter");
        PyEval_RestoreThread(temporary_);
    }
    ~MainInterpreterScope() {
        if (temporary_) {
            PyThreadState_Clear(temporary_);
            PyThreadState_DeleteCurrent();
        }
        if (previous_) PyEval_RestoreThread(previous_);
    }
    MainInterpreterScope(const MainInterpreterScope&) = delete;
    MainInterpreterScope& operator=(const MainInterpreterScope&) = delete;

private:
    PyThreadState* previous_ = nullptr;
    PyThreadState* temporary_ = nullptr;
};

}  // namespace manygil::ext
