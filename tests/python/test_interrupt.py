"""Stopping tasks: per-task timeouts, Future.interrupt(), shutdown(timeout=...), and seeing what runs
(stats(), dump_stacks()). Timing is never asserted: only outcomes."""

import os
import time

import pytest

import helpers
import manygil


def started(pool, fn, *args, **options):
    """Submits fn(write_fd, *args) and returns (future, read_fd) once the task has started."""
    r, w = os.pipe()
    future = pool.submit_with(fn, (w, *args), **options)
    assert os.read(r, 1) == b"x"
    os.close(r)
    os.close(w)
    return future


def test_timeout_interrupts_pure_python_and_the_worker_goes_on(pool):
    future = pool.submit_with(helpers.spin, timeout=0.1)
    with pytest.raises(manygil.Interrupted, match="timeout of 0.1") as info:
        future.result(timeout=60)
    assert isinstance(info.value, TimeoutError)
    assert "in spin" in str(info.value.__cause__)  # the worker's traceback, where it stopped
    # Both workers still serve.
    assert sorted(pool.map(helpers.square, range(8))) == [i * i for i in range(8)]


def test_a_task_that_finishes_in_time_is_not_interrupted(pool):
    assert pool.submit_with(helpers.add, (2, 3), {"scale": 2}, timeout=30).result() == 10


def test_no_interrupt_leaks_into_the_next_task(pool):
    # Deadlines racing with the end of the call: whichever wins, the next task is never hit.
    for i in range(100):
        f = pool.submit_with(helpers.busy_for, (0.001,), timeout=0.001)
        try:
            f.result(timeout=60)
        except manygil.Interrupted:
            pass
        assert pool.submit(helpers.add, i, 1).result(timeout=60) == i + 1


def test_the_tasks_own_timeout_error_stays_what_it_is(pool):
    with pytest.raises(TimeoutError) as info:
        pool.submit_with(helpers.raise_own_timeout, timeout=30).result()
    assert type(info.value) is TimeoutError and "own timeout" in str(info.value)


def test_future_interrupt_stops_a_running_task(pool):
    future = started(pool, helpers.spin_until_set)
    assert future.interrupt() is True
    with pytest.raises(manygil.Interrupted, match="interrupted"):
        future.result(timeout=60)
    assert future.interrupt() is False  # done
    assert pool.submit(helpers.add, 1, 1).result() == 2


def test_future_interrupt_of_a_queued_task_cancels_it():
    with manygil.Pool(1) as pool:
        running = started(pool, helpers.spin_until_set)
        queued = pool.submit(helpers.add, 1, 2)
        assert queued.interrupt() is True and queued.cancelled()
        assert running.interrupt() is True
        with pytest.raises(manygil.Interrupted):
            running.result(timeout=60)
        assert pool.submit(helpers.add, 2, 2).result() == 4


def test_c_code_is_not_interrupted_and_stats_show_it_pending(pool):
    future = pool.submit_with(helpers.sleep_then, (1.0, "done"), timeout=0.05)
    deadline = time.monotonic() + 30
    pending = None
    while time.monotonic() < deadline and pending is None:
        for w in pool.stats()["workers"]:
            current = w["current"]
            if current and "sleep_then" in current["task"] and current["interrupt_pending_s"] is not None:
                pending = current
        time.sleep(0.01)
    assert pending is not None and pending["interruptible"] is True
    # Once the sleep returns to Python, the pending interrupt stops it.
    with pytest.raises(manygil.Interrupted):
        future.result(timeout=60)


def test_stats_count_tasks_and_show_what_runs():
    with manygil.Pool(1) as pool:
        pool.submit(helpers.add, 1, 2).result()
        with pytest.raises(ValueError):
            pool.submit(helpers.raise_value_error, "x").result()
        running = started(pool, helpers.spin_until_set)
        queued = [pool.submit(helpers.add, i, 0) for i in range(3)]
        stats = pool.stats()
        (worker,) = stats["workers"]
        assert worker["tasks_done"] == 2 and worker["tasks_failed"] == 1
        assert worker["interpreter_id"] == pool.interpreter_ids()[0]
        assert worker["current"]["task"] == "helpers:spin_until_set"
        assert worker["current"]["running_s"] >= 0 and worker["busy_s"] >= worker["current"]["running_s"]
        assert stats["queued"] == 3
        running.interrupt()
        assert [f.result(timeout=60) for f in queued] == [0, 1, 2]
        assert pool.stats()["workers"][0]["tasks_failed"] == 2 and pool.stats()["workers"][0]["current"] is None


