// The public error types (manygil/errors.hpp): plain C++, no Python. They live in the bottom layer
// because every layer above throws them (codec/ a ConversionError, runtime/ a BrokenPoolError, ...).
#include "manygil/errors.hpp"

namespace manygil {

namespace {
std::string python_error_what(const std::string& type_name, const std::string& message) {
    return message.empty() ? type_name : type_name + ": " + message;
}
}  // namespace

PythonError::PythonError(std::string type_name, std::string message, std::string traceback)
    : Error(python_error_what(type_name, message)),
      type_name_(std::move(type_name)),
      message_(std::move(message)),
      traceback_(std::move(traceback)) {}

ConversionError::ConversionError(std::string type_name, std::string path, std::string reason)
    : Error(""), type_name_(std::move(type_name)), path_(std::move(path)), reason_(std::move(reason)) {
    update_message();
}

void ConversionError::prepend_path(const std::string& outer) {
    path_ = outer + path_;
    update_message();
}

void ConversionError::update_message() {
    message_ = "cannot convert " + type_name_ + (path_.empty() ? "" : " at " + path_) + ": " + reason_;
}

UnknownFunctionError::UnknownFunctionError(std::string target, std::string reason)
    : Error("cannot resolve '" + target + "': " + reason), target_(std::move(target)), reason_(std::move(reason)) {}

BrokenPoolError::BrokenPoolError(const std::string& what, std::exception_ptr cause)
    : Error(what), cause_(std::move(cause)) {}

}  // namespace manygil
