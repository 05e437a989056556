"""Pools end before the interpreter does: at exit every pool is shut down (waiting for its tasks) and
every worker interpreter is ended, including pools that were garbage collected without shutdown."""

import atexit
import threading
import weakref

from . import _core

_pools = weakref.WeakSet()
_lock = threading.Lock()
_registered = False


def register(pool):
    global _registered
    with _lock:
        _pools.add(pool)
        if _registered:
            return
        try:
            # Runs before non-daemon threads are joined, like ThreadPoolExecutor's own hook.
            threading._register_atexit(_at_exit)
        except (AttributeError, RuntimeError):
            atexit.register(_at_exit)
        _registered = True


def _at_exit():
    for pool in list(_pools):
        try:
            pool.shutdown(wait=True)
        except Exception:
            pass
    _core._finalize()
