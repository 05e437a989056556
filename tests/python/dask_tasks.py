"""Tasks the Dask tests run (test_dask_distributed.py): importable in an own-GIL interpreter (no
distributed, no pytest here)."""

import time


def where(x):
    """x * 2, and the id of the interpreter that ran it (0: the main one)."""
    import _interpreters

    return x * 2, _interpreters.get_current()[0]


def spin(seconds):
    """Pure Python for `seconds`, then where it ran."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    import _interpreters

    return _interpreters.get_current()[0]


def fails(x):
    raise ValueError(f"task {x} failed on purpose")


def needs_psutil(x):
    import psutil  # refuses own-GIL interpreters: the task re-runs on a thread of the main interpreter

    return x + 1 if psutil.cpu_count() >= 1 else None


def rendezvous(me, other, directory):
    """Marks `me` and waits (up to 60 s) for `other`: two of these finish only if they run at once.
    Returns the interpreter id, or -1 if the other never came."""
    import os

    import _interpreters

    open(os.path.join(directory, me), "w").close()
    end = time.monotonic() + 60
    while not os.path.exists(os.path.join(directory, other)):
        if time.monotonic() > end:
            return -1
        time.sleep(0.01)
    return _interpreters.get_current()[0]
