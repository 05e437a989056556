// PyRef: an owned (strong) reference to a PyObject, released on scope exit. Only ever used on the
// thread that holds the owning interpreter's GIL; a PyRef never crosses interpreters.
#pragma once

#include <Python.h>

#include <utility>

namespace manygil::detail {

class PyRef {
public:
    PyRef() noexcept = default;
    // Takes ownership of a new reference (may be null, e.g. the result of a failed call).
    explicit PyRef(PyObject* owned) noexcept : p_(owned) {}
    static PyRef borrow(PyObject* borrowed) noexcept { return PyRef(Py_XNewRef(borrowed)); }

    PyRef(PyRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    PyRef& operator=(PyRef&& o) noexcept {
        if (this != &o) {
            Py_XDECREF(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    PyRef(const PyRef&) = delete;
    PyRef& operator=(const PyRef&) = delete;
    ~PyRef() { Py_XDECREF(p_); }

    PyObject* get() const noexcept { return p_; }
    PyObject* release() noexcept { return std::exchange(p_, nullptr); }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    PyObject* p_ = nullptr;
};

}  // namespace manygil::detail
