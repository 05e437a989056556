"""manygil.duckdb with real DuckDB (issue 15): every type with NULLs, results identical to DuckDB's own
Python UDF on the same query, errors, UDFs in WHERE and GROUP BY, several in one query, concurrent
queries from two threads."""

from __future__ import annotations

import threading

import pytest

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

import duckdb_udfs as u  # noqa: E402
import manygil  # noqa: E402
import manygil.duckdb as mgd  # noqa: E402

TYPES = {
    "BOOLEAN": "SELECT (i % 2 = 0) AS x FROM range(3000) t(i)",
    "TINYINT": "SELECT (i % 100)::TINYINT AS x FROM range(3000) t(i)",
    "SMALLINT": "SELECT (i * 7)::SMALLINT AS x FROM range(3000) t(i)",
    "INTEGER": "SELECT (i * 1000)::INTEGER AS x FROM range(3000) t(i)",
    "BIGINT": "SELECT (i * 100000000)::BIGINT AS x FROM range(3000) t(i)",
    "UTINYINT": "SELECT (i % 200)::UTINYINT AS x FROM range(3000) t(i)",
    "USMALLINT": "SELECT (i * 13)::USMALLINT AS x FROM range(3000) t(i)",
    "UINTEGER": "SELECT (i * 100000)::UINTEGER AS x FROM range(3000) t(i)",
    "UBIGINT": "SELECT (i * 1000000000000)::UBIGINT AS x FROM range(3000) t(i)",
    "FLOAT": "SELECT (i / 8)::FLOAT AS x FROM range(3000) t(i)",
    "DOUBLE": "SELECT (i / 3)::DOUBLE AS x FROM range(3000) t(i)",
    "VARCHAR": "SELECT ('v' || i || 'é') AS x FROM range(3000) t(i)",
    "BLOB": "SELECT ('b' || i)::BLOB AS x FROM range(3000) t(i)",
    "DATE": "SELECT (DATE '2020-01-01' + i::INTEGER) AS x FROM range(3000) t(i)",
    "TIMESTAMP": "SELECT (TIMESTAMP '2020-01-01 00:00:00' + i * INTERVAL 1 MINUTE) AS x FROM range(3000) t(i)",
    # Issue 22: the types beyond the flat ones.
    "DECIMAL(4,1)": "SELECT ((i % 1999) / 10 - 99)::DECIMAL(4,1) AS x FROM range(3000) t(i)",
    "DECIMAL(18,3)": "SELECT (i * 123456.789 - 1e8)::DECIMAL(18,3) AS x FROM range(3000) t(i)",
    "DECIMAL(38,10)": "SELECT (i * 1.5e20)::DECIMAL(38,10) AS x FROM range(3000) t(i)",
    "HUGEINT": "SELECT (i::HUGEINT * 56713727820156410577229101238628035 - "
               "170141183460469231731687303715884105727::HUGEINT + 1)::HUGEINT AS x FROM range(3000) t(i)",
    "UHUGEINT": "SELECT (i::UHUGEINT * 56713727820156410577229101238628035)::UHUGEINT AS x FROM range(3000) t(i)",
    "UUID": "SELECT uuid() AS x FROM range(3000) t(i)",
    "TIME": "SELECT (TIME '00:00:01.5' + i * INTERVAL 28 SECOND)::TIME AS x FROM range(3000) t(i)",
    "INTERVAL": "SELECT (i * INTERVAL 1 DAY + (i % 3) * INTERVAL 1 MONTH + i * INTERVAL 1 MICROSECOND) AS x "
                "FROM range(3000) t(i)",
    "TIMESTAMP WITH TIME ZONE": "SELECT (TIMESTAMPTZ '2020-01-01 00:00:00+00' + i * INTERVAL 1 HOUR) AS x "
                                "FROM range(3000) t(i)",
    "BIGINT[]": "SELECT CASE WHEN i % 5 = 0 THEN [] ELSE [i, NULL, -i] END AS x FROM range(3000) t(i)",
    "STRUCT(a INTEGER, b VARCHAR)": "SELECT {'a': CASE WHEN i % 4 = 0 THEN NULL ELSE i END, 'b': 'v' || i}"
                                    "::STRUCT(a INTEGER, b VARCHAR) AS x FROM range(3000) t(i)",
    "MAP(VARCHAR, DOUBLE)": "SELECT map_from_entries([('k' || i, i / 2), ('z', NULL)]) AS x FROM range(3000) t(i)",
    "STRUCT(tags VARCHAR[], seen TIMESTAMP, price DECIMAL(10,2))[]":
        "SELECT [{'tags': ['t' || i, NULL], 'seen': TIMESTAMP '2024-01-01' + i * INTERVAL 1 SECOND, "
        "'price': (i / 7)::DECIMAL(10,2)}, NULL]::STRUCT(tags VARCHAR[], seen TIMESTAMP, price DECIMAL(10,2))[] AS x "
        "FROM range(3000) t(i)",
}


