// manygil_fill_dict_copy (src/cpython/dict_fill.c): fills a fresh copy of a template dict in place, and refuses,
// changing nothing, every dict it cannot prove to be one. The fast path exists only where the probe
// (manygil_dict_fill_available) says so; elsewhere every fill is refused and the public path
// (fill_template_copy in private_api.hpp) must give the same dict. Runs in a plain embedded interpreter.
#include <Python.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cpython/dict_fill.h"
#include "cpython/private_api.hpp"

namespace {

class DictFill : public ::testing::Test {
protected:
    static void SetUpTestSuite() { Py_InitializeEx(0); }
    static void TearDownTestSuite() { Py_FinalizeEx(); }

    // {"k0": None, ..., "k<n-1>": None}, built as the decode cache builds its templates.
    static PyObject* template_of(int n) {
        PyObject* d = PyDict_New();
        for (int i = 0; i < n; ++i) {
            PyObject* key = PyUnicode_FromString(("k" + std::to_string(i)).c_str());
            PyDict_SetItem(d, key, Py_None);
            Py_DECREF(key);
        }
        return d;
    }

    static std::vector<PyObject*> ints(int n) {
        std::vector<PyObject*> v;
        for (int i = 0; i < n; ++i) v.push_back(PyLong_FromLong(1000 + i));
        return v;
    }
    static void release(std::vector<PyObject*>& v) {
        for (PyObject* o : v) Py_DECREF(o);
        v.clear();
    }
    static std::vector<PyObject*> keys_of(PyObject* d) {  // borrowed, in insertion order
        std::vector<PyObject*> keys;
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(d, &pos, &k, &v)) keys.push_back(k);
        return keys;
    }
    // Fills `copy` (of `tmpl`) as the decode cache does: in place where the probe says the fast path
    // exists (it must then take it), through the public API elsewhere (after a refusal that changed
    // nothing).
    static void fill(PyObject* copy, PyObject* tmpl, PyObject* const* values, Py_ssize_t n, Py_ssize_t stride) {
        int filled = manygil_fill_dict_copy(copy, values, n, stride);
        ASSERT_EQ(filled, manygil_dict_fill_available());
        if (filled) return;
        ASSERT_TRUE(all_none(copy));
        ASSERT_EQ(manygil::detail::fill_dict_public(copy, keys_of(tmpl).data(), values, n, stride), 0);
    }
    static bool all_none(PyObject* d) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(d, &pos, &k, &v)) {
            if (v != Py_None) return false;
        }
        return true;
    }
};

TEST_F(DictFill, FillsACopyInInsertionOrder) {
    PyObject* tmpl = template_of(50);
    PyObject* copy = PyDict_Copy(tmpl);
    auto values = ints(50);
    fill(copy, tmpl, values.data(), 50, 1);
    for (int i = 0; i < 50; ++i) {
        PyObject* got = PyDict_GetItemString(copy, ("k" + std::to_string(i)).c_str());  // found by hash
        ASSERT_EQ(got, values[static_cast<std::size_t>(i)]) << i;
        EXPECT_EQ(Py_REFCNT(values[static_cast<std::size_t>(i)]), 2);  // ours and the dict's
    }
    EXPECT_TRUE(all_none(tmpl));  // the template is untouched
    // An ordinary dict from then on: it grows, shrinks and compares like one.
    PyObject* extra = PyUnicode_FromString("extra");
    ASSERT_EQ(PyDict_SetItem(copy, extra, Py_True), 0);
    ASSERT_EQ(PyDict_DelItemString(copy, "k7"), 0);
    EXPECT_EQ(PyDict_GET_SIZE(copy), 50);
    EXPECT_EQ(PyDict_GetItem(copy, extra), Py_True);
    Py_DECREF(extra);
    Py_DECREF(copy);
    for (PyObject* v : values) EXPECT_EQ(Py_REFCNT(v), 1);  // the dict released what it took
    release(values);
    Py_DECREF(tmpl);
}

TEST_F(DictFill, TakesEveryStrideThValue) {
    PyObject* tmpl = template_of(4);
    PyObject* copy = PyDict_Copy(tmpl);
    auto items = ints(8);  // key, value, key, value, ... as the decoder lays them out: values at 1, 3, 5, 7
    fill(copy, tmpl, items.data() + 1, 4, 2);
    EXPECT_EQ(PyDict_GetItemString(copy, "k0"), items[1]);
    EXPECT_EQ(PyDict_GetItemString(copy, "k3"), items[7]);
    Py_DECREF(copy);
    release(items);
    Py_DECREF(tmpl);
}

TEST_F(DictFill, ADictHoldingContainersIsTrackedByTheGc) {
    PyObject* tmpl = template_of(3);
    PyObject* scalars = PyDict_Copy(tmpl);
    auto values = ints(3);
    fill(scalars, tmpl, values.data(), 3, 1);
    EXPECT_FALSE(PyObject_GC_IsTracked(scalars));  // as PyDict_SetItem would leave it
    PyObject* containers = PyDict_Copy(tmpl);
    PyObject* list = PyList_New(0);
    PyObject* mixed[] = {values[0], list, values[2]};
    fill(containers, tmpl, mixed, 3, 1);
    EXPECT_TRUE(PyObject_GC_IsTracked(containers));  // a cycle through it can be collected
    Py_DECREF(list);
    Py_DECREF(containers);
    Py_DECREF(scalars);
    release(values);
    Py_DECREF(tmpl);
}

