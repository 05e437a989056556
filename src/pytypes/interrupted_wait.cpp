#include "pytypes/interrupted_wait.hpp"

#include <Python.h>

#include "cpython/private_api.hpp"
#include "wait/wake_signal.hpp"

namespace manygil::detail {

bool raise_if_wait_interrupted() {
    WaitInterrupt* interrupt = WaitInterrupt::current();
    if (!interrupt || !interrupt->requested()) return false;
    PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), nullptr);
    PyErr_SetString(PyExc_TimeoutError, "manygil: the call was interrupted while it waited");
    return true;
}

}  // namespace manygil::detail
