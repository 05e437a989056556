#include "wsgi/forwarded.hpp"

#include <algorithm>
#include <optional>
#include <string_view>

#include "http/request_parser.hpp"

namespace manygil::wsgi {

namespace {

using http::trim_ows;

// Splits at `sep` outside double quotes.
std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    bool quoted = false;
    std::size_t start = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '"') quoted = !quoted;
        else if (s[i] == sep && !quoted) {
            out.push_back(trim_ows(s.substr(start, i - start)));
            start = i + 1;
        }
    }
    out.push_back(trim_ows(s.substr(start)));
    return out;
}

struct Node {
    std::string addr;
    std::uint16_t port = 0;
};

// "192.0.2.60", "192.0.2.60:4711", "[2001:db8::1]:4711", "2001:db8::1" (X-Forwarded-For's bare form),
// with or without quotes. nullopt for "unknown", an obfuscated "_name" and anything malformed.
std::optional<Node> parse_node(std::string_view v) {
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (v.empty() || v == "unknown" || v.front() == '_') return std::nullopt;
    Node n;
    std::string_view port;
    if (v.front() == '[') {
        auto close = v.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        n.addr = std::string(v.substr(1, close - 1));
        if (close + 1 < v.size()) {
            if (v[close + 1] != ':') return std::nullopt;
            port = v.substr(close + 2);
        }
    } else if (std::count(v.begin(), v.end(), ':') == 1) {
        n.addr = std::string(v.substr(0, v.find(':')));
        port = v.substr(v.find(':') + 1);
    } else {
        n.addr = std::string(v);  // IPv4, or a bare IPv6 address
    }
    if (n.addr.empty() || n.addr.find_first_not_of("0123456789abcdefABCDEF.:") != std::string::npos) return std::nullopt;
    if (!port.empty()) {
        if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
        unsigned long p = std::stoul(std::string(port));
        if (p > 65535) return std::nullopt;
        n.port = static_cast<std::uint16_t>(p);
    }
    return n;
}

std::optional<std::string> parse_proto(std::string_view v) {
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (http::iequals(v, "http")) return "http";
    if (http::iequals(v, "https")) return "https";
    return std::nullopt;
}

// All the values of a header that may be sent on several lines, joined with commas (RFC 9110 5.3).
std::string joined(const http::Request& r, std::string_view name) {
    std::string out;
    for (const http::Header& h : r.headers) {
        if (!http::iequals(h.name, name)) continue;
        if (!out.empty()) out += ',';
        out += h.value;
    }
    return out;
}

}  // namespace

bool is_trusted_proxy(const std::string& peer, const std::vector<std::string>& trusted) {
    if (trusted.empty()) return false;
    if (peer.empty()) return true;  // a Unix-socket peer
    return std::any_of(trusted.begin(), trusted.end(), [&](const std::string& t) { return t == "*" || t == peer; });
}

void apply_proxy_headers(http::Request& r, const std::vector<std::string>& trusted, std::string& scheme) {
    if (!is_trusted_proxy(r.remote_addr, trusted)) return;
    // The hops, nearest proxy last: (the address it saw, the proto it was reached by).
    std::vector<std::pair<std::optional<Node>, std::optional<std::string>>> hops;
    std::string forwarded = joined(r, "forwarded");
    if (!forwarded.empty()) {
        for (std::string_view element : split(forwarded, ',')) {
            std::optional<Node> node;
            std::optional<std::string> proto;
            for (std::string_view pair : split(element, ';')) {
                auto eq = pair.find('=');
                if (eq == std::string_view::npos) continue;
                std::string_view key = trim_ows(pair.substr(0, eq)), value = trim_ows(pair.substr(eq + 1));
                if (http::iequals(key, "for")) node = parse_node(value);
                else if (http::iequals(key, "proto")) proto = parse_proto(value);
            }
            hops.emplace_back(std::move(node), std::move(proto));
        }
    } else {
        std::string xff = joined(r, "x-forwarded-for");
        std::vector<std::string_view> protos;
        std::string xfp = joined(r, "x-forwarded-proto");
        if (!xfp.empty()) protos = split(xfp, ',');
        if (!xff.empty()) {
            for (std::string_view v : split(xff, ',')) hops.emplace_back(parse_node(v), std::nullopt);
        }
        // X-Forwarded-Proto: the client-facing proxy's, first when several were appended.
        if (!protos.empty()) {
            if (auto proto = parse_proto(protos.front())) scheme = *proto;
        }
    }
    // From the nearest proxy back: the first hop that is not a trusted proxy is the client.
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        const auto& [node, proto] = *it;
        if (!node) return;  // unknown or malformed: keep the peer rather than guess
        bool last = std::next(it) == hops.rend();
        if (!last && is_trusted_proxy(node->addr, trusted) && !node->addr.empty()) continue;
        r.remote_addr = node->addr;
        r.remote_port = node->port;
        if (proto) scheme = *proto;
        return;
    }
}

}  // namespace manygil::wsgi
