#include "worker_cache.hpp"

#include "manygil/errors.hpp"
#include "codec/payload_python.hpp"
#include "cpython/interpreter_dict.hpp"
#include "cpython/python_error.hpp"
#include "runtime/call_target.hpp"

namespace manygil::ext {

using detail::PyRef;

namespace {

constexpr Py_ssize_t kMaxCachedCallables = 1024;  // distinct lambdas must not grow it forever

// A dict kept in the current interpreter (borrowed).
PyObject* per_interpreter_dict(const char* key) { return detail::per_interpreter(key, [] { return PyDict_New(); }); }

// A helper of the package's worker side ("worker.dumps", ...), as its hooks lend it (borrowed; cached
// per interpreter by package_hook). The extension runs only under the package, which registers them.
PyObject* worker_helper(const char* name) {
    if (PyObject* fn = detail::package_hook(name)) return fn;
    throw PythonError("RuntimeError", std::string("manygil: the package registered no hook ") + name, "");
}

}  // namespace

PyRef resolve_callable(const CallableSpec& spec) {
    const std::string& data = spec.data;
    if (spec.kind == CallableSpec::Kind::Method) {  // a new wrapper of the shared object each time
        PyRef holder = detail::decode_python(spec.holder);
        PyRef fn(PyObject_GetAttrString(holder.get(), data.c_str()));
        if (!fn) detail::throw_python_error();
        return fn;
    }
    bool by_reference = spec.kind == CallableSpec::Kind::Reference;
    bool cacheable = !by_reference || data.rfind("__main__:", 0) != 0;
    PyRef key(by_reference ? PyUnicode_FromStringAndSize(data.data(), static_cast<Py_ssize_t>(data.size()))
                           : PyBytes_FromStringAndSize(data.data(), static_cast<Py_ssize_t>(data.size())));
    if (!key) detail::throw_python_error();
    PyObject* cache = cacheable ? per_interpreter_dict("manygil.callables") : nullptr;
    if (cache) {
        if (PyObject* fn = PyDict_GetItemWithError(cache, key.get())) return PyRef::borrow(fn);
        if (PyErr_Occurred()) detail::throw_python_error();
    }
    PyRef fn;
    if (by_reference) {
        // Defined in the caller's main script: a worker runs the script as __mp_main__ once; the main
        // interpreter (call_in_main) has it as __main__, which manygil names __mp_main__ there too.
        if (data.rfind("__mp_main__:", 0) == 0 && PyInterpreterState_Get() != PyInterpreterState_Main()) {
            PyRef loaded(PyObject_CallNoArgs(worker_helper("worker.ensure_main_module")));
            if (!loaded) detail::throw_python_error();
        }
        fn = detail::resolve_target(data);
    } else {
        fn = PyRef(PyObject_CallOneArg(worker_helper("worker.loads_callable"), key.get()));
        if (!fn) detail::throw_python_error();
    }
    if (cache) {
        if (PyDict_GET_SIZE(cache) >= kMaxCachedCallables) PyDict_Clear(cache);
        if (PyDict_SetItem(cache, key.get(), fn.get()) < 0) detail::throw_python_error();
    }
    return fn;
}

PyObject* worker_pickler() { return worker_helper("worker.dumps"); }

std::optional<std::string> pickle_exception(PyObject* exc) {
    PyObject* dump = nullptr;
    try {
        dump = worker_helper("worker.dump_exception");
    } catch (const std::exception&) {
        return std::nullopt;
    }
    PyRef data(PyObject_CallOneArg(dump, exc));
    if (!data || !PyBytes_Check(data.get())) {
        PyErr_Clear();
        return std::nullopt;
    }
    return std::string(PyBytes_AS_STRING(data.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(data.get())));
}

}  // namespace manygil::ext
