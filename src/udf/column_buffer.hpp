// Read-only typed memoryviews over memory that C++ keeps alive: batch mode's argument columns, handed
// to the function in place (no copy of the producer's buffers).
//
// Ownership: the view's exporter holds a reference to `owner`; so does every slice or cast of the view
// that the function keeps, for as long as it lives (CPython's managed buffer keeps the exporter). A
// view kept past the call therefore keeps the memory, never dangles, and drops `owner` later, on that
// worker's thread with its interpreter attached: `owner`'s deleter must be safe there.
#pragma once

#include <Python.h>

#include <cstddef>
#include <memory>

#include "cpython/py_ref.hpp"

namespace manygil::udf {

// A new memoryview of `items` values of struct format `format` ('b', 'h', 'i', 'q', their unsigned
// capitals, 'f', 'd', '?') of `itemsize` bytes each, starting at `data`, which must stay valid while
// `owner` lives. Writing through it is refused (BufferError). The calling interpreter must be
// attached; throws PythonError when Python fails.
detail::PyRef owned_memoryview(const void* data, Py_ssize_t items, char format, Py_ssize_t itemsize,
                               std::shared_ptr<const void> owner);

}  // namespace manygil::udf
