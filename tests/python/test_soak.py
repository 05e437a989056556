"""Leak and soak: a million trivial tasks, interpreter lifetimes, a hundred thousand messages with
buffers. RSS is read from /proc after warm-up; the bounds are stated per test and
printed (pytest -s shows them), so the note can quote the measured growth."""

import gc
import os
import sys

import pytest

import helpers
import manygil


def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")


def test_a_million_trivial_tasks_do_not_grow_memory():
    def round_of_100k(pool):
        total = sum(pool.map(helpers.identity, range(90_000)))
        for wave in range(10):  # submitted one by one, 1,000 in flight at a time
            futures = [pool.submit(helpers.add, i, 1) for i in range(wave * 1_000, (wave + 1) * 1_000)]
            total += sum(f.result() for f in futures)
        return total

    expected = sum(range(90_000)) + sum(range(1, 10_001))
    with manygil.Pool(2) as pool:
        assert round_of_100k(pool) == expected  # warm-up: caches, free lists and arenas fill once
        gc.collect()
        rss_before, blocks_before = rss_kb(), sys.getallocatedblocks()
        for _ in range(9):
            assert round_of_100k(pool) == expected
        gc.collect()
        rss_after, blocks_after = rss_kb(), sys.getallocatedblocks()
    growth = rss_after - rss_before
    print(f"\n900,000 tasks after 100,000 of warm-up: RSS {rss_before} kB -> {rss_after} kB ({growth:+} kB), "
          f"Python blocks {blocks_after - blocks_before:+}")
    assert growth < 8 * 1024, f"RSS grew by {growth} kB over 900,000 tasks"  # < 10 bytes per task
    assert blocks_after - blocks_before < 1_000, "Python objects accumulate"


@pytest.mark.skipif(not hasattr(sys, "getallocatedblocks"), reason="needs sys.getallocatedblocks")
def test_interpreter_create_close_cycles_leak_nothing_of_their_own():
    # CPython 3.13 itself keeps memory of every ended sub-interpreter: its immortal interned
    # strings stay allocated, and then its allocator's arenas are not freed (Objects/obmalloc.c).
    # sys.getallocatedblocks() counts those leaked blocks. The bound: a manygil interpreter that
    # runs a task leaks no more than a bare one that imports the same modules and runs the same
    # code; the RSS per cycle is printed for the record.
    import _interpreters

    # What a manygil worker runs at start (sys.path, manygil._core and _worker, its set-up), then the
    # same task.
    from manygil._pool import _setup_source

    code = _setup_source(None, (), "bare") + "x = sum(range(100))\nimport helpers\nassert helpers.add(1, 2) == 3\n"

    def bare():
        interp = _interpreters.create()
        _interpreters.exec(interp, code)
        _interpreters.destroy(interp)

    def ours():
        with manygil.Interpreter() as interp:
            interp.exec("x = sum(range(100))")
            assert interp.call(helpers.add, 1, 2) == 3

    def leaked_per_cycle(cycle, n=100):
        for _ in range(10):  # warm-up
            cycle()
        gc.collect()
        blocks, rss = sys.getallocatedblocks(), rss_kb()
        for _ in range(n):
            cycle()
        gc.collect()
        return (sys.getallocatedblocks() - blocks) / n, (rss_kb() - rss) * 1024 / n

    bare_blocks, bare_rss = leaked_per_cycle(bare)
    our_blocks, our_rss = leaked_per_cycle(ours)
    print(f"\nper create/close cycle: bare sub-interpreter {bare_blocks:.0f} blocks, {bare_rss / 1024:.0f} kB RSS; "
          f"manygil.Interpreter {our_blocks:.0f} blocks, {our_rss / 1024:.0f} kB RSS")
    assert our_blocks <= bare_blocks + 5, f"manygil leaks {our_blocks - bare_blocks:.0f} blocks per cycle of its own"


def test_channel_and_buffer_soak_loses_nothing():
    n = 100_000
    with manygil.Pool(2) as pool:
        inbox, outbox = manygil.Channel(maxsize=64), manygil.Channel(maxsize=64)
        echo = pool.submit(helpers.echo_buffers, inbox, outbox)
        gc.collect()
        live_before = manygil._core.live_buffers()
        seen = 0
        for i in range(n):
            buf = manygil.SharedBuffer(16)
            memoryview(buf)[:8] = i.to_bytes(8, "little")
            inbox.send((i, buf))
            if i >= 32:  # keep a window in flight
                j, back = outbox.recv(timeout=60)
                assert int.from_bytes(bytes(memoryview(back)[:8]), "little") == j == seen
                seen += 1
        inbox.close()
        for j, back in outbox:
            assert j == seen and int.from_bytes(bytes(memoryview(back)[:8]), "little") == j
            seen += 1
        assert echo.result(timeout=60) == n
        del buf, back
        gc.collect()
    assert seen == n
    assert manygil._core.live_buffers() == live_before  # every one of the 100,000 buffers was freed


def test_a_thousand_duckdb_udf_queries_keep_memory_flat():
    # manygil.duckdb (issue 22): 1,000 queries, a two-argument row UDF and a batch UDF in turn: RSS,
    # Python blocks, DuckDB's Arrow memory (pyarrow's allocator) and SharedBuffers all flat once warm.
    duckdb = pytest.importorskip("duckdb")
    pa = pytest.importorskip("pyarrow")
    import duckdb_udfs as u
    import manygil.duckdb as mgd

    con = duckdb.connect()
    con.sql("SET threads = 2")
    con.sql("CREATE TABLE t AS SELECT i AS x, 'w' || (i % 97) AS s FROM range(6000) t(i)")
    expected = sum(u.joined_length(f"w{i % 97}", str(i)) for i in range(6000))

    with manygil.Pool(2) as pool:
        mgd.register(con, "mg_len", u.joined_length, ["VARCHAR", "VARCHAR"], "BIGINT", pool=pool)
        mgd.register(con, "mg_lcg", u.lcg_batch, ["BIGINT"], "BIGINT", pool=pool, mode="batch")
        lcg_expected = sum(u.lcg(i) for i in range(6000))

        def hundred_queries():
            for q in range(100):
                if q % 2:
                    assert con.sql("SELECT sum(mg_len(s, x::VARCHAR)) FROM t").fetchall() == [(expected,)]
                else:
                    assert con.sql("SELECT sum(mg_lcg(x)) FROM t").fetchall() == [(lcg_expected,)]

        hundred_queries()  # warm-up
        gc.collect()
        rss_before, blocks_before = rss_kb(), sys.getallocatedblocks()
        arrow_before, buffers_before = pa.total_allocated_bytes(), manygil._core.live_buffers()
        for _ in range(10):
            hundred_queries()
        gc.collect()
        rss_after, blocks_after = rss_kb(), sys.getallocatedblocks()
        arrow_after, buffers_after = pa.total_allocated_bytes(), manygil._core.live_buffers()
    con.close()
    growth = rss_after - rss_before
    print(f"\n1,000 UDF queries after 100 of warm-up: RSS {rss_before} kB -> {rss_after} kB ({growth:+} kB), "
          f"Python blocks {blocks_after - blocks_before:+}, pyarrow bytes {arrow_after - arrow_before:+}, "
          f"SharedBuffers {buffers_after - buffers_before:+}")
    assert growth < 8 * 1024, f"RSS grew by {growth} kB over 1,000 queries"
    assert blocks_after - blocks_before < 1_000, "Python objects accumulate"
    assert arrow_after <= arrow_before, "DuckDB's Arrow chunks are not all released"
    assert buffers_after == buffers_before
