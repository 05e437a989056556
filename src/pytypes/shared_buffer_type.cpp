#include "pytypes/shared_buffer_type.hpp"

#include <new>

#include "pytypes/handle_type.hpp"

namespace manygil::detail {

namespace {

using BufferType = HandleType<SharedBuffer>;

PyObject* buffer_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    Py_ssize_t nbytes;
    static const char* kw[] = {"nbytes", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n:SharedBuffer", const_cast<char**>(kw), &nbytes)) return nullptr;
    if (nbytes < 0) return PyErr_Format(PyExc_ValueError, "SharedBuffer size must be >= 0, not %zd", nbytes);
    try {
        return BufferType::make(type, SharedBuffer(static_cast<std::size_t>(nbytes)));
    } catch (const std::bad_alloc&) {
        return PyErr_NoMemory();
    }
}

PyObject* buffer_from_bytes(PyObject* cls, PyObject* data) {
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return nullptr;
    PyObject* result = nullptr;
    try {
        result = BufferType::make(reinterpret_cast<PyTypeObject*>(cls),
                                  SharedBuffer::from_bytes({static_cast<const char*>(view.buf),
                                                            static_cast<std::size_t>(view.len)}));
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    }
    PyBuffer_Release(&view);
    return result;
}

int buffer_getbuffer(PyObject* op, Py_buffer* view, int flags) {
    const SharedBuffer& b = BufferType::of(op);
    // The size never changes and the view holds this wrapper, which holds the block: no dangling view.
    return PyBuffer_FillInfo(view, op, b.data(), static_cast<Py_ssize_t>(b.size()), /*readonly=*/0, flags);
}

Py_ssize_t buffer_length(PyObject* op) { return static_cast<Py_ssize_t>(BufferType::of(op).size()); }

PyObject* buffer_repr(PyObject* op) {
    const SharedBuffer& b = BufferType::of(op);
    return PyUnicode_FromFormat("<manygil.SharedBuffer %zu bytes at %p>", b.size(), static_cast<void*>(b.data()));
}

constexpr char kNotPicklable[] =
    "a SharedBuffer cannot be pickled: it travels by reference to manygil workers and channels; "
    "use bytes(buffer) for a copy";

PyObject* buffer_get_nbytes(PyObject* op, void*) { return PyLong_FromSize_t(BufferType::of(op).size()); }

PyMethodDef buffer_methods[] = {
    {"from_bytes", buffer_from_bytes, METH_O | METH_CLASS,
     "SharedBuffer.from_bytes(data): a new buffer holding a copy of any bytes-like object"},
    {"__reduce__", refuse_pickle<kNotPicklable>, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef buffer_getset[] = {
    {"nbytes", buffer_get_nbytes, nullptr, "size in bytes (fixed)", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot buffer_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(buffer_new)},
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

constexpr BufferType kBufferType{"manygil.SharedBuffer", buffer_slots};

}  // namespace

PyTypeObject* buffer_type() { return kBufferType.type(); }

PyRef wrap_buffer(const SharedBuffer& buffer) { return kBufferType.wrap(buffer); }

const SharedBuffer* unwrap_buffer(PyObject* obj) { return kBufferType.unwrap(obj); }

}  // namespace manygil::detail
