"""The row function bench/duckdb_udf.py times; module level, so that pool workers import it."""


def lcg(x):
    for _ in range(20):
        x = (x * 1103515245 + 12345) % 2147483648
    return x


def normalise_hash(s):
    """A string workload: normalise, then hash (hashlib's C code, pure-Python glue)."""
    import hashlib

    return hashlib.sha1(" ".join(s.split()).lower().encode()).hexdigest()[:12]


def noop(x):
    return x
