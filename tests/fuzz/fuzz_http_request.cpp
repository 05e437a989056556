// libFuzzer target: the HTTP request parser (src/http/request_parser.cpp, llhttp underneath) on
// arbitrary bytes, fed in pieces whose sizes come from the input itself, with small limits so that
// every refusal path is reached. It must never crash, hang or leak; a piece is never over-consumed;
// a refusal carries a 4xx/5xx status and a reason; an accepted request stays within the limits and
// within RFC 9112's rules (issue 23): HTTP/1.0 or 1.1, exactly one Host in 1.1 (trailers never add
// one), no fragment in the target, '*' only for OPTIONS, otherwise a path or an http(s) URI; in
// streaming mode, a head handed over before its body, the body's bytes within max_body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "http/request_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using manygil::http::RequestParser;
    if (size < 1) return 0;
    manygil::http::Limits limits;
    limits.max_header_bytes = 512;
    limits.max_headers = 8;
    limits.max_body = 256;
    RequestParser parser(limits);
    // The first byte chooses the piece size (1-16): the same bytes, split differently; and (0x10)
    // whether bodies stream (Handler::streams_request_bodies): a head handed over early, then its body.
    std::size_t piece = 1 + (data[0] & 15);
    parser.set_streaming((data[0] & 0x10) != 0);
    std::size_t streamed = 0;
    auto check = [&](const manygil::http::Request& r) {
        if (r.body.size() > limits.max_body || r.headers.size() > limits.max_headers) std::abort();
        if (r.version_major != 1 || r.version_minor > 1) std::abort();
        std::size_t hosts = 0;
        for (const auto& h : r.headers) hosts += manygil::http::iequals(h.name, "host") ? 1 : 0;
        if (hosts > 1 || (hosts == 0 && r.version_minor == 1)) std::abort();
        if (r.target.empty() || r.target.find('#') != std::string::npos) std::abort();
        if (r.target == "*") {
            if (r.method != "OPTIONS") std::abort();
        } else if (r.target.front() != '/') {  // absolute-form: an http(s) scheme, any case
            std::string scheme = r.target.substr(0, r.target.find("://"));
            if (!manygil::http::iequals(scheme, "http") && !manygil::http::iequals(scheme, "https")) std::abort();
        }
    };

    const char* at = reinterpret_cast<const char*>(data + 1);
    std::size_t left = size - 1;
    while (left > 0) {
        std::size_t n = left < piece ? left : piece;
        std::size_t used = parser.feed(at, n);
        if (used > n) std::abort();
        at += used;
        left -= used;
        if (parser.head_ready() && parser.state() == RequestParser::State::Reading) {
            manygil::http::Request head = parser.take_head();
            if (!head.body.empty()) std::abort();
            check(head);
        }
        if (parser.streaming_body() && parser.state() == RequestParser::State::Reading) {
            streamed += parser.take_body().size();
            if (streamed > limits.max_body) std::abort();
        }
        switch (parser.state()) {
            case RequestParser::State::Complete: {
                bool body_end = parser.streaming_body();
                if (body_end) streamed += parser.take_body().size();
                manygil::http::Request r = parser.take();
                if (body_end) {
                    if (!r.body.empty() || streamed > limits.max_body) std::abort();
                    streamed = 0;
                } else {
                    check(r);
                }
                break;
            }
            case RequestParser::State::Failed:
                if (parser.error_status() < 400 || parser.error_status() > 599 || parser.error_reason().empty()) {
                    std::abort();
                }
                return 0;
            case RequestParser::State::Reading:
                if (used < n) std::abort();  // stopped early without a request or a refusal
                break;
        }
    }
    return 0;
}
