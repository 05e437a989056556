/* See dict_fill.c; listed in private_api.hpp (the table of private CPython APIs), which includes this. */
#pragma once

#include <Python.h>

#ifdef Py_GIL_DISABLED
#error "manygil does not support free-threaded CPython (Py_GIL_DISABLED): build it against a CPython with the GIL (see src/cpython/private_api.hpp)"
#endif

/* The one gate of the fast path: 1 on the CPython versions whose dict layout dict_fill.c was checked
 * against (3.12, 3.13), 0 elsewhere (manygil_fill_dict_copy then always returns 0). */
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000
#define MANYGIL_HAVE_DICT_FILL 1
#else
#define MANYGIL_HAVE_DICT_FILL 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* `dict` is a fresh PyDict_Copy() of a template dict (n str keys, each mapped to None) that nobody
 * else has seen. Puts values[0], values[stride], ... (n of them, new references taken) in place of
 * the Nones, in the template's insertion order, and returns 1. Returns 0, changing nothing, when it
 * cannot prove that `dict` is such a copy, or does not know this CPython's dict layout: the caller
 * then sets the values through PyDict_SetItem() (private_api.hpp: fill_template_copy). Never fails
 * otherwise; no Python error is set. */
int manygil_fill_dict_copy(PyObject *dict, PyObject *const *values, Py_ssize_t n, Py_ssize_t stride);

/* 1 if manygil_fill_dict_copy() can fill a dict on this build (MANYGIL_HAVE_DICT_FILL), 0 if it always
 * refuses: the probe the tests use to expect the fast path only where it exists. */
int manygil_dict_fill_available(void);

#ifdef __cplusplus
}
#endif
