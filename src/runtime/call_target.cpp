#include "runtime/call_target.hpp"

#include <string>

#include "manygil/errors.hpp"
#include "codec/convert.hpp"
#include "cpython/python_error.hpp"
#include "runtime/interruptible_call.hpp"
#include "runtime/task_state.hpp"

namespace manygil::detail {

// Failures name the target and say why.
PyRef resolve_target(std::string_view target) {
    check_target(target);
    auto colon = target.find(':');
    std::string module(target.substr(0, colon));
    std::string qualname(target.substr(colon + 1));

    PyRef obj(PyImport_ImportModule(module.c_str()));
    if (!obj) throw UnknownFunctionError(std::string(target), fetch_python_error().what());
    std::size_t start = 0;
    while (start <= qualname.size()) {
        std::size_t dot = qualname.find('.', start);
        if (dot == std::string::npos) dot = qualname.size();
        std::string part = qualname.substr(start, dot - start);
        PyRef next(PyObject_GetAttrString(obj.get(), part.c_str()));
        if (!next) throw UnknownFunctionError(std::string(target), fetch_python_error().what());
        obj = std::move(next);
        start = dot + 1;
    }
    if (!PyCallable_Check(obj.get())) {
        throw UnknownFunctionError(std::string(target),
                                   "'" + type_qualname(Py_TYPE(obj.get())) + "' object is not callable");
    }
    return obj;
}

void check_target(std::string_view target) {
    auto colon = target.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == target.size() ||
        target.find(':', colon + 1) != std::string_view::npos) {
        throw InvalidArgument("target '" + std::string(target) +
                              "' is not of the form 'module:function' (e.g. 'json:dumps', '__main__:f')");
    }
}

PyRef invoke_target(std::string_view target, const Args& args, const Kwargs& kwargs, const TaskState* task) {
    PyRef fn = resolve_target(target);
    PyRef py_args = args_to_python(args);
    PyRef py_kwargs = kwargs_to_python(kwargs);
    // Interruptible (Pool::interrupt_running) when it runs as a worker's task.
    InterruptibleCall marked(task ? task->id() : next_task_id(), task ? task->timeout() : std::nullopt);
    if (task) {
        if (auto reason = task->interrupt_requested()) marked.interrupt(std::move(*reason));
    }
    PyRef result(PyObject_Call(fn.get(), py_args.get(), py_kwargs.get()));
    std::optional<std::string> interrupted = marked.finish();
    if (!result) {
        if (interrupted && PyErr_ExceptionMatches(PyExc_TimeoutError)) {
            PythonError e = fetch_python_error();
            throw PythonError("TimeoutError", *interrupted, e.traceback());
        }
        throw_python_error();
    }
    return result;
}

Value call_target(std::string_view target, const Args& args, const Kwargs& kwargs, const TaskState* task) {
    PyRef result = invoke_target(target, args, kwargs, task);
    try {
        return from_python(result.get());
    } catch (ConversionError& e) {
        e.prepend_path("result");
        throw;
    }
}

void exec_source(std::string_view source) {
    std::string code(source);  // NUL-terminated for the compiler
    PyRef compiled(Py_CompileString(code.c_str(), "<manygil exec>", Py_file_input));
    if (!compiled) throw_python_error();
    PyObject* main = PyImport_AddModule("__main__");  // borrowed
    if (!main) throw_python_error();
    PyObject* globals = PyModule_GetDict(main);  // borrowed
    PyRef result(PyEval_EvalCode(compiled.get(), globals, globals));
    if (!result) throw_python_error();
}

}  // namespace manygil::detail
