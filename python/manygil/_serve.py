"""manygil serve: a WSGI (PEP 3333) or ASGI 3.0 application on own-GIL interpreters behind a C++
HTTP/1.1 front end.

The front end's I/O threads (C++, no GIL) accept, parse and write; each complete request goes to a
pool worker, which calls the application in its own interpreter (WSGI: one request at a time per
worker; ASGI: each worker runs an asyncio event loop with many requests in flight, manygil/asgi.hpp). ``Server`` runs one in the
background; ``serve()`` runs one in this process until SIGTERM or SIGINT. The ``manygil serve``
command runs ``serve()`` in a child process under a supervisor (``_supervisor``) that keeps the
sockets and restarts it if it dies; in-process ``Server`` and ``serve()`` have no supervisor.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading

from . import _compat_probe, _core, _interface, _wsgi
from ._errors import BrokenPool
from ._pool import Pool, default_workers

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType
    from typing import Any

__all__ = ["AppLoadError", "Server", "serve"]

_APP_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_REFUSED = re.compile(_compat_probe.REFUSAL_PATTERN)
# --interface: "auto" reads the application (a coroutine function or __call__ taking 3 arguments: ASGI).
INTERFACES = ("auto", "asgi", "wsgi")
LIFESPANS = ("auto", "on", "off")
PIN_WORKERS = ("auto", "on", "off")
# gunicorn's --log-level names, least important first.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# Seconds a request may ignore its timeout's interrupt (blocked in C) before its worker is replaced.
STUCK_AFTER = 1.0


class AppLoadError(ImportError):
    """The application could not be loaded in a worker's interpreter: it is not "module:attribute",
    its import failed, or a module it needs refuses own-GIL interpreters (``manygil compat MODULE``
    says which load)."""


class Server:
    """A running HTTP server for the WSGI application ``app`` ("module:attribute").

    ``workers`` own-GIL interpreters (default: the usable CPUs) each import the application once
    and serve one request at a time; ``io_threads`` C++ threads do all the network I/O. Requests
    over ``max_body`` bytes are refused (413); a request that runs past ``timeout`` seconds is
    interrupted (504); one blocked in C code that the interrupt cannot reach is answered 504 by the
    front end half a second later, and STUCK_AFTER (1) second after the interrupt its worker is replaced
    by a new interpreter (reported on stderr with its stack; ``stats()["pool"]["replaced"]`` and
    ``["stuck"]``), so the server keeps its capacity; the stuck one ends when its call returns.
    At most ``max_pending`` requests are with the workers at once; beyond that
    the server stops reading and accepting until they catch up. A client gets ``header_timeout``
    seconds to send a request, an idle keep-alive connection ``keep_alive_timeout`` seconds.
    ``bind``: "HOST:PORT", "[::1]:PORT", "unix:/path" (optionally "?mode=660") or "fd://N" (a
    listening socket this process inherited).

    ``max_requests`` (with up to ``max_requests_jitter`` more, chosen at random per worker): a worker
    interpreter that has served that many requests is recycled, gunicorn's and granian's remedy for
    applications that leak: a new interpreter loads the application while the old one serves on,
    takes its place once ready, and the old one ends after the request in hand (no request dropped,
    no gap in capacity; ``stats()["pool"]["recycled"]``). 0: never.

    ``log_level`` ("debug", "info", "warning", "error", "critical", as gunicorn's): the server's
    messages below it are dropped; requests refused for bad input are "info", a response cut short
    "warning", 5xx and application errors "error". Not filtered: the access log, and the line that
    says where it listens.

    ``certfile`` (and ``keyfile``, unless the key is in the same file) turns on TLS on every address:
    PEM files, the certificate followed by its intermediates, the key unencrypted; TLS 1.2 or newer,
    ALPN "http/1.1", ``wsgi.url_scheme`` "https". A plain-HTTP request on it is answered 400 and the
    connection closed. A file that cannot be read raises OSError naming it (FileNotFoundError,
    PermissionError); one holding no PEM certificate or key, or a key that is not the certificate's,
    raises ValueError naming it.

    ``access_log`` writes a line per response to stderr in gunicorn's ``access_log_format`` atoms
    (default gunicorn's: ``%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"``; an unknown atom
    is a ValueError).

    Behind a reverse proxy: from the peers in ``forwarded_allow_ips`` (exact addresses, "*" for any;
    a Unix-socket peer counts as one unless the list is empty) the client's address and scheme in
    ``Forwarded`` or ``X-Forwarded-For``/``X-Forwarded-Proto`` become REMOTE_ADDR, REMOTE_PORT and
    ``wsgi.url_scheme`` (the first hop from the proxy back that is not itself trusted). From any
    other peer they change nothing.

    ``tls`` says whether it serves TLS.

    ``pin_workers`` ("auto", "on", "off"): "on" runs worker i on only the (i mod n)-th of the n CPUs
    the process may use (``os.sched_getaffinity(0)``; a recycled or replaced worker's successor on
    the same one). Workers that are always busy (ASGI event loops under load) can otherwise be left
    by the scheduler taking turns of 4 ms on one CPU while the I/O thread and the clients run on the
    other, which doubled ASGI's p99 in ``bench/serve_asgi.py``. "auto" (the default) pins when the
    workers are exactly as many as those CPUs (the default ``workers``), so no CPU is left without a
    worker; "off" leaves placement to the kernel (choose it when other busy processes share these
    CPUs, or run several servers on one machine). ``self.pinned`` says whether it pinned.

    ``interface``: "wsgi", "asgi" (ASGI 3.0 HTTP and lifespan: each worker runs one asyncio event loop
    with any number of requests in flight), or "auto" (the default): ASGI if the application is a
    coroutine function, or an object whose ``__call__`` is one, taking (scope, receive, send); else
    WSGI. ``self.interface`` says which. Under ASGI: ``lifespan`` ("auto": run it if the application
    supports it; "on"; "off") runs lifespan startup in every worker before the server listens (a
    failure raises AppLoadError with the application's message) and shutdown at ``stop()``;
    ``timeout`` cancels the request's task (504 if nothing was sent), and a loop blocked past it
    (in C code) is interrupted and, if the interrupt cannot reach it, replaced as a stuck WSGI worker is; ``root_path`` is
    scope["root_path"]; ``max_requests`` recycles a worker's loop as gunicorn's uvicorn worker does:
    after that many requests (and WebSocket connections) a new interpreter loads the application and
    runs lifespan startup while the old loop serves on; then it takes the new requests, and the old
    loop finishes those it has (its open WebSockets get 30 s, then are closed 1001), runs lifespan
    shutdown and ends (``stats()["pool"]["recycled"]``); ``recycle_grace`` (seconds, default 30;
    ``serve()`` passes its ``graceful_timeout``, as gunicorn gives a recycled worker its graceful
    timeout) is how long the old loop's open WebSockets get before they are closed 1001.

    Raises AppLoadError if the application cannot load in a worker, ValueError for a bad option,
    OSError if an address cannot be bound. Use ``stop()`` (or ``with``) to end it.
    """

    def __init__(self, app: str, *, workers: int | None = None, bind: str | Sequence[str] = "127.0.0.1:8000",
                 backlog: int = 1024, max_body: int = 1 << 30, timeout: float | None = None,
                 access_log: bool = False, io_threads: int = 1, max_pending: int = 1024,
                 header_timeout: float = 10.0, keep_alive_timeout: float = 75.0,
                 max_header_bytes: int = 64 * 1024,
                 forwarded_allow_ips: Sequence[str] = ("127.0.0.1", "::1"),
                 access_log_format: str | None = None, max_requests: int = 0,
                 max_requests_jitter: int = 0, log_level: str = "info",
                 certfile: str | os.PathLike[str] | None = None,
                 keyfile: str | os.PathLike[str] | None = None, interface: str = "auto",
                 lifespan: str = "auto", root_path: str = "", pin_workers: str = "auto",
                 recycle_grace: float = 30.0) -> None:
        if not isinstance(app, str) or not _APP_REF.match(app):
            raise ValueError(f"app must be 'module:attribute' (e.g. 'myapp:application'), not {app!r}")
        binds = [bind] if isinstance(bind, str) else list(bind)
        if not binds:
            raise ValueError("bind needs at least one 'HOST:PORT'")
        if not isinstance(log_level, str) or log_level.lower() not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")
        for name, value in (("max_requests", max_requests), ("max_requests_jitter", max_requests_jitter)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, not {value!r}")
        if interface not in INTERFACES:
            raise ValueError(f"interface must be one of {', '.join(INTERFACES)}, not {interface!r}")
        if lifespan not in LIFESPANS:
            raise ValueError(f"lifespan must be one of {', '.join(LIFESPANS)}, not {lifespan!r}")
        if isinstance(recycle_grace, bool) or not isinstance(recycle_grace, (int, float)) or not recycle_grace >= 0:
            raise ValueError(f"recycle_grace must be a number of seconds >= 0, not {recycle_grace!r}")
        if pin_workers not in PIN_WORKERS:
            raise ValueError(f"pin_workers must be one of {', '.join(PIN_WORKERS)}, not {pin_workers!r}")
        if workers is None:
            workers = default_workers()
        pin = pin_workers == "on" or (pin_workers == "auto" and workers == default_workers())
        if not isinstance(root_path, str) or (root_path and not root_path.startswith("/")) or root_path.endswith("/"):
            raise ValueError(f"root_path must be '' or a path like '/app' (no trailing slash), not {root_path!r}")
        if keyfile is not None and certfile is None:
            raise ValueError("keyfile needs certfile (the certificate it belongs to)")
        for what, path in (("certfile", certfile), ("keyfile", keyfile)):
            if path is not None:  # a typo is reported before the application loads in every worker
                try:
                    open(path, "rb").close()
                except OSError as e:
                    raise type(e)(e.errno, f"cannot read the TLS {what} {os.fspath(path)}: {e.strerror}") from None
        # With a timeout, a worker whose request ignores the interrupt (blocked in C) for
        # STUCK_AFTER more seconds is replaced, so the server keeps its capacity (stats()["pool"]).
        # The pool recycles WSGI workers itself; ASGI loops are recycled by the handler (each loop is
        # one long job), so an ASGI server's pool does not count jobs. Under "auto" the pool is made
        # before the interface is known, counting: the probe below does not count (else, with
        # max_requests 1, its worker would be recycled before serving anything), nor do the ASGI
        # loops' jobs (Job::counts_as_task), so "auto" recycles exactly as the interface it finds.
        pool_recycles = bool(max_requests) and interface != "asgi"
        self._pool = Pool(workers, thread_name_prefix="manygil.serve", initializer=_wsgi.load_app, initargs=(app,),
                          replace_stuck_after=STUCK_AFTER if timeout is not None else None,
                          max_tasks_per_child=max_requests if pool_recycles else None,
                          max_tasks_jitter=max_requests_jitter if pool_recycles else 0, pin_workers=pin)
        try:
            self._pool.wait_ready()
        except BrokenPool as e:
            self._pool.shutdown(wait=True)
            raise AppLoadError(_load_failure(app, e)) from e
        if interface == "auto":  # read in a worker, which has the application loaded
            try:
                probe = self._pool._submit(_interface.probe, (app,), None, None, counted=False)
                interface = "asgi" if probe.result() else "wsgi"
            except BaseException:
                self._pool.shutdown(wait=True)
                raise
        try:
            self._core = _core.HttpServer(
                self._pool._core, app, binds, io_threads=io_threads, backlog=backlog, max_body=max_body,
                max_header_bytes=max_header_bytes, max_pending=max_pending, timeout=timeout,
                header_timeout=header_timeout, keep_alive_timeout=keep_alive_timeout, access_log=access_log,
                forwarded_allow_ips=[forwarded_allow_ips] if isinstance(forwarded_allow_ips, str)
                else list(forwarded_allow_ips),
                access_log_format=access_log_format, log_level=log_level.lower(),
                certfile=None if certfile is None else os.fspath(certfile),
                keyfile=None if keyfile is None else os.fspath(keyfile), interface=interface, lifespan=lifespan,
                root_path=root_path, max_requests=max_requests, max_requests_jitter=max_requests_jitter,
                recycle_grace=float(recycle_grace))
        except RuntimeError as e:  # ASGI: a worker's lifespan startup failed (or its loop could not start)
            self._pool.shutdown(wait=True)
            if interface != "asgi":
                raise
            raise AppLoadError(f"cannot serve {app}: {e}") from None
        except BaseException:
            self._pool.shutdown(wait=True)
            raise
        self.app = app
        self.interface = interface
        self.workers = self._pool.max_workers
        self.pinned = pin
        self.log_level = log_level.lower()
        self.tls = certfile is not None

    @property
    def addresses(self) -> list[str]:
        """Where it listens, with the ports actually bound ("127.0.0.1:41234")."""
        return self._core.addresses()

    def stats(self) -> dict[str, Any]:
        """The front end's counters (connections, requests, responses, rejected, pending) and the
        pool's ``stats()`` under "pool"."""
        out: dict[str, Any] = self._core.stats()
        out["pool"] = self._pool.stats()
        return out

    def stop(self, grace: float = 30.0) -> None:
        """Stops accepting, answers the requests in flight (with ``Connection: close``) for up to
        ``grace`` seconds, closes every connection, then ends the workers. Idempotent."""
        self._core.stop(float(grace))
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _load_failure(app: str, error: BrokenPool) -> str:
    cause = error.__cause__ if error.__cause__ is not None else error
    text = f"{type(cause).__name__}: {cause}"
    refused = _REFUSED.search(str(cause)) or _REFUSED.search(str(error))
    if refused:
        module = refused.group(1).strip("'\"")
        return (f"cannot serve {app}: module {module} refuses to load in an own-GIL interpreter. "
                f"`manygil compat {module}` checks modules one by one; the application cannot use this one "
                f"under manygil serve")
    return f"cannot load {app} in a worker: {text}"


def _stop_with_the_supervisor(stop: threading.Event) -> None:
    """Under `manygil serve`'s supervisor: stop when it is gone (the pipe it holds reaches EOF)."""
    import os

    from ._supervisor import PARENT_PIPE_ENV

    fd = os.environ.pop(PARENT_PIPE_ENV, None)
    if fd is None or not fd.isdigit():
        return

    def watch() -> None:
        try:
            while os.read(int(fd), 1):
                pass
        except OSError:
            pass
        stop.set()  # first: with the supervisor gone, stderr (its pipe) may be gone too

    threading.Thread(target=watch, name="manygil.serve.parent", daemon=True).start()


def serve(app: str, *, graceful_timeout: float = 30.0, ready: Callable[[Server], object] | None = None,
          **options: Any) -> None:
    """Serves ``app`` until SIGTERM or SIGINT (when called from the main thread) and then stops
    gracefully: no more connections, requests in flight answered for up to ``graceful_timeout``
    seconds. ``options`` are Server's (``recycle_grace`` defaults to ``graceful_timeout``).
    ``ready(server)`` is called once it listens.

    It installs the process's fatal-signal notes (``SIGSEGV`` and the like write which worker and
    request they hit to stderr, then go on to the handler installed before, e.g. faulthandler's).
    """
    options.setdefault("recycle_grace", graceful_timeout)
    server = Server(app, **options)
    # A crash (a C extension's SIGSEGV) then names the worker and the request it hit on stderr,
    # before faulthandler's traceback: the supervisor quotes it.
    _core._note_jobs_on_fatal_signals()
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    _stop_with_the_supervisor(stop)
    try:
        for address in server.addresses:
            where = address if address.startswith("unix:") else f"{'https' if server.tls else 'http'}://{address}"
            print(f"manygil serve: {app} on {where} ({server.workers} workers{', pinned' if server.pinned else ''}, "
                  f"{server.interface.upper()})",
                  file=sys.stderr, flush=True)
        if ready is not None:
            ready(server)
        while not stop.wait(0.5):  # a timed wait: the signal handlers run in between
            pass
        try:
            if LOG_LEVELS.index(server.log_level) <= LOG_LEVELS.index("info"):
                print("manygil serve: stopping", file=sys.stderr, flush=True)
        except OSError:  # stderr was the supervisor's pipe, and the supervisor is gone
            pass
    finally:
        server.stop(graceful_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
