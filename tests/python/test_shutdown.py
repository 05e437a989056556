"""Shutdown, cancellation and lifetime, with the semantics of concurrent.futures."""

import concurrent.futures as cf
import gc
import os
import threading

import pytest

import helpers
import manygil


def test_submit_after_shutdown_raises_runtime_error():
    p = manygil.Pool(1)
    p.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        p.submit(helpers.square, 2)
    with pytest.raises(RuntimeError):
        p.map(helpers.square, [1])
    p.shutdown()  # idempotent


def test_context_manager_waits_for_tasks():
    with manygil.Pool(2) as p:
        futures = [p.submit(helpers.square, i) for i in range(50)]
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == [i * i for i in range(50)]


def test_cancel_pending_future(blocked_task):
    with manygil.Pool(1) as p:
        blocker = blocked_task.start(p)
        queued = [p.submit(helpers.square, i) for i in range(5)]
        assert queued[2].cancel() is True
        assert queued[2].cancelled()
        with pytest.raises(cf.CancelledError):
            queued[2].result()
        assert blocker.cancel() is False  # running
        assert blocker.running() and not queued[0].running()
        blocked_task.release()
        assert blocker.result(timeout=60) == b"r"
        assert blocker.cancel() is False  # done
        assert not blocker.running()
        assert [f.result() for i, f in enumerate(queued) if i != 2] == [0, 1, 9, 16]


def test_cancelled_futures_wake_wait_and_as_completed(blocked_task):
    with manygil.Pool(1) as p:
        blocker = blocked_task.start(p)
        queued = [p.submit(helpers.square, i) for i in range(3)]
        assert queued[1].cancel()
        # concurrent.futures counts a cancelled future as done once it is notified (the worker does
        # that when it reaches it); wait() must not hang on it.
        blocked_task.release()
        done, not_done = cf.wait(queued, timeout=60)
        assert not not_done
        assert {f for f in cf.as_completed(queued, timeout=60)} == set(queued)
        assert blocker.result() == b"r"


def test_shutdown_cancel_futures_cancels_queued_ones(blocked_task):
    p = manygil.Pool(1)
    blocker = blocked_task.start(p)
    queued = [p.submit(helpers.square, i) for i in range(30)]
    p.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)  # settled at once, nothing silently dropped
    done, not_done = cf.wait(queued, timeout=60)  # and notified: wait() sees them done
    assert not not_done
    blocked_task.release()
    p.shutdown(wait=True)
    assert blocker.result() == b"r"  # the running task was not interrupted


def test_shutdown_without_wait_returns_while_tasks_run(blocked_task):
    p = manygil.Pool(1)
    running = blocked_task.start(p)
    later = p.submit(helpers.square, 5)
    p.shutdown(wait=False)
    assert not later.done()
    blocked_task.release()
    assert running.result(timeout=60) == b"r"
    assert later.result(timeout=60) == 25
    p.shutdown(wait=True)


def test_shutdown_while_tasks_run_waits_for_them(blocked_task):
    import threading

    p = manygil.Pool(1)
    running = blocked_task.start(p)
    queued = [p.submit(helpers.square, i) for i in range(10)]
    releaser = threading.Timer(0.2, blocked_task.release)  # not a timing assertion: only unblocks it
    releaser.start()
    p.shutdown(wait=True)
    releaser.join()
    assert running.done() and all(f.done() for f in queued)
    assert [f.result() for f in queued] == [i * i for i in range(10)]


def test_garbage_collected_pool_still_finishes_its_tasks():
    p = manygil.Pool(2)
    futures = [p.submit(helpers.square, i) for i in range(20)]
    del p
    gc.collect()
    assert [f.result(timeout=60) for f in futures] == [i * i for i in range(20)]


@pytest.mark.slow
def test_many_dropped_pools_are_reaped():
    # A pool collected without shutdown finishes in the background. Its threads must then be joined:
    # an exited but unjoined thread keeps its 8 MiB stack mapped, so dropped pools must not pile up
    # until exit. Each drop reaps the dropped pools that have finished.
    import time

    from manygil import _core

    for i in range(40):
        p = manygil.Pool(2)
        assert p.submit(helpers.square, i).result() == i * i
        del p
        gc.collect()
    # At most the pools still ending their interpreters remain; wait (bounded) for those, counting
    # also joins (reaps) the finished ones.
    deadline = time.monotonic() + 120
    while _core._dropped_pools() > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _core._dropped_pools() == 0


