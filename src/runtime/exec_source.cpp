#include "runtime/exec_source.hpp"

#include <Python.h>

#include <string>

#include "cpython/py_ref.hpp"
#include "cpython/python_error.hpp"

namespace manygil::detail {

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
