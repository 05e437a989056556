// The one shape of manygil's Python types over shared C++ objects (SharedBuffer, Channel, Lock, Event,
// Semaphore, Barrier): an instance holds a handle (a copyable value that shares the object through
// a shared_ptr), and the type is a heap type created once per interpreter.
//
// The contract:
// - The GIL of the current interpreter is held in every function here (and in the slots they serve).
// - One type per (Handle, interpreter): type() creates it from the spec on first use in an interpreter
//   and caches it in that interpreter's dict under the spec's name ("manygil.X", which also makes its
//   __module__ "manygil"); it ends with the interpreter. A wrapper never leaves the interpreter that
//   made it, and unwrap() takes only instances of the current interpreter's type: a wrapper of
//   interpreter A is not unwrapped in B (B's type is another object).
// - Ownership: each wrapper owns one copy of the handle, constructed in place by make() (from tp_new
//   or wrap()) and destroyed only by dealloc(), the type's tp_dealloc, which runs in the interpreter
//   that made the wrapper. That copy is one reference to the shared object; the object itself is
//   freed by whichever holder, in any interpreter or in C++, lets go last.
// - The types are neither GC-tracked (a handle holds no Python object) nor weak-referenceable nor
//   subclassable, and are immutable; an instance holds a strong reference to its (heap) type.
// - Pickling is refused with the type's own message (refuse_pickle): these values travel by
//   reference, to workers and through channels, never by copy: the codec writes them as handles
//   through the registry the types fill (codec/crossing.hpp, pytypes/crossing_types.hpp).
#pragma once

#include <Python.h>

#include <cstddef>
#include <new>
#include <utility>

#include "cpython/interpreter_dict.hpp"
#include "cpython/py_ref.hpp"
#include "cpython/python_error.hpp"
#include "pytypes/crossing_types.hpp"

namespace manygil::detail {

template <class Handle>
struct HandleObject {
    PyObject_HEAD
    Handle handle;  // constructed by HandleType::make, destroyed by HandleType::dealloc
};

template <class Handle>
class HandleType {
public:
    // name: "manygil.X"; slots: the type's own (tp_new, methods, ...), ending in {0, nullptr}, without
    // Py_tp_dealloc (dealloc() below is added: it alone destroys the handle) and at most kMaxSlots.
    constexpr HandleType(const char* name, PyType_Slot* slots) : name_(name), slots_(slots) {}

    static constexpr std::size_t kMaxSlots = 14;

    static Handle& of(PyObject* op) { return reinterpret_cast<HandleObject<Handle>*>(op)->handle; }

    // A new instance of type (this type, from its tp_new, or type()) owning handle: a new reference,
    // or null with a Python error.
    static PyObject* make(PyTypeObject* type, Handle handle) {
        PyObject* self = type->tp_alloc(type, 0);
        if (self) new (&of(self)) Handle(std::move(handle));
        return self;
    }

    // tp_richcompare for types whose == is "the same shared object" (hash: PyObject_HashNotImplemented).
    static PyObject* richcompare(PyObject* a, PyObject* b, int op) {
        if (Py_TYPE(a) != Py_TYPE(b) || (op != Py_EQ && op != Py_NE)) Py_RETURN_NOTIMPLEMENTED;
        bool same = of(a) == of(b);
        return PyBool_FromLong(op == Py_EQ ? same : !same);
    }

    // This type in the current interpreter (borrowed). Throws PythonError.
    PyTypeObject* type() const {
        return reinterpret_cast<PyTypeObject*>(per_interpreter(name_, [this]() -> PyObject* {
            register_crossing_types();  // its objects can cross from now on (codec/crossing.hpp)
            PyType_Slot slots[kMaxSlots + 2];
            std::size_t n = 0;
            for (const PyType_Slot* s = slots_; s->slot; ++s) {
                if (n == kMaxSlots) return PyErr_Format(PyExc_SystemError, "%s: too many slots", name_);
                slots[n++] = *s;
            }
            slots[n++] = {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)};  // last: a later slot wins
            slots[n] = {0, nullptr};
            PyType_Spec spec = {name_, sizeof(HandleObject<Handle>), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, slots};
            return PyType_FromSpec(&spec);  // copies the name and doc; keeps no pointer to spec or slots
        }));
    }

    // A new wrapper of the current interpreter sharing handle's object. Throws PythonError.
    PyRef wrap(const Handle& handle) const {
        PyRef wrapper(make(type(), handle));
        if (!wrapper) throw_python_error();
        return wrapper;
    }

    // The handle inside obj if obj is an instance of this type of the current interpreter, else null.
    const Handle* unwrap(PyObject* obj) const { return Py_TYPE(obj) == type() ? &of(obj) : nullptr; }

private:
    static void dealloc(PyObject* op) {
        PyTypeObject* type = Py_TYPE(op);
        of(op).~Handle();  // frees the shared object if this was its last holder
        type->tp_free(op);
        Py_DECREF(type);
    }

    const char* name_;
    PyType_Slot* slots_;
};

// __reduce__ (METH_NOARGS) of a type that cannot be pickled: a TypeError with Message.
template <const char* Message>
PyObject* refuse_pickle(PyObject*, PyObject*) {
    PyErr_SetString(PyExc_TypeError, Message);
    return nullptr;
}

}  // namespace manygil::detail
