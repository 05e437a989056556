"""manygil.Lock, Event, Semaphore, Barrier: threading's APIs, shared across interpreters."""

import threading

import pytest

import helpers
import manygil
from manygil import Barrier, Event, Lock, Semaphore, SharedBuffer


def test_lock_gives_mutual_exclusion_across_interpreters():
    lock, counter = Lock(), SharedBuffer(8)
    with manygil.Pool(4) as p:
        done = [p.submit(helpers.locked_increments, lock, counter, 5_000) for _ in range(4)]
        assert sum(f.result(timeout=300) for f in done) == 20_000
    assert memoryview(counter).cast("q")[0] == 20_000  # no lost update


def test_lock_api(pool):
    lock = Lock()
    assert lock.acquire() and lock.locked()
    assert lock.acquire(blocking=False) is False
    assert lock.acquire(timeout=0.01) is False
    pool.submit(helpers.release_lock, lock).result()  # another interpreter may release it
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()
    with lock:
        assert lock.locked()
    assert not lock.locked()
    with pytest.raises(ValueError):
        lock.acquire(blocking=False, timeout=1)


def test_event_wakes_a_worker(pool):
    event = Event()
    assert event.wait(0.01) is False
    waiting = pool.submit(helpers.wait_event, event, 60)
    event.set()
    assert waiting.result(timeout=60) is True
    assert event.is_set()
    event.clear()
    assert not event.is_set()


def test_an_infinite_timeout_waits_until_woken():
    # float("inf") used to return False at once (an undefined conversion in the wait).
    lock, event = Lock(), Event()
    lock.acquire()
    threading.Timer(0.05, lock.release).start()
    assert lock.acquire(timeout=float("inf")) is True
    threading.Timer(0.05, event.set).start()
    assert event.wait(timeout=float("inf")) is True


def test_semaphore():
    sem = Semaphore(2)
    assert sem.acquire() and sem.acquire(blocking=False)
    assert sem.acquire(timeout=0.01) is False
    sem.release(2)
    with sem:
        assert sem.acquire(blocking=False)
    with pytest.raises(ValueError):
        Semaphore(-1)


def test_barrier_across_interpreters_and_the_caller(pool):
    barrier = Barrier(3)
    a = pool.submit(helpers.barrier_wait, barrier)
    b = pool.submit(helpers.barrier_wait, barrier)
    mine = barrier.wait(timeout=60)
    assert sorted([mine, a.result(timeout=60), b.result(timeout=60)]) == [0, 1, 2]
    assert barrier.parties == 3 and barrier.n_waiting == 0


def test_barrier_timeout_abort_and_reset():
    barrier = Barrier(2)
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(timeout=0.01)  # a timeout breaks it, as in threading
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()
    barrier.reset()
    assert not barrier.broken
    barrier.abort()
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(timeout=1)


def test_primitives_travel_by_reference(pool):
    lock, event = Lock(), Event()
    channel = manygil.Channel()
    channel.send([lock, event])
    got_lock, got_event = channel.recv()
    assert got_lock == lock and got_event == event and got_lock != Lock()
    assert pool.submit(helpers.identity, lock).result() == lock
    with pytest.raises(TypeError, match="cannot be pickled"):
        import pickle

        pickle.dumps(lock)
