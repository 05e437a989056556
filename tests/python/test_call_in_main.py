"""manygil.call_in_main: from a worker, a call made in the main interpreter (issue 24, point 2).
Timing is never asserted: only outcomes."""

import threading

import pytest

import helpers
import main_call_tasks as tasks
import manygil
from manygil import _core, call_in_main, call_in_main_with


def test_a_function_by_reference_runs_in_main_off_the_main_thread(pool):
    seen = pool.submit(tasks.call, tasks.where, 1, "two", k=[3.0]).result(timeout=60)
    assert seen == {"args": [1, "two"], "kwargs": {"k": [3.0]}, "main_interpreter": True, "main_thread": False}


def test_targets_builtins_and_closures(pool):
    assert pool.submit(tasks.call, "main_call_tasks:add", 2, 3).result(timeout=60) == 5
    assert pool.submit(tasks.call, max, [4, 9, 1]).result(timeout=60) == 9
    # A closure and a lambda made in the worker travel by value.
    assert pool.submit(tasks.call_closure, 5).result(timeout=60) == ((15, True), True)


def test_a_thread_a_task_started_may_call_too(pool):
    assert pool.submit(tasks.call_from_a_thread_of_the_worker).result(timeout=60) == [42]


def test_kwargs_and_call_in_main_with(pool):
    assert pool.submit(tasks.call_with, tasks.where, (1,), {"a": None}, 30).result(timeout=60)["kwargs"] == {"a": None}
    assert pool.submit(tasks.call_with, tasks.add, [1, 2], None, None).result(timeout=60) == 3


def test_exceptions_keep_their_type_and_mains_traceback(pool):
    seen = pool.submit(tasks.error_seen_in_worker, tasks.raise_value_error, "bad").result(timeout=60)
    assert seen["type"] == "builtins.ValueError" and seen["args"] == ["bad"] and seen["in_worker"]
    assert "in raise_value_error" in seen["cause"]  # main's frame, in the worker's exception
    custom = pool.submit(tasks.error_seen_in_worker, tasks.raise_custom).result(timeout=60)
    assert custom["type"] == "helpers.CustomError" and custom["args"] == ["7", "detail"]
    # Uncaught in the task, it reaches the submitter as itself too, with both tracebacks.
    with pytest.raises(ValueError, match="bad") as info:
        pool.submit(tasks.call, tasks.raise_value_error, "bad").result(timeout=60)
    assert "in raise_value_error" in str(info.value.__cause__) and "in call" in str(info.value.__cause__)


def test_unknown_function_and_unsendable_arguments(pool):
    with pytest.raises(ImportError, match="no_such_module"):
        pool.submit(tasks.call, "no_such_module:f").result(timeout=60)
    # A result a worker cannot load (NumPy's array: NumPy refuses workers) is named as such.
    with pytest.raises(manygil.NotShareableError, match="result"):
        pool.submit(tasks.call, tasks.numpy_zeros, 3).result(timeout=60)


def test_a_shared_buffer_crosses_by_reference(pool):
    same_memory, head = pool.submit(tasks.buffer_in_main, 1 << 16).result(timeout=60)
    assert same_memory and head == b"\x07" * 4


def test_a_module_that_only_loads_in_main(pool):
    pytest.importorskip("numpy")
    refused, total, values, same_memory = pool.submit(tasks.numpy_in_main).result(timeout=60)
    assert refused, "numpy loaded in a worker: this test needs a module that refuses own-GIL interpreters"
    assert total == 12.0 and values == [0.0, 2.0, 4.0, 6.0]  # doubled in place, by NumPy, in main
    assert same_memory  # NumPy's array is the worker's buffer: no copy


def test_many_workers_at_once_while_main_waits_in_result():
    # The main thread is blocked in result() the whole time: the calls run on manygil's own threads.
    with manygil.Pool(4) as pool:
        futures = [pool.submit(tasks.many_calls, 300) for _ in range(12)]
        assert [f.result(timeout=120) for f in futures] == [sum(range(1, 301))] * 12
        assert 1 <= _core._main_side_threads() <= 16


