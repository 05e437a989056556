/* See dict_fill.c. */
#pragma once

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `dict` is a fresh PyDict_Copy() of a template dict (n str keys, each mapped to None) that nobody
 * else has seen. Puts values[0], values[stride], ... (n of them, new references taken) in place of
 * the Nones, in the template's insertion order, and returns 1. Returns 0, changing nothing, when it
 * cannot prove that `dict` is such a copy, or does not know this CPython's dict layout: the caller
 * then sets the values through PyDict_SetItem(). Never fails otherwise; no Python error is set. */
int manygil_fill_dict_copy(PyObject *dict, PyObject *const *values, Py_ssize_t n, Py_ssize_t stride);

#ifdef __cplusplus
}
#endif
