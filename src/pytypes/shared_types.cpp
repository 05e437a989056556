#include "pytypes/shared_types.hpp"

#include <cstring>
#include <exception>

#include "pytypes/channel_type.hpp"
#include "pytypes/shared_buffer_type.hpp"
#include "pytypes/shared_dict_type.hpp"
#include "pytypes/sync_types.hpp"

namespace manygil::detail {

int add_shared_types(PyObject* module) noexcept {
    try {  // creating a type may throw (its interpreter's dict, the codec's registry)
        if (PyModule_AddObjectRef(module, "SharedBuffer", reinterpret_cast<PyObject*>(buffer_type())) < 0 ||
            PyModule_AddObjectRef(module, "Channel", reinterpret_cast<PyObject*>(channel_type())) < 0 ||
            PyModule_AddObjectRef(module, "SharedDict", reinterpret_cast<PyObject*>(shared_dict_type())) < 0 ||
            PyModule_AddObjectRef(module, "_ChannelWaker", reinterpret_cast<PyObject*>(channel_waker_type())) < 0) {
            return -1;
        }
        for (const char* name : {"Lock", "Event", "Semaphore", "Barrier"}) {
            if (PyModule_AddObjectRef(module, name, reinterpret_cast<PyObject*>(sync_type(name))) < 0) return -1;
        }
    } catch (const std::exception& e) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ImportError, e.what());
        return -1;
    }
    return 0;
}

PyObject* add_channel_exception(PyObject* module, const char* name) noexcept {
    for (const char* lazy : {"ChannelClosed", "ChannelEmpty", "ChannelFull"}) {
        if (std::strcmp(name, lazy) != 0) continue;
        try {
            PyObject* exc = channel_exception(lazy);  // borrowed: cached per interpreter
            if (PyModule_AddObjectRef(module, lazy, exc) < 0) return nullptr;
            return Py_NewRef(exc);
        } catch (const std::exception& e) {  // the Python error was fetched into the C++ one
            PyErr_SetString(PyExc_ImportError, e.what());
            return nullptr;
        }
    }
    return nullptr;
}

}  // namespace manygil::detail
