"""manygil.duckdb as DuckDB users write it (issue 22): UDFs of 0 to 8 arguments with NULLs anywhere,
functions defined in the script, a notebook or the REPL, lambdas, closures and partials, two
connections and cursors at once, con.interrupt() during a UDF query, memory over many queries.
Each result is checked against DuckDB's own Python UDF on the same query.

`make test` runs this file against the newest DuckDB (requirements-dev.txt) and again against the
last 1.x release (tools/bootstrap.sh installs it beside the venv)."""

from __future__ import annotations

import functools
import threading
import time

import pytest

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

import duckdb_udfs as u  # noqa: E402
import manygil  # noqa: E402
import manygil.duckdb as mgd  # noqa: E402

# One column per type of the eight-argument function, NULL on a different row for each.
COLUMNS = [("BIGINT", "i * 3"), ("DOUBLE", "i / 4"), ("VARCHAR", "'s' || i"), ("BOOLEAN", "i % 3 = 0"),
           ("DATE", "DATE '2024-02-27' + (i % 5)::INTEGER"), ("INTEGER", "(i % 1000)::INTEGER"),
           ("BLOB", "('b' || i)::BLOB"), ("TIMESTAMP", "TIMESTAMP '2024-01-01' + i * INTERVAL 1 SECOND")]


@pytest.fixture
def pool(module_pool):
    return module_pool


@pytest.fixture
def con():
    c = duckdb.connect()
    c.sql("SET threads = 2")
    selects = ", ".join(f"CASE WHEN i % 11 = {k} THEN NULL ELSE {expr} END AS c{k}"
                        for k, (_, expr) in enumerate(COLUMNS))
    c.sql(f"CREATE TABLE t AS SELECT i AS n, {selects} FROM range(5000) t(i)")
    yield c
    c.close()


@pytest.mark.parametrize("arity", range(1, 9))
@pytest.mark.parametrize("null_handling", ["default", "special"])
def test_every_arity_in_row_mode_matches_duckdbs_own_udf(con, pool, arity, null_handling):
    types = [t for t, _ in COLUMNS[:arity]]
    args = ", ".join(f"c{k}" for k in range(arity))
    eight, result = (u.count_nones8, "BIGINT") if null_handling == "special" else (u.mixed8, "VARCHAR")
    fn = functools.partial(eight, *([None] * (8 - arity))) if arity < 8 else eight  # the first ones fixed
    mgd.register(con, "mg", fn, types, result, pool=pool, null_handling=null_handling)
    con.create_function("py", fn, types, result, null_handling=null_handling)
    ours = con.sql(f"SELECT mg({args}) FROM t ORDER BY n").fetchall()
    assert ours == con.sql(f"SELECT py({args}) FROM t ORDER BY n").fetchall()
    nulls = sum(1 for (v,) in ours if v is None)
    assert nulls == (0 if null_handling == "special" else sum(1 for i in range(5000) if i % 11 < arity))


@pytest.mark.parametrize("arity", [2, 5, 8])
def test_every_arity_in_batch_mode(con, pool, arity):
    types = [t for t, _ in COLUMNS[:arity]]
    args = ", ".join(f"c{k}" for k in range(arity))
    mgd.register(con, "mg", u.mixed_batch, types, "VARCHAR", pool=pool, mode="batch")
    got = con.sql(f"SELECT n, mg({args}) FROM t ORDER BY n").fetchall()
    rows = con.sql(f"SELECT n, {args} FROM t ORDER BY n").fetchall()
    assert len(got) == 5000
    for (n, text), (_, *values) in zip(got, rows):
        if any(v is None for v in values):
            assert text is None, n  # SQL's rule: a NULL argument gives NULL
        else:
            assert text is not None and text.count("|") == arity - 1


def test_a_function_without_arguments(con, pool):
    mgd.register(con, "mg_zero", lambda: 7, [], "BIGINT", pool=pool)
    mgd.register(con, "mg_interp", u.interpreter_id, [], "BIGINT", pool=pool, side_effects=True)
    assert con.sql("SELECT sum(mg_zero()) FROM range(100)").fetchall() == [(700,)]
    ids = {i for (i,) in con.sql("SELECT DISTINCT mg_interp() FROM range(200)").fetchall()}
    assert ids and 0 not in ids  # ran in the pool's interpreters, not the main one


