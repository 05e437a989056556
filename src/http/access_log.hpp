// Access log lines in gunicorn's access_log_format: "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s
// \"%(f)s\" \"%(a)s\"" and the like, so that log pipelines written for gunicorn keep working. The
// format is parsed once (an unknown atom is refused then, by name); render() runs on an I/O thread
// per response, no GIL, no allocation beyond the line.
//
// Atoms: h remote address, l "-", u user ("-": no authentication here), t the time in brackets
// ([10/Oct/2000:13:55:36 +0000]), r the request line, m method, U path, q query, H protocol, s status,
// B response length, b the same or "-" when 0 or unknown (a stream), f Referer, a User-Agent, T request
// time in whole seconds, M in milliseconds, D in microseconds, L in decimal seconds, p "<pid>",
// {name}i a request header, {name}o a response header, {name}e an environment variable. "%%" is "%".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "manygil/http.hpp"

namespace manygil::http {

// gunicorn's default access_log_format.
inline constexpr std::string_view kDefaultAccessLogFormat =
    "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"";

// What one log line is made from: the request's parts kept from dispatch, the response's.
struct AccessRecord {
    std::string remote, method, target, protocol;  // protocol: "HTTP/1.1"
    std::vector<Header> request_headers;           // kept only when the format reads them
    std::chrono::steady_clock::time_point started;
};

class AccessLogFormat {
public:
    // Throws std::invalid_argument naming an unknown atom or an unclosed "%(".
    explicit AccessLogFormat(std::string_view format = kDefaultAccessLogFormat);

    // Whether records must keep the request's headers (f, a, {..}i).
    bool needs_request_headers() const noexcept { return needs_request_headers_; }
    // The line for one response; `bytes` unknown (a stream) as nullopt.
    std::string render(const AccessRecord& record, int status, std::optional<std::uint64_t> bytes,
                       const std::vector<Header>& response_headers) const;

private:
    struct Piece {
        char atom = 0;      // 0: literal text
        std::string text;   // the literal, or a header / variable name
    };
    std::vector<Piece> pieces_;
    bool needs_request_headers_ = false;
};

}  // namespace manygil::http
