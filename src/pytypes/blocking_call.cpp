#include "pytypes/blocking_call.hpp"

#include "cpython/private_api.hpp"
#include "wait/wake_signal.hpp"

namespace manygil::detail {

bool parse_timeout(PyObject* arg, Timeout& out, TimeoutRule rule) {
    out.reset();
    if (!arg || arg == Py_None) return true;
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred()) return false;
    switch (rule) {
        case TimeoutRule::LockStyle:
            if (seconds == -1.0) return true;
            [[fallthrough]];
        case TimeoutRule::NonNegative:
            if (!(seconds >= 0)) {
                PyErr_Format(PyExc_ValueError, "timeout must be a non-negative number of seconds or None, not %R", arg);
                return false;
            }
            break;
        case TimeoutRule::Positive:
            if (!(seconds > 0) || seconds > 1e9) {
                PyErr_Format(PyExc_ValueError, "timeout must be a positive number of seconds or None, not %R", arg);
                return false;
            }
            break;
    }
    out = std::chrono::duration<double>(seconds);
    return true;
}

bool raise_if_wait_interrupted() {
    WaitInterrupt* interrupt = WaitInterrupt::current();
    if (!interrupt || !interrupt->requested()) return false;
    PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), nullptr);
    PyErr_SetString(PyExc_TimeoutError, "manygil: the call was interrupted while it waited");
    return true;
}

}  // namespace manygil::detail
