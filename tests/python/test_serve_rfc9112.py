"""manygil serve reads requests by the letter of RFC 9112 / 9110 (issue 23): each defect a peer
server's request corpus found, sent on a raw socket, with what the application sees (the environ
echoed by serve_apps.plain under /environ) or what the front end answers without it."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

import manygil

APPS = Path(__file__).parent
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))


@pytest.fixture(scope="module")
def server():
    with manygil.Server("serve_apps.plain:app", workers=2, bind="127.0.0.1:0") as s:
        yield s


def exchange(server, data: bytes) -> bytes:
    host, port = server.addresses[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def environ_of(answer: bytes) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer[:300]
    return json.loads(body)


def test_trailer_fields_never_reach_the_app(server):
    # RFC 9110 6.5.2 (a security bug: a trailer Host / Authorization / X-Forwarded-For smuggled past a
    # proxy that checked the header section).
    env = environ_of(exchange(server, b"POST /environ HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n"
                                      b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\nHost: evil.example.com\r\n"
                                      b"Authorization: Bearer stolen\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"))
    assert env["HTTP_HOST"] == "example.com"
    assert "HTTP_AUTHORIZATION" not in env and "HTTP_X_FORWARDED_FOR" not in env
    assert env["input"] == "hello"


@pytest.mark.parametrize("data, status, reason", [
    (b"GET /environ HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", 400, b"Host given more than once"),
    (b"GET /environ HTTP/1.1\r\n\r\n", 400, b"without Host"),
    (b"FOO /environ HTTP/1.1\r\nHost: h\r\n\r\n", 501, b"'FOO' is not implemented"),
    (b"-BLARGH /environ HTTP/1.1\r\nHost: h\r\n\r\n", 501, b"'-BLARGH' is not implemented"),
    (b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, b"OPTIONS only"),
    (b"PUT s://]ufd/: HTTP/1.1\r\nHost: h\r\n\r\n", 400, b"neither a path nor an http(s) URI"),
    (b"GET /foo HTTP/2.0\r\nHost: h\r\n\r\n", 505, b"HTTP/2.0 is not supported"),
    (b"GET /environ HTTP/1.1\r\nHost: a b\r\n\r\n", 400, b"not a valid host[:port]"),
])
def test_what_the_front_end_refuses(server, data, status, reason, capfd):
    answer = exchange(server, data)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert reason in capfd.readouterr().err.encode()


def test_what_reaches_the_app_as_rfc_9112_says(server):
    # A higher 1.x minor version is served as 1.1 (RFC 9112 2.3), not refused.
    env = environ_of(exchange(server, b"GET /environ HTTP/1.2\r\nHost: h\r\nConnection: close\r\n\r\n"))
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    # A fragment never reaches the app, with or without a query.
    env = environ_of(exchange(server, b"GET /environ/foo#frag HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == ("/environ/foo", "")
    env = environ_of(exchange(server, b"GET /environ/foo?x=1#frag HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == ("/environ/foo", "x=1")
    # The absolute-form is accepted (RFC 9112 3.2.2); the path is what the app sees.
    env = environ_of(exchange(server, b"GET http://h:1/environ/abs?q HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == ("/environ/abs", "q")
    # Methods llhttp knows beyond the common ones reach the app: it decides.
    env = environ_of(exchange(server, b"PURGE /environ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
    assert env["REQUEST_METHOD"] == "PURGE"
    # HTTP/1.0 needs no Host.
    env = environ_of(exchange(server, b"GET /environ HTTP/1.0\r\n\r\n"))
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_transfer_encoding_in_http_1_0_is_served_then_the_connection_closes(server):
    # RFC 9112 6.1: faulty framing; the second request on the connection is never read.
    answer = exchange(server, b"POST /environ HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"3\r\nabc\r\n0\r\n\r\nGET /environ HTTP/1.1\r\nHost: h\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 ") == 1, answer
    assert environ_of(answer)["input"] == "abc"


def test_obsolete_line_folding_arrives_as_one_space(server):
    env = environ_of(exchange(server, b"GET /environ HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\nConnection: close\r\n\r\n"))
    assert env["HTTP_X_FOLDED"] == "a b"


@pytest.mark.parametrize("data, status", [
    (b"GET /environ HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400),        # 2.2: a bare CR
    (b"GET /environ HTTP/1.1\r\n Host: h\r\n\r\n", 400),                     # 2.2: whitespace before the first field
    (b"GET /environ HTTP/1.1\r\nHost : h\r\n\r\n", 400),                     # 5.1: whitespace before the colon
    (b"GET /environ HTTP/1.1\nHost: h\n\n", 400),                            # 2.2: lone LF (a MAY, not taken)
    (b"\r\n\r\nGET /environ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 200),  # 2.2: empty lines first
    (b"GET /environ/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 200),  # 3: >= 8000
    (b"get /environ HTTP/1.1\r\nHost: h\r\n\r\n", 501),                      # 3.1: methods are case-sensitive
])
def test_what_llhttp_enforces(server, data, status):
    assert exchange(server, data).startswith(f"HTTP/1.1 {status} ".encode())


# ---- behind a proxy: Forwarded and X-Forwarded-* from trusted peers only --------------------------------

def test_proxy_headers_from_a_trusted_peer(server):
    # The test client is 127.0.0.1, trusted by default (--forwarded-allow-ips 127.0.0.1,::1).
    env = environ_of(exchange(server, b"GET /environ HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7\r\n"
                                      b"X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"))
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("203.0.113.7", "https")
    # A chain: the client is the first address, from the proxy back, that is not a trusted proxy.
    env = environ_of(exchange(server, b"GET /environ HTTP/1.1\r\nHost: h\r\n"
                                      b"X-Forwarded-For: 198.51.100.1, 203.0.113.7, 127.0.0.1\r\nConnection: close\r\n\r\n"))
    assert env["REMOTE_ADDR"] == "203.0.113.7"
    # RFC 7239 Forwarded wins over X-Forwarded-*; IPv6 in brackets with a port.
    env = environ_of(exchange(server, b"GET /environ HTTP/1.1\r\nHost: h\r\n"
                                      b"Forwarded: for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.1\r\n"
                                      b"X-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n"))
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"], env["wsgi.url_scheme"]) == ("2001:db8:cafe::17", "4711", "https")
    # Unknown or malformed values change nothing.
    env = environ_of(exchange(server, b"GET /environ HTTP/1.1\r\nHost: h\r\nForwarded: for=unknown;proto=gopher\r\n"
                                      b"Connection: close\r\n\r\n"))
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("127.0.0.1", "http")


def test_proxy_headers_from_an_untrusted_peer_change_nothing():
    with manygil.Server("serve_apps.plain:app", workers=1, bind="127.0.0.1:0", forwarded_allow_ips=()) as untrusting:
        env = environ_of(exchange(untrusting, b"GET /environ HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7\r\n"
                                              b"X-Forwarded-Proto: https\r\nForwarded: for=1.2.3.4\r\n"
                                              b"Connection: close\r\n\r\n"))
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("127.0.0.1", "http")
    assert env["HTTP_X_FORWARDED_FOR"] == "203.0.113.7"  # the application still sees the header itself
