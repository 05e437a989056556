#include "http/request_parser.hpp"

#include <llhttp.h>

#include <algorithm>
#include <cctype>
#include <utility>

namespace manygil::http {

namespace {

// RFC 9110 5.6.2: tchar, the characters of a token (a method, a header name).
bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 3986's characters of an authority (host, port, userinfo; IP literals in brackets).
bool is_authority_char(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("-._~%!$&'()*+,;=:@[]").find(c) != std::string_view::npos;
}

// RFC 3986 3.2: [userinfo "@"] host [":" port], the host a name, an IPv4 address or an IP literal in
// brackets.
bool valid_authority(std::string_view a) {
    if (auto at = a.rfind('@'); at != std::string_view::npos) a.remove_prefix(at + 1);
    std::string_view host = a, port;
    if (!a.empty() && a.front() == '[') {
        auto close = a.find(']');
        if (close == std::string_view::npos) return false;
        host = a.substr(1, close - 1);
        std::string_view after = a.substr(close + 1);
        if (!after.empty() && after.front() != ':') return false;
        port = after.empty() ? after : after.substr(1);
        if (host.empty() || host.find_first_not_of("0123456789abcdefABCDEF:.vV") != std::string_view::npos) return false;
    } else {
        auto colon = a.rfind(':');
        if (colon != std::string_view::npos) {
            host = a.substr(0, colon);
            port = a.substr(colon + 1);
        }
        if (host.empty() || !std::all_of(host.begin(), host.end(), is_authority_char) ||
            host.find_first_of("[]:@") != std::string_view::npos) {
            return false;
        }
    }
    return port.find_first_not_of("0123456789") == std::string_view::npos;
}

// RFC 9112 3.2: the request-target's form, checked against the method. A fragment is no part of a
// request-target; a client that sends one anyway gets it cut off here, so the app never sees it.
// Returns the reason it is refused, or "" (the target then has no fragment).
std::string check_target(const std::string& method, std::string& target) {
    if (auto hash = target.find('#'); hash != std::string::npos) target.resize(hash);
    if (target.empty()) return "an empty request-target";
    if (target == "*") return method == "OPTIONS" ? "" : "the asterisk-form target '*' is for OPTIONS only";
    if (target.front() == '/') return "";  // origin-form
    // absolute-form: "http://authority/path?query" (a server must accept it, RFC 9112 3.2.2). The
    // authority-form is CONNECT's, refused with it.
    auto colon = target.find("://");
    std::string_view scheme = colon == std::string::npos ? std::string_view{} : std::string_view(target).substr(0, colon);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
        return "the request-target '" + target.substr(0, 64) + "' is neither a path nor an http(s) URI";
    }
    std::string_view rest = std::string_view(target).substr(colon + 3);
    if (!valid_authority(rest.substr(0, rest.find_first_of("/?")))) {
        return "the request-target '" + target.substr(0, 64) + "' has no valid authority";
    }
    return "";
}

// The method of the request line at the start of `bytes` (blank lines before it skipped), when the
// line is well formed but for a method llhttp does not know: method SP request-target SP
// HTTP-version (RFC 9112 3), the method a token. When the line's end is not in `bytes` yet, the
// method alone is judged. "" otherwise (a malformed line), or when `bytes` is empty (the line began
// in earlier bytes: nothing to judge by).
std::string unknown_method(std::string_view bytes) {
    while (!bytes.empty() && (bytes.front() == '\r' || bytes.front() == '\n')) bytes.remove_prefix(1);
    std::string_view method = bytes.substr(0, bytes.find(' '));
    if (method.empty() || method.size() > 64 || !std::all_of(method.begin(), method.end(), is_tchar)) return "";
    auto end = bytes.find("\r\n");
    if (end == std::string_view::npos) return std::string(method);
    std::string_view line = bytes.substr(0, end);
    auto sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return "";
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1), version = line.substr(sp2 + 1);
    bool version_ok = version.size() == 8 && version.substr(0, 5) == "HTTP/" && std::isdigit(static_cast<unsigned char>(version[5])) &&
                      version[6] == '.' && std::isdigit(static_cast<unsigned char>(version[7]));
    bool target_ok = !target.empty() && std::none_of(target.begin(), target.end(), [](char c) {
        return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
    });
    return version_ok && target_ok ? std::string(method) : "";
}

}  // namespace

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

