"""manygil serve: WSGI applications (plain, Flask with a Jinja template, Django) on own-GIL workers
behind the C++ HTTP/1.1 front end, exercised through real HTTP clients (http.client, raw sockets,
curl) over loopback."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import manygil
from served import address, raw

APPS = Path(__file__).parent
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))  # serve_apps, importable by the workers too (they copy sys.path)


def connect(server: manygil.Server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(*address(server), timeout=30)


def request(server, method, path, body=None, headers=None):
    conn = connect(server)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """Reads `count` Content-Length framed responses from `sock`."""
    data, out = b"", []
    while len(out) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            length = int(re.search(rb"Content-Length: (\d+)", data[:end]).group(1))
            if len(data) >= end + 4 + length:
                out.append(data[:end + 4 + length])
                data = data[end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return out


@pytest.fixture(scope="module")
def plain():
    with manygil.Server("serve_apps.plain:app", workers=2, bind="127.0.0.1:0", max_body=64 << 20,
                        header_timeout=1.0) as server:
        yield server


@pytest.fixture(scope="module")
def single():
    """One worker and a per-request timeout: for ordering, interrupts and worker state."""
    with manygil.Server("serve_apps.plain:app", workers=1, bind="127.0.0.1:0", timeout=0.5) as server:
        yield server


# ---- plain WSGI --------------------------------------------------------------------------------------

def test_serves_and_keeps_connections_alive(plain):
    before = plain.stats()["connections_accepted"]
    conn = connect(plain)
    for i in range(5):
        conn.request("GET", f"/item/{i}")
        r = conn.getresponse()
        assert r.status == 200
        assert json.loads(r.read()) == {"path": f"/item/{i}", "method": "GET"}
        assert r.getheader("Connection") == "keep-alive"
        assert r.getheader("Server") == "manygil"
        assert r.getheader("Date").endswith("GMT")
    conn.close()
    assert plain.stats()["connections_accepted"] == before + 1


def test_environ_follows_pep_3333(plain):
    status, _, body = request(plain, "POST", "/environ?a=1&b=%20", body=b"payload",
                              headers={"Content-Type": "text/x-thing", "X-Custom": "v", "X_Spoofed": "no",
                                       "Accept": "a"})
    assert status == 200
    env = json.loads(body)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/environ"
    assert env["SCRIPT_NAME"] == ""
    assert env["QUERY_STRING"] == "a=1&b=%20"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["CONTENT_TYPE"] == "text/x-thing"
    assert env["CONTENT_LENGTH"] == "7"
    assert env["HTTP_X_CUSTOM"] == "v"
    assert "HTTP_X_SPOOFED" not in env  # a header with "_" could pose as one with "-"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_PORT"] == plain.addresses[0].rsplit(":", 1)[1]
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is False and env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["input"] == "payload"


def test_percent_decoded_path_and_repeated_headers(plain):
    data = raw(plain, b"GET /environ/%C3%A9%2Fx HTTP/1.1\r\nHost: h:1\r\nX-Many: a\r\nX-Many: b\r\n"
                      b"Cookie: c=1\r\nCookie: d=2\r\nConnection: close\r\n\r\n")
    env = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert env["PATH_INFO"] == "/environ/\xc3\xa9/x"  # bytes as latin-1 (PEP 3333)
    assert env["HTTP_X_MANY"] == "a, b"
    assert env["HTTP_COOKIE"] == "c=1; d=2"
    assert env["SERVER_NAME"] == "h"


def test_wsgiref_validator_sees_no_violation():
    with manygil.Server("serve_apps.plain:validated", workers=1, bind="127.0.0.1:0") as server:
        for method, path, body in [("GET", "/x", None), ("POST", "/upload", b"abc"), ("GET", "/write", None),
                                   ("HEAD", "/x", None), ("GET", "/empty", None)]:
            status, _, _ = request(server, method, path, body=body)
            assert status in (200, 204), (method, path)
        assert server.stats()["pool"]["workers"][0]["tasks_failed"] == 0


def test_write_callable_and_close(single):
    status, _, body = request(single, "GET", "/write")
    assert (status, body) == (200, b"written then iterated")
    _, _, closed = request(single, "GET", "/closed")
    assert "/write" in json.loads(closed)


def test_pipelined_requests_are_answered_in_order(single):
    host, port = single.addresses[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"".join(f"GET /p{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode() for i in range(16)))
        responses = read_responses(s, 16)
    assert [json.loads(r.split(b"\r\n\r\n", 1)[1])["path"] for r in responses] == [f"/p{i}" for i in range(16)]


def test_chunked_upload_and_100_continue(plain):
    host, port = plain.addresses[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n")
        (r,) = read_responses(s, 1)
        assert json.loads(r.split(b"\r\n\r\n", 1)[1]) == {"length": 7, "sha256": hashlib.sha256(b"abcdefg").hexdigest()}
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        (r,) = read_responses(s, 1)
        assert json.loads(r.split(b"\r\n\r\n", 1)[1])["length"] == 5


def test_50_mb_upload(plain):
    data = os.urandom(1 << 20) * 50
    status, _, body = request(plain, "POST", "/upload", body=data)
    assert status == 200
    assert json.loads(body) == {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# curl without the sanitizer runtimes `make sanitize` preloads into Python (preloaded into curl, they
# hang it).
CURL_ENV = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (the bootstrap installs it)")
def test_curl(plain, tmp_path):
    url = f"http://{plain.addresses[0]}"
    out = subprocess.run(["curl", "-sS", f"{url}/hello"], capture_output=True, check=True, timeout=60, env=CURL_ENV)
    assert json.loads(out.stdout) == {"path": "/hello", "method": "GET"}
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(300_000))
    # Chunked, and with Expect: 100-continue (curl waits for the interim response).
    out = subprocess.run(["curl", "-sS", "-H", "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
                          "--data-binary", f"@{upload}", f"{url}/upload"], capture_output=True, check=True, timeout=60,
                         env=CURL_ENV)
    assert json.loads(out.stdout)["sha256"] == hashlib.sha256(upload.read_bytes()).hexdigest()
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-I", f"{url}/x"],
                         capture_output=True, check=True, timeout=60, env=CURL_ENV)
    assert out.stdout == b"200"


def test_file_wrapper_is_sent_from_the_file_position(plain, tmp_path):
    f = tmp_path / "data.bin"
    content = os.urandom(3 << 20)
    f.write_bytes(content)
    status, headers, body = request(plain, "GET", f"/file?{f}")
    assert status == 200
    assert body == content[10:]
    assert headers["Content-Length"] == str(len(content) - 10)
    status, headers, body = request(plain, "HEAD", f"/file?{f}")
    assert (status, body, headers["Content-Length"]) == (200, b"", str(len(content) - 10))


# ---- bad input and application errors ----------------------------------------------------------------

@pytest.mark.parametrize("data, status", [
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    (b"POST /upload HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", 413),
    (b"POST /upload HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST /upload HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST /upload HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
])
def test_bad_input_is_answered_by_the_front_end(plain, data, status, capfd):
    done = plain.stats()["pool"]["workers"]
    before = sum(w["tasks_done"] for w in done)
    answer = raw(plain, data)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b"Connection: close" in answer
    assert f"manygil serve: {status} ".encode() in capfd.readouterr().err.encode()
    after = sum(w["tasks_done"] for w in plain.stats()["pool"]["workers"])
    assert after == before  # never reached a worker
    assert request(plain, "GET", "/still-fine")[0] == 200


def test_slow_client_holds_no_worker(single):
    host, port = single.addresses[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as slow:
        slow.sendall(b"GET /slow HTTP/1.1\r\nHost: h\r\nX-Partial: ")  # and nothing more for now
        for i in range(20):  # the one worker serves others meanwhile
            assert request(single, "GET", f"/other{i}")[0] == 200
        slow.sendall(b"done\r\n\r\n")
        (r,) = read_responses(slow, 1)
        assert json.loads(r.split(b"\r\n\r\n", 1)[1])["path"] == "/slow"


def test_a_client_too_slow_gets_408(plain):
    answer = raw(plain, b"GET / HTTP/1.1\r\nHost:", timeout=10)  # header_timeout is 1 s here
    assert answer.startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize("path, why", [
    ("/raise", "ValueError: the application failed on purpose"),
    ("/bad-status", "is not of the form '200 OK'"),
    ("/bad-header", "has a line break"),
    ("/str-body", "item 0 is a str, not bytes"),
    ("/no-start", "without calling start_response()"),
])
def test_application_errors_are_500_with_the_traceback_logged(single, path, why, capfd):
    status, _, body = request(single, "GET", path)
    assert (status, body) == (500, b"Internal Server Error\n")
    err = capfd.readouterr().err
    assert f"manygil serve: 500 for GET {path}" in err
    assert why in err
    if path in ("/raise", "/bad-status", "/bad-header"):  # raised in the application's own frames
        assert "Traceback (most recent call last)" in err and "serve_apps/plain.py" in err
    assert request(single, "GET", "/after")[0] == 200  # the worker goes on


def test_a_request_past_its_timeout_is_interrupted_and_the_worker_goes_on(single, capfd):
    status, _, _ = request(single, "GET", "/spin")
    assert status == 504
    assert "ran past its timeout" in capfd.readouterr().err
    status, _, body = request(single, "GET", "/after-spin")
    assert status == 200 and json.loads(body)["path"] == "/after-spin"


# ---- lifecycle ------------------------------------------------------------------------------------------

def test_graceful_stop_answers_every_request_in_flight():
    server = manygil.Server("serve_apps.plain:app", workers=2, bind="127.0.0.1:0")
    address = server.addresses[0]
    results = []

    def one(i):
        results.append(request(server, "GET", "/sleep?0.5"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while server.stats()["requests"] < 4:
        time.sleep(0.01)
    server.stop(grace=30)
    for t in threads:
        t.join()
    assert [r[0] for r in results] == [200] * 4
    assert all(r[1]["Connection"] == "close" for r in results)
    host, port = address.rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=5)


def test_a_thousand_keep_alive_connections(plain):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2600:
        if hard != resource.RLIM_INFINITY and hard < 2600:
            pytest.skip(f"needs 2,600 file descriptors (client and server ends); the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2600, hard))
    host, port = plain.addresses[0].rsplit(":", 1)
    socks = [socket.create_connection((host, int(port)), timeout=60) for _ in range(1000)]
    try:
        for round_ in range(2):  # the same connections, twice: they were kept alive
            for i, s in enumerate(socks):
                s.sendall(f"GET /c{i}/{round_} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            for i, s in enumerate(socks):
                (r,) = read_responses(s, 1)
                assert json.loads(r.split(b"\r\n\r\n", 1)[1])["path"] == f"/c{i}/{round_}"
        assert plain.stats()["connections_open"] >= 1000
    finally:
        for s in socks:
            s.close()


def test_bad_options_and_unloadable_apps_are_refused():
    with pytest.raises(ValueError, match="module:attribute"):
        manygil.Server("no-colon")
    with pytest.raises(manygil.AppLoadError, match="No module named 'serve_apps.missing'"):
        manygil.Server("serve_apps.missing:app", workers=1, bind="127.0.0.1:0")
    with pytest.raises(manygil.AppLoadError, match="manygil compat _testsinglephase"):
        manygil.Server("serve_apps.refusing:app", workers=1, bind="127.0.0.1:0")
    with pytest.raises(ValueError, match="no valid port"):
        manygil.Server("serve_apps.plain:app", workers=1, bind="127.0.0.1:http")
    with manygil.Server("serve_apps.plain:app", workers=1, bind="127.0.0.1:0") as first:
        with pytest.raises(OSError, match=re.escape(first.addresses[0])):
            manygil.Server("serve_apps.plain:app", workers=1, bind=first.addresses[0])


# ---- real frameworks -------------------------------------------------------------------------------------

def test_flask_with_a_jinja_template():
    with manygil.Server("serve_apps.flask_app:app", workers=2, bind="127.0.0.1:0") as server:
        status, headers, body = request(server, "GET", "/")
        assert status == 200
        assert headers["Content-Type"].startswith("text/html")
        assert b"<li>ONE</li><li>TWO</li><li>THREE</li>" in body
        status, _, body = request(server, "POST", "/json?x=1", body=b"a=b",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert json.loads(body) == {"method": "POST", "args": {"x": "1"}, "form": {"a": "b"}}
        assert request(server, "GET", "/missing")[0] == 404


def test_django():
    with manygil.Server("serve_apps.django_app:application", workers=2, bind="127.0.0.1:0") as server:
        status, _, body = request(server, "GET", "/?name=manygil")
        assert (status, body) == (200, b"hello from django, manygil")
        status, _, body = request(server, "POST", "/echo/thing", body=b"payload")
        assert json.loads(body) == {"method": "POST", "body": "payload", "name": "thing"}
        assert request(server, "GET", "/nowhere")[0] == 404


# ---- the command -----------------------------------------------------------------------------------------

def test_the_serve_command_stops_gracefully_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "manygil", "serve", "serve_apps.plain:app", "--workers", "1",
                             "--bind", "127.0.0.1:0", "--access-log"], cwd=APPS, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        address = re.search(r"http://(\S+)", line).group(1)
        host, port = address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/from-cli")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["path"] == "/from-cli"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        rest = proc.stderr.read()
        assert '"GET /from-cli HTTP/1.1" 200' in rest  # the access log
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_serve_command_names_a_module_that_refuses_own_gil_interpreters():
    out = subprocess.run([sys.executable, "-m", "manygil", "serve", "serve_apps.refusing:app", "--workers", "1",
                          "--bind", "127.0.0.1:0"], cwd=APPS, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "manygil compat _testsinglephase" in out.stderr


# ---- streamed responses --------------------------------------------------------------------------------

def test_a_generator_is_streamed_chunked(plain):
    conn = connect(plain)
    conn.request("GET", "/stream?5")
    r = conn.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked" and r.getheader("Content-Length") is None
    assert r.read() == b"part 0;part 1;part 2;part 3;part 4;"
    conn.request("GET", "/stream-length")  # the same connection: the chunked body ended cleanly
    r = conn.getresponse()
    assert (r.getheader("Content-Length"), r.getheader("Transfer-Encoding"), r.read()) == ("12", None, b"abcdefghijkl")
    conn.request("HEAD", "/stream")
    r = conn.getresponse()
    assert r.read() == b"" and r.status == 200
    conn.close()


def test_each_item_goes_out_before_the_next_is_asked_for(plain, tmp_path):
    flag = tmp_path / "first-seen"
    host, port = plain.addresses[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(f"GET /stream-wait?{flag} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        data = b""
        while b"first;" not in data:  # arrives while the application still waits
            data += s.recv(65536)
        flag.touch()
        while not data.endswith(b"0\r\n\r\n"):
            data += s.recv(65536)
    assert b"second" in data


def test_streams_respect_the_window_and_http_1_0(plain):
    status, headers, body = request(plain, "GET", "/stream-big")
    assert status == 200 and len(body) == 320 * 65536
    assert all(body[i * 65536] == i % 256 for i in range(320))
    answer = raw(plain, b"GET /stream?3 HTTP/1.0\r\n\r\n")  # no chunked encoding for HTTP/1.0: until close
    head, body = answer.split(b"\r\n\r\n", 1)
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == b"part 0;part 1;part 2;"


def test_write_between_items_keeps_its_place(plain):
    assert request(plain, "GET", "/stream-write")[2] == b"1;2;3;4;"


def test_an_error_after_the_response_began_cuts_the_connection(single, capfd):
    conn = connect(single)
    conn.request("GET", "/stream-fail")
    r = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    conn.close()
    assert "cut short after it began" in capfd.readouterr().err
    assert request(single, "GET", "/after-fail")[0] == 200


def test_a_client_that_leaves_mid_stream_frees_the_worker(single, tmp_path):
    marker = tmp_path / "closed"
    host, port = single.addresses[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(f"GET /endless?{marker} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        s.recv(65536)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists()  # the generator was closed
    assert request(single, "GET", "/after-endless")[0] == 200  # the one worker serves again


def test_a_wrong_content_length_never_corrupts_the_connection(single, capfd):
    conn = connect(single)
    conn.request("GET", "/declares-less")
    r = conn.getresponse()
    assert r.read() == b"01234"
    conn.request("GET", "/after-less")  # the same connection goes on: the extra bytes were dropped
    assert json.loads(conn.getresponse().read())["path"] == "/after-less"
    conn.request("GET", "/declares-more")
    with pytest.raises(http.client.IncompleteRead):
        conn.getresponse().read()
    conn.close()
    err = capfd.readouterr().err
    assert "declared 5 bytes and produced 10" in err and "declared 10 bytes and produced 5" in err