def test_lambdas_closures_partials_and_local_functions(con, pool):
    offset = 1000

    def local(a, b):
        return a * b + offset

    mgd.register(con, "mg_lambda", lambda a, b: a - b, ["BIGINT", "BIGINT"], "BIGINT", pool=pool)
    mgd.register(con, "mg_local", local, ["BIGINT", "BIGINT"], "BIGINT", pool=pool)
    mgd.register(con, "mg_partial", functools.partial(u.mixed8, 1, 2, 3, 4, 5, 6), ["BLOB", "TIMESTAMP"], "VARCHAR",
                 pool=pool)
    mgd.register(con, "mg_batch_lambda", lambda xs: [x * 2 for x in xs], ["BIGINT"], "BIGINT", pool=pool,
                 mode="batch")
    got = con.sql("SELECT sum(mg_lambda(c0, c5)), sum(mg_local(c0, c5)), max(mg_partial(c6, c7)), "
                  "sum(mg_batch_lambda(c0)) FROM t").fetchall()
    rows = con.sql("SELECT c0, c5, c6, c7 FROM t").fetchall()
    both = [(a, b) for a, b, _, _ in rows if a is not None and b is not None]
    assert got == [(sum(a - b for a, b in both), sum(a * b + offset for a, b in both),
                    max(u.mixed8(1, 2, 3, 4, 5, 6, g, h) for _, _, g, h in rows if g is not None and h is not None),
                    sum(2 * a for a, _, _, _ in rows if a is not None))]


