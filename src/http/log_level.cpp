// http::parse_log_level (manygil/http.hpp): the names Python's logging and gunicorn's --log-level use.
#include <optional>
#include <string_view>

#include "manygil/http.hpp"

namespace manygil::http {

std::optional<LogLevel> parse_log_level(std::string_view name) noexcept {
    constexpr std::pair<std::string_view, LogLevel> kLevels[] = {
        {"debug", LogLevel::debug},     {"info", LogLevel::info},         {"warning", LogLevel::warning},
        {"error", LogLevel::error},     {"critical", LogLevel::critical},
    };
    for (const auto& [text, level] : kLevels) {
        if (iequals(name, text)) return level;
    }
    return std::nullopt;
}

}  // namespace manygil::http
