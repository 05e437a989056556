"""`manygil serve` as users start it, for the tests that drive the CLI: a child process on a free port,
its stderr collected, requests over http.client, stopped with SIGTERM."""

from __future__ import annotations

import http.client
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

APPS = Path(__file__).parent


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

    def stop(self) -> int:
        """SIGTERM, then the exit status (killed after 60 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
