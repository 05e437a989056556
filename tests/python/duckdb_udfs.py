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


# Batch mode (mode="batch"): one call per slice of rows, columns as memoryviews or lists.

def identity_batch(column):
    return list(column)


def lcg_batch(column):
    return [lcg(x) for x in column]


def none_aware_batch(column):
    values, valid = column
    return [v if valid is None or valid[i] else -1 for i, v in enumerate(values)]


def describe_batch(column):
    # What a batch function receives: the column's type, the memoryview's format and read-only flag.
    kind = type(column).__name__
    detail = f"{column.format}:{column.readonly}" if isinstance(column, memoryview) else ""
    return [f"{kind}:{detail}"] * len(column)


def identity_special_batch(column):
    values, valid = column
    return [v if valid is None or valid[i] else None for i, v in enumerate(values)]


kept = []


def keep_view(column):
    kept.append((column[1:], list(column)[1:]))  # a slice of the view, kept past the call, and a copy
    return list(column)


def kept_intact():
    return [list(view) == copy for view, copy in kept]


def drop_kept():
    import gc

    kept.clear()
    gc.collect()


def short_batch(column):
    return list(column)[1:]


def str_batch(column):
    return "not a sequence of values"


def write_batch(column):
    column[0] = 1  # read-only: raises TypeError
    return list(column)


def fails_on_42_batch(column):
    return [fails_on_42(x) for x in column]


def wrong_type_batch(column):
    return [x if i != 3 else "a string" for i, x in enumerate(column)]


def mixed8(a, b, c, d, e, f, g, h):
    """Eight arguments of mixed types (BIGINT, DOUBLE, VARCHAR, BOOLEAN, DATE, INTEGER, BLOB, TIMESTAMP)."""
    return f"{a}|{b}|{c}|{d}|{e}|{f}|{g!r}|{h}"


def count_nones(*values):
    return sum(v is None for v in values)


def mixed_batch(*columns):
    """Batch mode, any arity: a row's values joined as text (views read row by row)."""
    return ["|".join(str(col[i]) for col in columns) for i in range(len(columns[0]))]


def spin(x):
    """Busy Python for 50 ms per row: a chunk takes seconds, so an interrupt must stop it in a worker."""
    import time

    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:
        pass
    return x


def mismatches(a, b):
    """A two-argument string function with some work in it: the positions where a and b differ,
    compared over 50 rounds of rotation (so that a row costs tens of microseconds)."""
    total = 0
    for shift in range(50):
        b = b[1:] + b[:1]
        total += sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))
    return total


def interpreter_id():
    import _interpreters

    return _interpreters.get_current()[0]


def count_nones8(a, b, c, d, e, f, g, h):
    return count_nones(a, b, c, d, e, f, g, h)


def first_item_type(column):
    """Batch mode: the Python type of the first non-NULL item (lists of values) or the view's format."""
    if isinstance(column, memoryview):
        return [f"memoryview:{column.format}"] * len(column)
    first = next((v for v in column if v is not None), None)
    return [f"list:{type(first).__name__}"] * len(column)


def joined_length(a, b):
    return len(a) + len(b)