const Header* Request::find(std::string_view name) const noexcept {
    for (const Header& h : headers) {
        if (iequals(h.name, name)) return &h;
    }
    return nullptr;
}

struct RequestParser::Llhttp {
    llhttp_t parser;
};

// llhttp's callbacks: `data` is the RequestParser. Spans point into the caller's buffer: copied.
struct RequestParser::Callbacks {
    static RequestParser& self(llhttp_t* p) { return *static_cast<RequestParser*>(p->data); }

    static int on_message_begin(llhttp_t* p) {
        RequestParser& s = self(p);
        s.request_ = Request{};
        s.started_ = true;
        s.close_after_ = false;
        s.headers_done_ = false;
        s.expect_continue_ = false;
        s.in_value_ = false;
        s.header_bytes_ = 0;
        return 0;
    }
    static int on_url(llhttp_t* p, const char* at, std::size_t n) {
        RequestParser& s = self(p);
        if (s.over_header_budget(n)) return HPE_USER;
        s.request_.target.append(at, n);
        return 0;
    }
    static int on_method(llhttp_t* p, const char* at, std::size_t n) {
        RequestParser& s = self(p);
        if (s.over_header_budget(n)) return HPE_USER;
        s.request_.method.append(at, n);
        return 0;
    }
    static int on_header_field(llhttp_t* p, const char* at, std::size_t n) {
        RequestParser& s = self(p);
        if (s.over_header_budget(n)) return HPE_USER;
        if (s.headers_done_) return 0;  // a trailer field: dropped (see the header comment)
        if (s.in_value_ || s.request_.headers.empty()) {
            if (s.request_.headers.size() >= s.limits_.max_headers) {
                s.fail(431, "more than " + std::to_string(s.limits_.max_headers) + " headers");
                return HPE_USER;
            }
            s.request_.headers.emplace_back();
            s.in_value_ = false;
        }
        s.request_.headers.back().name.append(at, n);
        return 0;
    }
    static int on_header_value(llhttp_t* p, const char* at, std::size_t n) {
        RequestParser& s = self(p);
        if (s.over_header_budget(n)) return HPE_USER;
        if (s.headers_done_) return 0;  // a trailer's value: dropped
        s.in_value_ = true;
        s.request_.headers.back().value.append(at, n);
        return 0;
    }
    static int on_header_value_complete(llhttp_t* p) {
        self(p).in_value_ = true;  // the next field starts a new header even if this value was empty
        return 0;
    }
    static int on_headers_complete(llhttp_t* p) { return self(p).on_headers_complete(); }
    static int on_body(llhttp_t* p, const char* at, std::size_t n) {
        RequestParser& s = self(p);
        if (s.body_bytes_ + n > s.limits_.max_body) {
            s.fail(413, "the body is over " + std::to_string(s.limits_.max_body) + " bytes");
            return HPE_USER;
        }
        s.body_bytes_ += n;
        (s.head_ready_ || s.head_taken_ ? s.body_out_ : s.request_.body).append(at, n);
        return 0;
    }
    static int on_message_complete(llhttp_t* p) {
        RequestParser& s = self(p);
        if (s.head_ready_ || s.head_taken_) {  // a streamed body's end: the head has its keep_alive
            s.expect_continue_ = false;
            s.state_ = State::Complete;
            return HPE_PAUSED;
        }
        s.request_.keep_alive = llhttp_should_keep_alive(p) != 0 && !s.close_after_;
        if (llhttp_get_upgrade(p)) {  // served as an ordinary request; llhttp parses nothing after it
            s.request_.keep_alive = false;
            s.upgraded_ = true;
        }
        s.expect_continue_ = false;
        s.state_ = State::Complete;
        return HPE_PAUSED;  // one request at a time: the rest of the bytes wait for the next feed()
    }

