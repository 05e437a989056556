"""`manygil serve`'s supervisor (issue 23): the parent keeps the listening sockets and restarts the
server process when it dies, so a crash costs only the requests in flight; SIGHUP restarts gracefully;
the server process stops when the supervisor is gone. Real processes, real sockets, a real crash."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import manygil
import served

APPS = Path(__file__).parent
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))
# curl without the sanitizer runtimes `make sanitize` preloads into Python (preloaded into curl, they
# hang it), as in test_serve.py.
CURL_ENV = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


class Served(served.Served):
    """The plain test application under `manygil serve`, with extra options."""

    def __init__(self, *extra: str) -> None:
        super().__init__("serve_apps.plain:app", *extra, start_timeout=60.0)

    def pid(self) -> int:
        return json.loads(self.get("/pid")[1])["pid"]


@pytest.mark.slow
def test_a_crash_costs_only_the_requests_in_flight():
    served = Served()
    try:
        before = served.pid()
        outcomes: list[str] = []
        crashed_at: list[float] = []
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                try:
                    status, _ = served.get("/after", timeout=15)
                    outcomes.append(("answered" if status == 200 else f"status {status}", time.monotonic()))
                except ConnectionRefusedError:
                    outcomes.append(("refused", time.monotonic()))
                except (OSError, http.client.HTTPException) as e:
                    outcomes.append((type(e).__name__, time.monotonic()))

        threads = [threading.Thread(target=client) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        crashed_at.append(time.monotonic())
        with pytest.raises((ConnectionError, http.client.HTTPException)):  # the crashing request itself
            served.get("/crash")
        time.sleep(5)
        stop.set()
        for t in threads:
            t.join(30)
        after = [o for o, at in outcomes if at >= crashed_at[0]]
        answered = after.count("answered")
        assert "refused" not in after, after  # the parent kept the socket: nothing is ever refused
        assert after and answered / len(after) >= 0.8, after
        assert served.pid() != before  # a new server process answers
        log = "".join(served.lines)
        # SIGSEGV; under `make sanitize` ASan's handler takes the signal and exits with status 1.
        assert "killed by SIGSEGV" in log or "exited with status" in log, log
        assert "starting a new server process on the same sockets" in log
        assert "plain.py" in log  # faulthandler's stack of the crashing request, in the report
        # The server's crash note names the worker and the request; the supervisor quotes it.
        assert "worker 0 while running WSGI GET /crash); the requests in flight were lost" in log or \
            "worker 1 while running WSGI GET /crash); the requests in flight were lost" in log, log
    finally:
        assert served.stop() == 0


def test_an_asgi_worker_crash_is_reported_and_the_server_restarted():
    """A SIGSEGV inside an ASGI request's task (on a worker's event loop): the supervisor quotes the
    crash note and the request's stack, and a new server process answers on the same socket."""
    asgi = served.Served("serve_apps.asgi_plain:app", "--interface", "asgi", start_timeout=60.0)
    try:
        before = json.loads(asgi.get("/pid")[1])["pid"]
        with pytest.raises((ConnectionError, http.client.HTTPException)):  # the crashing request itself
            asgi.get("/crash")
        log = asgi.wait_for_log("starting a new server process on the same sockets", limit=60)
        after = before
        for _ in range(600):
            try:
                after = json.loads(asgi.get("/pid")[1])["pid"]
                break
            except (ConnectionError, http.client.HTTPException):  # the new process starting up
                time.sleep(0.1)
        assert after != before
        assert "killed by SIGSEGV" in log or "exited with status" in log, log  # ASan: status 1
        assert "while running ASGI event loop (serve_apps.asgi_plain:app)" in log, log
        assert "asgi_plain.py" in log, log  # faulthandler's stack of the crashing request's task
    finally:
        assert asgi.stop() == 0


def test_a_wsgi_server_never_loads_asyncio():
    """Neither the supervisor nor the server process of a WSGI application (under the default
    --interface auto, which probes it) loads asyncio: about 7 MiB of RSS in each process (it did
    once, through the server's import of the ASGI module)."""
    wsgi = Served()
    try:
        assert wsgi.get("/after")[0] == 200
        pids = [wsgi.proc.pid, *served._children(wsgi.proc.pid)]
        assert len(pids) >= 2  # the supervisor and its server process
        for pid in pids:
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "_asyncio" not in maps, f"process {pid} ({Path(f'/proc/{pid}/cmdline').read_bytes()!r}) loaded asyncio"
    finally:
        assert wsgi.stop() == 0


