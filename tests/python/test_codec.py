"""The payload codec's shortcuts keep Python's semantics: cached dict keys, recycled floats in the
workers, and large results decoded by the thread that asks for them."""

import asyncio
import concurrent.futures
import math
import sys
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


def _dicts_in_order(value):
    """The dicts of a decoded value, with their keys in order (== alone ignores order)."""
    if isinstance(value, dict):
        return [list(value)] + [d for v in value.values() for d in _dicts_in_order(v)]
    if isinstance(value, (list, tuple)):
        return [d for v in value for d in _dicts_in_order(v)]
    return []


# Decoded several times in a row, so that the decoder's key runs and dict templates (decode_cache.hpp)
# come into play from the second and third time on; each step changes what the previous one taught it.
_SHAPE_SEQUENCE = [
    {"a": 1, "b": 2, "c": 3},
    {"a": 4, "b": 5, "c": 6},
    {"a": 7, "b": 8, "c": 9},  # from a template
    {"a": 1, "x": 2, "c": 3},  # one key changed: the template must be dropped
    {"a": 1, "b": 2, "c": 3},
    {"c": 1, "b": 2, "a": 3},  # same keys, another order: insertion order is kept
    {"a": 1, "b": 2},  # a prefix of the run
    {"a": 1, "b": 2},
    {"a": 1, "b": 2},
    {"a": 1, "b": 2, "c": 3, "d": 4},  # longer than the template
    {"a": 1},  # one key
    {},
    {"a": [1, {"a": 2, "b": 3}], "b": {"a": {"a": None}}},  # nested at several depths
    {"a": [1, {"a": 2, "b": 3}], "b": {"a": {"a": None}}},
    {"a": [1, {"a": 2, "b": 3}], "b": {"a": {"a": None}}},
    {"a": 1, "b": 2, "c": 3, 4: "int key"},  # a key the cache does not hold
    {"a" * 65: 1, "b": 2},  # a key too long to cache
]


def test_the_fast_dict_fill_exists_only_on_the_versions_whose_layout_it_knows():
    # The probe (src/cpython/dict_fill.h): the other tests here pass on both paths, this one guards
    # against the fast path silently turning off on 3.12 and 3.13, or on where it was never checked.
    assert _core._dict_fill_available() is ((3, 12) <= sys.version_info[:2] <= (3, 13))


def test_dict_shapes_decode_exactly_whatever_came_before():
    for _ in range(3):
        for value in _SHAPE_SEQUENCE:
            back = _core._codec_roundtrip(value)
            assert back == value
            assert _dicts_in_order(back) == _dicts_in_order(value)


def test_dict_shapes_through_workers(pool):
    # Each worker decodes the arguments with its own cache, and the caller the results with its own.
    for _ in range(3):
        for value in _SHAPE_SEQUENCE:
            back = pool.submit(helpers.identity, value).result()
            assert back == value
            assert _dicts_in_order(back) == _dicts_in_order(value)


def test_records_with_repeated_keys_decode_exactly():
    records = [{"id": i, "name": f"n{i}", "score": i * 0.5, "tags": [i]} for i in range(2_000)]
    for _ in range(3):
        back = _core._codec_roundtrip(records)
        assert back == records
        assert all(list(r) == ["id", "name", "score", "tags"] for r in back)


def test_dicts_from_a_template_are_independent_dicts():
    value = {f"k{i}": i for i in range(100)}
    decoded = [_core._codec_roundtrip(value) for _ in range(5)]  # the last ones come from a template
    decoded[-1]["k0"] = "changed"
    decoded[-1]["new"] = 1
    del decoded[-1]["k1"]
    assert decoded[-2] == value and decoded[0] == value
    later = _core._codec_roundtrip(value)
    assert later == value and "new" not in later
    # They grow and shrink like any dict.
    for i in range(1_000):
        later[f"more{i}"] = i
    for i in range(100):
        del later[f"k{i}"]
    assert len(later) == 1_000 and later["more999"] == 999


def test_dicts_from_a_template_holding_containers_are_collected_in_cycles():
    import gc
    import weakref

    class Marker:
        pass

    value = {"a": [1], "b": [2]}
    for _ in range(4):
        d = _core._codec_roundtrip(value)
    assert gc.is_tracked(d)
    marker = Marker()
    d["a"].append(d)  # a cycle through the decoded dict
    d["a"].append(marker)
    ref = weakref.ref(marker)
    del d, marker
    gc.collect()
    assert ref() is None


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
