"""Pool(reuse_interpreters=True), the default: a pool that shuts down parks its workers' interpreters
and the next pool starts on them; what a reused interpreter keeps and what it gets anew."""

import os
import sys
import time

import pytest

import helpers
import manygil
from manygil import _core


@pytest.fixture(autouse=True)
def no_parked_interpreters():
    """Each test starts and ends with nothing parked (other tests' pools park theirs)."""
    _core._end_idle_interpreters()
    _core._resume_idle_interpreters()
    yield
    _core._end_idle_interpreters()
    _core._resume_idle_interpreters()


def test_the_next_pool_starts_on_the_parked_interpreters():
    with manygil.Pool(2) as pool:
        pool.wait_ready()
        first = set(pool.interpreter_ids())
        assert list(pool.map(helpers.square, range(6))) == [0, 1, 4, 9, 16, 25]
    assert _core._idle_interpreters() == 2
    with manygil.Pool(2) as pool:
        pool.wait_ready()
        assert set(pool.interpreter_ids()) == first
        assert _core._idle_interpreters() == 0
        assert list(pool.map(helpers.square, range(3))) == [0, 1, 4]
    with manygil.Pool(3) as pool:  # two parked ones and a new one
        pool.wait_ready()
        ids = set(pool.interpreter_ids())
        assert first < ids and len(ids) == 3


def test_without_reuse_every_pool_creates_and_ends_its_interpreters():
    with manygil.Pool(2, reuse_interpreters=False) as pool:
        pool.wait_ready()
        first = set(pool.interpreter_ids())
    assert _core._idle_interpreters() == 0
    with manygil.Pool(2) as pool:
        pool.wait_ready()
        assert not first & set(pool.interpreter_ids())


def test_a_reused_interpreter_gets_the_new_pools_setup():
    with manygil.Pool(1, initializer=helpers.set_tag, initargs=("first",), thread_name_prefix="one") as pool:
        assert pool.submit(helpers.tag_initialized).result() == "first"
    with manygil.Pool(1, initializer=helpers.set_tag, initargs=("second",), thread_name_prefix="two") as pool:
        assert pool.submit(helpers.tag_initialized).result() == "second"
        assert pool.submit(helpers.thread_name).result() == "two_0"
        assert pool.submit(helpers.sys_path).result() == sys.path


def test_modules_imported_by_earlier_tasks_stay_imported():
    with manygil.Pool(1) as pool:
        pool.submit(helpers.import_module, "json").result()
        first = pool.interpreter_ids()
    with manygil.Pool(1) as pool:
        pool.wait_ready()
        assert pool.interpreter_ids() == first
        assert pool.submit(helpers.is_imported, "json").result() is True


def test_an_interpreter_with_a_thread_still_running_is_not_kept():
    with manygil.Pool(1) as pool:
        pool.submit(helpers.start_thread_for, 0.3).result()
    assert _core._idle_interpreters() == 0  # ended: its thread was joined first


def test_an_interpreter_with_atexit_callbacks_is_ended_at_shutdown_and_they_run(tmp_path):
    marker = tmp_path / "atexit-ran"
    with manygil.Pool(1) as pool:
        pool.submit(helpers.register_atexit_writer, str(marker)).result()
    assert marker.read_text() == "ran"
    assert _core._idle_interpreters() == 0


def test_a_broken_pool_parks_nothing():
    pool = manygil.Pool(2, initializer=helpers.fail_initializer, initargs=("no",))
    with pytest.raises(manygil.BrokenPool):
        pool.submit(helpers.square, 2).result()
    pool.shutdown()
    assert _core._idle_interpreters() == 0


def test_interpreter_and_actor_do_not_park():
    with manygil.Interpreter() as interp:
        interp.exec("x = 1")
    actor = manygil.actor(helpers.Counter)
    actor.add(1).result()
    actor.close()
    assert _core._idle_interpreters() == 0


def test_at_most_one_interpreter_per_cpu_is_kept():
    cpus = manygil._pool.default_workers()
    with manygil.Pool(cpus + 2) as pool:
        pool.wait_ready()
    assert _core._idle_interpreters() == cpus


def test_fork_and_exit_with_parked_interpreters_are_clean(run_python):
    result = run_python("""
        import os
        import manygil
        from manygil import _core

        def square(x):
            return x * x

        if __name__ == "__main__":
            with manygil.Pool(2) as p:
                assert list(p.map(square, range(4))) == [0, 1, 4, 9]
            assert _core._idle_interpreters() == 2
            pid = os.fork()  # parked interpreters would kill the child (gh-139759): they end first
            if pid == 0:
                os._exit(0 if sum(map(square, range(4))) == 14 else 3)
            _, status = os.waitpid(pid, 0)
            print("child", os.waitstatus_to_exitcode(status))
            with manygil.Pool(2) as p:
                print(sum(p.map(square, range(4))))
            print("parked", _core._idle_interpreters())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["child", "0", "14", "parked", "2"]
    # Python may warn that the process has threads (DeprecationWarning: ended workers' threads may
    # still be returning); manygil's own warning (RuntimeWarning: pools alive) must not appear.
    assert "Fatal" not in result.stderr and "RuntimeWarning" not in result.stderr, result.stderr


def test_max_tasks_per_child_recycles_workers_with_the_initializer_run_again():
    with manygil.Pool(1, max_tasks_per_child=2, initializer=helpers.record_setup, initargs=("again",)) as pool:
        seen = []
        for _ in range(8):
            seen.append(pool.submit(helpers.interpreter_and_setup_value).result())
            time.sleep(0.1)  # a successor gets time to start (it takes over once ready)
        interpreters = [interp for interp, _ in seen]
        assert all(value == "again" for _, value in seen), seen  # each successor ran the initializer
        assert interpreters[0] == interpreters[1] and len(set(interpreters)) >= 3, interpreters
        assert pool.stats()["recycled"] >= 2
        # A map runs whole while its workers recycle under it.
        assert list(pool.map(helpers.square, range(50), chunksize=2)) == [i * i for i in range(50)]


@pytest.mark.parametrize("kwargs, error", [({"max_tasks_per_child": 0}, ValueError),
                                           ({"max_tasks_per_child": 1.5}, TypeError),
                                           ({"max_tasks_per_child": 2, "max_tasks_jitter": -1}, ValueError)])
def test_max_tasks_per_child_is_checked(kwargs, error):
    with pytest.raises(error, match="max_tasks"):
        manygil.Pool(1, **kwargs)


def test_a_reused_interpreter_sees_the_environment_as_it_is_now(monkeypatch):
    monkeypatch.setenv("MG_REUSE_GONE", "old")
    # (helpers, not this module: a worker that imported pytest has atexit callbacks and never parks.)
    with manygil.Pool(1) as pool:  # this worker's os.environ is a copy made now ...
        assert pool.submit(helpers.environ_and_interpreter, "MG_REUSE_GONE").result()[0] == "old"
        [first] = pool.interpreter_ids()
    monkeypatch.setenv("MG_REUSE_NEW", "set later")
    monkeypatch.delenv("MG_REUSE_GONE")
    with manygil.Pool(1) as pool:  # ... and the next pool's tasks on it see today's
        assert pool.submit(helpers.environ_and_interpreter, "MG_REUSE_NEW").result() == ("set later", first)
        assert pool.submit(helpers.environ_and_interpreter, "MG_REUSE_GONE").result() == (None, first)
