#include "task_state.hpp"

#include <new>

namespace manygil::ext {

namespace {

struct TaskHandleObject {
    PyObject_HEAD
    std::shared_ptr<TaskState> state;
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
    TaskState& state = *reinterpret_cast<TaskHandleObject*>(self)->state;
    const char* reason = "manygil: the task was interrupted (Future.interrupt())";
    if (!state.interrupt_requested()) state.request_interrupt(reason);
    bool running = state.started();
    if (state.interrupter) {
        try {
            state.interrupter(reason);  // its call may not have started yet: then the task asks itself
        } catch (const std::exception& e) {
            PyErr_SetString(PyExc_RuntimeError, e.what());
            return nullptr;
        }
    }
    return PyBool_FromLong(running);
}

PyMethodDef handle_methods[] = {
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

PyObject* new_task_handle(PyTypeObject* type, std::shared_ptr<TaskState> state) {
    PyObject* self = type->tp_alloc(type, 0);
    if (!self) return nullptr;
    new (&reinterpret_cast<TaskHandleObject*>(self)->state) std::shared_ptr<TaskState>(std::move(state));
    return self;
}

}  // namespace manygil::ext