    static const llhttp_settings_t& settings() {
        static const llhttp_settings_t s = [] {
            llhttp_settings_t x;
            llhttp_settings_init(&x);
            x.on_message_begin = on_message_begin;
            x.on_url = on_url;
            x.on_method = on_method;
            x.on_header_field = on_header_field;
            x.on_header_value = on_header_value;
            x.on_header_value_complete = on_header_value_complete;
            x.on_headers_complete = on_headers_complete;
            x.on_body = on_body;
            x.on_message_complete = on_message_complete;
            return x;
        }();
        return s;
    }
};

RequestParser::RequestParser(Limits limits) : limits_(limits), p_(std::make_unique<Llhttp>()) {
    llhttp_init(&p_->parser, HTTP_REQUEST, &Callbacks::settings());
    p_->parser.data = this;
    // Any "HTTP/d.d" gets through llhttp, so that on_headers_complete answers a major version other
    // than 1 with 505 and serves a higher 1.x as 1.1 (RFC 9112 2.3), where llhttp would say 400. llhttp
    // 8.1 (Debian 12) has the flag but no setter for it.
    p_->parser.lenient_flags |= LENIENT_VERSION;
}

RequestParser::~RequestParser() = default;

void RequestParser::fail(int status, std::string reason) {
    if (state_ == State::Failed) return;
    state_ = State::Failed;
    error_status_ = status;
    error_reason_ = std::move(reason);
}

bool RequestParser::over_header_budget(std::size_t more) {
    header_bytes_ += more;
    if (header_bytes_ <= limits_.max_header_bytes) return false;
    fail(431, "the request line and headers are over " + std::to_string(limits_.max_header_bytes) + " bytes");
    return true;
}

int RequestParser::on_headers_complete() {
    llhttp_t* p = &p_->parser;
    Request& r = request_;
    r.version_major = llhttp_get_http_major(p);
    r.version_minor = llhttp_get_http_minor(p);
    for (Header& h : r.headers) h.value = std::string(trim_ows(h.value));

    if (r.version_major != 1) {
        fail(505, "HTTP/" + std::to_string(r.version_major) + "." + std::to_string(r.version_minor) +
                      " is not supported (HTTP/1.0 and 1.1 only)");
        return HPE_USER;
    }
    // RFC 9112 2.3: a higher minor version is processed as the highest one implemented.
    if (r.version_minor > 1) r.version_minor = 1;
    if (r.method == "CONNECT") {  // its authority-form target is refused with it
        fail(501, "CONNECT is not supported");
        return HPE_USER;
    }
    if (std::string why = check_target(r.method, r.target); !why.empty()) {
        fail(400, why);
        return HPE_USER;
    }
    std::size_t content_lengths = 0, hosts = 0;
    bool transfer_encoding = false;
    for (const Header& h : r.headers) {
        if (iequals(h.name, "host")) {
            ++hosts;
            // RFC 9112 3.2: uri-host [":" port]; empty when the target has no authority.
            if (!h.value.empty() && (h.value.find('@') != std::string::npos || !valid_authority(h.value))) {
                fail(400, "the Host '" + h.value.substr(0, 64) + "' is not a valid host[:port]");
                return HPE_USER;
            }
        } else if (iequals(h.name, "content-length")) {
            ++content_lengths;
        } else if (iequals(h.name, "transfer-encoding")) {
            transfer_encoding = true;
            std::string_view rest = h.value;
            while (!rest.empty()) {
                std::size_t comma = rest.find(',');
                std::string_view coding = trim_ows(rest.substr(0, comma));
                if (!iequals(coding, "chunked")) {
                    fail(501, "Transfer-Encoding '" + std::string(coding) + "' is not supported (only chunked)");
                    return HPE_USER;
                }
                rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
            }
        } else if (iequals(h.name, "expect")) {
            if (iequals(h.value, "100-continue")) {
                expect_continue_ = r.version_major == 1 && r.version_minor >= 1;
            } else {
                fail(417, "Expect '" + h.value + "' is not supported");
                return HPE_USER;
            }
        }
    }
    if (content_lengths > 1) {
        fail(400, "Content-Length given more than once");
        return HPE_USER;
    }
    if (content_lengths && transfer_encoding) {
        fail(400, "both Content-Length and Transfer-Encoding");
        return HPE_USER;
    }
    r.chunked = (p->flags & F_CHUNKED) != 0;
    if (content_lengths) {
        if (p->content_length > limits_.max_body) {
            fail(413, "Content-Length " + std::to_string(p->content_length) + " is over the limit of " +
                          std::to_string(limits_.max_body) + " bytes");
            return HPE_USER;
        }
        if (!streaming_) r.body.reserve(static_cast<std::size_t>(p->content_length));
        if (p->content_length == 0) expect_continue_ = false;
    } else if (!r.chunked) {
        expect_continue_ = false;  // no body to wait for
    }
    // RFC 9112 3.2: an HTTP/1.1 request without Host, or with more than one, MUST be answered 400
    // (checked last, so that the more specific refusals above keep their status).
    if (hosts > 1) {
        fail(400, "Host given more than once");
        return HPE_USER;
    }
    if (hosts == 0 && r.version_minor >= 1) {
        fail(400, "an HTTP/1.1 request without Host");
        return HPE_USER;
    }
    // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request means faulty framing: the request is
    // served, then the connection MUST close.
    close_after_ = transfer_encoding && r.version_minor == 0;
    headers_done_ = true;
    if (streaming_ && !llhttp_get_upgrade(p) && (r.chunked || (content_lengths && p->content_length > 0))) {
        // Handed over now; keep_alive is known from the headers already.
        r.keep_alive = llhttp_should_keep_alive(p) != 0 && !close_after_;
        head_ready_ = true;
    }
    // An Upgrade (websocket) is not taken up: the request is served as an ordinary one, and the
    // connection closes after it (llhttp stops parsing there).
    return 0;
}