SCRIPT = """
import functools
import duckdb
import manygil.duckdb as mgd

SCALE = 3

def score(a, b):                      # defined in the script itself
    return a * SCALE + b


class Scaler:                         # no blank lines inside: the REPL variant types it at the prompt
    def __init__(self, k):
        self.k = k
    def scale(self, x):
        return x * self.k
    def __call__(self, x):
        return x + self.k


class TooBig(Exception):
    pass


def check(x):
    if x > 19990:
        raise TooBig(f"{x} is too big")
    return x

def main():
    con = duckdb.connect()
    con.sql("SET threads = 2")
    mgd.register(con, "score", score, ["BIGINT", "BIGINT"], "BIGINT")
    mgd.register(con, "lam", lambda s, n: s * n, ["VARCHAR", "BIGINT"], "VARCHAR")
    mgd.register(con, "part", functools.partial(score, 10), ["BIGINT"], "BIGINT")
    con.create_function("py_score", score, ["BIGINT", "BIGINT"], "BIGINT")
    print(con.sql("SELECT sum(score(i, i % 7)) = sum(py_score(i, i % 7)), max(lam('ab', i % 3)), "
                  "sum(part(i)) FROM range(20000) t(i)").fetchall())
    mgd.register(con, "bound", Scaler(3).scale, ["BIGINT"], "BIGINT")
    mgd.register(con, "callable", Scaler(5), ["BIGINT"], "BIGINT")
    mgd.register(con, "checked", check, ["BIGINT"], "BIGINT")
    print("objects", con.sql("SELECT sum(bound(i)), sum(callable(i)) FROM range(100) t(i)").fetchall())
    try:
        con.sql("SELECT sum(checked(i)) FROM range(20000) t(i)").fetchall()
    except duckdb.Error as e:
        print("error:", e)

if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("mode", ["script", "-c", "stdin", "repl"])
def test_udfs_defined_where_users_write_them(run_python, mode):
    # A script re-run by the workers as __mp_main__; -c, stdin and the interactive prompt have no file
    # to re-run, so their functions travel by value (as a notebook's do).
    code = SCRIPT if mode != "repl" else SCRIPT.replace("if __name__ == \"__main__\":\n    main()", "main()\n")
    done = run_python(code, mode=mode)
    assert done.returncode == 0, done.stderr
    assert "[(True, 'abab', " + str(sum(10 * 3 + i for i in range(20000))) + ")]" in done.stdout, done.stdout
    assert f"objects [({3 * 4950}, {4950 + 500})]" in done.stdout
    assert "TooBig" in done.stdout and "19991 is too big" in done.stdout, done.stdout


def test_a_notebook_cell(run_python):
    # What Jupyter does: each cell is compiled with a name of its own and run in __main__'s namespace.
    code = SCRIPT.replace('if __name__ == "__main__":\n    main()', "")
    done = run_python(f"""
        ns = {{"__name__": "__main__"}}
        import sys
        exec(compile({code!r}, "<ipython-input-1>", "exec"), sys.modules["__main__"].__dict__)
        exec(compile("main()", "<ipython-input-2>", "exec"), sys.modules["__main__"].__dict__)
    """, mode="stdin")
    assert done.returncode == 0, done.stderr
    assert "[(True, 'abab', " in done.stdout


def test_two_connections_and_two_cursors_at_once_on_one_pool(pool):
    # Two databases and two cursors of a third, four threads, one pool: every answer right.
    expected = {k: sum(u.mismatches(f"a{i}", f"b{i * k}") for i in range(6000)) for k in range(1, 5)}
    shared = duckdb.connect()
    mgd.register(shared, "mg_mm", u.mismatches, ["VARCHAR", "VARCHAR"], "BIGINT", pool=pool)
    cons = []
    for _ in range(2):
        c = duckdb.connect()
        mgd.register(c, "mg_mm", u.mismatches, ["VARCHAR", "VARCHAR"], "BIGINT", pool=pool)
        cons.append(c)
    cons += [shared.cursor(), shared.cursor()]
    results, errors = {}, []
    started = threading.Barrier(4)

    def query(k, c):
        try:
            started.wait()
            sql = f"SELECT sum(mg_mm('a' || i, 'b' || (i * {k}))) FROM range(6000) t(i)"
            results[k] = c.sql(sql).fetchall()[0][0]
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=query, args=(k, c)) for k, c in zip(range(1, 5), cons)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and results == expected
    for c in cons:
        c.close()
    shared.close()


def run_until_a_worker_is_busy(pool, target):
    outcome = []

    def query():
        try:
            outcome.append(target())
        except Exception as e:  # noqa: BLE001
            outcome.append(e)

    runner = threading.Thread(target=query)
    runner.start()
    deadline = time.monotonic() + 30
    while not any(w["current"] for w in pool.stats()["workers"]) and time.monotonic() < deadline:
        time.sleep(0.005)
    return runner, outcome


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_interrupt_ends_a_udf_query_and_the_connection_and_pool_go_on(pool, mode):
    c = duckdb.connect()
    c.sql("SET threads = 2")
    fn = u.spin if mode == "row" else (lambda xs: [u.spin(x) for x in xs])
    mgd.register(c, "mg_spin", fn, ["BIGINT"], "BIGINT", pool=pool, mode=mode)
    # 2,048 rows a chunk at 50 ms a row: a chunk alone would take 50 s on two workers.
    runner, outcome = run_until_a_worker_is_busy(pool, lambda: c.sql("SELECT sum(mg_spin(i)) FROM range(100000) t(i)").fetchall())
    time.sleep(0.2)
    asked = time.monotonic()
    c.interrupt()
    runner.join(30)
    took = time.monotonic() - asked
    assert not runner.is_alive()
    # The workers' slices raise manygil.Interrupted, so the query fails with it, unless one of
    # DuckDB's threads reaches its own interrupt check first (between chunks): both end it now.
    assert isinstance(outcome[0], duckdb.Error), outcome
    assert isinstance(outcome[0], duckdb.InterruptException) or (
        "Interrupted" in str(outcome[0]) and "interrupt()" in str(outcome[0])), outcome
    assert took < 5, f"the query went on for {took:.1f} s after interrupt()"  # well under 1 s unloaded
    deadline = time.monotonic() + 10
    while any(w["current"] for w in pool.stats()["workers"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(w["current"] for w in pool.stats()["workers"])  # the slices were abandoned
    assert c.sql("SELECT sum(mg_spin(i)) FROM range(10) t(i)").fetchall() == [(45,)]
    assert pool.submit(u.lcg, 3).result() == u.lcg(3)
    c.close()


def test_interrupt_of_one_connection_leaves_anothers_query_alone(pool):
    a, b = duckdb.connect(), duckdb.connect()
    for c in (a, b):
        c.sql("SET threads = 2")
    mgd.register(a, "mg_spin", u.spin, ["BIGINT"], "BIGINT", pool=pool)
    mgd.register(b, "mg_lcg", lambda x: u.lcg(u.spin(x) if x % 500 == 0 else x), ["BIGINT"], "BIGINT", pool=pool)
    runner_a, outcome_a = run_until_a_worker_is_busy(pool, lambda: a.sql("SELECT sum(mg_spin(i)) FROM range(100000) t(i)").fetchall())
    runner_b, outcome_b = run_until_a_worker_is_busy(pool, lambda: b.sql("SELECT sum(mg_lcg(i)) FROM range(20000) t(i)").fetchall())
    time.sleep(0.1)
    a.interrupt()
    runner_a.join(30)
    runner_b.join(60)
    assert isinstance(outcome_a[0], duckdb.Error)
    assert outcome_b == [[(sum(u.lcg(i) for i in range(20000)),)]]
    a.close()
    b.close()


def test_the_duckdb_under_test_is_the_one_make_test_asks_for():
    # make test's second run sets MANYGIL_EXPECT_DUCKDB=1. with DuckDB 1.x first on PYTHONPATH.
    import os

    wanted = os.environ.get("MANYGIL_EXPECT_DUCKDB", "")
    assert duckdb.__version__.startswith(wanted), (duckdb.__version__, wanted)


CLOSE_UNDER_A_CURSOR = """
import threading, time
import duckdb
import manygil.duckdb as mgd
import duckdb_udfs as u

