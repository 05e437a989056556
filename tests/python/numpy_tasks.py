"""Tasks whose module imports numpy at its top: numpy refuses own-GIL interpreters (numpy#24755), so
in a worker the task's function cannot even be found, and Pool(fallback=...) must run it elsewhere."""

import os

import numpy

import manygil._core


def double(x):
    """2 * x computed by numpy, and where it ran: (value, in the main interpreter, pid)."""
    return int(numpy.int64(x) * 2), manygil._core.in_main_interpreter(), os.getpid()


def add(a, b):
    return int(numpy.add(a, b))


def inverse(x):
    """1 / x: ZeroDivisionError at 0, like the same function in the main interpreter."""
    return 1 // int(numpy.int64(x)) if x else 1 // 0
