// Large task results are decoded by the thread that asks for them (Future.result(), normally the
// caller's), not by the worker that settles the Future. The objects are then built on the core that
// will use and free them; built on the worker's core, every one of them would later move across
// cores (for a list of 10,000 floats that cost more than the decoding itself).
//
// The Future holds a capsule with the payload until then; manygil._pool._Future.result() swaps it
// for the decoded object (once). Small results are decoded at once: for them a second step costs
// more than it saves.
#pragma once

#include <Python.h>

#include "codec/payload_python.hpp"

namespace manygil::ext {

// Results at least this large (payload bytes) are decoded on demand.
inline constexpr std::size_t kDeferredResultBytes = 4 * 1024;

// A capsule owning the payload (main interpreter). New reference, or null with an error set.
PyObject* defer_result(detail::Payload payload);

// _core._decode_result(capsule) -> the object; raises NotShareableError if it cannot be rebuilt.
PyObject* py_decode_result(PyObject* module, PyObject* capsule);

}  // namespace manygil::ext
