"""Functions the DuckDB tests register (test_duckdb.py): importable in own-GIL interpreters (no duckdb,
no pyarrow here)."""

import datetime


def lcg(x):
    for _ in range(20):
        x = (x * 1103515245 + 12345) % 2147483648
    return x


def identity(x):
    return x


def none_aware(x):
    return -1 if x is None else x


def shout(s):
    return s.upper() + "!"


def blob_len(b):
    return len(b)


def next_day(d):
    return d + datetime.timedelta(days=1)


def plus_hour(t):
    return t + datetime.timedelta(hours=1)


def is_even(x):
    return x % 2 == 0


def bucket(x):
    return x % 3


def fails_on_42(x):
    if x == 42:
        raise ZeroDivisionError("forty-two divided by zero")
    return x


def wrong_type(x):
    return "a string"


def interpreter(x):
    import _interpreters

    return _interpreters.get_current()[0]
