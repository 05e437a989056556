"""Regression tests for the CPython bugs manygil fences (docs/cpython-bugs.md). Each runs its
reproducer many times in child processes: a crash fails one test, not the suite, and says how the
child died."""

import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest


def run_child(code, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def describe(proc):
    how = f"signal {signal.Signals(-proc.returncode).name}" if proc.returncode < 0 else f"exit code {proc.returncode}"
    return f"child died ({how}); stderr:\n{proc.stderr[-3000:]}"


def run_many(code, times):
    """Runs `code` in `times` child processes, two at a time; returns their outputs, all clean."""
    with ThreadPoolExecutor(2) as runner:
        procs = list(runner.map(lambda _: run_child(code), range(times)))
    for proc in procs:
        assert proc.returncode == 0, describe(proc)
        assert proc.stderr == "", proc.stderr
    return [proc.stdout for proc in procs]


# gh-136421 / gh-136423: a worker imports datetime, then the main interpreter does (here by unpickling
# the date the task returns). Unfenced, CPython 3.13.5 and 3.13.15 died at exit every time.
DATETIME_IN_WORKER_THEN_MAIN = """
    import sys
    import manygil
    assert "datetime" not in sys.modules and "_datetime" not in sys.modules

    def today():
        import datetime
        return datetime.date(2024, 1, 1)

    with manygil.Pool(1) as pool:
        print(pool.submit(today).result())
"""


def test_datetime_imported_by_a_worker_then_by_main_does_not_crash():
    outputs = run_many(DATETIME_IN_WORKER_THEN_MAIN, 50)
    assert outputs == ["2024-01-01\n"] * 50


# Several workers import datetime and end together, pool after pool: unfenced, 1 run in 3 died.
DATETIME_IN_MANY_WORKERS = """
    import manygil

    def use_datetime(i):
        import datetime, json
        return json.dumps({"i": i, "t": datetime.datetime(2024, 1, 1 + i % 28).isoformat()})

    for cycle in range(10):
        with manygil.Pool(4) as pool:
            assert len(list(pool.map(use_datetime, range(8), chunksize=1))) == 8
    print("ok")
"""


@pytest.mark.slow
def test_datetime_in_many_workers_over_fifty_pool_cycles_does_not_crash():
    assert run_many(DATETIME_IN_MANY_WORKERS, 5) == ["ok\n"] * 5  # 5 x 10 pool cycles of 4 workers


def test_main_interpreter_owns_datetime_before_the_first_worker_starts():
    proc = run_child("""
        import sys
        import manygil
        assert "_datetime" not in sys.modules
        with manygil.Pool(1) as pool:
            pool.submit(int).result()
        print("_datetime" in sys.modules)
    """)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == "True\n"


# sys._current_frames() in main while workers run Python: unfenced, it aborted 5 runs of 5. A sampler
# at about 1 kHz for 2 s, as profilers and watchdogs (Dask's every 10 ms) call it.
SAMPLER = """
    import sys, threading, time
    import manygil

    def spin(seconds):
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
        return n

    with manygil.Pool(2) as pool:
        busy = [pool.submit(spin, 3.0) for _ in range(2)]
        helper = threading.Thread(target=time.sleep, args=(2.5,), name="helper")
        helper.start()
        samples = 0
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            frames = sys._current_frames()
            exceptions = sys._current_exceptions()
            # This interpreter's threads only: the main thread (sampling), the helper (sleeping),
            # and the workers' threads when they settle a future here; never the workers' own frames.
            assert {threading.get_ident(), helper.ident} <= set(frames), frames
            assert not any(f.f_code.co_name == "spin" for f in frames.values()), frames
            assert threading.get_ident() in exceptions, exceptions
            assert frames[threading.get_ident()].f_code.co_filename == "<string>"
            samples += 1
            time.sleep(0.001)
        helper.join()
        assert all(f.result() > 0 for f in busy)
    print(samples > 100)
"""


def test_current_frames_sampled_in_main_while_workers_run_does_not_crash():
    assert run_many(SAMPLER, 2) == ["True\n"] * 2


def test_current_frames_in_a_worker_sees_its_own_threads_only():
    proc = run_child("""
        import manygil

        def sample():
            import sys, threading, time
            stop = threading.Event()
            def spin():
                while not stop.is_set():
                    pass
            t = threading.Thread(target=spin)
            t.start()
            try:
                seen = set()
                for _ in range(500):
                    seen |= set(sys._current_frames())
                    try:
                        raise KeyError("handled")
                    except KeyError:
                        exc = sys._current_exceptions()[threading.get_ident()]
                return sorted(seen) == sorted([threading.get_ident(), t.ident]), repr(exc)
            finally:
                stop.set()
                t.join()

        def spin(seconds):
            import time
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass

        with manygil.Pool(2) as pool:
            other = pool.submit(spin, 1.0)
            print(pool.submit(sample).result())
            other.result()
    """)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == "(True, \"KeyError('handled')\")\n"


# tracemalloc traces every interpreter's allocations in process-wide tables; after a traced worker
# ends, the process died at exit ("double free or corruption", 3 runs of 3 on 3.13.15). Pools refuse
# to start while it traces, saying why.
def test_pools_refuse_to_start_while_tracemalloc_traces():
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    proc = subprocess.run([sys.executable, "-X", "tracemalloc=5", "-c", textwrap.dedent("""
        import manygil
        try:
            manygil.Interpreter()
        except manygil.BrokenPool as e:
            print("refused:", "tracemalloc is tracing" in str(e))
        import tracemalloc
        tracemalloc.stop()
        with manygil.Interpreter() as interp:
            print(interp.call("builtins:abs", -3))
    """)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == "refused: True\n3\n"


# os.fork() in a process with sub-interpreters kills the child (gh-139759): once pools exist,
# multiprocessing starts processes with forkserver unless the program chose a method.
def test_process_pools_in_main_work_while_manygil_pools_exist():
    proc = run_child("""
        import concurrent.futures, multiprocessing
        import manygil

        with manygil.Pool(1) as pool:
            assert pool.submit(abs, -1).result() == 1
            with concurrent.futures.ProcessPoolExecutor(1) as processes:
                print(multiprocessing.get_start_method(), processes.submit(pow, 2, 5).result())
    """)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == "forkserver 32\n"


def test_a_start_method_the_program_chose_is_kept():
    proc = run_child("""
        import multiprocessing
        multiprocessing.set_start_method("spawn")
        import manygil

        with manygil.Pool(1) as pool:
            pool.submit(abs, -1).result()
        print(multiprocessing.get_start_method())
    """)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == "spawn\n"