@pytest.fixture
def pool(module_pool):
    return module_pool


@pytest.fixture
def con():
    c = duckdb.connect()
    c.sql("SET threads = 2")
    yield c
    c.close()


def with_nulls(sql):
    # Every 7th row NULL.
    return f"SELECT CASE WHEN rowid % 7 = 3 THEN NULL ELSE x END AS x FROM ({sql}) WITH ORDINALITY q(x, rowid)"


@pytest.mark.parametrize("sql_type", list(TYPES))
def test_every_type_with_nulls_matches_duckdbs_own_udf(con, pool, sql_type):
    con.sql(f"CREATE TABLE t AS SELECT x, row_number() OVER () AS n FROM ({TYPES[sql_type]})")
    con.sql("UPDATE t SET x = NULL WHERE n % 7 = 3")
    mgd.register(con, "mg_id", u.identity, [sql_type], sql_type, pool=pool)
    con.create_function("py_id", u.identity, [sql_type], sql_type, null_handling="special")
    ours = con.sql("SELECT mg_id(x) FROM t ORDER BY n").fetchall()
    theirs = con.sql("SELECT py_id(x) FROM t ORDER BY n").fetchall()
    plain = con.sql("SELECT x FROM t ORDER BY n").fetchall()
    assert ours == theirs == plain
    assert sum(1 for (v,) in ours if v is None) == 3000 // 7 + (1 if 3000 % 7 > 3 else 0)


@pytest.mark.parametrize("null_handling", ["default", "special"])
@pytest.mark.parametrize("sql_type", list(TYPES))
def test_every_type_with_nulls_in_batch_mode_matches_duckdbs_own_udf(con, pool, sql_type, null_handling):
    con.sql(f"CREATE TABLE t AS SELECT x, row_number() OVER () AS n FROM ({TYPES[sql_type]})")
    con.sql("UPDATE t SET x = NULL WHERE n % 7 = 3")
    fn = u.identity_batch if null_handling == "default" else u.identity_special_batch
    mgd.register(con, "mg_id", fn, [sql_type], sql_type, pool=pool, mode="batch", null_handling=null_handling)
    con.create_function("py_id", u.identity, [sql_type], sql_type, null_handling="special")
    ours = con.sql("SELECT mg_id(x) FROM t ORDER BY n").fetchall()
    assert ours == con.sql("SELECT py_id(x) FROM t ORDER BY n").fetchall() == con.sql("SELECT x FROM t ORDER BY n").fetchall()
    assert sum(1 for (v,) in ours if v is None) == 3000 // 7 + (1 if 3000 % 7 > 3 else 0)


def test_batch_functions_get_typed_views_and_lists(con, pool):
    mgd.register(con, "mg_kind", u.describe_batch, ["BIGINT"], "VARCHAR", pool=pool, mode="batch")
    mgd.register(con, "mg_kind_d", u.describe_batch, ["DOUBLE"], "VARCHAR", pool=pool, mode="batch")
    mgd.register(con, "mg_kind_s", u.describe_batch, ["VARCHAR"], "VARCHAR", pool=pool, mode="batch")
    mgd.register(con, "mg_kind_b", u.describe_batch, ["BOOLEAN"], "VARCHAR", pool=pool, mode="batch")
    got = con.sql("SELECT DISTINCT mg_kind(i), mg_kind_d(i / 2), mg_kind_s(i::VARCHAR), mg_kind_b(i > 5) "
                  "FROM range(3000) t(i)").fetchall()
    assert got == [("memoryview:q:True", "memoryview:d:True", "list:", "memoryview:?:True")]
    con.sql("CREATE TABLE t AS SELECT CASE WHEN i % 5 = 0 THEN NULL ELSE i END AS x FROM range(5000) t(i)")
    mgd.register(con, "mg_lcg", u.lcg_batch, ["BIGINT"], "BIGINT", pool=pool, mode="batch")
    mgd.register(con, "mg_none", u.none_aware_batch, ["BIGINT"], "BIGINT", pool=pool, mode="batch",
                 null_handling="special")
    assert con.sql("SELECT sum(mg_lcg(x)), count(mg_lcg(x)), sum(mg_none(x)) FROM t").fetchall() == [
        (sum(u.lcg(x) for x in range(5000) if x % 5), 4000, sum(x if x % 5 else -1 for x in range(5000)))]


