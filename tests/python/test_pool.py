"""manygil.Pool as a concurrent.futures.Executor: futures, workers, the executor contract."""

import concurrent.futures as cf
import os
import sys

import pytest

import helpers
import manygil


def test_submit_returns_a_real_future(pool):
    f = pool.submit(helpers.square, 12)
    assert isinstance(f, cf.Future)
    assert f.result() == 144
    assert f.done() and not f.cancelled()


def test_args_kwargs_and_targets(pool):
    assert pool.submit(helpers.add, 1, 2, scale=10).result() == 30
    assert pool.submit("helpers:add", 2, b=3).result() == 5
    assert pool.submit(len, "four").result() == 4
    with pytest.raises(ValueError, match="module:function"):
        pool.submit("no-colon")


def test_tasks_run_in_worker_interpreters(pool):
    assert helpers.in_main_interpreter() is True
    assert pool.submit(helpers.in_main_interpreter).result() is False
    pool.wait_ready()
    ids = pool.interpreter_ids()
    assert len(set(ids)) == 2 and 0 not in ids
    assert pool.submit(helpers.interpreter_id).result() in ids


@pytest.mark.skipif(sys.version_info < (3, 13), reason="_interpreters.get_config needs 3.13")
def test_workers_own_their_gil(pool):
    config = pool.submit(helpers.interpreter_config).result()
    assert config["gil"] == "own"
    assert config["use_main_obmalloc"] is False
    assert config["check_multi_interp_extensions"] is True
    assert config["allow_fork"] is False and config["allow_exec"] is False


def test_two_workers_run_at_the_same_time(pool):
    # Each task writes to the other's pipe, then reads its own: both finish only if both run at once.
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    try:
        fa = pool.submit(helpers.meet, b_w, a_r)
        fb = pool.submit(helpers.meet, a_w, b_r)
        assert fa.result(timeout=60) == b"x"
        assert fb.result(timeout=60) == b"x"
    finally:
        for fd in (a_r, a_w, b_r, b_w):
            os.close(fd)


def test_default_workers_is_usable_cpus():
    with manygil.Pool() as p:
        assert p.max_workers == len(os.sched_getaffinity(0))


def test_bad_max_workers():
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        manygil.Pool(0)
    with pytest.raises(TypeError):
        manygil.Pool(2, initializer=42)


def test_alias_and_exports():
    assert manygil.InterpreterPoolExecutor is manygil.Pool
    assert issubclass(manygil.Pool, cf.Executor)
    assert issubclass(manygil.BrokenPool, cf.BrokenExecutor)
    assert issubclass(manygil.NotShareableError, TypeError)


def test_as_completed_wait_and_callbacks(pool):
    futures = [pool.submit(helpers.square, i) for i in range(20)]
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=60)) == [i * i for i in range(20)]
    done, not_done = cf.wait(futures, timeout=60)
    assert len(done) == 20 and not not_done
    import threading

    seen, called = [], threading.Event()

    def callback(fut):
        seen.append(fut.result())
        called.set()

    f = pool.submit(helpers.square, 3)
    f.add_done_callback(callback)
    assert called.wait(60)  # callbacks run after waiters are woken: wait for it, not for result()
    assert seen == [9]


def test_thousand_tasks(pool):
    futures = [pool.submit(helpers.add, i, i) for i in range(1000)]
    assert [f.result() for f in futures] == [2 * i for i in range(1000)]


def test_many_pools_in_sequence():
    for i in range(20):
        with manygil.Pool(2) as p:
            assert p.submit(helpers.add, i, 1).result() == i + 1


def test_initializer_runs_in_every_worker(pipe):
    with manygil.Pool(2, initializer=helpers.set_tag, initargs=("ready",)) as p:
        results = {p.submit(helpers.tag_initialized).result() for _ in range(10)}
    assert results == {"ready"}


def test_initializer_failure_breaks_the_pool():
    p = manygil.Pool(2, initializer=helpers.fail_initializer, initargs=("no config",))
    pending = [p.submit(helpers.square, i) for i in range(5)]
    for f in pending:
        with pytest.raises(manygil.BrokenPool) as info:
            f.result(timeout=60)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert "no config" in str(info.value.__cause__)
    with pytest.raises(manygil.BrokenPool, match="no config"):
        p.wait_ready()
    with pytest.raises(manygil.BrokenPool):
        p.submit(helpers.square, 1)
    p.shutdown()


def test_unpicklable_initializer_is_refused_at_once():
    import threading

    lock = threading.Lock()
    with pytest.raises(TypeError, match="initializer"):
        manygil.Pool(1, initializer=helpers.identity, initargs=(lock,))


def test_pool_inside_a_worker_is_a_clear_error(pool):
    with pytest.raises(RuntimeError, match="only be created in the main interpreter"):
        pool.submit(helpers.make_pool_inside_worker).result()
    assert pool.submit(helpers.square, 2).result() == 4


def test_sys_path_and_cwd_reach_workers(tmp_path):
    (tmp_path / "late_module.py").write_text("def where():\n    return 'late'\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import late_module

        with manygil.Pool(1) as p:
            assert p.submit(late_module.where).result() == "late"
            assert p.submit(helpers.sys_path).result()[0] == str(tmp_path)
            assert p.submit(helpers.cwd).result() == os.getcwd()
    finally:
        sys.path.remove(str(tmp_path))
