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
    // The body continues after this (Responder::send_chunk, then finish): it goes out chunked, or
    // as the application's Content-Length says, or (HTTP/1.0) until the connection closes.
    bool stream = false;

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
