"""manygil serve with ASGI 3.0 applications (plain, Starlette, Django's ASGI handler, Quart): each worker
interpreter runs an asyncio event loop behind the C++ front end. Real clients (http.client, raw
sockets, httpx) over loopback; no times asserted (concurrency is shown by a rendezvous)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import manygil
from manygil._serve import AppLoadError

from served import Served, address, raw

APPS = Path(__file__).parent
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))  # serve_apps, importable by the workers too (they copy sys.path)


def request(server, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection(*address(server), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def plain():
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", max_body=1 << 20) as server:
        yield server


def test_auto_detects_asgi_and_wsgi():
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0") as server:
        assert server.interface == "asgi"
    with manygil.Server("serve_apps.plain:app", workers=1, bind="127.0.0.1:0") as server:
        assert server.interface == "wsgi"
        assert request(server, "GET", "/")[0] == 200


def test_scope_per_spec(plain):
    status, _, body = request(plain, "GET", "/scope/caf%C3%A9%20x?q=1&r=%20", headers={"X-Custom": "Yes"})
    assert status == 200
    scope = json.loads(body)
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0" and scope["asgi"]["spec_version"]
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope/café x"
    assert scope["raw_path"] == "/scope/caf%C3%A9%20x"
    assert scope["query_string"] == "q=1&r=%20"
    assert scope["root_path"] == ""
    assert ["x-custom", "Yes"] in scope["headers"]  # names lower-cased, values as sent
    assert scope["types"] == {"raw_path": "bytes", "query_string": "bytes", "header": "bytes"}
    host, port = address(plain)
    assert scope["server"] == [host, port]
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    # The lifespan state, shallow-copied into each request's scope.
    assert scope["state"]["started"] is True and scope["state"]["worker_pid"] == os.getpid()


def test_http10_and_root_path():
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", root_path="/api") as server:
        reply = raw(server, b"GET /scope HTTP/1.0\r\n\r\n")
        scope = json.loads(reply.split(b"\r\n\r\n", 1)[1])
        assert scope["http_version"] == "1.0"
        assert scope["root_path"] == "/api" and scope["path"] == "/api/scope"


def test_body_echo_and_streaming(plain):
    body = os.urandom(300_000)
    status, _, got = request(plain, "POST", "/echo", body=body)
    assert status == 200 and got == body
    status, headers, got = request(plain, "GET", "/stream?4")
    assert status == 200 and headers.get("transfer-encoding") == "chunked"
    assert got == b"part 0\npart 1\npart 2\npart 3\n"
    # 10 MiB through a 1 MiB window: send() waits for the client instead of blocking the loop.
    status, _, got = request(plain, "GET", "/big?40")
    assert status == 200 and len(got) == 40 * 256 * 1024 and set(got) == {ord("x")}


def test_head_gets_no_body(plain):
    status, headers, got = request(plain, "HEAD", "/pid")
    assert status == 200 and got == b"" and int(headers["content-length"]) > 0


def test_many_slow_requests_in_flight_on_one_worker(plain):
    # /gather answers only once 12 requests wait in it at the same time: the one worker's loop must
    # run them concurrently (a serial worker would answer "not concurrent" after a minute).
    with ThreadPoolExecutor(12) as ex:
        results = list(ex.map(lambda _: request(plain, "GET", "/gather?12", timeout=90), range(12)))
    assert [(s, b) for s, _, b in results] == [(200, b"met")] * 12


def test_application_errors(plain, capfd):
    status, _, body = request(plain, "GET", "/raise-before")
    assert status == 500 and b"Traceback" not in body
    status, _, _ = request(plain, "GET", "/no-response")
    assert status == 500
    status, _, _ = request(plain, "GET", "/bad-message")
    assert status == 500
    # After the head went out, the connection is cut: the client sees an incomplete body.
    conn = http.client.HTTPConnection(*address(plain), timeout=30)
    conn.request("GET", "/raise-after")
    r = conn.getresponse()
    assert r.status == 200
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    conn.close()
    assert request(plain, "GET", "/pid")[0] == 200  # the worker goes on
    err = capfd.readouterr().err
    assert "ValueError: broken before the response" in err
    assert "returned without sending a response" in err
    assert "status" in err and "TypeError" in err
    assert "cut short" in err


def test_disconnect_reaches_the_application(plain):
    with socket.create_connection(address(plain), timeout=10) as s:
        s.sendall(b"GET /disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(600):
        status, _, body = request(plain, "GET", "/seen")
        if json.loads(body).get("disconnect"):
            break
        threading.Event().wait(0.05)
    assert json.loads(body) == {"disconnect": "http.disconnect"}


def test_receive_and_send_are_awaitables_as_coroutines_are(plain):
    # The C awaitables behind receive() and send(): a task can be made of one, a finished one cannot
    # be awaited again, one never awaited does nothing, a waiting one can be cancelled, and one still
    # waiting when the response completes says http.disconnect.
    status, _, body = request(plain, "POST", "/awaitables", body=b"payload")
    assert status == 200
    assert json.loads(body) == {"marked": True, "bad call": "ASGI receive() takes no arguments", "coroutine": True,
                                "body": "payload", "reawaited": "RuntimeError", "cancelled": True}
    for _ in range(600):
        seen = request(plain, "GET", "/after-response")[2]
        if seen:
            break
        threading.Event().wait(0.05)
    assert seen == b"http.disconnect"


def test_timeout_cancels_the_task():
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", timeout=0.3) as server:
        status, _, _ = request(server, "GET", "/sleep?30")
        assert status == 504
        assert request(server, "GET", "/sleep?0")[0] == 200  # the loop goes on


def test_front_end_refuses_bad_input(plain):
    assert raw(plain, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").startswith(
        b"HTTP/1.1 400")
    assert raw(plain, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n").startswith(
        b"HTTP/1.1 413")


def test_lifespan_unsupported_is_served_anyway():
    with manygil.Server("serve_apps.asgi_plain:no_lifespan", workers=2, bind="127.0.0.1:0") as server:
        assert request(server, "GET", "/")[2] == b"no lifespan: False"


@pytest.mark.parametrize("app, message", [("failing_startup", "the database is not there"),
                                          ("raising_startup", "startup blew up")])
def test_lifespan_startup_failure_stops_the_server(app, message):
    with pytest.raises(AppLoadError, match=message):
        manygil.Server(f"serve_apps.asgi_plain:{app}", workers=2, bind="127.0.0.1:0")


def test_lifespan_startup_failure_exits_the_command():
    proc = __import__("subprocess").run([sys.executable, "-m", "manygil", "serve", "serve_apps.asgi_plain:failing_startup",
                                         "--workers", "1", "--bind", "127.0.0.1:0"], cwd=APPS, capture_output=True,
                                        text=True, timeout=120)
    assert proc.returncode != 0
    assert "the database is not there" in proc.stderr



def test_sigterm_finishes_requests_in_flight_and_runs_lifespan_shutdown(tmp_path):
    marker = tmp_path / "shutdown"
    env = dict(os.environ, ASGI_SHUTDOWN_MARKER=str(marker))
    with Served("serve_apps.asgi_plain:app", "--access-log", env=env) as served:
        assert any("ASGI" in line for line in served.lines)
        result = {}

        def slow():
            result["reply"] = served.request("GET", "/sleep?1.5")

        t = threading.Thread(target=slow)
        t.start()
        for _ in range(200):  # until the access log... has not got it: wait for the request to be in flight
            if served.request("GET", "/pid")[0] == 200:
                break
        threading.Event().wait(0.3)
        served.proc.send_signal(signal.SIGTERM)
        t.join(60)
        assert served.stop() == 0
    assert result["reply"][0] == 200 and result["reply"][2] == b"slept"
    assert marker.read_text().count("shutdown") == 2  # both workers ran lifespan shutdown


def test_starlette():
    httpx = pytest.importorskip("httpx")
    with manygil.Server("serve_apps.starlette_app:app", workers=2, bind="127.0.0.1:0") as server:
        host, port = address(server)
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as client:
            page = client.get("/")
            assert page.status_code == 200 and "<li>ONE</li>" in page.text
            assert client.get("/hello").text == "Hello, world!"
            data = client.post("/json?a=1").json()
            assert data["method"] == "POST" and data["query"] == {"a": "1"} and isinstance(data["worker"], int)
            body = os.urandom(200_000)
            echoed = client.post("/echo", content=body)
            assert echoed.content == body and echoed.headers["x-length"] == str(len(body))
            with client.stream("GET", "/stream?n=4") as r:
                assert list(r.iter_lines()) == [f"chunk {i}" for i in range(4)]
            for i in range(4):
                assert client.get(f"/background?what=w{i}").text == "queued"
            seen: set[str] = set()
            for _ in range(200):  # each worker reports its own
                seen |= set(client.get("/done").json())
                if len(seen) == 4:
                    break
            assert seen == {"w0", "w1", "w2", "w3"}


def test_django_asgi():
    with manygil.Server("serve_apps.django_asgi_app:application", workers=2, bind="127.0.0.1:0") as server:
        assert server.interface == "asgi"
        status, _, body = request(server, "GET", "/?name=ada")
        assert status == 200 and body == b"hello from django asgi, ada"
        status, _, body = request(server, "POST", "/echo/x1", body=b"payload")
        assert status == 200 and json.loads(body) == {"method": "POST", "body": "payload", "name": "x1"}
        assert request(server, "GET", "/slow")[2] == b"slow async view"
        assert request(server, "GET", "/missing")[0] == 404


def test_quart():
    with manygil.Server("serve_apps.quart_app:app", workers=2, bind="127.0.0.1:0") as server:
        assert server.interface == "asgi"
        assert request(server, "GET", "/")[2] == b"hello from quart"
        status, _, body = request(server, "POST", "/json", body=b'{"a": [1, 2]}',
                                  headers={"Content-Type": "application/json"})
        assert status == 200 and json.loads(body) == {"got": {"a": [1, 2]}, "method": "POST"}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes the test certificate")
def test_tls_scheme_and_proxy_headers(tmp_path):
    import hashlib

    from test_serve_tls import make_key_and_cert

    key, cert = make_key_and_cert(tmp_path, "server")
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", certfile=cert,
                        keyfile=key) as server:
        conn = http.client.HTTPSConnection(*address(server), timeout=30,
                                           context=ssl.create_default_context(cafile=str(cert)))
        conn.request("GET", "/scope")
        scope = json.loads(conn.getresponse().read())
        assert scope["scheme"] == "https"
        # A body over TLS streams in pieces too, intact.
        body = os.urandom(5 << 20)
        conn.request("POST", "/upload", body=body)
        got = json.loads(conn.getresponse().read())
        conn.close()
        assert got["total"] == len(body) and got["pieces"] > 1
        assert got["sha256"] == hashlib.sha256(body).hexdigest()
    # From a trusted proxy (127.0.0.1 by default), X-Forwarded-For / -Proto set client and scheme.
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0") as server:
        _, _, body = request(server, "GET", "/scope", headers={"X-Forwarded-For": "203.0.113.9",
                                                               "X-Forwarded-Proto": "https"})
        scope = json.loads(body)
        assert scope["client"] == ["203.0.113.9", 0] and scope["scheme"] == "https"


def test_access_log_and_stats(capfd):
    with manygil.Server("serve_apps.asgi_plain:app", workers=2, bind="127.0.0.1:0", access_log=True) as server:
        for _ in range(5):
            assert request(server, "GET", "/pid?x=1")[0] == 200
        stats = server.stats()
        assert stats["requests"] >= 5 and stats["responses"] >= 5 and stats["pending"] == 0
        assert len(stats["pool"]["workers"]) == 2
    err = capfd.readouterr().err
    assert err.count('"GET /pid?x=1 HTTP/1.1" 200') == 5


def test_forced_interface():
    # --interface wsgi on an ASGI application: WSGI calls it with (environ, start_response), which
    # returns a coroutine, not an iterable of bytes: 500, not a hang.
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", interface="wsgi") as server:
        assert server.interface == "wsgi"
        assert request(server, "GET", "/pid")[0] == 500
    with pytest.raises(ValueError, match="interface"):
        manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", interface="rsgi")


def test_lifespan_modes():
    # on: an application without lifespan support cannot start; off: lifespan never runs (no state).
    with pytest.raises(AppLoadError, match="does not support the ASGI lifespan protocol"):
        manygil.Server("serve_apps.asgi_plain:no_lifespan", workers=1, bind="127.0.0.1:0", lifespan="on")
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", lifespan="off") as server:
        scope = json.loads(request(server, "GET", "/scope")[2])
        assert scope["state"] == {}  # the app's own default: the scope has no "state"
    with pytest.raises(ValueError, match="lifespan"):
        manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", lifespan="sometimes")


def test_pipelined_requests_and_http10_streaming(plain):
    with socket.create_connection(address(plain), timeout=30) as s:
        s.sendall(b"GET /sleep?0.2 HTTP/1.1\r\nHost: x\r\n\r\nGET /pid HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /sleep?0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    # Answered in order, though the first takes longest.
    assert data.count(b"HTTP/1.1 200") == 3
    first = data.index(b"\r\n\r\n") + 4
    assert data[first:first + 5] == b"slept" and data.endswith(b"slept")
    # HTTP/1.0 has no chunked encoding: a streamed body goes until the connection closes.
    reply = raw(plain, b"GET /stream?3 HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200") and b"chunked" not in reply
    assert reply.endswith(b"part 0\npart 1\npart 2\n")


def _recv_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_body_streams_in_with_more_body(plain):
    # A body sent in three writes, with pauses, reaches the application in pieces: more_body True on
    # each until the last.
    with socket.create_connection(address(plain), timeout=30) as s:
        s.sendall(b"POST /pieces HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\nConnection: close\r\n\r\n" + b"a" * 10)
        for _ in range(2):
            threading.Event().wait(0.2)  # let the application take the piece before the next one
            s.sendall(b"b" * 10)
        reply = _recv_all(s)
    assert reply.startswith(b"HTTP/1.1 200"), reply
    pieces = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert sum(n for n, _ in pieces) == 30 and len(pieces) >= 2, pieces
    assert [more for _, more in pieces] == [True] * (len(pieces) - 1) + [False]


def test_a_50_mib_upload_is_read_piece_by_piece_with_memory_bounded():
    import hashlib

    size, piece = 50 << 20, os.urandom(1 << 20)
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", max_body=64 << 20) as server:
        with socket.create_connection(address(server), timeout=60) as s:
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
            digest = hashlib.sha256()
            for _ in range(size // len(piece)):
                s.sendall(piece)
                digest.update(piece)
            reply = _recv_all(s)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    got = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert got["total"] == size and got["sha256"] == digest.hexdigest()
    assert got["pieces"] > 1 and got["biggest"] < size
    # Buffered whole, the body alone would have grown the process by 50 MiB (twice: C++ and bytes).
    # Not under `make sanitize`: ASan's quarantine keeps freed memory out of reuse (174 MiB grown there).
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        assert got["grew"] < 20 << 20, got


def test_a_body_over_max_body_mid_stream_is_refused_and_the_application_hears_disconnect(plain):
    # Chunked, so the front end learns the size only as it arrives: 413 once it passes --max-body.
    with socket.create_connection(address(plain), timeout=30) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n" % (64 << 10) + b"z" * (64 << 10) + b"\r\n"
        try:
            for _ in range(40):  # 2.5 MiB > 1 MiB
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = _recv_all(s)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert request(plain, "GET", "/pid")[0] == 200  # the worker goes on


def test_a_client_leaving_mid_upload_is_heard_as_http_disconnect(plain):
    with socket.create_connection(address(plain), timeout=30) as s:
        s.sendall(b"POST /upload?left HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"u" * 5000)
        threading.Event().wait(0.2)  # let the application take the first piece
    for _ in range(300):
        seen = json.loads(request(plain, "GET", "/seen")[2])
        if "upload?left" in seen:
            break
        threading.Event().wait(0.05)
    assert seen.get("upload?left") == ["http.disconnect", 5000]


def test_a_slow_upload_does_not_stall_other_requests(plain):
    # The one worker's loop awaits the upload's next piece without blocking: other requests are
    # answered meanwhile, then the upload completes.
    with socket.create_connection(address(plain), timeout=30) as s:
        s.sendall(b"POST /pieces HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\nConnection: close\r\n\r\n" + b"x" * 10)
        for _ in range(5):
            assert request(plain, "GET", "/pid")[0] == 200
        s.sendall(b"y" * 10)
        reply = _recv_all(s)
    pieces = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert sum(n for n, _ in pieces) == 20 and pieces[-1][1] is False


def test_starlette_request_stream():
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("starlette")

    def chunks():
        for _ in range(32):
            yield b"s" * (64 << 10)

    with manygil.Server("serve_apps.starlette_app:app", workers=1, bind="127.0.0.1:0") as server:
        host, port = address(server)
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as client:
            got = client.post("/upload", content=chunks()).json()  # chunked
            assert got["total"] == 32 * (64 << 10) and got["pieces"] >= 1
            got = client.post("/upload", content=b"t" * 3_000_000).json()
            assert got["total"] == 3_000_000 and got["pieces"] > 1
