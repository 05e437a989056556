"""`manygil serve` as users start it, for the tests that drive the CLI: a child process on a free port,
its stderr collected, requests over http.client, stopped with SIGTERM. And what the tests of an
in-process `manygil.Server` share: its address, and raw bytes sent to it."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

APPS = Path(__file__).parent


def address(server) -> tuple[str, int]:
    """The first address a manygil.Server listens on, as (host, port)."""
    host, port = server.addresses[0].rsplit(":", 1)
    return host, int(port)


def raw(server, data: bytes, *, read_until_close: bool = True, timeout: float = 10.0) -> bytes:
    """Sends `data` on a new connection to a manygil.Server; returns what came back until the server
    closed (or reset) the connection or `timeout` passed without a byte, or only the first read."""
    with socket.create_connection(address(server), timeout=timeout) as s:
        s.sendall(data)
        if not read_until_close:
            return s.recv(65536)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def _children(pid: int) -> list[int]:
    """The direct children of a process (Linux's /proc), or none if it is gone."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Served:
    """`python -m manygil serve APP --workers 2 --bind 127.0.0.1:0 *extra`, run from tests/python."""

    def __init__(self, app: str, *extra: str, env: dict[str, str] | None = None, start_timeout: float = 90.0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "manygil", "serve", app, "--workers", "2",
                                      "--bind", "127.0.0.1:0", *extra], cwd=APPS, env=env,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            for line in self.proc.stderr:
                self.lines.append(line)
                if " on http://" in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(start_timeout):
            self.stop()
            raise AssertionError(f"manygil serve did not start: {''.join(self.lines)}")
        self.host, port = re.search(r"http://(\S+)", self.lines[-1]).group(1).rsplit(":", 1)
        self.port = int(port)

    def connect(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 30.0) -> tuple[int, dict, bytes]:
        conn = self.connect(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def get(self, path: str, timeout: float = 15.0) -> tuple[int, bytes]:
        status, _, body = self.request("GET", path, timeout=timeout)
        return status, body

    def wait_for_log(self, text: str, limit: float = 30.0) -> str:
        """The log so far once it contains text (the server's stderr reaches here through the
        supervisor's relay and a reader thread: after the client has seen the answer); a failed
        assertion with the log if it does not come within limit seconds."""
        for _ in range(int(limit / 0.05)):
            log = "".join(self.lines)
            if text in log:
                return log
            threading.Event().wait(0.05)
        raise AssertionError(f"{text!r} not in the log within {limit} s:\n{''.join(self.lines)}")

    def stop(self) -> int:
        """SIGTERM, then the exit status. Not stopped after 60 s: the server (the supervisor's child,
        run with -X faulthandler) gets SIGABRT, which prints its threads' stacks into the log, and the
        failure quotes the log's end; then the whole tree is killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            for pid in _children(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGABRT)
                except ProcessLookupError:
                    pass
            threading.Event().wait(3)  # the dump reaches self.lines through the reader thread
            raise AssertionError("manygil serve did not stop within 60 s of SIGTERM; its log ends:\n"
                                 + "".join(self.lines[-120:])) from None
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
