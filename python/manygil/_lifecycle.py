"""Pools end before the interpreter does: at exit every pool is shut down (waiting for its tasks) and
every worker interpreter is ended, including pools that were garbage collected without shutdown."""

import atexit
import os
import threading
import weakref

from . import _core, _worker

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
        # The safety net: a C function, so no signal can stop it half-way, run by the atexit module
        # (which calls every callback whatever the others raise), still before the interpreter
        # finalises. It ends every worker, should _at_exit not have got that far.
        atexit.register(_core._finalize)
        _registered = True
        # A forked child inherits pool objects but not their threads: they must refuse work and never
        # be joined there.
        os.register_at_fork(before=_before_fork, after_in_parent=_core._resume_idle_interpreters,
                            after_in_child=_core._after_fork_in_child)
        # Forking a process that has sub-interpreters kills the child (gh-139759): multiprocessing
        # starts processes with forkserver unless told otherwise (set up at `import manygil` already,
        # see protect_forked_children; repeated here for code that imports manygil._pool directly).
        _worker.protect_forked_children()


def _before_fork():
    # Interpreters parked for reuse (Pool(reuse_interpreters=True)) would kill the child too: end them.
    _core._end_idle_interpreters()
    if any(not pool._core_shut_down() for pool in list(_pools)):
        import warnings

        warnings.warn(
            "os.fork() while manygil pools are alive: CPython (3.12-3.14) crashes the child when "
            "sub-interpreters exist (gh-139759). Shut the pools down first, or start processes with "
            "the 'forkserver' or 'spawn' method.",
            RuntimeWarning,
            stacklevel=3,
        )


def _at_exit():
    """Shuts every pool down, waiting for its tasks. Ctrl-C meanwhile stops their work instead (queued
    tasks are cancelled, running calls interrupted); either way every worker ends its interpreter
    before the main interpreter finalises."""
    try:
        for pool in list(_pools):
            try:
                pool.shutdown(wait=True)
            except Exception:
                pass
    except KeyboardInterrupt:
        for pool in list(_pools):
            try:
                pool._core.shutdown(False, True)
                pool._core.interrupt_running("manygil: interrupted by Ctrl-C at exit", True)
            except Exception:
                pass
    _core._finalize()
