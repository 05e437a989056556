#include "cpython/ownership.hpp"

#include <string>

namespace manygil::detail {

void ownership_violation(const char* rule) noexcept {
    // Py_FatalError prints the message and, if a thread state is attached, its Python stack.
    std::string message = std::string("manygil: ownership rule broken: ") + rule;
    Py_FatalError(message.c_str());
}

}  // namespace manygil::detail
