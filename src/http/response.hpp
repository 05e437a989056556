// A response as the front end writes it: status, headers, and a body that is bytes in memory and/or
// a range of an open file (served with sendfile). Built by whoever handles the request (a WSGI worker,
// a C++ handler), on any thread; written by the connection's I/O thread.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.hpp"

namespace manygil::http {

struct FileRange {
    int fd = -1;  // owned by the Response: closed by the I/O thread once sent (or dropped)
    std::uint64_t offset = 0, length = 0;
};

struct Response {
    int status = 200;
    std::string reason;           // empty: the standard phrase for `status`
    std::vector<Header> headers;  // what the application set (no Date, Server, Connection, Content-Length
                                  // unless it set them itself)
    std::string body;             // sent first
    std::optional<FileRange> file;  // then this
    bool close = false;           // close the connection after this response

    Response() = default;
    Response(int status_, std::string body_, std::string content_type = "text/plain; charset=utf-8");
    Response(Response&& other) noexcept;
    Response& operator=(Response&& other) noexcept;
    Response(const Response&) = delete;
    Response& operator=(const Response&) = delete;
    ~Response();  // closes file->fd
};

// The standard reason phrase ("Not Found"), or "Unknown".
std::string_view reason_phrase(int status) noexcept;

// The status line and headers of `response` for a request (HEAD: no body is sent, but the length is
// the body's), with Date (from `date`), Server, Connection and, unless the application set its own
// Content-Length, the length of body + file. Ends with the blank line.
std::string serialize_head(const Response& response, bool keep_alive, std::string_view date);

// The Date header's value, recomputed at most once a second. One per I/O thread (not thread-safe).
class DateCache {
public:
    std::string_view now();

private:
    std::time_t second_ = 0;
    std::string value_;
};

}  // namespace manygil::http
