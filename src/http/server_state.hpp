// What a Server and its I/O threads share: the options, the Handler, the access log's format, the TLS
// context, the counters ServerStats reports, the stop request, and how a line is logged. Built by
// Server's constructor before any I/O thread starts; from then on the options, handler, format and
// TLS context are only read (by every I/O thread at once), and the rest are atomics. Internal to http/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string_view>

#include "http/access_log.hpp"
#include "http/tls.hpp"
#include "manygil/http.hpp"

namespace manygil::http {

using Clock = std::chrono::steady_clock;

struct Server::Shared {
    ServerOptions options;
    Handler* handler = nullptr;
    bool stream_bodies = false;  // handler->streams_request_bodies(), read once at start
    std::optional<AccessLogFormat> access_format;  // set when options.access_log
    std::unique_ptr<TlsContext> tls;               // set when options.tls; read-only once threads run
    std::atomic<std::size_t> pending{0};
    std::atomic<bool> stopping{false};
    std::atomic<long long> grace_ms{0};
    std::atomic<std::uint64_t> next_connection{1};
    std::atomic<std::uint64_t> accepted{0}, open{0}, requests{0}, responses{0}, rejected{0};
    std::atomic<std::uint64_t> ws_accepted{0}, ws_open{0}, ws_in{0}, ws_out{0};

    void log(LogLevel level, std::string_view line) const {
        if (level >= options.log_level) write_line(line);
    }
    void write_line(std::string_view line) const {  // the access log's lines too: never filtered
        if (options.log) return options.log(line);
        std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    }
};

}  // namespace manygil::http
