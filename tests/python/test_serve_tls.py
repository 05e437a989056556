"""manygil serve over TLS (issue 23): the C++ front end's OpenSSL sessions in its epoll loop, exercised
with real clients (Python's ssl + http.client, curl, raw sockets) against a self-signed certificate
made here with the openssl command, in process (manygil.Server) and through the command with its
supervisor."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

import manygil

APPS = Path(__file__).parent
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))  # serve_apps, importable by the workers too (they copy sys.path)

# curl and openssl without the sanitizer runtimes `make sanitize` preloads into Python (preloaded into
# them, they hang), as in test_serve.py.
TOOL_ENV = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="the openssl command is not installed (it makes the test certificates)")


def make_key_and_cert(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60, env=TOOL_ENV)
    return key, cert


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("certs")
    key, cert = make_key_and_cert(d, "server")
    other_key, _ = make_key_and_cert(d, "other")
    combined = d / "combined.pem"
    combined.write_bytes(cert.read_bytes() + key.read_bytes())
    encrypted = d / "encrypted.key"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:secret", "-out", str(encrypted)],
                   check=True, capture_output=True, timeout=60, env=TOOL_ENV)
    not_pem = d / "not.pem"
    not_pem.write_text("hello\n")
    return {"key": key, "cert": cert, "other_key": other_key, "combined": combined, "encrypted": encrypted,
            "not_pem": not_pem}


@pytest.fixture(scope="module")
def server(certs):
    with manygil.Server("serve_apps.plain:app", workers=2, bind="127.0.0.1:0", certfile=certs["cert"],
                        keyfile=str(certs["key"]), header_timeout=1.0, max_body=64 << 20) as s:
        yield s


def address(s: manygil.Server) -> tuple[str, int]:
    host, port = s.addresses[0].rsplit(":", 1)
    return host, int(port)


def client_context(certs, **changes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs["cert"]))
    for name, value in changes.items():
        setattr(ctx, name, value)
    return ctx


def connect(s, certs, ctx: ssl.SSLContext | None = None) -> http.client.HTTPSConnection:
    host, port = address(s)
    return http.client.HTTPSConnection("localhost", port, context=ctx or client_context(certs), timeout=30)


def get_json(conn: http.client.HTTPSConnection, path: str, **kw):
    conn.request("GET", path, **kw)
    r = conn.getresponse()
    assert r.status == 200
    return json.loads(r.read())


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# ---- what a client sees ----------------------------------------------------------------------------------

def test_https_environ_alpn_version_and_keep_alive(server, certs):
    assert server.tls
    before = server.stats()["connections_accepted"]
    ctx = client_context(certs)
    ctx.set_alpn_protocols(["http/1.1"])  # as http.client's own default context does
    conn = connect(server, certs, ctx)
    env = get_json(conn, "/environ?x=1")
    assert env["wsgi.url_scheme"] == "https"
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["SERVER_PROTOCOL"]) == ("/environ", "x=1", "HTTP/1.1")
    assert conn.sock.selected_alpn_protocol() == "http/1.1"
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    for i in range(3):  # the same connection
        assert get_json(conn, f"/item/{i}") == {"path": f"/item/{i}", "method": "GET"}
    conn.close()
    assert server.stats()["connections_accepted"] == before + 1


def test_a_trusted_proxy_still_sets_the_scheme(server, certs):
    conn = connect(server, certs)
    # 127.0.0.1 is a trusted proxy by default: its X-Forwarded-Proto wins over the connection's TLS.
    env = get_json(conn, "/environ", headers={"X-Forwarded-Proto": "http"})
    assert env["wsgi.url_scheme"] == "http"
    conn.close()


def test_tls_1_2_is_the_floor(server, certs):
    conn = connect(server, certs, client_context(certs, maximum_version=ssl.TLSVersion.TLSv1_2))
    assert get_json(conn, "/")["path"] == "/"
    assert conn.sock.version() == "TLSv1.2"
    conn.close()
    # A client that would speak TLS 1.1 at most (allowed to offer it at security level 0): the server
    # refuses with the protocol_version alert.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION|protocol version|no protocols"):
        with socket.create_connection(address(server), timeout=10) as raw, ctx.wrap_socket(raw):
            pass


def test_alpn_h2_only_is_refused_and_no_alpn_proceeds(server, certs):
    ctx = client_context(certs)
    ctx.set_alpn_protocols(["h2"])
    with pytest.raises(ssl.SSLError, match="no application protocol|NO_APPLICATION_PROTOCOL"):
        with socket.create_connection(address(server), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost"):
            pass
    ctx = client_context(certs)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(address(server), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as t:
        assert t.selected_alpn_protocol() == "http/1.1"
    with socket.create_connection(address(server), timeout=10) as raw, \
            client_context(certs).wrap_socket(raw, server_hostname="localhost") as t:
        assert t.selected_alpn_protocol() is None  # none offered: none chosen, and HTTP/1.1 is spoken
        t.sendall(b"GET /no-alpn HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := t.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200") and b'"/no-alpn"' in data


def test_post_bodies_and_a_slowly_read_file(server, certs, tmp_path):
    conn = connect(server, certs)
    payload = os.urandom(3 << 20)
    conn.request("POST", "/upload", body=payload)
    r = conn.getresponse()
    assert json.loads(r.read()) == {"length": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    # A file (wsgi.file_wrapper: no sendfile on TLS), read slowly, so that the server's writes stop
    # half way (WantWrite) and resume.
    f = tmp_path / "data.bin"
    content = os.urandom(3 << 20)
    f.write_bytes(content)
    conn.request("GET", f"/file?{f}")
    r = conn.getresponse()
    assert r.getheader("Content-Length") == str(len(content) - 10)
    got = bytearray()
    time.sleep(0.3)  # the socket buffers fill meanwhile
    while piece := r.read(256 << 10):
        got += piece
        time.sleep(0.01)
    assert bytes(got) == content[10:]
    # A 20 MiB generator (streamed, past the stream window) on the same connection.
    conn.request("GET", "/stream-big")
    r = conn.getresponse()
    body = r.read()
    assert len(body) == 20 << 20 and body[:65536] == b"\0" * 65536 and body[-1] == 319 % 256
    conn.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (the bootstrap installs it)")
def test_curl(server, certs, tmp_path):
    url = f"https://localhost:{address(server)[1]}"
    base = ["curl", "-sS", "--cacert", str(certs["cert"]), "--resolve", f"localhost:{address(server)[1]}:127.0.0.1"]
    # Two requests on one connection.
    out = subprocess.run([*base, "-v", f"{url}/one", f"{url}/two"], capture_output=True, check=True, timeout=60,
                         env=TOOL_ENV)
    assert out.stdout == b'{"path": "/one", "method": "GET"}{"path": "/two", "method": "GET"}'
    assert b"Re-using existing connection" in out.stderr and b"ALPN: server accepted http/1.1" in out.stderr
    out = subprocess.run([*base, "--data-binary", "form=1", f"{url}/upload"], capture_output=True, check=True,
                         timeout=60, env=TOOL_ENV)
    assert json.loads(out.stdout)["sha256"] == hashlib.sha256(b"form=1").hexdigest()
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(1_500_000))
    # Chunked, with Expect: 100-continue (curl waits for the interim response).
    out = subprocess.run([*base, "-H", "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
                          "--data-binary", f"@{upload}", f"{url}/upload"], capture_output=True, check=True, timeout=60,
                         env=TOOL_ENV)
    assert json.loads(out.stdout) == {"length": 1_500_000, "sha256": hashlib.sha256(upload.read_bytes()).hexdigest()}
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 << 20))
    out = subprocess.run([*base, f"{url}/file?{big}"], capture_output=True, check=True, timeout=60, env=TOOL_ENV)
    assert out.stdout == big.read_bytes()[10:]
    out = subprocess.run([*base, "-o", "/dev/null", "-w", "%{http_code}", "-I", f"{url}/x"],
                         capture_output=True, check=True, timeout=60, env=TOOL_ENV)
    assert out.stdout == b"200"


def test_concurrent_clients(server, certs):
    errors: list[str] = []
    ctx = client_context(certs)

    def client(n: int) -> None:
        try:
            conn = connect(server, certs, ctx)
            for i in range(20):
                if i % 5 == 4:  # now and then a new connection (a new handshake)
                    conn.close()
                    conn = connect(server, certs, ctx)
                path = f"/c{n}/{i}"
                got = get_json(conn, path)
                if got != {"path": path, "method": "GET"}:
                    errors.append(f"{path}: {got}")
            conn.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors


def test_several_io_threads_share_one_context(certs):
    with manygil.Server("serve_apps.plain:app", workers=2, bind="127.0.0.1:0", io_threads=2,
                        certfile=certs["cert"], keyfile=certs["key"]) as s:
        errors: list[str] = []

        def client(n: int) -> None:
            try:
                for i in range(10):
                    conn = connect(s, certs)  # a handshake each: the connections spread over both threads
                    if get_json(conn, f"/t{n}/{i}")["path"] != f"/t{n}/{i}":
                        errors.append(f"/t{n}/{i}")
                    conn.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"client {n}: {e!r}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        assert s.stats()["connections_accepted"] == 40


# ---- what the server does with clients that are not ----------------------------------------------------

def test_plain_http_on_the_tls_port_is_answered_400_and_closed(server, capfd):
    start = time.monotonic()
    with socket.create_connection(address(server), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert time.monotonic() - start < 5
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in data
    assert b"plain HTTP request on a TLS port" in data
    assert wait_until(lambda: "plain HTTP request on a TLS port" in capfd.readouterr().err)


def test_a_silent_client_is_closed_after_header_timeout(server):
    start = time.monotonic()
    with socket.create_connection(address(server), timeout=15) as s:
        assert s.recv(1024) == b""  # closed, nothing said: there is no TLS session to say it in
    assert 0.9 < time.monotonic() - start < 6  # header_timeout=1.0, swept every 200 ms


def client_hello(certs) -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context(certs).wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_broken_handshakes_do_not_hurt_the_server(server, certs):
    open_before = server.stats()["connections_open"]
    hello = client_hello(certs)
    for data in (hello[:len(hello) // 2], hello, b"\x16\x03\x01\xff\xff" + b"\0" * 100, os.urandom(300), b""):
        with socket.create_connection(address(server), timeout=10) as s:
            if data:
                s.sendall(data)
            time.sleep(0.05)
    # A client that hangs up with its whole hello answered, and one that resets the connection.
    with socket.create_connection(address(server), timeout=10) as s:
        s.sendall(hello)
        assert s.recv(5)[:1] == b"\x16"  # the server's handshake records
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")  # close with a reset
    conn = connect(server, certs)
    assert get_json(conn, "/after")["path"] == "/after"
    conn.close()
    assert wait_until(lambda: server.stats()["connections_open"] <= open_before)


def test_a_client_that_leaves_mid_response(server, certs, tmp_path):
    f = tmp_path / "data.bin"
    f.write_bytes(os.urandom(8 << 20))
    open_before = server.stats()["connections_open"]
    conn = connect(server, certs)
    conn.request("GET", f"/file?{f}")
    r = conn.getresponse()
    r.read(100_000)
    conn.sock.close()  # without close_notify, the rest unread
    conn.close()
    assert wait_until(lambda: server.stats()["connections_open"] <= open_before)
    conn = connect(server, certs)
    assert get_json(conn, "/next")["path"] == "/next"
    conn.close()


# ---- certificates and keys ----------------------------------------------------------------------------

def test_bad_certificate_and_key_files_are_named(certs, tmp_path):
    kw = {"workers": 1, "bind": "127.0.0.1:0"}
    missing = tmp_path / "missing.pem"
    with pytest.raises(FileNotFoundError, match=f"certfile {re.escape(str(missing))}"):
        manygil.Server("serve_apps.plain:app", certfile=missing, keyfile=certs["key"], **kw)
    with pytest.raises(FileNotFoundError, match=f"keyfile {re.escape(str(missing))}"):
        manygil.Server("serve_apps.plain:app", certfile=certs["cert"], keyfile=missing, **kw)
    with pytest.raises(ValueError, match="keyfile needs certfile"):
        manygil.Server("serve_apps.plain:app", keyfile=certs["key"], **kw)
    with pytest.raises(ValueError, match=f"certfile {re.escape(str(certs['not_pem']))}: no PEM certificate"):
        manygil.Server("serve_apps.plain:app", certfile=certs["not_pem"], keyfile=certs["key"], **kw)
    with pytest.raises(ValueError, match=f"keyfile {re.escape(str(certs['not_pem']))}: no PEM private key"):
        manygil.Server("serve_apps.plain:app", certfile=certs["cert"], keyfile=certs["not_pem"], **kw)
    with pytest.raises(ValueError, match=f"keyfile {re.escape(str(certs['other_key']))} does not hold the private "
                                         f"key of the certificate in {re.escape(str(certs['cert']))}"):
        manygil.Server("serve_apps.plain:app", certfile=certs["cert"], keyfile=certs["other_key"], **kw)
    # A key with a passphrase is refused (never prompted for).
    with pytest.raises(ValueError, match="passphrase is not supported"):
        manygil.Server("serve_apps.plain:app", certfile=certs["cert"], keyfile=certs["encrypted"], **kw)
    # The front end's own check, past the Python one (a file that is a directory).
    with pytest.raises(IsADirectoryError, match=f"certfile {re.escape(str(tmp_path))}"):
        manygil.Server("serve_apps.plain:app", certfile=tmp_path, **kw)


def test_the_key_may_be_in_the_certificate_file(certs):
    with manygil.Server("serve_apps.plain:app", workers=1, bind="127.0.0.1:0", certfile=certs["combined"]) as s:
        conn = connect(s, certs)
        assert get_json(conn, "/combined")["path"] == "/combined"
        conn.close()


# ---- the command, with its supervisor ---------------------------------------------------------------------

def serve_command(certs, *extra: str) -> tuple[subprocess.Popen, list[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "manygil", "serve", "serve_apps.plain:app", "--workers", "1",
                             "--bind", "127.0.0.1:0", "--certfile", str(certs["cert"]), *extra],
                            cwd=APPS, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    while True:
        line = proc.stderr.readline()
        assert line, lines
        lines.append(line)
        if m := re.search(r" on https://\S+:(\d+)", line):
            break
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    return proc, lines, int(m.group(1))


def test_the_serve_command_serves_https_and_restarts_with_it(certs):
    proc, lines, port = serve_command(certs, "--keyfile", str(certs["key"]), "--access-log")
    try:
        ctx = client_context(certs)

        def pid() -> int | None:
            conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)
            try:
                return get_json(conn, "/pid")["pid"]
            except (OSError, http.client.HTTPException):
                return None  # between two server processes
            finally:
                conn.close()

        first = pid()
        assert first is not None
        proc.send_signal(signal.SIGHUP)  # a graceful restart: the new server process must be seen ready
        assert wait_until(lambda: pid() not in (first, None), timeout=60), "".join(lines)
        assert not any("did not start" in line for line in lines), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert wait_until(lambda: any('"GET /pid HTTP/1.1" 200' in line for line in lines))  # the access log
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_serve_command_names_a_bad_key_and_stops(certs):
    out = subprocess.run([sys.executable, "-m", "manygil", "serve", "serve_apps.plain:app", "--workers", "1",
                          "--bind", "127.0.0.1:0", "--certfile", str(certs["cert"]), "--keyfile",
                          str(certs["other_key"])], cwd=APPS, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert f"manygil serve: keyfile {certs['other_key']} does not hold the private key" in out.stderr
    out = subprocess.run([sys.executable, "-m", "manygil", "serve", "serve_apps.plain:app", "--keyfile",
                          str(certs["key"])], cwd=APPS, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--keyfile needs --certfile" in out.stderr
