"""Pool(fallback=...): tasks that need a module refusing own-GIL interpreters run elsewhere."""

import os

import pytest

import helpers
import manygil


def test_without_fallback_the_refusal_is_raised_with_its_remedy():
    with manygil.Pool(1) as pool:
        with pytest.raises(ImportError, match="_testsinglephase does not support loading in subinterpreters") as info:
            pool.submit(helpers.needs_single_phase_module, 1).result()
        assert any("fallback" in note for note in info.value.__notes__)
        assert pool.stats()["fallbacks"] == 0


def test_fallback_main_runs_the_task_in_the_main_interpreter():
    with manygil.Pool(2, fallback="main") as pool:
        futures = [pool.submit(helpers.needs_single_phase_module, i) for i in range(4)]
        for i, f in enumerate(futures):
            doubled, in_main, pid = f.result(timeout=60)
            assert doubled == 2 * i and in_main is True and pid == os.getpid()
        assert pool.stats()["fallbacks"] == 4
        # Other tasks still run in the workers, and other errors are not re-routed.
        assert pool.submit(helpers.in_main_interpreter).result() is False
        with pytest.raises(ValueError):
            pool.submit(helpers.raise_value_error, "x").result()
        assert pool.stats()["fallbacks"] == 4


def test_fallback_process_runs_the_task_in_another_process():
    with manygil.Pool(1, fallback="process") as pool:
        doubled, in_main, pid = pool.submit(helpers.needs_single_phase_module, 21).result(timeout=120)
        assert doubled == 42 and in_main is True and pid != os.getpid()
        assert pool.stats()["fallbacks"] == 1


def test_the_rerouted_tasks_own_error_reaches_the_caller():
    with manygil.Pool(1, fallback="main") as pool:
        with pytest.raises(TypeError, match="NoneType"):
            pool.submit(helpers.needs_single_phase_module, None).result()  # None * 2, after the import
        assert pool.stats()["fallbacks"] == 1


def test_submit_with_honours_the_fallback():
    with manygil.Pool(1, fallback="main") as pool:
        doubled, in_main, pid = pool.submit_with(helpers.needs_single_phase_module, (5,), timeout=60).result(timeout=60)
        assert (doubled, in_main, pid) == (10, True, os.getpid())
        assert pool.stats()["fallbacks"] == 1


def test_bad_fallback_is_refused():
    with pytest.raises(ValueError, match="fallback"):
        manygil.Pool(1, fallback="threads")


# ---- map() honours the fallback as submit() does --------------------------------------------------

import numpy_tasks  # noqa: E402  (imports numpy: fine in the main interpreter)


@pytest.mark.parametrize("chunksize", [None, 1, 3, 100])
def test_map_fallback_main_with_a_module_that_imports_numpy(chunksize):
    with manygil.Pool(2, fallback="main") as pool:
        out = list(pool.map(numpy_tasks.double, range(10), chunksize=chunksize))
        assert [v for v, _, _ in out] == [2 * i for i in range(10)]
        assert all(in_main and pid == os.getpid() for _, in_main, pid in out)
        assert pool.stats()["fallbacks"] >= 1
        # Several iterables, and a function that only refuses when an item imports the module.
        assert list(pool.map(numpy_tasks.add, [1, 2, 3], [10, 20, 30], chunksize=chunksize)) == [11, 22, 33]
        assert [v for v, _, _ in pool.map(helpers.needs_single_phase_module, range(5), chunksize=chunksize)] == \
            [0, 2, 4, 6, 8]


def test_map_fallback_process_with_a_module_that_imports_numpy():
    with manygil.Pool(2, fallback="process") as pool:
        out = list(pool.map(numpy_tasks.double, range(7), chunksize=2))
        assert [v for v, _, _ in out] == [0, 2, 4, 6, 8, 10, 12]
        assert all(in_main and pid != os.getpid() for _, in_main, pid in out)
        assert list(pool.map(numpy_tasks.add, [1, 2], [3, 4])) == [4, 6]


def test_map_fallback_raises_at_the_item_that_raised_after_yielding_the_earlier_ones():
    with manygil.Pool(2, fallback="main") as pool:
        it = pool.map(numpy_tasks.inverse, [1, 1, 0, 1], chunksize=4)
        assert next(it) == 1 and next(it) == 1
        with pytest.raises(ZeroDivisionError):
            next(it)


def test_map_fallback_a_chunk_refused_mid_way_goes_on_from_the_refused_item():
    # The first items run in the worker; the item that imports the refusing module and those after it
    # run in the fallback; results stay in order.
    with manygil.Pool(1, fallback="main") as pool:
        out = list(pool.map(helpers.in_main_then_single_phase, [0, 1, 2, 5, 6], chunksize=5))
        assert out == [(0, False), (1, False), (2, False), (10, True), (12, True)]
        assert pool.stats()["fallbacks"] == 1


def test_map_without_fallback_still_raises_the_refusal():
    with manygil.Pool(1) as pool:
        with pytest.raises(ImportError, match="does not support loading in subinterpreters"):
            list(pool.map(numpy_tasks.double, range(3)))
        assert pool.stats()["fallbacks"] == 0
        assert pool.submit(helpers.square, 3).result() == 9  # the pool is still usable
