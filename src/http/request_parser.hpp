// RequestParser: bytes from a connection in, complete requests out, with llhttp (Node's parser)
// doing the HTTP/1.1 grammar. Incremental: bytes may arrive in any pieces. It stops after each
// complete request, so pipelined requests are taken one at a time, in order, the rest of the bytes
// left for the next call. No Python, no locks: one parser per connection, used by its I/O thread.
//
// What it refuses, with the status the connection answers before closing (nothing reaches a worker):
//   400  malformed request line, header or chunk; both Content-Length and Transfer-Encoding, or
//        Content-Length given twice (request smuggling); an HTTP/1.1 request without Host, two Hosts
//        or an invalid one; a target that is not a path, '*' with OPTIONS, or an http(s) URI
//   501  a method llhttp does not know (any token is a method; the app never sees it)
//   505  an HTTP major version other than 1 (a higher 1.x minor is served as 1.1)
// Trailer fields of a chunked body are read and dropped: they never become headers (RFC 9110 6.5.2).
// A fragment in the target is cut off; an obs-fold inside a header value arrives as one space
// (llhttp drops the line break: RFC 9112 5.2's "replace with SP"). docs/http.md lists RFC 9112's request rules and what is done.
//   413  a body over Limits::max_body (refused as soon as Content-Length says so)
//   431  a request line plus headers over Limits::max_header_bytes, or over max_headers headers
//   501  a Transfer-Encoding other than chunked
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "manygil/http.hpp"

namespace manygil::http {

// `s` without the optional whitespace (SP, HTAB: RFC 9110 5.6.3's OWS) at either end.
std::string_view trim_ows(std::string_view s) noexcept;


class RequestParser {
public:
    enum class State {
        Reading,   // needs more bytes
        Complete,  // a request is ready: take() it, then feed the rest
        Failed,    // the connection must answer error_status() and close
    };

    explicit RequestParser(Limits limits);
    ~RequestParser();
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    // Parses from `data`; returns how many bytes it used. It stops early once a request is complete
    // (the remaining bytes belong to the next one) or on an error. Call only in state Reading.
    std::size_t feed(const char* data, std::size_t n);

    State state() const noexcept { return state_; }
    // Reading, and at least one byte of a request seen (for the header-read timeout).
    bool mid_request() const noexcept { return started_; }
    // Reading, and the request's headers are all in (its body is still arriving).
    bool headers_done() const noexcept { return headers_done_; }
    // Headers complete, the body not yet, and the client sent "Expect: 100-continue": it waits for
    // an interim "100 Continue" before sending the body.
    bool wants_continue() const noexcept { return state_ == State::Reading && expect_continue_; }

    // In state Complete: the request, and the parser is ready for the next one. After take_head(),
    // the request's body is complete instead (what take() returns is empty: drop it).
    Request take();

    // Streaming bodies (Handler::streams_request_bodies()): a request with a body is ready once its
    // headers are in (head_ready(): take_head() it, body empty and keep_alive already decided); its
    // body bytes then collect in take_body() after each feed(), Limits::max_body still enforced, and
    // state Complete says the body has ended.
    void set_streaming(bool on) noexcept { streaming_ = on; }
    bool head_ready() const noexcept { return head_ready_; }
    Request take_head();
    bool streaming_body() const noexcept { return head_taken_; }  // after take_head(), until take()
    std::string take_body() { return std::exchange(body_out_, std::string()); }

    // In state Failed: the status to answer (400, 413, 431, 501) and why, for the log.
    int error_status() const noexcept { return error_status_; }
    const std::string& error_reason() const noexcept { return error_reason_; }

private:
    struct Callbacks;
    friend struct Callbacks;
    void fail(int status, std::string reason);
    int on_headers_complete();
    void begin_header_field();
    bool over_header_budget(std::size_t more);

    Limits limits_;
    struct Llhttp;
    std::unique_ptr<Llhttp> p_;
    State state_ = State::Reading;
    bool started_ = false, headers_done_ = false, expect_continue_ = false, in_value_ = false, upgraded_ = false;
    bool close_after_ = false;
    bool streaming_ = false, head_ready_ = false, head_taken_ = false;
    std::size_t body_bytes_ = 0;  // of this request's body so far (max_body)
    std::string body_out_;        // streamed body bytes not yet taken  // the connection closes after this request (RFC 9112 6.1)
    std::size_t header_bytes_ = 0;
    Request request_;
    int error_status_ = 0;
    std::string error_reason_;
};

}  // namespace manygil::http
