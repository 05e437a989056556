// Ownership checks. Every Python object belongs to the interpreter that created it, and may be
// touched (its reference count included) only by a thread that has that interpreter attached; an
// object released under another interpreter's GIL corrupts both interpreters' state, usually long
// after the fact. manygil's rule is that Python objects never cross: what crosses is C++ data
// (payloads, handles), and each object is released where it was made (docs/architecture.md lists
// who owns what). These checks state the rule at the points where it could break, and stop the
// process with a message naming the rule rather than let it corrupt memory silently.
//
// Always compiled in: each is a thread-local read and a compare, next to work that costs far more.
#pragma once

#include <Python.h>

#include "cpython/private_api.hpp"

namespace manygil::detail {

// Stops the process (Py_FatalError): "manygil: ownership rule broken: <rule>".
[[noreturn]] void ownership_violation(const char* rule) noexcept;

// The interpreter attached on this thread, or null.
inline PyInterpreterState* attached_interpreter() noexcept {
    PyThreadState* tstate = PyThreadState_GetUnchecked();
    return tstate ? PyThreadState_GetInterpreter(tstate) : nullptr;
}

// `owner` must be attached on this thread (its GIL held).
inline void expect_attached(PyInterpreterState* owner, const char* rule) noexcept {
    if (!owner || attached_interpreter() != owner) ownership_violation(rule);
}

// The main interpreter must be attached on this thread.
inline void expect_main_attached(const char* rule) noexcept { expect_attached(PyInterpreterState_Main(), rule); }

// No interpreter may be attached on this thread (it must not hold any GIL).
inline void expect_detached(const char* rule) noexcept {
    if (PyThreadState_GetUnchecked()) ownership_violation(rule);
}

}  // namespace manygil::detail