def test_batch_errors_name_the_rows_and_the_pool_goes_on(con, pool):
    con.sql("CREATE TABLE t AS SELECT i AS x FROM range(100) t(i)")
    cases = [(u.short_batch, "rows 0..49: the function returned 49 values for 50 rows"),
             (u.str_batch, "rows 0..49: the function returned a str where a sequence"),
             (u.write_batch, "TypeError: rows 0..49: cannot modify read-only memory"),
             (u.fails_on_42_batch, "ZeroDivisionError: rows 0..49: forty-two divided by zero")]
    for i, (fn, message) in enumerate(cases):
        mgd.register(con, f"mg_bad{i}", fn, ["BIGINT"], "BIGINT", pool=pool, mode="batch")
        with pytest.raises(duckdb.Error) as info:
            con.sql(f"SELECT sum(mg_bad{i}(x)) FROM t").fetchall()
        assert message in str(info.value)
    mgd.register(con, "mg_wrong", u.wrong_type_batch, ["BIGINT"], "BIGINT", pool=pool, mode="batch")
    with pytest.raises(duckdb.Error, match="row 3: the function returned a str where a 'l' value was expected"):
        con.sql("SELECT mg_wrong(x) FROM t").fetchall()
    mgd.register(con, "mg_ok", u.identity_batch, ["BIGINT"], "BIGINT", pool=pool, mode="batch")
    assert con.sql("SELECT sum(mg_ok(x)) FROM t").fetchall() == [(4950,)]


def test_a_view_kept_by_a_batch_function_keeps_its_data_until_dropped():
    pa = pytest.importorskip("pyarrow")
    from manygil import _core

    with manygil.Pool(1) as one:  # one interpreter holds every kept view
        before = pa.total_allocated_bytes()
        column = pa.array(range(1_000_000), type=pa.int64())
        size = pa.total_allocated_bytes() - before
        assert size >= 8_000_000
        result = _core._udf_map(one._core, "duckdb_udfs:keep_view", [column], "l", True, True)
        assert len(pa.array(result)) == 1_000_000
        del column, result
        assert pa.total_allocated_bytes() - before >= size  # the kept view holds the column
        pa.array([0] * 100_000)  # new allocations do not land on it
        assert one.submit(u.kept_intact).result() == [True]
        one.submit(u.drop_kept).result()
        _core._udf_map(one._core, "duckdb_udfs:identity_batch", [pa.array([1])], "l", True, True)  # releases it
        assert pa.total_allocated_bytes() - before < size


def test_functions_of_values_and_null_handling(con, pool):
    con.sql("CREATE TABLE t AS SELECT CASE WHEN i % 5 = 0 THEN NULL ELSE i END AS x, 'w' || i AS s, "
            "('b' || i)::BLOB AS b, DATE '2021-02-28' + (i % 3)::INTEGER AS d, "
            "TIMESTAMP '2021-01-01 10:00:00' + i * INTERVAL 1 SECOND AS ts FROM range(5000) t(i)")
    mgd.register(con, "mg_lcg", u.lcg, ["BIGINT"], "BIGINT", pool=pool)
    mgd.register(con, "mg_none", u.none_aware, ["BIGINT"], "BIGINT", pool=pool, null_handling="special")
    mgd.register(con, "mg_shout", u.shout, ["VARCHAR"], "VARCHAR", pool=pool)
    mgd.register(con, "mg_len", u.blob_len, ["BLOB"], "BIGINT", pool=pool)
    mgd.register(con, "mg_next", u.next_day, ["DATE"], "DATE", pool=pool)
    mgd.register(con, "mg_hour", u.plus_hour, ["TIMESTAMP"], "TIMESTAMP", pool=pool)
    for name, fn, params, ret, extra in [("py_lcg", u.lcg, ["BIGINT"], "BIGINT", {}),
                                         ("py_none", u.none_aware, ["BIGINT"], "BIGINT", {"null_handling": "special"}),
                                         ("py_shout", u.shout, ["VARCHAR"], "VARCHAR", {}),
                                         ("py_len", u.blob_len, ["BLOB"], "BIGINT", {}),
                                         ("py_next", u.next_day, ["DATE"], "DATE", {}),
                                         ("py_hour", u.plus_hour, ["TIMESTAMP"], "TIMESTAMP", {})]:
        con.create_function(name, fn, params, ret, **extra)
    query = "SELECT {p}lcg(x), {p}none(x), {p}shout(s), {p}len(b), {p}next(d), {p}hour(ts) FROM t ORDER BY ts"
    ours = con.sql(query.format(p="mg_")).fetchall()
    theirs = con.sql(query.format(p="py_")).fetchall()
    assert ours == theirs
    assert ours[0][0] is None and ours[0][1] == -1  # default: NULL in, NULL out; special: called with None