def test_fork_with_live_pools_warns_and_the_parent_goes_on(run_python):
    # CPython 3.12-3.14 crash a child forked while sub-interpreters exist (gh-139759): manygil warns
    # before such a fork. Where the child survives (a fixed CPython), inherited pools must refuse work
    # and the child must exit without waiting for the parent's workers.
    result = run_python("""
        import os, sys, warnings
        import manygil, helpers
        p = manygil.Pool(2)
        print(p.submit(helpers.square, 3).result(), flush=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pid = os.fork()
            if pid == 0:
                try:
                    p.submit(helpers.square, 4)
                except RuntimeError as e:
                    print("child refused:", "os.fork()" in str(e), flush=True)
                sys.exit(0)
        print("warned:", any("gh-139759" in str(w.message) for w in caught))
        _, status = os.waitpid(pid, 0)
        print("child:", os.waitstatus_to_exitcode(status))
        print(p.submit(helpers.square, 5).result())
    """, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "9" and lines[-1] == "25", result.stdout
    assert "warned: True" in lines, result.stdout
    child = next(line for line in lines if line.startswith("child:"))
    if child == "child: 0":
        assert "child refused: True" in lines, result.stdout
    else:
        # Killed inside CPython's after-fork handling: SIGABRT or SIGSEGV, depending on which of the
        # inherited thread states (workers', monitors') it trips over first.
        assert child in ("child: -6", "child: -11"), result.stdout


def test_exit_with_a_live_pool_is_clean(run_python):
    result = run_python("""
        import manygil, helpers
        p = manygil.Pool(2)
        futures = [p.submit(helpers.square, i) for i in range(100)]
        print(futures[-1].result())
        q = manygil.Pool(2)
        q.submit(helpers.square, 3)
        del q   # collected without shutdown, tasks still queued
        # no shutdown: the exit hook must end every worker before Python finalises
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "9801"
    assert "Fatal" not in result.stderr and "Traceback" not in result.stderr


def test_cancel_futures_right_after_start_still_runs_the_first_task_of_each_worker(pipe):
    # shutdown(cancel_futures=True) waits for the workers to start: tasks submitted before it are
    # not cancelled merely because the interpreters were still being created. Each worker takes the
    # first task it finds (they block until the pipe is written), the rest are cancelled.
    # Fresh interpreters (no reuse): parked ones would be ready before the tasks are submitted, and
    # then, as in any executor, a woken worker may lose its task to the cancel before it runs.
    r, w = pipe
    pool = manygil.Pool(2, reuse_interpreters=False)
    futures = [pool.submit(helpers.block_on, r) for _ in range(50)]
    stopper = threading.Thread(target=pool.shutdown, kwargs={"cancel_futures": True})
    stopper.start()
    cf.wait(futures[2:], timeout=60)
    assert all(f.cancelled() for f in futures[2:])
    os.write(w, b"xx")
    stopper.join()
    assert [f.result() for f in futures[:2]] == [b"x", b"x"]


def test_broken_and_max_workers_attributes_as_concurrent_futures_executors_have_them():
    pool = manygil.Pool(3)
    assert pool._max_workers == 3 and pool._broken is False
    pool.shutdown()
    broken = manygil.Pool(1, initializer=helpers.raise_value_error, initargs=("no",))
    try:
        with pytest.raises(manygil.BrokenPool):
            broken.submit(int).result()
        assert "ValueError: no" in broken._broken
    finally:
        broken.shutdown()


def test_ctrl_c_while_exiting_stops_the_work_and_still_ends_the_workers(run_python):
    # The pool is left to manygil's exit hook with 4 tasks of 60 s each. Ctrl-C comes while that
    # hook waits: it cancels the queued tasks and interrupts the running ones, and the workers still
    # end before the interpreter finalises (one still alive then would take the process down).
    result = run_python("""
        import os, signal, sys, threading, time
        import manygil

        def spin(seconds):
            import time
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass

        def press_ctrl_c_in_the_exit_hook():
            main = threading.main_thread().ident
            while True:
                frame, names = sys._current_frames().get(main), []
                while frame is not None:
                    names.append(frame.f_code.co_name)
                    frame = frame.f_back
                if "_at_exit" in names:
                    os.kill(os.getpid(), signal.SIGINT)
                    return
                time.sleep(0.01)

        if __name__ == "__main__":
            pool = manygil.Pool(2)
            futures = [pool.submit(spin, 60) for _ in range(4)]
            threading.Thread(target=press_ctrl_c_in_the_exit_hook, daemon=True).start()
            print("exiting")
    """, timeout=50)  # far less than the 120 s of work
    assert (result.returncode, result.stdout, result.stderr) == (0, "exiting\n", "")
