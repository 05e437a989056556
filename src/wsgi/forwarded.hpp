// Proxy headers: behind a reverse proxy (nginx, a load balancer), the peer of every connection is the
// proxy; the client's address and the scheme it used arrive in Forwarded (RFC 7239) or
// X-Forwarded-For / X-Forwarded-Proto. They are believed only from peers listed as trusted, since any
// client can send them. No GIL, no Python: applied on the I/O thread before the request goes to a
// worker.
#pragma once

#include <string>
#include <vector>

#include "manygil/http.hpp"

namespace manygil::wsgi {

// Whether `peer` (an address as Request::remote_addr gives it; "" for a Unix-socket peer) is one of
// `trusted`: exact addresses ("127.0.0.1", "::1"), "*" for any peer. A Unix-socket peer is trusted
// unless `trusted` is empty (only local processes reach such a socket).
bool is_trusted_proxy(const std::string& peer, const std::vector<std::string>& trusted);

// If the request's peer is trusted: Forwarded (when present, else X-Forwarded-For) names the client
// (walking the chain from the nearest proxy back, the first address that is not itself a trusted
// proxy; the furthest when all are), which becomes remote_addr (remote_port: its port if given, else
// 0); its proto (or X-Forwarded-Proto), "http" or "https", becomes `scheme`. Malformed or unknown
// ("unknown", "_hidden") values leave the request as it was.
void apply_proxy_headers(http::Request& request, const std::vector<std::string>& trusted, std::string& scheme);

}  // namespace manygil::wsgi