def test_where_group_by_and_several_udfs_in_one_query(con, pool):
    con.sql("CREATE TABLE t AS SELECT i AS x FROM range(10000) t(i)")
    mgd.register(con, "mg_even", u.is_even, ["BIGINT"], "BOOLEAN", pool=pool)
    mgd.register(con, "mg_bucket", u.bucket, ["BIGINT"], "BIGINT", pool=pool)
    mgd.register(con, "mg_lcg", u.lcg, ["BIGINT"], "BIGINT", pool=pool)
    got = con.sql("SELECT mg_bucket(x) AS k, count(*), sum(mg_lcg(x)) FROM t WHERE mg_even(x) "
                  "GROUP BY k ORDER BY k").fetchall()
    expected = {}
    for x in range(0, 10000, 2):
        k = x % 3
        c, s = expected.get(k, (0, 0))
        expected[k] = (c + 1, s + u.lcg(x))
    assert got == [(k, c, s) for k, (c, s) in sorted(expected.items())]


def test_the_work_runs_in_the_pools_interpreters(con, pool):
    con.sql("CREATE TABLE t AS SELECT i AS x FROM range(300000) t(i)")  # several row groups' worth
    mgd.register(con, "mg_where", u.interpreter, ["BIGINT"], "BIGINT", pool=pool)
    ids = {row[0] for row in con.sql("SELECT DISTINCT mg_where(x) FROM t").fetchall()}
    assert ids and 0 not in ids and ids <= set(pool.interpreter_ids())


def test_errors_fail_the_query_with_type_message_and_traceback(con, pool):
    con.sql("CREATE TABLE t AS SELECT i AS x FROM range(100) t(i)")
    mgd.register(con, "mg_fails", u.fails_on_42, ["BIGINT"], "BIGINT", pool=pool)
    with pytest.raises(duckdb.Error) as info:
        con.sql("SELECT sum(mg_fails(x)) FROM t").fetchall()
    text = str(info.value)
    assert "ZeroDivisionError" in text and "row 42: forty-two divided by zero" in text
    mgd.register(con, "mg_wrong", u.wrong_type, ["BIGINT"], "BIGINT", pool=pool)
    with pytest.raises(duckdb.Error, match="row 0: the function returned a str where a 'l' value was expected"):
        con.sql("SELECT mg_wrong(x) FROM t").fetchall()
    assert con.sql("SELECT count(*) FROM t").fetchall()[0] == (100,)  # the connection goes on
    mgd.register(con, "mg_ok", u.identity, ["BIGINT"], "BIGINT", pool=pool)
    assert con.sql("SELECT sum(mg_ok(x)) FROM t").fetchall()[0] == (4950,)  # and the pool


