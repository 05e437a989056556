#include "deferred_result.hpp"

#include "codec/payload_python.hpp"
#include "module_state.hpp"

namespace manygil::ext {

namespace {

const char* const kCapsuleName = "manygil.payload";

void destroy_payload(PyObject* capsule) {
    delete static_cast<detail::Payload*>(PyCapsule_GetPointer(capsule, kCapsuleName));
}

}  // namespace

PyObject* defer_result(detail::Payload payload) {
    auto* p = new detail::Payload(std::move(payload));
    PyObject* capsule = PyCapsule_New(p, kCapsuleName, destroy_payload);
    if (!capsule) delete p;
    return capsule;
}

PyObject* py_decode_result(PyObject*, PyObject* capsule) {
    auto* payload = static_cast<detail::Payload*>(PyCapsule_GetPointer(capsule, kCapsuleName));
    if (!payload) return nullptr;
    try {
        return detail::decode_python(*payload).release();
    } catch (const ConversionError& e) {
        return raise_from_errors("not_shareable", "(sss)", e.type_name().c_str(),
                                 ("result" + e.path()).c_str(), e.reason().c_str());
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
}

}  // namespace manygil::ext