def test_dump_stacks_shows_where_each_worker_is():
    with manygil.Pool(2) as pool:
        pool.wait_ready()
        running = started(pool, helpers.spin_until_set)
        stacks = pool.dump_stacks()
        assert len(stacks) == 2
        busy = [s for s in stacks if "running helpers:spin_until_set" in s]
        assert len(busy) == 1
        assert "in spin_until_set" in busy[0] and "in spin" in busy[0] and "helpers.py" in busy[0]
        assert any(s.endswith("idle") or "idle" in s.splitlines()[0] for s in stacks if s not in busy)
        running.interrupt()
        with pytest.raises(manygil.Interrupted):
            running.result(timeout=60)


def test_shutdown_timeout_interrupts_running_tasks():
    pool = manygil.Pool(2)
    spinning = pool.submit(helpers.spin)
    pool.shutdown(wait=True, timeout=0.2)  # returns: the interrupt stopped it
    with pytest.raises(manygil.Interrupted, match="shutdown"):
        spinning.result(timeout=60)
    assert pool._core_shut_down()


def test_shutdown_timeout_reports_a_task_stuck_in_c():
    pool = manygil.Pool(1)
    stuck = pool.submit(helpers.sleep_then, 3.0, "late")
    while not stuck.running():
        time.sleep(0.01)
    with pytest.raises(TimeoutError, match="sleep_then"):
        pool.shutdown(wait=True, timeout=0.1)
    # It ends by itself once the sleep returns (interrupted there), and the pool finishes.
    with pytest.raises(manygil.Interrupted):
        stuck.result(timeout=60)
    pool.shutdown(wait=True)
    assert pool._core_shut_down()


def test_submit_with_validates_its_options(pool):
    with pytest.raises(ValueError, match="timeout"):
        pool.submit_with(helpers.add, (1, 2), timeout=-1)
    with pytest.raises(TypeError, match="timeout"):
        pool.submit_with(helpers.add, (1, 2), timeout="soon")
    assert pool.submit_with(helpers.add, [1, 2]).result() == 3


def test_a_task_that_swallows_an_interrupt_can_be_interrupted_again(pool):
    r, w = os.pipe()
    future = pool.submit(helpers.swallow_first_interrupt, w)
    assert os.read(r, 1) == b"x"
    assert future.interrupt() is True
    assert os.read(r, 1) == b"y"  # it caught the first one and spins on
    assert future.interrupt() is True
    with pytest.raises(manygil.Interrupted):
        future.result(timeout=60)
    os.close(r)
    os.close(w)


def test_a_worker_stuck_in_c_is_replaced_and_the_pool_keeps_its_size(capfd):
    r, w = os.pipe()
    with manygil.Pool(1, replace_stuck_after=0.1) as pool:
        stuck = started(pool, helpers.meet, r, timeout=0.05)  # os.read: never bytecode
        before = pool.stats()["workers"][0]["interpreter_id"]
        # The one worker is stuck; a new one takes the next task while the read still blocks.
        assert pool.submit(helpers.square, 7).result(timeout=60) == 49
        assert not stuck.done()
        stats = pool.stats()
        assert stats["replaced"] == 1
        assert len(stats["workers"]) == 1 and stats["workers"][0]["interpreter_id"] != before
        [entry] = stats["stuck"]
        assert entry["interpreter_id"] == before and "meet" in entry["current"]["task"]
        assert entry["current"]["interrupt_pending_s"] is not None
        os.write(w, b"x")  # its read returns: the interrupt lands, and the stuck worker ends
        with pytest.raises(manygil.Interrupted):
            stuck.result(timeout=60)
        deadline = time.monotonic() + 60
        while pool.stats()["stuck"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.stats()["stuck"] == [] and pool.stats()["replaced"] == 1
    os.close(r)
    os.close(w)
    err = capfd.readouterr().err
    assert "worker 0" in err and "is stuck" in err and "in meet" in err, err


def test_replace_stuck_after_is_checked():
    with pytest.raises(ValueError, match="replace_stuck_after"):
        manygil.Pool(1, replace_stuck_after=0)
    with pytest.raises(TypeError, match="replace_stuck_after"):
        manygil.Pool(1, replace_stuck_after="1")
    with manygil.Pool(1) as pool:  # off by default
        assert pool.stats()["replaced"] == 0 and pool.stats()["stuck"] == []
