#include "deferred_result.hpp"

#include "codec/payload_python.hpp"
#include "exception_translation.hpp"

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
    } catch (const std::exception& e) {
        return raise_error(e, "result");
    }
}

}  // namespace manygil::ext
