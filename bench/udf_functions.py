"""The row function bench/duckdb_udf.py times; module level, so that pool workers import it."""


def lcg(x):
    for _ in range(20):
        x = (x * 1103515245 + 12345) % 2147483648
    return x
