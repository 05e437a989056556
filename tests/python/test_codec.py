"""The payload codec's shortcuts keep Python's semantics: cached dict keys, recycled floats in the
workers, and large results decoded by the thread that asks for them."""

import asyncio
import concurrent.futures
import math
import threading

import pytest

import helpers
import manygil
from manygil import _core


@pytest.mark.parametrize(
    "value",
    [
        {f"key{i}": i for i in range(10_000)},  # more keys than the key cache holds
        {"k" * 65: 1, "k" * 64: 2, "": 3, "é": 4, "a\x00b": 5},  # too long to cache, longest cached, empty, non-ASCII
        [{"id": i, "name": f"n{i}", "score": i * 0.5} for i in range(3_000)],  # records repeat their keys
        [1.5, -0.0, math.inf, 2**62, -(2**63), 2**64, -(2**200), "x" * 100_000, b"\x00" * 10],
        (("nested", ("tuple", [None, True, False])),),
    ],
)
def test_codec_round_trip_is_exact(value):
    back = _core._codec_roundtrip(value)
    assert back == value
    assert back is not value


def test_cached_keys_are_equal_strs_with_correct_hashes():
    first = _core._codec_roundtrip({"alpha": 1, "beta": 2})
    second = _core._codec_roundtrip({"alpha": 3})
    key = next(iter(second))
    assert type(key) is str and key == "alpha" and hash(key) == hash("alpha")
    assert second["alpha"] == 3 and first == {"alpha": 1, "beta": 2}


def test_colliding_keys_all_survive():
    # Far more keys than cache slots: every set is contended, every key must still come back right.
    value = {f"k{i:06d}": i for i in range(50_000)}
    for _ in range(2):
        assert _core._codec_roundtrip(value) == value


def test_recycled_floats_never_change_values_the_worker_keeps(pool):
    values = [0.25 + i for i in range(1_000)]
    assert pool.submit(helpers.keep_first_float, values).result() == 1_000
    # Many tasks later (their floats are recycled by the workers), the kept float is intact.
    for k in range(20):
        assert pool.submit(helpers.scaled, [float(i) for i in range(1_000)], k).result()[3] == 3.0 * k
    every_worker = manygil.Barrier(2)  # the pool fixture's workers
    kept = set()
    for f in [pool.submit(helpers.kept_floats, every_worker) for _ in range(2)]:
        kept.update(f.result())
    assert kept == {0.25}


def test_results_do_not_share_storage(pool):
    values = [float(i) for i in range(5_000)]
    first = pool.submit(helpers.identity, values).result()
    second = pool.submit(helpers.identity, values).result()
    first[0] = -1.0
    assert second[0] == 0.0 and values[0] == 0.0
    assert first is not second and first[1:] == values[1:]


def test_large_result_is_decoded_once_for_every_consumer(pool):
    future = pool.submit(helpers.scaled, [float(i) for i in range(20_000)], 2.0)
    seen = []
    future.add_done_callback(lambda f: seen.append(f.result()))
    result = future.result()
    assert len(result) == 20_000 and result[-1] == 39_998.0
    assert future.result() is result
    assert future.exception() is None
    concurrent.futures.wait([future])
    assert seen and seen[0] is result


def test_large_result_decoded_by_many_threads_at_once(pool):
    future = pool.submit(helpers.scaled, [float(i) for i in range(50_000)], 1.0)
    got = []
    threads = [threading.Thread(target=lambda: got.append(future.result())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(g is got[0] for g in got)


def test_large_result_through_asyncio(pool):
    async def main():
        return await pool.run(helpers.scaled, [1.0] * 10_000, 3.0)

    assert asyncio.run(main()) == [3.0] * 10_000


def test_large_result_that_cannot_be_rebuilt_is_the_tasks_error(pool):
    future = pool.submit(helpers.make_unloadable_big_result, 10_000)
    with pytest.raises(manygil.NotShareableError, match="cannot be unpickled") as info:
        future.result()
    assert info.value.path.startswith("result")
    # From then on the future reports that error consistently.
    assert future.exception() is info.value
    with pytest.raises(manygil.NotShareableError):
        future.result()
    assert pool.submit(helpers.add, 1, 2).result() == 3  # the pool is unaffected


def test_map_with_large_chunks(pool):
    rows = [[float(i)] * 1_000 for i in range(40)]
    out = list(pool.map(helpers.identity, rows, chunksize=10))
    assert out == rows
