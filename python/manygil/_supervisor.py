"""The supervisor of ``manygil serve``: a small parent process that owns the listening sockets and runs
the server in a child process on them (``--bind fd://N``), so that a crash of the server process (a
SIGSEGV in a C extension, ctypes) costs only the requests in flight: the parent logs why the child
died and starts a new one on the same sockets at once, so no client sees a refused connection.

Signals to the parent: SIGTERM and SIGINT stop gracefully (the child finishes its requests in flight);
SIGHUP restarts gracefully (a new child first, then the old one drains), as gunicorn's HUP. The child
runs in its own process group, so a terminal's Ctrl-C reaches the parent only (not its own session:
with the kernel's autogroup scheduling a session of its own gets one CPU share, which cost 22% of the
hello-world throughput next to wrk); it stops by itself if the parent dies (it watches a pipe the
parent holds). ``manygil.serve()`` from Python runs in-process,
without a supervisor.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# The child names the pipe's read end here; at EOF (the parent is gone) it stops.
PARENT_PIPE_ENV = "MANYGIL_SERVE_PARENT_FD"
_READY_MARKS = (" on http://", " on https://", " on unix:")  # the child's "manygil serve: APP on ..." line: it listens
_CRASH_NOTE = "manygil: fatal "  # Runtime::note_jobs_on_fatal_signals()'s line: "manygil: fatal SIGSEGV in ..."


_LEVELS = ("debug", "info", "warning", "error", "critical")
_threshold = 1  # supervise(log_level=...): messages less important are dropped


def _log(message: str, level: str = "info") -> None:
    if _LEVELS.index(level) >= _threshold:
        print(f"manygil serve: {message}", file=sys.stderr, flush=True)


def listen(bind: str, backlog: int) -> socket.socket:
    """The listening socket for one ``--bind`` value, made in this process so that children inherit
    it: HOST:PORT, [HOST]:PORT or unix:/path[?mode=OCTAL]. ``fd://N`` is already a socket: it is used
    as it is. Raises ValueError for a malformed address, OSError when it cannot be bound."""
    if bind.startswith("fd://"):
        return socket.socket(fileno=os.dup(int(bind[5:])))
    if bind.startswith("unix:"):
        path, _, mode = bind[5:].partition("?mode=")
        if os.path.exists(path):
            import stat

            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise ValueError(f"bind address {bind!r}: {path} exists and is not a socket")
            os.unlink(path)  # a stale socket of an earlier run
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        if mode:
            os.chmod(path, int(mode, 8))
        s.listen(backlog)
        return s
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bind address {bind!r} is not of the form HOST:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    family, kind, proto, _, address = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    s = socket.socket(family, kind, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(address)
    s.listen(backlog)
    return s


class _Child:
    """One server process and the relay of its stderr (the last lines kept for the crash report)."""

    def __init__(self, argv: list[str], fds: Sequence[int], pipe_read: int) -> None:
        env = dict(os.environ, **{PARENT_PIPE_ENV: str(pipe_read)})
        self.started = time.monotonic()
        self.ready = threading.Event()
        self.last_lines: collections.deque[str] = collections.deque(maxlen=20)
        # The server's own line about a fatal signal: which worker and request it hit (kept apart:
        # faulthandler's dump that follows may be longer than last_lines).
        self.crash_note: str | None = None
        self.retiring = False  # asked to stop: its end is not a crash
        self.process = subprocess.Popen(argv, pass_fds=(*fds, pipe_read), stderr=subprocess.PIPE, env=env,
                                        process_group=0)
        self._relay = threading.Thread(target=self._relay_stderr, name="manygil.serve.stderr", daemon=True)
        self._relay.start()

    def _relay_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace")
            sys.stderr.write(line)
            sys.stderr.flush()
            self.last_lines.append(line.rstrip("\n"))
            if line.startswith(_CRASH_NOTE):
                self.crash_note = line[len(_CRASH_NOTE):].strip()
            if any(mark in line for mark in _READY_MARKS):
                self.ready.set()

    def stop(self) -> None:
        self.retiring = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def finish_relay(self) -> None:
        self._relay.join(timeout=5)
        if not self._relay.is_alive() and self.process.stderr is not None:
            self.process.stderr.close()  # read to EOF: done with it (no ResourceWarning at exit)


def _why(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class _SourceWatcher:
    """--reload: the modification time and size of the .py files under a directory (hidden
    directories, __pycache__, virtual environments and site-packages left out), compared at each
    check. Size too: a file rewritten in place is first truncated, and on file systems with a coarse
    clock the write that follows may keep the truncation's modification time. A change is reported
    once the tree has stopped changing (SETTLE seconds apart, two equal scans), so a restart does not
    load a file half written or one of several files an editor saves together."""

    _SKIP = {"__pycache__", "site-packages", "node_modules", "venv"}
    SETTLE = 0.2
    SETTLE_MAX = 3.0

    def __init__(self, root: str) -> None:
        self.root = root
        self.seen = self._scan()

    def _scan(self) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        for here, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in self._SKIP]
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(here, name)
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    found[path] = (st.st_mtime_ns, st.st_size)
            if len(found) > 20_000:  # a huge tree: watch what was found so far
                break
        return found

    def changed(self) -> str | None:
        now = self._scan()
        if now == self.seen:
            return None
        deadline = time.monotonic() + self.SETTLE_MAX
        while time.monotonic() < deadline:  # until it settles (or a writer that never stops: go on)
            time.sleep(self.SETTLE)
            later = self._scan()
            if later == now:
                break
            now = later
        before, self.seen = self.seen, now
        for path, state in now.items():
            if before.get(path) != state:
                return path
        return next((path for path in before if path not in now), None)


def supervise(child_argv: Sequence[str], binds: Sequence[str], *, backlog: int = 1024,
              graceful_timeout: float = 30.0, reload: bool = False, log_level: str = "info") -> int:
    """Runs ``child_argv`` followed by ``--bind fd://N`` for each of ``binds`` (listened on here) until
    SIGTERM or SIGINT; restarts it whenever it dies. With ``reload``, also restarts it gracefully when
    a .py file under the current directory changes (development). Its own messages below
    ``log_level`` are dropped (crashes are "error"). Returns the exit status for the command."""
    global _threshold
    _threshold = _LEVELS.index(log_level.lower())
    try:
        sockets = [listen(b, backlog) for b in binds]
    except (OSError, ValueError) as e:
        _log(f"cannot listen: {e}", "error")
        return 1
    fds = [s.fileno() for s in sockets]
    argv = list(child_argv)
    for fd in fds:
        argv += ["--bind", f"fd://{fd}"]
    pipe_read, pipe_write = os.pipe()  # the children see EOF on pipe_read once this process is gone
    events: list[str] = []
    wake = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        events.append("restart" if signum == signal.SIGHUP else "stop")
        wake.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    children: list[_Child] = [_Child(argv, fds, pipe_read)]
    watcher = _SourceWatcher(os.getcwd()) if reload else None
    next_check = time.monotonic() + 1.0
    backoff = 0.0
    status = 0
    try:
        while True:
            wake.wait(0.05)
            wake.clear()
            if watcher is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + 1.0
                if (changed := watcher.changed()) is not None:
                    _log(f"{os.path.relpath(changed)} changed")
                    events.append("restart")
            while events:
                event = events.pop(0)
                if event == "stop":
                    _log("stopping (the server finishes its requests in flight)")
                    for child in children:
                        child.stop()
                    return _wait_all(children, graceful_timeout)
                _log("restarting gracefully: a new server process, then the old one drains")
                fresh = _Child(argv, fds, pipe_read)
                if not _wait_ready(fresh, timeout=120.0):
                    _log("the new server process did not start; the old one goes on", "error")
                    fresh.stop()
                    _wait_all([fresh], graceful_timeout)
                    continue
                for child in children:
                    child.stop()
                children.append(fresh)
            for child in list(children):
                code = child.process.poll()
                if code is None:
                    continue
                children.remove(child)
                child.finish_relay()
                if child.retiring:
                    continue
                uptime = time.monotonic() - child.started
                if not child.ready.is_set() and code > 0:
                    # It never listened and said why (the application does not load, a bad option):
                    # starting it again would fail the same way.
                    _log(f"the server process {_why(code)} before it served; not restarting", "error")
                    status = code
                    if not children:
                        return status
                    continue
                hit = f" ({child.crash_note})" if child.crash_note else ""
                _log(f"the server process (pid {child.process.pid}) {_why(code)} after {uptime:.1f} s{hit}; "
                     f"the requests in flight were lost. Its last lines:", "error")
                if _threshold <= _LEVELS.index("error"):
                    for line in list(child.last_lines)[-10:]:
                        print(f"    {line}", file=sys.stderr, flush=True)
                backoff = 0.0 if uptime > 10.0 else min(10.0, max(0.1, backoff * 2))
                if uptime < 1.0 and backoff:
                    _log(f"it died within a second of starting: waiting {backoff:.1f} s before the next one", "warning")
                    time.sleep(backoff)
                _log("starting a new server process on the same sockets", "warning")
                children.append(_Child(argv, fds, pipe_read))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(pipe_write)
        os.close(pipe_read)
        for s in sockets:
            s.close()
        for b in binds:
            if b.startswith("unix:"):
                try:
                    os.unlink(b[5:].partition("?mode=")[0])
                except OSError:
                    pass


def _wait_ready(child: _Child, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not child.ready.wait(0.1):
        if child.process.poll() is not None or time.monotonic() > deadline:
            return False
    return True


def _wait_all(children: Sequence[_Child], graceful_timeout: float) -> int:
    deadline = time.monotonic() + graceful_timeout + 10.0
    status = 0
    for child in children:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _log(f"the server process (pid {child.process.pid}) did not stop in time: killing it", "warning")
            child.process.kill()
            child.process.wait()
        child.finish_relay()
        if child.process.returncode not in (0, -signal.SIGTERM):
            status = 1
    return status
