// The few C-API differences between the CPython versions manygil supports (3.12+).
#pragma once

#include <Python.h>

#if PY_VERSION_HEX < 0x030C0000
#error "manygil needs CPython >= 3.12 (per-interpreter GIL, PEP 684)"
#endif

#if PY_VERSION_HEX < 0x030D0000
// Public from 3.13 on; the same function under its 3.12 name.
inline PyThreadState* PyThreadState_GetUnchecked() { return _PyThreadState_UncheckedGet(); }
#endif