def test_register_refuses_what_cannot_work(con, pool):
    lock = threading.Lock()

    def holds_a_lock(x):
        with lock:
            return x

    with pytest.raises(TypeError, match="closure variable 'lock' holds a lock"):
        mgd.register(con, "f", holds_a_lock, ["BIGINT"], "BIGINT", pool=pool)
    with pytest.raises(TypeError, match="is not callable"):
        mgd.register(con, "f", 42, ["BIGINT"], "BIGINT", pool=pool)
    with pytest.raises(TypeError, match="method of a shared object"):
        mgd.register(con, "f", manygil.Event().wait, ["BIGINT"], "BOOLEAN", pool=pool)
    with pytest.raises(TypeError, match=r"parameter 0: DuckDB type ENUM\('a', 'b'\) is not supported.*dictionary"):
        mgd.register(con, "f", u.identity, ["ENUM('a', 'b')"], "BIGINT", pool=pool)
    with pytest.raises(TypeError, match="return type: 'NOSUCHTYPE' is not a DuckDB type"):
        mgd.register(con, "f", u.identity, ["BIGINT"], "NOSUCHTYPE", pool=pool)
    with pytest.raises(ValueError, match="mode must be 'row' or 'batch'"):
        mgd.register(con, "f", u.identity, ["BIGINT"], "BIGINT", pool=pool, mode="vector")
    with pytest.raises(ValueError, match="null_handling"):
        mgd.register(con, "f", u.identity, ["BIGINT"], "BIGINT", pool=pool, null_handling="skip")


def test_concurrent_queries_from_two_threads(pool):
    base = duckdb.connect()
    base.sql("CREATE TABLE t AS SELECT i AS x FROM range(20000) t(i)")
    mgd.register(base, "mg_lcg", u.lcg, ["BIGINT"], "BIGINT", pool=pool)  # cursors share the catalog
    expected = sum(u.lcg(x) for x in range(20000))
    results, errors = [], []

    def query():
        try:
            c = base.cursor()
            results.append(c.sql("SELECT sum(mg_lcg(x)) FROM t").fetchall()[0][0])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=query) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    base.close()
    assert not errors and results == [expected, expected]


def test_the_decorator_and_the_shared_pool():
    c = duckdb.connect()
    c.sql("SET threads = 2")
    mgd.udf(c, ["BIGINT"], "BIGINT", name="mg_lcg")(u.lcg)
    assert c.sql("SELECT mg_lcg(5)").fetchall()[0] == (u.lcg(5),)
    assert mgd.shared_pool() is mgd.shared_pool()
    c.close()


def test_a_connection_closed_while_a_query_runs(pool):
    import time

    c = duckdb.connect()
    c.sql("SET threads = 2")
    c.sql("CREATE TABLE t AS SELECT i AS x FROM range(400000) t(i)")
    mgd.register(c, "mg_lcg", u.lcg, ["BIGINT"], "BIGINT", pool=pool)
    outcome = []
    cursor = c.cursor()  # DuckDB refuses a second call on a busy connection: the query runs on a cursor

    def query():
        try:
            outcome.append(cursor.sql("SELECT sum(mg_lcg(x)) FROM t").fetchall())
        except Exception as e:  # noqa: BLE001 - closed under it: an error is the expected outcome
            outcome.append(e)

    runner = threading.Thread(target=query)
    runner.start()
    deadline = time.monotonic() + 30
    while not any(w["current"] for w in pool.stats()["workers"]) and time.monotonic() < deadline:
        time.sleep(0.005)  # until the UDF runs in a worker
    # DuckDB 2 refuses to close a connection whose cursor is busy (rather than pulling the table from
    # under the UDF); the query finishes with the right answer, and the close goes through after.
    try:
        c.close()
        closed_early = True
    except duckdb.Error as e:
        assert "busy" in str(e)
        closed_early = False
    runner.join(60)
    assert not runner.is_alive() and len(outcome) == 1
    if not closed_early:
        assert outcome[0] == [(sum(u.lcg(x) for x in range(400000)),)]
        c.close()
    fresh = duckdb.connect()
    mgd.register(fresh, "mg_lcg", u.lcg, ["BIGINT"], "BIGINT", pool=pool)
    assert fresh.sql("SELECT sum(mg_lcg(x)) FROM range(1000) t(x)").fetchall() == [(sum(u.lcg(x) for x in range(1000)),)]
    fresh.close()


def test_an_argument_in_one_chunk_is_not_copied_and_several_chunks_are_joined():
    pa = pytest.importorskip("pyarrow")
    one = pa.chunked_array([pa.array([1, 2, 3])])
    assert mgd._one_array(one).buffers()[1].address == one.chunk(0).buffers()[1].address
    assert mgd._one_array(pa.chunked_array([[1], [2, 3]])).to_pylist() == [1, 2, 3]
    plain = pa.array([4])
    assert mgd._one_array(plain) is plain


