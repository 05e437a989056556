#include "pytypes/shared_buffer_type.hpp"

#include <new>

#include "cpython/interpreter_dict.hpp"
#include "cpython/python_error.hpp"

namespace manygil::detail {

namespace {

constexpr const char* kTypeKey = "manygil.SharedBuffer";

struct BufferObject {
    PyObject_HEAD
    SharedBuffer buffer;  // placement-constructed in tp_new, destroyed in tp_dealloc
};

BufferObject* as_buffer_object(PyObject* op) { return reinterpret_cast<BufferObject*>(op); }

PyObject* new_wrapper(PyTypeObject* type, SharedBuffer buffer) {
    PyObject* self = type->tp_alloc(type, 0);
    if (!self) return nullptr;
    new (&as_buffer_object(self)->buffer) SharedBuffer(std::move(buffer));
    return self;
}

PyObject* buffer_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    Py_ssize_t nbytes;
    static const char* kw[] = {"nbytes", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n:SharedBuffer", const_cast<char**>(kw), &nbytes)) return nullptr;
    if (nbytes < 0) return PyErr_Format(PyExc_ValueError, "SharedBuffer size must be >= 0, not %zd", nbytes);
    try {
        return new_wrapper(type, SharedBuffer(static_cast<std::size_t>(nbytes)));
    } catch (const std::bad_alloc&) {
        return PyErr_NoMemory();
    }
}

PyObject* buffer_from_bytes(PyObject* cls, PyObject* data) {
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return nullptr;
    PyObject* result = nullptr;
    try {
        result = new_wrapper(reinterpret_cast<PyTypeObject*>(cls),
                             SharedBuffer::from_bytes({static_cast<const char*>(view.buf),
                                                       static_cast<std::size_t>(view.len)}));
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    }
    PyBuffer_Release(&view);
    return result;
}

void buffer_dealloc(PyObject* op) {
    PyTypeObject* type = Py_TYPE(op);
    as_buffer_object(op)->buffer.~SharedBuffer();  // frees the block if this was its last holder
    type->tp_free(op);
    Py_DECREF(type);
}

int buffer_getbuffer(PyObject* op, Py_buffer* view, int flags) {
    const SharedBuffer& b = as_buffer_object(op)->buffer;
    // The size never changes and the view holds this wrapper, which holds the block: no dangling view.
    return PyBuffer_FillInfo(view, op, b.data(), static_cast<Py_ssize_t>(b.size()), /*readonly=*/0, flags);
}

Py_ssize_t buffer_length(PyObject* op) { return static_cast<Py_ssize_t>(as_buffer_object(op)->buffer.size()); }

PyObject* buffer_repr(PyObject* op) {
    const SharedBuffer& b = as_buffer_object(op)->buffer;
    return PyUnicode_FromFormat("<manygil.SharedBuffer %zu bytes at %p>", b.size(), static_cast<void*>(b.data()));
}

PyObject* buffer_reduce(PyObject*, PyObject*) {
    PyErr_SetString(PyExc_TypeError,
                    "a SharedBuffer cannot be pickled: it travels by reference to manygil workers and channels; "
                    "use bytes(buffer) for a copy");
    return nullptr;
}

PyObject* buffer_get_nbytes(PyObject* op, void*) { return PyLong_FromSize_t(as_buffer_object(op)->buffer.size()); }

PyMethodDef buffer_methods[] = {
    {"from_bytes", buffer_from_bytes, METH_O | METH_CLASS,
     "SharedBuffer.from_bytes(data): a new buffer holding a copy of any bytes-like object"},
    {"__reduce__", buffer_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef buffer_getset[] = {
    {"nbytes", buffer_get_nbytes, nullptr, "size in bytes (fixed)", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot buffer_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(buffer_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(buffer_dealloc)},
    {Py_tp_repr, reinterpret_cast<void*>(buffer_repr)},
    {Py_tp_methods, buffer_methods},
    {Py_tp_getset, buffer_getset},
    {Py_bf_getbuffer, reinterpret_cast<void*>(buffer_getbuffer)},
    {Py_sq_length, reinterpret_cast<void*>(buffer_length)},
    {Py_tp_doc, const_cast<char*>(
                    "SharedBuffer(nbytes): zero-filled memory shared by reference between interpreters.\n\n"
                    "Writable through the buffer protocol (memoryview(buf), .cast('d'), slicing, bytes(buf)).\n"
                    "Passing it to a task, returning it or sending it never copies it; the memory is freed\n"
                    "when the last holder in any interpreter lets go. Its size never changes.")},
    {0, nullptr},
};

PyType_Spec buffer_spec = {
    "manygil.SharedBuffer", sizeof(BufferObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, buffer_slots,
};

}  // namespace

PyTypeObject* buffer_type() {
    return reinterpret_cast<PyTypeObject*>(per_interpreter(kTypeKey, [] { return PyType_FromSpec(&buffer_spec); }));
}

PyRef wrap_buffer(const SharedBuffer& buffer) {
    PyRef wrapper(new_wrapper(buffer_type(), buffer));
    if (!wrapper) throw_python_error();
    return wrapper;
}

const SharedBuffer* unwrap_buffer(PyObject* obj) {
    if (Py_TYPE(obj) != buffer_type()) return nullptr;
    return &as_buffer_object(obj)->buffer;
}

}  // namespace manygil::detail
