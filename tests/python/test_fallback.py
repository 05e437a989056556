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