TEST_F(DictFill, RefusesWhatIsNotAFreshCopyAndChangesNothing) {
    auto values = ints(3);
    PyObject* tmpl = template_of(3);

    PyObject* wrong_size = PyDict_Copy(tmpl);
    EXPECT_EQ(manygil_fill_dict_copy(wrong_size, values.data(), 2, 1), 0);
    EXPECT_TRUE(all_none(wrong_size));

    PyObject* not_none = PyDict_Copy(tmpl);
    PyDict_SetItemString(not_none, "k1", values[0]);
    EXPECT_EQ(manygil_fill_dict_copy(not_none, values.data(), 3, 1), 0);
    EXPECT_EQ(PyDict_GetItemString(not_none, "k0"), Py_None);

    PyObject* with_hole = template_of(4);  // a deletion leaves a dead entry behind
    PyDict_DelItemString(with_hole, "k3");
    EXPECT_EQ(manygil_fill_dict_copy(with_hole, values.data(), 3, 1), 0);
    EXPECT_TRUE(all_none(with_hole));

    PyObject* int_keys = PyDict_New();  // general (non-str) keys
    for (long i = 0; i < 3; ++i) {
        PyObject* k = PyLong_FromLong(i);
        PyDict_SetItem(int_keys, k, Py_None);
        Py_DECREF(k);
    }
    EXPECT_EQ(manygil_fill_dict_copy(int_keys, values.data(), 3, 1), 0);
    EXPECT_TRUE(all_none(int_keys));

    // A split table: an instance's __dict__ shares its keys with its class's other instances.
    PyObject* globals = PyDict_New();
    PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
    PyObject* r = PyRun_String(
        "class C:\n"
        "    def __init__(self): self.k0 = self.k1 = self.k2 = None\n"
        "a, b = C(), C()\n"
        "shared = a.__dict__\n",
        Py_file_input, globals, globals);
    ASSERT_NE(r, nullptr);
    Py_DECREF(r);
    PyObject* shared = PyDict_GetItemString(globals, "shared");
    EXPECT_EQ(manygil_fill_dict_copy(shared, values.data(), 3, 1), 0);
    EXPECT_TRUE(all_none(shared));

    PyObject* not_a_dict = PyList_New(0);
    EXPECT_EQ(manygil_fill_dict_copy(not_a_dict, values.data(), 3, 1), 0);
    EXPECT_EQ(manygil_fill_dict_copy(tmpl, values.data(), 0, 1), 0);

    EXPECT_FALSE(PyErr_Occurred());
    for (PyObject* o : {wrong_size, not_none, with_hole, int_keys, globals, not_a_dict, tmpl}) Py_DECREF(o);
    for (PyObject* v : values) EXPECT_EQ(Py_REFCNT(v), 1);  // nothing was taken
    release(values);
}

TEST_F(DictFill, TheProbeSaysAvailableOnTheCPythonVersionsWhoseLayoutItKnows) {
    // Guards against the fast path silently turning off (a version check gone wrong): the versions
    // whose layout dict_fill.c was checked against, 3.12 and 3.13, must take it; others must not.
    const bool known = Py_Version >= 0x030C0000 && Py_Version < 0x030E0000;
    EXPECT_EQ(manygil_dict_fill_available(), known ? 1 : 0);
    EXPECT_EQ(manygil::detail::dict_fill_available(), known);
    PyObject* tmpl = template_of(2);
    PyObject* copy = PyDict_Copy(tmpl);
    auto values = ints(2);
    EXPECT_EQ(manygil_fill_dict_copy(copy, values.data(), 2, 1), manygil_dict_fill_available());
    if (!manygil_dict_fill_available()) {
        EXPECT_TRUE(all_none(copy));
    }
    Py_DECREF(copy);
    release(values);
    Py_DECREF(tmpl);
}

TEST_F(DictFill, ThePublicPathGivesTheSameDictOnEveryVersion) {
    // fill_template_copy (what the decode cache calls) and the public path alone give equal dicts, in
    // the same order, holding the same references, tracked alike: the fast path changes speed only.
    PyObject* tmpl = template_of(20);
    std::vector<PyObject*> keys = keys_of(tmpl);
    auto values = ints(20);
    Py_DECREF(values[5]);
    values[5] = PyList_New(0);  // one container: the dict must end up tracked by the GC
    PyObject* via_fill = PyDict_Copy(tmpl);
    PyObject* via_public = PyDict_Copy(tmpl);
    ASSERT_EQ(manygil::detail::fill_template_copy(via_fill, keys.data(), values.data(), 20, 1), 0);
    ASSERT_EQ(manygil::detail::fill_dict_public(via_public, keys.data(), values.data(), 20, 1), 0);
    EXPECT_EQ(PyObject_RichCompareBool(via_fill, via_public, Py_EQ), 1);
    std::vector<PyObject*> fill_keys = keys_of(via_fill), public_keys = keys_of(via_public);
    EXPECT_EQ(fill_keys, public_keys);
    EXPECT_EQ(fill_keys, keys);
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(PyDict_GetItem(via_fill, keys[static_cast<std::size_t>(i)]), values[static_cast<std::size_t>(i)]);
        EXPECT_EQ(Py_REFCNT(values[static_cast<std::size_t>(i)]), 3);  // ours and each dict's
    }
    EXPECT_TRUE(PyObject_GC_IsTracked(via_fill));
    EXPECT_TRUE(PyObject_GC_IsTracked(via_public));
    Py_DECREF(via_fill);
    Py_DECREF(via_public);
    for (PyObject* v : values) EXPECT_EQ(Py_REFCNT(v), 1);
    release(values);
    Py_DECREF(tmpl);
}

}  // namespace
