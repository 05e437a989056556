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
