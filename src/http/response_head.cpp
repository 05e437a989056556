#include "http/response_head.hpp"

#include <unistd.h>

#include <cstdlib>

#include <utility>

namespace manygil::http {

Response::Response(int status_, std::string body_, std::string content_type) : status(status_), body(std::move(body_)) {
    headers.push_back({"Content-Type", std::move(content_type)});
}

Response::Response(Response&& other) noexcept
    : status(other.status),
      reason(std::move(other.reason)),
      headers(std::move(other.headers)),
      body(std::move(other.body)),
      file(std::exchange(other.file, std::nullopt)),
      close(other.close),
      stream(other.stream) {}

Response& Response::operator=(Response&& other) noexcept {
    if (this != &other) {
        if (file && file->fd >= 0) ::close(file->fd);
        status = other.status;
        reason = std::move(other.reason);
        headers = std::move(other.headers);
        body = std::move(other.body);
        file = std::exchange(other.file, std::nullopt);
        close = other.close;
        stream = other.stream;
    }
    return *this;
}

Response::~Response() {
    if (file && file->fd >= 0) ::close(file->fd);
}

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
        case 100: return "Continue";
        case 101: return "Switching Protocols";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 303: return "See Other";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 417: return "Expectation Failed";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return "Unknown";
    }
}

std::string serialize_head(const Response& response, bool keep_alive, std::string_view date, Framing framing) {
    std::string out;
    out.reserve(160 + response.headers.size() * 48);
    out += "HTTP/1.1 ";
    out += std::to_string(response.status);
    out += ' ';
    out += response.reason.empty() ? reason_phrase(response.status) : std::string_view(response.reason);
    out += "\r\nServer: manygil\r\nDate: ";
    out += date;
    out += "\r\n";
    bool has_length = false;
    for (const Header& h : response.headers) {
        if (iequals(h.name, "content-length")) has_length = true;
        if (iequals(h.name, "connection")) continue;  // hop-by-hop: the server decides
        out += h.name;
        out += ": ";
        out += h.value;
        out += "\r\n";
    }
    // 1xx, 204 and 304 responses carry no body and no length.
    bool bodyless = bodyless_status(response.status);
    if (framing == Framing::Chunked && !bodyless) {
        out += "Transfer-Encoding: chunked\r\n";
    } else if (framing == Framing::Length && !has_length && !bodyless) {
        std::uint64_t n = response.body.size() + (response.file ? response.file->length : 0);
        out += "Content-Length: ";
        out += std::to_string(n);
        out += "\r\n";
    }
    out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    return out;
}

std::optional<std::uint64_t> declared_length(const std::vector<Header>& headers) noexcept {
    for (const Header& h : headers) {
        if (!iequals(h.name, "content-length")) continue;
        char* end = nullptr;
        std::uint64_t n = std::strtoull(h.value.c_str(), &end, 10);
        if (!h.value.empty() && end && *end == '\0') return n;
    }
    return std::nullopt;
}

std::string_view DateCache::now() {
    std::time_t t = std::time(nullptr);
    if (t != second_ || value_.empty()) {
        second_ = t;
        std::tm tm{};
        gmtime_r(&t, &tm);
        char buf[64];
        std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        value_.assign(buf, n);
    }
    return value_;
}

}  // namespace manygil::http