def test_interrupt_ends_the_wait_and_the_worker_goes_on(pool):
    started, release = manygil.Event(), manygil.Event()
    future = pool.submit(tasks.call, tasks.block, started, release)
    assert started.wait(60)
    assert future.interrupt()
    with pytest.raises(manygil.Interrupted):
        future.result(timeout=60)
    release.set()  # the call in main ran on; it finishes now, and its result is dropped
    assert pool.submit(tasks.call, tasks.add, 1, 1).result(timeout=60) == 2


def test_a_task_timeout_ends_the_wait(pool):
    started, release = manygil.Event(), manygil.Event()
    future = pool.submit_with(tasks.call, (tasks.block, started, release), timeout=0.2)
    try:
        with pytest.raises(manygil.Interrupted):
            future.result(timeout=60)
        assert started.is_set()
    finally:
        release.set()


def test_call_in_main_with_timeout(pool):
    started, release = manygil.Event(), manygil.Event()
    try:
        name, message = pool.submit(tasks.timeout_seen_in_worker, tasks.block, (started, release), 0.1).result(timeout=60)
    finally:
        release.set()
    assert name == "TimeoutError" and "no result within 0.1 s" in message
    with pytest.raises(ValueError, match="non-negative"):
        pool.submit(tasks.call_with, tasks.add, (1, 2), None, -1).result(timeout=60)
    with pytest.raises(TypeError, match="timeout"):
        call_in_main_with(tasks.add, (1, 2), timeout="1")


def test_outside_a_worker_it_calls_directly():
    seen = call_in_main(tasks.where, 1, k=2)
    assert seen == {"args": [1], "kwargs": {"k": 2}, "main_interpreter": True, "main_thread": True}
    assert call_in_main("operator:add", 1, 2) == 3
    assert call_in_main_with(tasks.add, (1, 2), timeout=0) == 3
    with pytest.raises(ValueError):
        call_in_main(tasks.raise_value_error, "here")
    with pytest.raises(ValueError, match="module:function"):
        call_in_main("no colon")


def test_nested_calls_in_main_are_direct(pool):
    (one, two, ident) = pool.submit(tasks.call, tasks.nested, 1).result(timeout=60)
    assert (one, two) == (2, 3) and ident != threading.main_thread().ident


def test_a_function_of_the_main_script_goes_by_reference(run_python):
    # Defined in the main script: the worker knows it as __mp_main__, main as __main__.
    result = run_python("""
        import manygil

        CALLS = []

        def record(x):
            CALLS.append(x)  # main's module: a copy (by value) would not reach this list
            return len(CALLS)

        def task(x):
            return manygil.call_in_main(record, x)

        if __name__ == "__main__":
            with manygil.Pool(2) as pool:
                print(sorted(pool.map(task, range(5))), sorted(CALLS))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[1, 2, 3, 4, 5] [0, 1, 2, 3, 4]"


def test_exit_with_calls_in_flight_neither_hangs_nor_crashes(run_python):
    result = run_python("""
        import time
        import manygil

        def slow(x):
            time.sleep(0.2)
            return x

        def task(n):
            return sum(manygil.call_in_main(slow if i == 0 else int, i) for i in range(n))

        if __name__ == "__main__":
            pool = manygil.Pool(2)
            futures = [pool.submit(task, 200) for _ in range(4)]
            time.sleep(0.05)
            print("leaving", flush=True)
            # No shutdown: exit shuts the pool down, waiting for its tasks and their calls in main.
    """, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "leaving" and "Fatal" not in result.stderr, result.stderr


def test_the_runtime_closes_only_after_tasks_that_call_into_main(run_python):
    result = run_python("""
        import manygil
        from manygil import _core

        def task():
            import time
            time.sleep(0.5)
            try:
                return manygil.call_in_main(int, 1)
            except RuntimeError as e:
                return str(e)

        if __name__ == "__main__":
            pool = manygil.Pool(1)
            future = pool.submit(task)
            pool.shutdown(wait=False)
            _core._finalize()  # what exit does: the runtime closes once the pool's tasks are done
            print(future.result())
    """, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"  # the task ran to its end before the runtime closed
