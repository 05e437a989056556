#include "task_handle.hpp"

#include <algorithm>
#include <chrono>
#include <new>


namespace manygil::ext {

namespace {

struct TaskHandleObject {
    PyObject_HEAD
    std::shared_ptr<detail::TaskState> state;
};

void handle_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    reinterpret_cast<TaskHandleObject*>(self)->state.~shared_ptr();
    type->tp_free(self);
    Py_DECREF(type);  // heap type
}

PyObject* handle_cancel(PyObject* self, PyObject*) {
    return PyBool_FromLong(reinterpret_cast<TaskHandleObject*>(self)->state->cancel());
}

PyObject* handle_started(PyObject* self, PyObject*) {
    return PyBool_FromLong(reinterpret_cast<TaskHandleObject*>(self)->state->started());
}

// interrupt() -> bool: interrupts the task's call if it runs now (or as soon as it starts).
PyObject* handle_interrupt(PyObject* self, PyObject*) {
    detail::TaskState& state = *reinterpret_cast<TaskHandleObject*>(self)->state;
    try {
        return PyBool_FromLong(state.interrupt("manygil: the task was interrupted (Future.interrupt())"));
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
}

// spin(timeout: float | None) -> bool: watches, without the GIL, for the task's outcome for as long as
// its pool's WaitEstimate suggests (or the timeout, if shorter); True if it was delivered. Future.result() calls it before
// sleeping on its condition: the worker that settles the Future then finds the caller's GIL free, and
// the caller needs no wake-up from the kernel (spin_wait.hpp).
PyObject* handle_spin(PyObject* self, PyObject* arg) {
    using Clock = detail::TaskState::Clock;
    const detail::TaskState& state = *reinterpret_cast<TaskHandleObject*>(self)->state;
    std::optional<Clock::duration> cap;
    if (arg != Py_None) {
        double seconds = PyFloat_AsDouble(arg);
        if (seconds == -1.0 && PyErr_Occurred()) return nullptr;
        cap = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::clamp(seconds, 0.0, 1.0)));
    }
    if (state.delivered()) Py_RETURN_TRUE;
    Clock::duration budget = state.spin_budget(cap);
    if (budget <= Clock::duration::zero()) Py_RETURN_FALSE;
    bool delivered;
    Py_BEGIN_ALLOW_THREADS
    delivered = state.spin_until_delivered(budget);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(delivered);
}

PyMethodDef handle_methods[] = {
    {"spin", handle_spin, METH_O,
     "spin(timeout) -> bool: wait briefly, without the GIL, for the task's outcome; True once delivered."},
    {"interrupt", handle_interrupt, METH_NOARGS,
     "interrupt() -> bool: stop the task's running call (TimeoutError at its next bytecode); True if it runs."},
    {"started", handle_started, METH_NOARGS, "started() -> bool: True once a worker has started the task."},
    {"cancel", handle_cancel, METH_NOARGS,
     "cancel() -> bool: True if the task will never run (it had not started)."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot handle_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(handle_dealloc)},
    {Py_tp_methods, handle_methods},
    {Py_tp_doc, const_cast<char*>("The cancellation state of one submitted task.")},
    {0, nullptr},
};

}  // namespace

PyType_Spec task_handle_spec = {
    "manygil._core.TaskHandle", sizeof(TaskHandleObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION, handle_slots,
};

PyObject* new_task_handle(PyTypeObject* type, std::shared_ptr<detail::TaskState> state) {
    PyObject* self = type->tp_alloc(type, 0);
    if (!self) return nullptr;
    new (&reinterpret_cast<TaskHandleObject*>(self)->state) std::shared_ptr<detail::TaskState>(std::move(state));
    return self;
}

}  // namespace manygil::ext
