/* Filling a copy of a template dict with values, without a hash lookup per key.
 *
 * A payload decoder that meets the same keys again (records, or one dict sent over and over) keeps a
 * template: a dict of those keys, each mapped to None. PyDict_Copy() of it clones its key table with
 * one memcpy; what is left is to put the decoded values in place of the Nones, in insertion order.
 * CPython has no public call for that, and PyDict_SetItem() would redo the lookup that the copy
 * made unnecessary (about a third of decoding a dict of 1,000 items). So this file, alone in the
 * project, reads the dict's internal layout, in C (internal headers are not meant for C++), for the
 * CPython versions whose layout it was checked against, and only for a dict it can prove to be such
 * a fresh copy. Anything else gets 0 and is filled through the public API by the caller. The versions
 * are gated by MANYGIL_HAVE_DICT_FILL (dict_fill.h), listed in private_api.hpp. */
#include "cpython/dict_fill.h" /* MANYGIL_HAVE_DICT_FILL; refuses free-threaded builds */

#if MANYGIL_HAVE_DICT_FILL
#define Py_BUILD_CORE 1
#include "internal/pycore_dict.h"
#undef Py_BUILD_CORE
#endif

int manygil_fill_dict_copy(PyObject *dict, PyObject *const *values, Py_ssize_t n, Py_ssize_t stride)
{
#if MANYGIL_HAVE_DICT_FILL
    if (!PyDict_CheckExact(dict) || n <= 0) {
        return 0;
    }
    PyDictObject *d = (PyDictObject *)dict;
    PyDictKeysObject *keys = d->ma_keys;
    /* A copy of a template: a combined table of str keys, its own (not shared), with exactly n
     * entries, none deleted, every value None. */
    if (d->ma_values != NULL || d->ma_used != n || keys->dk_refcnt != 1 || keys->dk_kind != DICT_KEYS_UNICODE ||
        keys->dk_nentries != n) {
        return 0;
    }
    PyDictUnicodeEntry *entries = DK_UNICODE_ENTRIES(keys);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (entries[i].me_key == NULL || entries[i].me_value != Py_None) {
            return 0;
        }
    }
    int track = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = values[i * stride];
        entries[i].me_value = Py_NewRef(value);
        Py_DECREF(Py_None); /* immortal since 3.12: for symmetry, costs nothing */
        track |= PyObject_IS_GC(value);
    }
    /* What PyDict_SetItem() would have done: a dict holding containers is tracked by the GC. */
    if (track && !PyObject_GC_IsTracked(dict)) {
        PyObject_GC_Track(dict);
    }
    return 1;
#else
    (void)dict;
    (void)values;
    (void)n;
    (void)stride;
    return 0;
#endif
}

int manygil_dict_fill_available(void) { return MANYGIL_HAVE_DICT_FILL; }
