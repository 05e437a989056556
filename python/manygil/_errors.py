"""manygil's exception types, and how errors from workers are rebuilt in the caller."""

import importlib
import pickle
from concurrent.futures import BrokenExecutor


class BrokenPool(BrokenExecutor):
    """A worker could not start (its initializer raised, or its interpreter could not be created).

    The pool accepts no more work; every pending task fails with this error. ``__cause__`` is the
    original error, rebuilt from the worker.
    """


class NotShareableError(TypeError):
    """An object cannot be sent to or from a worker.

    ``type_name`` is the object's type, ``path`` where it sat (e.g. ``args[1]['k']``).
    """

    def __init__(self, message: str, type_name: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.path = path


class Interrupted(TimeoutError):
    """A task was stopped inside its worker: its timeout passed (Pool.submit_with(timeout=...)), it
    was interrupted (Future.interrupt()) or the pool's shutdown(timeout=...) ran out of patience.
    The worker goes on serving; ``__cause__`` carries the worker's traceback at the point it stopped.
    """


class RemoteError(Exception):
    """A task raised an exception that cannot be rebuilt in the caller as its own type.

    ``type_name`` and ``message`` describe it; ``__cause__`` carries the worker's traceback.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message

    def __reduce__(self):
        return (type(self), (self.type_name, self.message))


class _RemoteTraceback(Exception):
    """Carries a worker's formatted traceback as the ``__cause__`` of a re-raised exception."""

    def __init__(self, tb):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return f'\n"""\n{self.tb.rstrip()}\n"""'


def _exception_type(type_name):
    """The exception class called ``type_name`` ("ValueError", "json.decoder.JSONDecodeError"), or None."""
    module_name, _, qualname = type_name.rpartition(".")
    candidates = [("builtins", type_name)] if not module_name else []
    # "pkg.mod.Outer.Inner": try the longest importable module prefix first.
    parts = type_name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        candidates.append((".".join(parts[:i]), ".".join(parts[i:])))
    for module_name, qualname in candidates:
        try:
            obj = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except Exception:
            continue
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return obj
    return None


# Errors whose cause is the workers' interpreter configuration, and what to do instead.
_HINTS = [
    ("fork not supported for isolated subinterpreters",
     "manygil workers are isolated interpreters, which cannot fork: start processes with subprocess, or "
     "use multiprocessing from the main interpreter"),
    ("exec not supported for isolated subinterpreters",
     "manygil workers are isolated interpreters, which cannot replace the process (os.exec*): use subprocess"),
    ("does not support loading in subinterpreters",
     "this extension module cannot load in an own-GIL interpreter; `manygil compat MODULE` checks a module "
     "up front, Pool(fallback='main' or 'process') runs such tasks elsewhere, and manygil.call_in_main(fn, ...) "
     "runs one step of a task in the main interpreter"),
]


def rebuild(type_name, message, traceback, pickled):
    """The exception to raise in the caller for an error that happened in a worker."""
    exc = None
    if pickled is not None:
        try:
            exc = pickle.loads(pickled)
        except Exception:
            exc = None
        if not isinstance(exc, BaseException):
            exc = None
    if exc is None:
        cls = _exception_type(type_name)
        if cls is not None:
            try:
                exc = cls(message)
            except Exception:
                exc = None
    if exc is None:
        exc = RemoteError(type_name, message)
    for marker, hint in _HINTS:
        if marker in message:
            exc.add_note(hint)
    if traceback:
        exc.__cause__ = _RemoteTraceback(traceback)
    return exc


def not_shareable(type_name, path, reason):
    where = f" at {path}" if path else ""
    return NotShareableError(f"cannot send {type_name}{where} to or from a worker: {reason}", type_name, path)


_logged_broken = set()


def log_broken(message, traceback=None):
    """Logs why a pool broke, once per pool, on the "concurrent.futures" logger at CRITICAL, as
    ThreadPoolExecutor logs a failed initializer ("Exception in initializer:"). The message names
    the pool (its thread name prefix)."""
    if message in _logged_broken:
        return
    _logged_broken.add(message)
    import logging

    details = f"\n{traceback.rstrip()}" if traceback else ""
    logging.getLogger("concurrent.futures").critical("%s%s", message, details)


def broken_pool(message, cause_type, cause_message, cause_traceback):
    log_broken(message, cause_traceback)
    exc = BrokenPool(message)
    exc.__cause__ = rebuild(cause_type, cause_message, cause_traceback, None)
    return exc


def broken_pool_now(message):
    log_broken(message)
    return BrokenPool(message)
