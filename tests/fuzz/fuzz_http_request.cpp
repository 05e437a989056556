// libFuzzer target: the HTTP request parser (src/http/request_parser.cpp, llhttp underneath) on
// arbitrary bytes, fed in pieces whose sizes come from the input itself, with small limits so that
// every refusal path is reached. It must never crash, hang or leak; a piece is never over-consumed;
// a refusal carries a 4xx/5xx status and a reason; an accepted request stays within the limits.
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
    // The first byte chooses the piece size (1-16): the same bytes, split differently.
    std::size_t piece = 1 + (data[0] & 15);
    const char* at = reinterpret_cast<const char*>(data + 1);
    std::size_t left = size - 1;
    while (left > 0) {
        std::size_t n = left < piece ? left : piece;
        std::size_t used = parser.feed(at, n);
        if (used > n) std::abort();
        at += used;
        left -= used;
        switch (parser.state()) {
            case RequestParser::State::Complete: {
                manygil::http::Request r = parser.take();
                if (r.body.size() > limits.max_body || r.headers.size() > limits.max_headers) std::abort();
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
