// What the I/O threads write before a response's body: the status line and headers, with the
// standard reason phrases, the cached Date, and how the body is framed. Internal to http/.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "manygil/http.hpp"

namespace manygil::http {

// The standard reason phrase ("Not Found"), or "Unknown".
std::string_view reason_phrase(int status) noexcept;

// The Content-Length among `headers`, if one is set and is a number.
std::optional<std::uint64_t> declared_length(const std::vector<Header>& headers) noexcept;

// Whether a response with this status carries no body (1xx, 204, 304).
constexpr bool bodyless_status(int status) noexcept { return status < 200 || status == 204 || status == 304; }

// How a response's body is delimited.
enum class Framing {
    Length,      // Content-Length: the application's, or body + file
    Chunked,     // Transfer-Encoding: chunked (a stream to an HTTP/1.1 client, without a Content-Length)
    UntilClose,  // neither: the body ends when the connection closes (a stream to an HTTP/1.0 client)
};

// The status line and headers of `response` (HEAD: no body is sent, but the length is the body's),
// with Date (from `date`), Server, Connection and, for Framing::Length, a Content-Length of body + file
// unless the application set its own. Ends with the blank line.
std::string serialize_head(const Response& response, bool keep_alive, std::string_view date,
                           Framing framing = Framing::Length);

// The Date header's value, recomputed at most once a second. One per I/O thread (not thread-safe).
class DateCache {
public:
    std::string_view now();

private:
    std::time_t second_ = 0;
    std::string value_;
};

}  // namespace manygil::http
