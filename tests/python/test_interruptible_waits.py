"""A task blocked in a manygil object (Lock, Event, Semaphore, Barrier, Channel) stops when it is
interrupted, whichever way: Future.interrupt(), submit_with(timeout=) or shutdown(timeout=). The
worker goes on serving."""

import threading

import pytest

import helpers
import manygil

KINDS = ["lock", "event", "semaphore", "barrier", "recv", "send"]


def blocking_object(kind):
    """An object a task blocks in: a held Lock, an unset Event, an empty Semaphore, a Barrier for two,
    an empty Channel, a full one."""
    if kind == "lock":
        lock = manygil.Lock()
        lock.acquire()
        return lock
    if kind == "event":
        return manygil.Event()
    if kind == "semaphore":
        return manygil.Semaphore(0)
    if kind == "barrier":
        return manygil.Barrier(2)
    if kind == "recv":
        return manygil.Channel()
    channel = manygil.Channel(maxsize=1)
    channel.send("full")
    return channel


def start_blocked(pool, kind, **options):
    obj, started = blocking_object(kind), manygil.Event()
    if options:
        future = pool.submit_with(helpers.blocked_in, (kind, obj, started), **options)
    else:
        future = pool.submit(helpers.blocked_in, kind, obj, started)
    assert started.wait(60)
    return future, obj


@pytest.mark.parametrize("kind", KINDS)
def test_future_interrupt_stops_a_task_blocked_in(kind, pool):
    future, obj = start_blocked(pool, kind)
    assert future.interrupt()
    with pytest.raises(manygil.Interrupted):
        future.result(timeout=60)
    assert pool.submit(abs, -2).result() == 2
    if kind == "barrier":  # an interrupted wait breaks the barrier, as any error in threading.Barrier does
        assert obj.broken


@pytest.mark.parametrize("kind", KINDS)
def test_a_task_timeout_stops_a_task_blocked_in(kind, pool):
    future, _ = start_blocked(pool, kind, timeout=0.2)
    with pytest.raises(manygil.Interrupted, match="timeout"):
        future.result(timeout=60)
    assert pool.submit(abs, -3).result() == 3


@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_with_a_timeout_stops_a_task_blocked_in(kind):
    pool = manygil.Pool(1)
    future, _ = start_blocked(pool, kind)
    pool.shutdown(timeout=0.2)  # returns: the blocked call was interrupted and the worker ended
    with pytest.raises(manygil.Interrupted):
        future.result(timeout=0)


def test_an_interrupt_does_not_outlive_its_call():
    # Interrupted while waiting, the next task on the same worker waits normally.
    with manygil.Pool(1) as pool:
        check_next_wait_is_normal(pool)


def check_next_wait_is_normal(pool):
    future, _ = start_blocked(pool, "event")
    future.interrupt()
    with pytest.raises(manygil.Interrupted):
        future.result(timeout=60)
    event = manygil.Event()
    waiting = pool.submit(event.wait, 60)
    threading.Timer(0.1, event.set).start()
    assert waiting.result(timeout=60) is True
