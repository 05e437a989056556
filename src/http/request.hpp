// An HTTP/1.1 request as the front end hands it over: complete (headers and the whole body, chunked
// bodies already decoded), plain C++ data with no Python, so it can cross to any worker.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace manygil::http {

struct Header {
    std::string name;   // as received (case kept); compare with iequals()
    std::string value;  // leading and trailing blanks removed
};

struct Request {
    std::string method;  // "GET"
    std::string target;  // the request-target as received: "/path?query"
    int version_major = 1, version_minor = 1;
    std::vector<Header> headers;
    std::string body;
    bool keep_alive = true;  // the client wants the connection kept (HTTP/1.1 default, Connection header)
    bool chunked = false;    // the body arrived chunked (wsgi.input_terminated)

    // Where the request came from and arrived at.
    std::string remote_addr, server_addr;
    std::uint16_t remote_port = 0, server_port = 0;

    // The first header named `name` (case-insensitive), or nullptr.
    const Header* find(std::string_view name) const noexcept;
};

// ASCII case-insensitive equality (header names).
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace manygil::http
