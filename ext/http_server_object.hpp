// _core.HttpServer: the HTTP front end (src/http/) serving a WSGI application (src/wsgi/) on a
// _core.Pool's workers, driven by manygil/_serve.py.
#pragma once

#include <Python.h>

namespace manygil::ext {

extern PyType_Spec http_server_spec;

}  // namespace manygil::ext
