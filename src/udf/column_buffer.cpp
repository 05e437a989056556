#include "udf/column_buffer.hpp"

#include <new>
#include <utility>

#include "cpython/interpreter_dict.hpp"
#include "cpython/python_error.hpp"

namespace manygil::udf {

namespace {

// manygil.udf.ColumnBuffer: the exporter behind owned_memoryview, one heap type per interpreter.
struct ColumnBufferObject {
    PyObject_HEAD
    std::shared_ptr<const void> owner;  // constructed in place after tp_alloc, destroyed in dealloc
    const void* data;
    Py_ssize_t items, itemsize;  // itemsize doubles as the one stride
    char format[2];
};

ColumnBufferObject* as_buffer(PyObject* op) { return reinterpret_cast<ColumnBufferObject*>(op); }

int column_buffer_get(PyObject* op, Py_buffer* view, int flags) {
    ColumnBufferObject* self = as_buffer(op);
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "an argument column is read-only (it is the query's own memory)");
        view->obj = nullptr;
        return -1;
    }
    view->buf = const_cast<void*>(self->data);  // read-only: PyBUF_WRITABLE was refused above
    view->obj = Py_NewRef(op);
    view->len = self->items * self->itemsize;
    view->readonly = 1;
    view->itemsize = self->itemsize;
    view->format = (flags & PyBUF_FORMAT) ? self->format : nullptr;
    view->ndim = 1;
    view->shape = (flags & PyBUF_ND) ? &self->items : nullptr;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &self->itemsize : nullptr;
    view->suboffsets = nullptr;
    view->internal = nullptr;
    return 0;
}

void column_buffer_dealloc(PyObject* op) {
    PyTypeObject* type = Py_TYPE(op);
    as_buffer(op)->owner.~shared_ptr();  // may run the owner's deleter, here, in this worker
    type->tp_free(op);
    Py_DECREF(type);
}

PyType_Slot slots[] = {
    {Py_bf_getbuffer, reinterpret_cast<void*>(column_buffer_get)},
    {Py_tp_dealloc, reinterpret_cast<void*>(column_buffer_dealloc)},
    {Py_tp_doc, const_cast<char*>("The read-only memory of one argument column (batch-mode UDFs)")},
    {0, nullptr},
};

PyType_Spec spec = {"manygil.udf.ColumnBuffer", sizeof(ColumnBufferObject), 0,
                    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION, slots};

}  // namespace

detail::PyRef owned_memoryview(const void* data, Py_ssize_t items, char format, Py_ssize_t itemsize,
                               std::shared_ptr<const void> owner) {
    auto* type = reinterpret_cast<PyTypeObject*>(
        detail::per_interpreter("manygil.udf.ColumnBuffer", [] { return PyType_FromSpec(&spec); }));
    detail::PyRef exporter(type->tp_alloc(type, 0));
    if (!exporter) detail::throw_python_error();
    ColumnBufferObject* self = as_buffer(exporter.get());
    new (&self->owner) std::shared_ptr<const void>(std::move(owner));
    static const char kEmpty = 0;
    self->data = items > 0 ? data : &kEmpty;  // a view of nothing still needs an address
    self->items = items;
    self->itemsize = itemsize;
    self->format[0] = format;
    self->format[1] = '\0';
    detail::PyRef view(PyMemoryView_FromObject(exporter.get()));
    if (!view) detail::throw_python_error();
    return view;
}

}  // namespace manygil::udf
