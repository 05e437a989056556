"""Exceptions from tasks: same type, worker traceback as __cause__, RemoteError when not rebuildable."""

import pytest

import helpers
import manygil


def test_same_type_and_message(pool):
    with pytest.raises(ValueError, match="bad value") as info:
        pool.submit(helpers.raise_value_error, "bad value").result()
    cause = info.value.__cause__
    assert cause is not None and "Traceback (most recent call last)" in str(cause)
    assert "raise_value_error" in str(cause) and "helpers.py" in str(cause)


def test_nested_frames_in_traceback(pool):
    with pytest.raises(KeyError) as info:
        pool.submit(helpers.outer_frame, 3).result()
    tb = str(info.value.__cause__)
    assert "outer_frame" in tb and "inner_frame" in tb


def test_custom_exception_keeps_its_attributes(pool):
    with pytest.raises(helpers.CustomError) as info:
        pool.submit(helpers.raise_custom).result()
    assert (info.value.code, info.value.detail) == (7, "detail")


def test_unrebuildable_exception_becomes_remote_error(pool):
    with pytest.raises(manygil.RemoteError) as info:
        pool.submit(helpers.raise_unpicklable_local).result()
    assert "LocalError" in info.value.type_name
    assert info.value.message == "from a local class"
    assert "raise_unpicklable_local" in str(info.value.__cause__)


def test_system_exit_reaches_the_caller_and_the_process_lives(pool):
    with pytest.raises(SystemExit) as info:
        pool.submit(helpers.sys_exit, 3).result()
    assert info.value.code == 3
    assert pool.submit(helpers.square, 4).result() == 16


def test_unknown_module_in_worker_is_an_import_error(pool):
    with pytest.raises(ImportError, match="no_such_module_xyz"):
        pool.submit("no_such_module_xyz:f").result()


def test_failures_do_not_break_the_pool(pool):
    futures = [pool.submit(helpers.raise_value_error, "x") if i % 2 else pool.submit(helpers.square, i)
               for i in range(50)]
    for i, f in enumerate(futures):
        if i % 2:
            with pytest.raises(ValueError):
                f.result()
        else:
            assert f.result() == i * i
