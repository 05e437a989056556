"""Python UDFs in DuckDB: manygil.duckdb against DuckDB's own Python UDFs, in one run (issue 15).

  python bench/duckdb_udf.py [--rounds 3]

SELECT sum(f(x)) FROM t, where t holds 983,040 BIGINT rows (8 row groups of 122,880, so that DuckDB's
threads all get work) and f is a 20-step linear congruential generator in pure Python, per row.
Models: DuckDB's native UDF (a Python call per row), its arrow UDF (the function loops over a pyarrow
chunk), and manygil.duckdb (row mode, the pool's interpreters), each at SET threads=1 and 2; models
take turns within every round and keep their best time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import duckdb
import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import udf_functions  # noqa: E402

import manygil  # noqa: E402
import manygil.duckdb as mgd  # noqa: E402

ROWS = 8 * 122_880


def arrow_lcg(column):
    return pa.array([udf_functions.lcg(x) for x in column.to_pylist()], type=pa.int64())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    con = duckdb.connect()
    con.sql(f"CREATE TABLE t AS SELECT i AS x FROM range({ROWS}) t(i)")
    expected = None
    with manygil.Pool(2) as pool:
        con.create_function("native_lcg", udf_functions.lcg, ["BIGINT"], "BIGINT")
        con.create_function("arrow_lcg", arrow_lcg, ["BIGINT"], "BIGINT", type="arrow")
        mgd.register(con, "manygil_lcg", udf_functions.lcg, ["BIGINT"], "BIGINT", pool=pool)
        models = [(f, threads) for threads in (1, 2) for f in ("native_lcg", "arrow_lcg", "manygil_lcg")]
        best: dict[tuple[str, int], float] = {}
        for r in range(args.rounds):
            for f, threads in models[r % len(models):] + models[:r % len(models)]:
                con.sql(f"SET threads = {threads}")
                started = time.perf_counter()
                (total,), = con.sql(f"SELECT sum({f}(x)) FROM t").fetchall()
                elapsed = time.perf_counter() - started
                expected = expected if expected is not None else total
                assert total == expected, (f, total, expected)
                best[(f, threads)] = min(elapsed, best.get((f, threads), float("inf")))
                print(f"round {r + 1}: {f:12} threads={threads}  {elapsed:6.2f} s", flush=True)
    print(f"\nbest of {args.rounds}: SELECT sum(f(x)) over {ROWS:,} BIGINT rows, f = 20-step LCG per row")
    for threads in (1, 2):
        base = best[("arrow_lcg", threads)]
        for f in ("native_lcg", "arrow_lcg", "manygil_lcg"):
            t = best[(f, threads)]
            print(f"  threads={threads}  {f:12} {t:6.2f} s   {base / t:4.2f}x DuckDB's arrow UDF")
    return 0


if __name__ == "__main__":
    sys.exit(main())
