"""Python UDFs in DuckDB: manygil.duckdb against DuckDB's own Python UDFs, in one run (issue 15).

  python bench/duckdb_udf.py [--rounds 3]

Workloads (983,040 rows: 8 row groups of 122,880, so that DuckDB's threads all get work):
  integer: SELECT sum(f(x)) FROM t, f a 20-step linear congruential generator in pure Python per row;
  string:  SELECT count(DISTINCT f(s)) FROM t, f normalises a string and hashes it;
  editdist: SELECT sum(f(a, b)) FROM t WHERE x < 245760 (2 row groups), f the Levenshtein distance
           between two VARCHAR columns of 6 to 13 characters;
  no-op:   SELECT sum(f(x)) FROM t with f(x) = x: the fixed cost per 2,048-row chunk.
Models: DuckDB's native UDF (a Python call per row) and its arrow UDF (the function loops over a
pyarrow chunk) at SET threads=1 and 2; manygil.duckdb with 2 interpreters in row mode at threads=2
and 4, and in batch mode (the function loops over a memoryview or list) at threads=2.
Models take turns within every round and keep their best time; every model's answer must agree.
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


def arrow_version(fn, arrow_type, arity):
    def run(*columns):
        return pa.array([fn(*row) for row in zip(*(c.to_pylist() for c in columns))], type=arrow_type)

    import inspect  # DuckDB counts the parameters of the callable it is given

    run.__signature__ = inspect.Signature(
        [inspect.Parameter(f"arg{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(arity)])
    return run


WORKLOADS = {  # row function, batch function, parameter types, return type, Arrow return type, query
    "integer": (udf_functions.lcg, udf_functions.lcg_batch, ["BIGINT"], "BIGINT", pa.int64(),
                "SELECT sum({f}(x)) FROM t"),
    "string": (udf_functions.normalise_hash, udf_functions.normalise_hash_batch, ["VARCHAR"], "VARCHAR", pa.string(),
               "SELECT count(DISTINCT {f}(s)) FROM t"),
    "editdist": (udf_functions.edit_distance, udf_functions.edit_distance_batch, ["VARCHAR", "VARCHAR"], "BIGINT",
                 pa.int64(), "SELECT sum({f}(a, b)) FROM t WHERE x < 245760"),
    "no-op": (udf_functions.noop, udf_functions.noop_batch, ["BIGINT"], "BIGINT", pa.int64(), "SELECT sum({f}(x)) FROM t"),
}
MODELS = [("native", 1), ("native", 2), ("arrow", 1), ("arrow", 2), ("manygil", 2), ("manygil", 4), ("mgbatch", 2)]
OURS = ("manygil", "mgbatch")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", default="integer,string,editdist,no-op")
    args = parser.parse_args()
    con = duckdb.connect()
    con.sql(f"CREATE TABLE t AS SELECT i AS x, '  Some  Text ' || (i % 5000) || ' MORE ' AS s, "
            f"'kitten' || (i % 9973) AS a, 'sitting' || ((i * 7) % 997) AS b FROM range({ROWS}) t(i)")
    chunks = ROWS // 2048
    best: dict[tuple[str, str, int], float] = {}
    with manygil.Pool(2) as pool:
        for w in args.workloads.split(","):
            fn, batch_fn, params, ret, arrow_type, query = WORKLOADS[w]
            name = w.replace("-", "")
            con.create_function(f"native_{name}", fn, params, ret)
            con.create_function(f"arrow_{name}", arrow_version(fn, arrow_type, len(params)), params, ret, type="arrow")
            mgd.register(con, f"manygil_{name}", fn, params, ret, pool=pool)
            mgd.register(con, f"mgbatch_{name}", batch_fn, params, ret, pool=pool, mode="batch")
            answer = None
            for r in range(args.rounds):
                for model, threads in MODELS[r % len(MODELS):] + MODELS[:r % len(MODELS)]:
                    con.sql(f"SET threads = {threads}")
                    started = time.perf_counter()
                    ((value,),) = con.sql(query.format(f=f"{model}_{name}")).fetchall()
                    elapsed = time.perf_counter() - started
                    answer = value if answer is None else answer
                    assert value == answer, (w, model, value, answer)
                    key = (w, model, threads)
                    best[key] = min(elapsed, best.get(key, float("inf")))
                    print(f"round {r + 1}: {w:8} {model:8} threads={threads}  {elapsed:6.2f} s", flush=True)
    print(f"\nbest of {args.rounds}, {ROWS:,} rows ({chunks} chunks), manygil with 2 interpreters:")
    for w in args.workloads.split(","):
        duckdb_best = min(best[(w, m, t)] for m, t in MODELS if m not in OURS)
        for model, threads in MODELS:
            t = best[(w, model, threads)]
            extra = f"  {t / chunks * 1000:5.2f} ms per chunk" if w == "no-op" else ""
            print(f"  {w:8} {model:8} threads={threads}  {t:6.2f} s   {duckdb_best / t:4.2f}x DuckDB's best{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
