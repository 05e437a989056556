#include "cpython/interpreter_dict.hpp"

namespace manygil::detail {

namespace {
constexpr const char* kProviderKey = "manygil.package_hooks";
constexpr const char* kCacheKey = "manygil.package_hook_cache";
}  // namespace

PyObject* package_hook(const char* name) {
    PyObject* state = PyInterpreterState_GetDict(PyInterpreterState_Get());
    if (!state) return nullptr;
    PyObject* provider = PyDict_GetItemString(state, kProviderKey);
    if (!provider) return nullptr;  // no package here (a C++ host): the caller's fallback
    PyObject* cache = per_interpreter(kCacheKey, [] { return PyDict_New(); });
    if (PyObject* hook = PyDict_GetItemString(cache, name)) return hook;
    PyRef hook(PyObject_CallFunction(provider, "s", name));
    if (!hook || PyDict_SetItemString(cache, name, hook.get()) < 0) throw_python_error();
    return hook.get();  // the cache holds it
}

PyObject* raise_not_shareable(const ConversionError& e) {
    PyObject* factory = nullptr;
    try {
        factory = package_hook("errors.not_shareable");
    } catch (const std::exception&) {
        PyErr_Clear();
    }
    PyRef exc(factory ? PyObject_CallFunction(factory, "sss", e.type_name().c_str(), e.path().c_str(),
                                              e.reason().c_str())
                      : nullptr);
    if (!exc) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, e.what());
        return nullptr;
    }
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.get())), exc.get());
    return nullptr;
}

void set_package_hooks(PyObject* provider) {
    PyObject* state = PyInterpreterState_GetDict(PyInterpreterState_Get());
    if (!state) throw PythonError("SystemError", "manygil: the interpreter has no state dict", "");
    if (PyDict_SetItemString(state, kProviderKey, provider) < 0) throw_python_error();
    if (PyDict_DelItemString(state, kCacheKey) < 0) PyErr_Clear();  // absent: nothing to forget
}

}  // namespace manygil::detail