def test_a_process_exits_cleanly_with_views_still_kept_by_workers():
    # The kept views end with their interpreters (at pool shutdown, or at exit with the shared pool);
    # the arrays they held are then left for the main interpreter, which never calls again.
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import duckdb, manygil, manygil.duckdb as mgd
        import duckdb_udfs as u
        con = duckdb.connect()
        con.sql("SET threads = 2")
        mgd.register(con, "mg_keep", u.keep_view, ["BIGINT"], "BIGINT", mode="batch")  # the shared pool
        with manygil.Pool(2) as pool:
            mgd.register(con, "mg_keep2", u.keep_view, ["BIGINT"], "BIGINT", pool=pool, mode="batch")
            print(con.sql("SELECT sum(mg_keep(x)), sum(mg_keep2(x)) FROM range(100000) t(x)").fetchall())
        print("done")
    """)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == f"[({sum(range(100000))}, {sum(range(100000))})]\ndone\n", proc.stderr[-3000:]


# Functions computing with the richer types, each registered with manygil and as DuckDB's own UDF.
COMPUTED = [
    ("DECIMAL(10,2)", "DECIMAL(12,2)", "(i / 7)::DECIMAL(10,2)", lambda d: d * 2 - 1),
    ("HUGEINT", "HUGEINT", "i::HUGEINT * 10000000000000000000000", lambda h: h // 3 + 1),
    ("TIME", "TIME", "TIME '00:00:00' + i * INTERVAL 17 SECOND", lambda t: t.replace(second=0)),
    ("INTERVAL", "INTERVAL", "i * INTERVAL 1 HOUR + INTERVAL 2 DAY", lambda iv: iv * 2),
    ("BIGINT[]", "BIGINT[]", "[i % 5, NULL, i % 3]", lambda xs: sorted(x for x in xs if x is not None)),
    ("STRUCT(a INTEGER, b VARCHAR)", "STRUCT(a INTEGER, b VARCHAR)", "{'a': i::INTEGER, 'b': 'v' || i}",
     lambda s: {"a": s["a"] + 1, "b": s["b"].upper()}),
    ("MAP(VARCHAR, BIGINT)", "MAP(VARCHAR, BIGINT)", "map {'k': i, 'm': -i}", lambda m: {k + k: v * 2 for k, v in m.items()}),
]


@pytest.mark.parametrize("param, result, expr, fn", COMPUTED, ids=[c[0] for c in COMPUTED])
def test_functions_over_the_richer_types_compute_as_duckdbs_own_udf(con, pool, param, result, expr, fn):
    con.sql(f"CREATE TABLE t AS SELECT i AS n, CASE WHEN i % 9 = 4 THEN NULL ELSE ({expr})::{param} END AS x "
            "FROM range(3000) t(i)")
    mgd.register(con, "mg_f", fn, [param], result, pool=pool)
    con.create_function("py_f", fn, [param], result)
    ours = con.sql("SELECT mg_f(x) FROM t ORDER BY n").fetchall()
    assert ours == con.sql("SELECT py_f(x) FROM t ORDER BY n").fetchall()
    assert sum(1 for (v,) in ours if v is None) == sum(1 for i in range(3000) if i % 9 == 4)


def test_what_batch_functions_get_for_the_richer_types(con, pool):
    got = {}
    for param, _, expr, _ in COMPUTED + [("TIMESTAMP WITH TIME ZONE", None, "TIMESTAMPTZ '2024-01-01 00:00:00+00'", None),
                                         ("UUID", None, "uuid()", None)]:
        mgd.register(con, "mg_kind", u.first_item_type, [param], "VARCHAR", pool=pool, mode="batch")
        got[param] = con.sql(f"SELECT DISTINCT mg_kind(({expr})::{param}) FROM range(3000) t(i)").fetchall()
        con.remove_function("mg_kind")
    assert got == {
        "DECIMAL(10,2)": [("list:Decimal",)], "HUGEINT": [("list:int",)], "TIME": [("memoryview:q",)],
        "INTERVAL": [("list:timedelta",)], "BIGINT[]": [("list:list",)], "STRUCT(a INTEGER, b VARCHAR)": [("list:dict",)],
        "MAP(VARCHAR, BIGINT)": [("list:dict",)], "TIMESTAMP WITH TIME ZONE": [("memoryview:q",)], "UUID": [("list:str",)]}