def test_sighup_restarts_gracefully_without_losing_a_request():
    served = Served()
    try:
        before = served.pid()
        slow: list[tuple[int, bytes]] = []
        t = threading.Thread(target=lambda: slow.append(served.get("/sleep?2")))
        t.start()
        time.sleep(0.5)  # the slow request is in the old server process
        served.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        now = served.pid()
        while now == before and time.monotonic() < deadline:
            time.sleep(0.1)
            now = served.pid()  # (until the old one has stopped accepting, either may answer)
        assert now != before  # the new process serves...
        t.join(30)
        assert slow and slow[0][0] == 200  # ...and the old one finished its request first
        assert "killed by" not in "".join(served.lines)  # a retiring process is no crash
    finally:
        assert served.stop() == 0


def test_the_server_process_stops_when_the_supervisor_is_gone():
    served = Served()
    child = served.pid()
    served.proc.kill()  # SIGKILL: the supervisor cannot tell its child
    served.proc.wait(30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the server process outlived its supervisor")


def test_a_unix_socket_behind_a_proxy(tmp_path):
    # What nginx's proxy_pass to unix:/... does: curl over the socket file, with the mode asked for.
    import shutil
    import stat

    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    path = tmp_path / "app.sock"
    proc = subprocess.Popen([sys.executable, "-m", "manygil", "serve", "serve_apps.plain:app", "--workers", "1",
                             "--bind", f"unix:{path}?mode=660"], cwd=APPS, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert f"unix:{path}" in line, line
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        out = subprocess.run(["curl", "-sS", "--unix-socket", str(path), "http://localhost/over-unix"],
                             capture_output=True, text=True, timeout=60, check=True, env=CURL_ENV).stdout
        assert json.loads(out)["path"] == "/over-unix"
        env = json.loads(subprocess.run(["curl", "-sS", "--unix-socket", str(path), "http://localhost/environ"],
                                        capture_output=True, text=True, timeout=60, check=True, env=CURL_ENV).stdout)
        assert env["REMOTE_ADDR"] == ""  # a Unix socket's peer has no address
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not path.exists()  # the supervisor removes its socket file
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("allow, expected", [("127.0.0.1", "203.0.113.9"), ("10.9.9.9", "127.0.0.1")])
def test_forwarded_allow_ips_through_the_command(allow, expected):
    served = Served("--forwarded-allow-ips", allow)
    try:
        out = subprocess.run(["curl", "-sS", "-H", "X-Forwarded-For: 203.0.113.9", "-H", "X-Forwarded-Proto: https",
                              f"http://{served.host}:{served.port}/environ"],
                             capture_output=True, text=True, timeout=60, check=True, env=CURL_ENV).stdout
        env = json.loads(out)
        assert env["REMOTE_ADDR"] == expected
        assert env["wsgi.url_scheme"] == ("https" if expected != "127.0.0.1" else "http")
    finally:
        assert served.stop() == 0


def test_max_requests_recycles_worker_interpreters_without_dropping_a_request():
    served = Served("--max-requests", "5", "--max-requests-jitter", "2")  # 2 workers: 5 to 7 requests each
    try:
        first = served.pid()
        seen: list[tuple[int, int]] = []
        failures: list[BaseException] = []

        def client() -> None:
            for _ in range(40):
                try:
                    answer = json.loads(served.get("/pid")[1])
                    seen.append((answer["pid"], answer["interpreter"]))
                except (OSError, http.client.HTTPException, ValueError) as e:
                    failures.append(e)
                time.sleep(0.02)  # paced: a successor gets time to load the application

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert failures == [] and len(seen) == 160  # every request answered while workers recycled
        assert {pid for pid, _ in seen} == {first}  # interpreters recycle, not the process
        # 160 requests, at most 7 per interpreter before its successor starts (more while it loads
        # the application): several interpreters served them.
        assert len({interp for _, interp in seen}) >= 4, seen
        assert "killed by" not in "".join(served.lines)
    finally:
        assert served.stop() == 0


def test_max_requests_in_process_counts_recycled_workers():
    with manygil.Server("serve_apps.plain:app", workers=1, bind="127.0.0.1:0", max_requests=3) as server:
        host, port = server.addresses[0].rsplit(":", 1)
        interpreters = set()
        for _ in range(20):
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request("GET", "/pid")
            interpreters.add(json.loads(conn.getresponse().read())["interpreter"])
            conn.close()
            time.sleep(0.05)  # paced: a successor gets time to load the application
        assert len(interpreters) >= 2
        assert server.stats()["pool"]["recycled"] >= 1
    with pytest.raises(ValueError, match="max_requests"):
        manygil.Server("serve_apps.plain:app", bind="127.0.0.1:0", max_requests=-1)


def test_reload_restarts_when_the_application_changes(tmp_path):
    app = tmp_path / "reloading_app.py"
    app.write_text("def app(environ, start_response):\n"
                   "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                   "    return [b'version 1']\n")
    proc = subprocess.Popen([sys.executable, "-m", "manygil", "serve", "reloading_app:app", "--workers", "1",
                             "--bind", "127.0.0.1:0", "--reload"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        address = re.search(r"http://(\S+)", proc.stderr.readline()).group(1)
        host, port = address.rsplit(":", 1)

        def body() -> bytes:
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request("GET", "/")
            data = conn.getresponse().read()
            conn.close()
            return data

        assert body() == b"version 1"
        time.sleep(1.1)  # a new modification time, even on coarse file systems
        app.write_text(app.read_text().replace("version 1", "version 2"))
        deadline = time.monotonic() + 60
        while body() != b"version 2" and time.monotonic() < deadline:
            time.sleep(0.2)
        if body() != b"version 2":  # say what the supervisor saw (it logs each change and restart)
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            raise AssertionError(f"still version 1 after 60 s; the supervisor said:\n{proc.stderr.read()}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert "reloading_app.py changed" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_access_log_format_in_gunicorns_atoms():
    served = Served("--access-log-format", "%(m)s %(U)s %(q)s %(s)s %({user-agent}i)s %({content-type}o)s")
    try:
        subprocess.run(["curl", "-sS", "-A", "tester/1", f"http://{served.host}:{served.port}/fmt?x=1"],
                       capture_output=True, timeout=60, check=True, env=CURL_ENV)
        deadline = time.monotonic() + 30
        while not any("GET /fmt x=1 200 tester/1 application/json" in line for line in served.lines):
            assert time.monotonic() < deadline, served.lines
            time.sleep(0.05)
    finally:
        assert served.stop() == 0
    bad = subprocess.run([sys.executable, "-m", "manygil", "serve", "serve_apps.plain:app", "--workers", "1",
                          "--bind", "127.0.0.1:0", "--access-log-format", "%(zz)s"], cwd=APPS,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "unknown atom '%(zz)s'" in bad.stderr and "not restarting" in bad.stderr


def _no_host(served: Served) -> bytes:
    import socket

    with socket.create_connection((served.host, served.port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")  # no Host: 400, logged at info
        return s.recv(4096)


@pytest.mark.parametrize("level, shown", [("info", {"400", "504", "stopping"}), ("warning", {"504"}),
                                          ("critical", set())])
def test_log_level_filters_the_servers_messages(level, shown):
    served = Served("--log-level", level, "--timeout", "0.5", "--access-log")
    try:
        assert _no_host(served).startswith(b"HTTP/1.1 400 ")
        assert served.get("/spin")[0] == 504  # the application ran past --timeout: logged at error
        assert served.get("/fine")[0] == 200
        deadline = time.monotonic() + 30
        while not any('"GET /fine HTTP/1.1" 200' in line for line in served.lines):  # the access log, always
            assert time.monotonic() < deadline, served.lines
            time.sleep(0.05)
    finally:
        assert served.stop() == 0
    log = "".join(served.lines)
    assert " on http://" in log  # where it listens: always
    assert ("400 Bad Request to" in log) == ("400" in shown), log
    assert ("504 for GET /spin" in log) == ("504" in shown), log
    assert ("manygil serve: stopping" in log) == ("stopping" in shown), log


def test_log_level_is_checked():
    bad = subprocess.run([sys.executable, "-m", "manygil", "serve", "serve_apps.plain:app", "--log-level", "loud"],
                         cwd=APPS, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--log-level" in bad.stderr
    with pytest.raises(ValueError, match="log_level"):
        manygil.Server("serve_apps.plain:app", bind="127.0.0.1:0", log_level="loud")


def test_the_reload_watcher_sees_a_rewrite_that_keeps_the_modification_time(tmp_path):
    from manygil._supervisor import _SourceWatcher

    app = tmp_path / "app.py"
    app.write_text("")  # as a rewrite in place looks between its truncation and its write
    stamp = app.stat().st_mtime_ns
    watcher = _SourceWatcher(str(tmp_path))
    assert watcher.changed() is None
    app.write_text("VERSION = 2\n")
    os.utime(app, ns=(stamp, stamp))  # a coarse clock: the write kept the truncation's time
    assert watcher.changed() == str(app)
    assert watcher.changed() is None
    (tmp_path / "new.py").write_text("")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "skip.py").write_text("")
    assert watcher.changed() == str(tmp_path / "new.py")
    (tmp_path / "new.py").unlink()
    assert watcher.changed() == str(tmp_path / "new.py")