std::size_t RequestParser::feed(const char* data, std::size_t n) {
    if (state_ != State::Reading) return 0;
    if (upgraded_) {
        // llhttp stops for good after an Upgrade request; the connection closes after its answer.
        fail(400, "bytes after an Upgrade request, which is not taken up");
        return 0;
    }
    llhttp_t* p = &p_->parser;
    bool starts_here = !started_;  // the request line begins in these bytes (after any blank lines)
    llhttp_errno_t err = llhttp_execute(p, data, n);
    switch (err) {
        case HPE_OK: return n;
        case HPE_PAUSED:
        case HPE_PAUSED_UPGRADE: {
            auto used = static_cast<std::size_t>(llhttp_get_error_pos(p) - data);
            if (err == HPE_PAUSED_UPGRADE && state_ != State::Complete) {
                fail(400, "bytes after an Upgrade request, which is not taken up");
                return 0;
            }
            if (err == HPE_PAUSED_UPGRADE) {
                request_.keep_alive = false;
                upgraded_ = true;
            } else {
                llhttp_resume(p);
            }
            return std::min(used, n);
        }
        case HPE_USER: return 0;  // fail() was called with the status
        case HPE_INVALID_METHOD:
            // llhttp knows a fixed list of methods, but any token is a method (RFC 9110 9.1): one it
            // does not know is answered 501 Not Implemented; bytes that are no token, 400.
            if (std::string method = unknown_method(starts_here ? std::string_view(data, n) : std::string_view{});
                !method.empty()) {
                fail(501, "the method '" + method + "' is not implemented");
                return 0;
            }
            break;
        default: break;
    }
    const char* reason = llhttp_get_error_reason(p);
    fail(400, std::string("malformed request: ") + (reason ? reason : llhttp_errno_name(err)));
    return 0;
}

Request RequestParser::take() {
    state_ = State::Reading;
    started_ = headers_done_ = head_ready_ = head_taken_ = false;
    body_bytes_ = 0;
    body_out_.clear();
    return std::exchange(request_, Request{});
}

Request RequestParser::take_head() {
    head_ready_ = false;
    head_taken_ = true;
    expect_continue_ = false;  // the connection answers it when it hands the request over
    Request r = std::exchange(request_, Request{});
    request_.keep_alive = r.keep_alive;
    return r;
}

}  // namespace manygil::http
