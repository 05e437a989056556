"""Row functions the Arrow map tests run in workers (tests/cpp/udf_test.cpp)."""

import datetime


def lcg(x):
    """20 steps of a linear congruential generator: pure-Python work per row; None stays None."""
    if x is None:
        return None
    for _ in range(20):
        x = (x * 1103515245 + 12345) % 2147483648
    return x


def describe(i, f, s, b, flag):
    if s is None:
        return None
    return f"{i}|{f}|{s.upper()}|{b!r}|{flag}"


def next_day(d):
    return None if d is None else d + datetime.timedelta(days=1)


def plus_second(t):
    return None if t is None else t + datetime.timedelta(seconds=1)


def where():
    import _interpreters

    return _interpreters.get_current()[0]


def interpreter_of(x):
    import _interpreters

    return _interpreters.get_current()[0]


def fails_at_seven(x):
    if x == 7:
        raise ValueError("seven is not welcome")
    return x


def returns_str(x):
    return "not an int"


def too_big(x):
    return 2**70


def meet(directory):
    """Marks this interpreter in `directory` and waits (up to 30 s) until two interpreters have: the
    rows of two slices meet only if the slices run at once, on two workers. Returns the interpreter
    id, or -1 if the other never came."""
    import os
    import time

    me = interpreter_of(None)
    open(os.path.join(directory, str(me)), "w").close()
    deadline = time.monotonic() + 30
    while len(os.listdir(directory)) < 2:
        if time.monotonic() > deadline:
            return -1
        time.sleep(0.001)
    return me


# Batch functions (udf::map_batches): one call per slice, columns as memoryviews or lists.

def twice_batch(column):
    return [2 * x for x in column]


def kinds_batch(*columns):
    # One row per slice row: what each argument arrived as.
    names = [f"memoryview:{c.format}" if isinstance(c, memoryview) else type(c).__name__ for c in columns]
    return ["|".join(names)] * len(columns[0])


def valid_or_minus_one_batch(column):
    values, valid = column
    return [v if valid is None or valid[i] else -1 for i, v in enumerate(values)]


kept = []


def keep_view_batch(column):
    kept.append(column[10:])  # a slice of the view, kept past the call
    return list(column)


def kept_total(x):
    return sum(sum(view) for view in kept)


def drop_kept(x):
    import gc

    kept.clear()
    gc.collect()
    return 0


def wrong_length_batch(column):
    return [0]


def same_batch(column):
    return column  # the argument's own memoryview: read back in C++ as a buffer


def array_batch(column):
    import array

    return array.array("q", [x + 1 for x in column])


def doubles_batch(column):
    import array

    return array.array("d", [0.5] * len(column))  # not a 'l' column's format: read item by item


# Decimals, times, intervals and nested values (udf_test.cpp's UdfTypes tests).

def typed_repr(x):
    """What a row value arrived as: 'Decimal:Decimal('1.5')', 'dict:{...}'."""
    return f"{type(x).__name__}:{x!r}"


def identity(x):
    return x


def nth_of(values):
    import datetime
    import decimal

    return eval(values, {"Decimal": decimal.Decimal, "datetime": datetime})  # noqa: S307 (test data)


DECIMAL_RESULTS = "[Decimal('1.25'), 2, 0.15, Decimal('-1.25'), None, Decimal('7')]"
TIME_RESULTS = "[datetime.time(12, 0, 1, 500000), 3_600_000_000, None]"
INTERVAL_RESULTS = "[datetime.timedelta(days=40, microseconds=5), datetime.timedelta(days=-1), None]"
NESTED_RESULTS = ("[[{'a': [1, None], 'm': {'x': Decimal('1.5'), 'y': None}}, None, {'a': None}], None, [],"
                  " ({'m': [('z', 2)]},)]")


def decimal_result(i):
    return nth_of(DECIMAL_RESULTS)[i]


def time_result(i):
    return nth_of(TIME_RESULTS)[i]


def interval_result(i):
    return nth_of(INTERVAL_RESULTS)[i]


def nested_result(i):
    return nth_of(NESTED_RESULTS)[i]


def too_precise(i):
    import decimal

    return decimal.Decimal("1234.5")


def bool_for_decimal(i):
    return True


def unknown_field(i):
    return {"a": 1, "c": 2}


def none_map_key(i):
    return {None: 1}


def wrong_fixed_size(i):
    return [1, 2, 3]


def kinds_rows_batch(*columns):
    # One row per slice row: what each argument arrived as and its first value's type.
    names = []
    for c in columns:
        if isinstance(c, memoryview):
            names.append(f"memoryview:{c.format}")
        else:
            names.append(f"list:{type(c[0]).__name__}")
    return ["|".join(names)] * len(columns[0])


def first_of_list_batch(column):
    return [None if v is None or not v else v[0] for v in column]


NESTED_SPEC = "+l<+s<d:d:10,2,t:ttu,iv:tin,m:+m<u,+l<l>>>>"


def make_nested(i):
    """A value of NESTED_SPEC made from i, with NULLs at every level."""
    import datetime
    import decimal

    if i % 7 == 3:
        return None
    return [
        None if (i + k) % 5 == 0 else {
            "d": decimal.Decimal(i * 10 + k).scaleb(-2),
            "t": datetime.time(k, i % 60),
            "iv": datetime.timedelta(days=i, microseconds=k),
            "m": {f"k{j}": (None if j == 1 else [j, None]) for j in range(k % 3)},
        }
        for k in range(i % 4)
    ]
