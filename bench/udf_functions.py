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


# Batch-mode versions (manygil.duckdb mode="batch"): one call per slice of a chunk.

def lcg_batch(column):
    return [lcg(x) for x in column]


def normalise_hash_batch(column):
    return [normalise_hash(s) for s in column]


def noop_batch(column):
    return column


def edit_distance(a, b):
    """Levenshtein distance between two strings: a two-argument string workload."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_distance_batch(a_column, b_column):
    return [edit_distance(a, b) for a, b in zip(a_column, b_column)]
