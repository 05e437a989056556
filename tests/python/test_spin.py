"""Waits that spin before they sleep (src/wait/spin_wait.hpp): MANYGIL_SPIN_US sets or turns off the
spinning, and every wait keeps its meaning either way: results arrive, channels deliver, timeouts
expire."""

import os
import subprocess
import sys
import textwrap

import pytest

import helpers
import manygil

_PROGRAM = textwrap.dedent(
    """
    import concurrent.futures, sys, time
    sys.path.insert(0, {tests!r})
    import helpers, manygil

    with manygil.Pool(2) as pool:
        assert [pool.submit(helpers.add, i, 1).result() for i in range(300)] == list(range(1, 301))
        assert list(pool.map(helpers.square, range(1000), chunksize=7)) == [i * i for i in range(1000)]
        a, b = manygil.Channel(), manygil.Channel()
        ponger = pool.submit(helpers.pong, a, b, 2000)
        for i in range(2000):
            a.send(i)
            assert b.recv(timeout=30) == i
        assert ponger.result(timeout=30) == 2000
        slow = pool.submit(time.sleep, 0.5)
        try:
            slow.result(timeout=0.05)
        except concurrent.futures.TimeoutError:
            pass
        else:
            raise AssertionError("result(timeout) did not time out")
        assert slow.result(timeout=30) is None
        try:
            manygil.Channel().recv(timeout=0.02)
        except manygil.ChannelEmpty:
            pass
        else:
            raise AssertionError("recv(timeout) did not time out")
    print("ok")
    """
)


@pytest.mark.parametrize("setting", ["0", "1", "50", "100000", "not a number", "-5", ""])
def test_pool_and_channels_work_with_any_spin_setting(setting):
    env = dict(os.environ, MANYGIL_SPIN_US=setting)
    program = _PROGRAM.format(tests=os.path.dirname(os.path.abspath(helpers.__file__)))
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_spin_reports_a_delivered_outcome(pool):
    future = pool.submit(helpers.add, 2, 3)
    assert future.result() == 5
    assert future._handle.spin(None) is True  # delivered: returns at once
    assert future._handle.spin(0.0) is True


def test_spin_gives_up_on_a_long_task(pool):
    gate = manygil.Event()
    future = pool.submit(helpers.wait_event, gate, 60)
    try:
        assert future._handle.spin(0.001) is False  # still running: no answer within the timeout
        assert not future.done()
    finally:
        gate.set()
    assert future.result(timeout=30) is True