def main(own):
    c = duckdb.connect()
    c.sql("SET threads = 2")
    c.sql("CREATE TABLE t AS SELECT i AS x FROM range(400000) t(i)")
    if own:   # DuckDB's own UDF, a lambda: DuckDB holds the only reference to it
        c.create_function("f", lambda x: (time.sleep(0.01), x)[1], ["BIGINT"], "BIGINT", type="arrow")
    else:
        mgd.register(c, "f", lambda x: u.lcg(x) % 7, ["BIGINT"], "BIGINT")
    cur = c.cursor()
    out = []
    runner = threading.Thread(target=lambda: out.append(cur.sql("SELECT count(f(x)) FROM t").fetchall()))
    runner.start()
    time.sleep(0.3)
    try:
        c.close()
        print("closed")
    except duckdb.Error as e:
        print("refused:", e)
    runner.join()
    print(out)

if __name__ == "__main__":
    import sys
    main(sys.argv[1:] == ["own"] or "{own}" == "own")
"""


@pytest.mark.parametrize("own", [True, False], ids=["duckdbs-own-udf", "manygil"])
def test_closing_a_connection_while_a_cursor_runs_a_udf_query(run_python, own):
    # DuckDB 1.x (1.5.6) frees a UDF callable on close() while a cursor's query still calls it: a
    # segfault with its own create_function and a lambda. DuckDB 2.0 refuses the close. manygil.duckdb
    # keeps its wrappers alive on 1.x, so the query finishes either way.
    done = run_python(CLOSE_UNDER_A_CURSOR.replace("{own}", "own" if own else "ours"))
    major = int(duckdb.__version__.split(".")[0])
    if own and major < 2:
        assert done.returncode == -11, (done.returncode, done.stdout, done.stderr)  # the bug, still there
        return
    assert done.returncode == 0, done.stderr
    assert "[[(400000,)]]" in done.stdout


def test_ctrl_c_during_a_udf_query_ends_it_at_once(tmp_path):
    # The main thread waits for the workers inside the UDF; it takes its GIL back every 100 ms to run
    # signal handlers, so Ctrl-C stops the slices (its own and DuckDB's other threads') and the query.
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "ctrl_c.py"
    script.write_text(
        "import sys, time\n"
        "import duckdb, manygil.duckdb as mgd, duckdb_udfs as u\n"
        "if __name__ == '__main__':\n"
        "    con = duckdb.connect()\n"
        "    con.sql('SET threads = 1')\n"   # the calling thread runs the pipeline (see register's doc)
        "    mgd.register(con, 'spin', u.spin, ['BIGINT'], 'BIGINT')\n"
        "    print('query', flush=True)\n"
        "    try:\n"
        "        con.sql('SELECT sum(spin(i)) FROM range(100000) t(i)').fetchall()\n"   # 40 min of work
        "    except BaseException as e:\n"
        "        print(type(e).__name__, e, flush=True)\n"
        "    print(con.sql('SELECT sum(spin(i)) FROM range(4) t(i)').fetchall(), flush=True)\n")
    path = [os.path.dirname(__file__)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    assert child.stdout.readline() == "query\n"
    time.sleep(1.5)  # the query is in the UDF by now
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    try:
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    took = time.monotonic() - sent
    assert child.returncode == 0, err
    assert "KeyboardInterrupt" in out and "[(6,)]" in out, out  # and the connection goes on
    assert took < 10, f"{took:.1f} s after Ctrl-C"  # well under 1 s unloaded


def test_types_given_as_duckdbs_type_objects(con, pool):
    # duckdb.sqltypes (DuckDB 1.5 and 2.x; duckdb.typing is gone) and the type constructors.
    from duckdb import sqltypes

    mgd.register(con, "mg_obj", lambda n, s, d: {"n": n, "tags": [s, s.upper()], "d": d},
                 [sqltypes.BIGINT, sqltypes.VARCHAR, duckdb.decimal_type(10, 2)],
                 duckdb.struct_type({"n": sqltypes.BIGINT, "tags": duckdb.list_type(sqltypes.VARCHAR),
                                     "d": duckdb.decimal_type(10, 2)}), pool=pool)
    got = con.sql("SELECT mg_obj(7, 'ab', 1.25)").fetchall()
    import decimal

    assert got == [({"n": 7, "tags": ["ab", "AB"], "d": decimal.Decimal("1.25")},)]


def test_functions_of_the_script_re_run_by_spawn_go_by_value():
    # Under forkserver/spawn, a script without the __main__ guard runs again as __mp_main__, and its
    # UDFs then belong to that module, which the workers cannot import by name.
    def score(a, b):
        return a + b

    score.__module__ = "__mp_main__"
    spec = mgd._function_spec(score)
    assert isinstance(spec, tuple) and isinstance(spec[0], bytes) and "by value" in spec[1]
