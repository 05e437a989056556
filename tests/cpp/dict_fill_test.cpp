// manygil_fill_dict_copy (src/cpython/dict_fill.c): fills a fresh copy of a template dict in place, and refuses,
// changing nothing, every dict it cannot prove to be one. Runs in a plain embedded interpreter.
#include <Python.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cpython/dict_fill.h"

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
    ASSERT_EQ(manygil_fill_dict_copy(copy, values.data(), 50, 1), 1);
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
    ASSERT_EQ(manygil_fill_dict_copy(copy, items.data() + 1, 4, 2), 1);
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
    ASSERT_EQ(manygil_fill_dict_copy(scalars, values.data(), 3, 1), 1);
    EXPECT_FALSE(PyObject_GC_IsTracked(scalars));  // as PyDict_SetItem would leave it
    PyObject* containers = PyDict_Copy(tmpl);
    PyObject* list = PyList_New(0);
    PyObject* mixed[] = {values[0], list, values[2]};
    ASSERT_EQ(manygil_fill_dict_copy(containers, mixed, 3, 1), 1);
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

TEST_F(DictFill, FillsOnTheCPythonVersionsWhoseLayoutItKnows) {
    // Guards against the fast path silently turning off (e.g. a version check gone wrong): the
    // versions the project builds against must take it.
    PyObject* tmpl = template_of(2);
    PyObject* copy = PyDict_Copy(tmpl);
    auto values = ints(2);
    int filled = manygil_fill_dict_copy(copy, values.data(), 2, 1);
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
    EXPECT_EQ(filled, 1);
#else
    EXPECT_EQ(filled, 0);
#endif
    if (!filled) {
        for (int i = 0; i < 2; ++i) PyDict_SetItemString(copy, ("k" + std::to_string(i)).c_str(), values[i]);
    }
    Py_DECREF(copy);
    release(values);
    Py_DECREF(tmpl);
}

}  // namespace
