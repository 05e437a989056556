"""Pool.map: order, chunking, laziness, timeouts and exceptions."""

import concurrent.futures as cf
import itertools
import os

import pytest

import helpers
import manygil


def test_results_in_order(pool):
    assert list(pool.map(helpers.square, range(1000))) == [i * i for i in range(1000)]


@pytest.mark.parametrize("chunksize", [1, 3, 64, 5000])
def test_explicit_chunksizes(pool, chunksize):
    assert list(pool.map(helpers.square, range(257), chunksize=chunksize)) == [i * i for i in range(257)]


def test_several_iterables_stop_at_the_shortest(pool):
    assert list(pool.map(helpers.add, [1, 2, 3], [10, 20])) == [11, 22]


def test_empty_and_bad_chunksize(pool):
    assert list(pool.map(helpers.square, [])) == []
    assert list(pool.map(helpers.square)) == []  # no iterables, as Executor.map
    with pytest.raises(ValueError):
        pool.map(helpers.square, [1], chunksize=0)


def test_generator_input_without_len(pool):
    assert list(pool.map(helpers.square, (i for i in range(100)))) == [i * i for i in range(100)]


def test_infinite_iterable_is_consumed_lazily(pool):
    consumed = itertools.count()
    source = (next(consumed) for _ in itertools.count())  # infinite; counts what map has pulled
    results = pool.map(helpers.square, source)
    first = list(itertools.islice(results, 50))
    assert first == [i * i for i in range(50)]
    pulled = next(consumed)
    # Bounded read-ahead: at most 2 * workers + 1 chunks of at most 1024 items beyond what was used.
    assert pulled < 50 + (2 * pool.max_workers + 2) * 1024
    results.close()


def test_exception_is_raised_at_its_item_after_earlier_results(pool):
    def values():
        yield from [1, 2, "three", 4]

    results = pool.map(helpers.square, values(), chunksize=10)
    assert next(results) == 1
    assert next(results) == 4
    with pytest.raises(TypeError, match="can't multiply sequence"):
        next(results)


def test_function_that_cannot_load_in_workers_is_raised_by_map(pool):
    with pytest.raises(ImportError, match="no_such_module_xyz"):
        list(pool.map("no_such_module_xyz:f", [1, 2, 3]))


def test_timeout_raises_timeout_error(pool, blocked_task):
    blocked_task.start(pool)
    blocked_task_2 = pool.submit(os.read, blocked_task.go_r, 1)  # keeps the second worker busy too
    results = pool.map(helpers.square, [1, 2, 3], timeout=0.05)
    with pytest.raises(cf.TimeoutError):
        list(results)
    os.write(blocked_task.go_w, b"rr")
    assert blocked_task_2.result(timeout=60)


def test_map_with_lambda_and_star_args(pool):
    assert list(pool.map(lambda a, b: a * b, range(5), range(5))) == [0, 1, 4, 9, 16]


def test_map_results_of_non_native_types(pool):
    assert list(pool.map(frozenset, [[1], [2, 2]])) == [frozenset({1}), frozenset({2})]


def test_closing_the_iterator_cancels_pending_chunks():
    with manygil.Pool(1) as p:
        results = p.map(helpers.square, range(100_000), chunksize=10)
        assert next(results) == 0
        results.close()  # the rest are cancelled rather than computed for nobody
