"""Threads and processes started inside workers behave as in the main interpreter: daemon threads,
thread names, logging's queue handler, multiprocessing. Scenarios that end an interpreter run in a
child process, so that everything it prints at exit is seen."""

import os
import subprocess
import sys
import textwrap

import pytest

import manygil


def who_am_i():
    import threading

    t = threading.current_thread()
    return t.name, t.daemon, t.is_alive(), t.ident == threading.get_ident()


def test_worker_threads_are_named_like_thread_pool_executor_threads():
    with manygil.Pool(2, thread_name_prefix="web") as pool:
        names = {pool.submit(who_am_i).result() for _ in range(40)}
        assert names <= {("web_0", False, True, True), ("web_1", False, True, True)}
        assert names  # each answer is one of the two workers
    with manygil.Pool(1) as pool:
        name, daemon, alive, same = pool.submit(who_am_i).result()
        assert name.startswith("manygil.Pool-") and name.endswith("_0") and not daemon and alive and same


def test_thread_name_prefix_is_positional_as_in_thread_pool_executor():
    with manygil.Pool(1, "pos") as pool:
        assert pool.submit(who_am_i).result()[0] == "pos_0"
    with pytest.raises(TypeError, match="thread_name_prefix must be a str"):
        manygil.Pool(1, 5)


def run_child(code, stdin=None, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


QUEUE_LOGGING = """
    import manygil

    def task():
        import atexit, logging, logging.config, threading, time
        logging.config.dictConfig({
            "version": 1,
            "formatters": {"f": {"format": "%(threadName)s|%(name)s|%(message)s"}},
            "handlers": {
                "out": {"class": "logging.StreamHandler", "formatter": "f", "stream": "ext://sys.stdout"},
                "queued": {"class": "logging.handlers.QueueHandler", "handlers": ["out"]},
            },
            "root": {"handlers": ["queued"], "level": "INFO"},
        })
        listener = logging.getHandlerByName("queued").listener
        listener.start()                  # a daemon thread
        atexit.register(listener.stop)    # the logging cookbook's pattern
        logging.getLogger("app").info("configured")

        def heartbeat():                  # a daemon thread that never ends by itself
            while True:
                time.sleep(0.01)
        threading.Thread(target=heartbeat, daemon=True, name="heartbeat").start()
        return sorted(t.name for t in threading.enumerate())

    pool = manygil.Pool(1, "worker")
    print(pool.submit(task).result(), flush=True)
    pool.shutdown()
    print("shut down", flush=True)
"""


def test_queue_handler_logging_and_a_daemon_thread_in_a_worker_shut_down_cleanly():
    code, out, err = finish(run_child(QUEUE_LOGGING))
    assert code == 0 and err == "", err
    lines = out.splitlines()  # the listener thread writes the record while the task returns
    # (a worker's threading also lists CPython's "MainThread": the process's main thread)
    assert sorted(lines[:2]) == ["['MainThread', 'Thread-1 (_monitor)', 'heartbeat', 'worker_0']",
                                 "worker_0|app|configured"]
    assert lines[2:] == ["shut down"]


def test_a_daemon_thread_left_running_is_stopped_when_the_pool_ends_at_exit():
    code, out, err = finish(run_child("""
        import manygil

        def start_daemon():
            import threading, time
            def run():
                while True:
                    time.sleep(0.01)
            t = threading.Thread(target=run, daemon=True)
            t.start()
            return t.is_alive()

        pool = manygil.Pool(2)  # never shut down: manygil does it at exit
        print(pool.submit(start_daemon).result())
    """))
    assert (code, out, err) == (0, "True\n", "")


def test_a_daemon_thread_that_catches_system_exit_is_asked_again():
    code, out, err = finish(run_child("""
        import manygil

        def stubborn():
            import threading, time
            def run():
                caught = 0
                while True:
                    try:
                        while True:
                            time.sleep(0.01)
                    except SystemExit:
                        caught += 1
                        if caught > 1:
                            print("caught SystemExit twice; leaving", flush=True)
                            raise
            threading.Thread(target=run, daemon=True).start()

        with manygil.Pool(1) as pool:
            pool.submit(stubborn).result()
        print("shut down")
    """))
    assert code == 0, err
    assert out == "caught SystemExit twice; leaving\nshut down\n"


def test_a_daemon_thread_blocked_in_c_is_named_and_waited_for():
    # The daemon thread blocks in os.read() on the child's stdin: C code that SystemExit cannot
    # interrupt. The worker must not end its interpreter under it (that would crash the process
    # later): it warns, naming the thread and where it is blocked, and waits until it returns.
    proc = run_child("""
        import manygil

        def block_in_c():
            import os, threading
            threading.Thread(target=os.read, args=(0, 1), daemon=True, name="reader").start()

        with manygil.Pool(1) as pool:
            pool.submit(block_in_c).result()
        print("shut down")
    """, stdin=subprocess.PIPE)
    warning = proc.stderr.readline()  # blocks until the worker gives up waiting quietly
    assert "ignored SystemExit" in warning and "cannot end while its threads run" in warning
    assert "'reader'" in proc.stderr.readline()
    proc.stdin.write("x")  # os.read returns: the thread sees SystemExit, the worker ends
    proc.stdin.flush()
    code, out, err = finish(proc)
    assert (code, out, err) == (0, "shut down\n", "")


def test_thread_names_leave_no_noise_at_exit():
    code, out, err = finish(run_child("""
        import logging, threading
        import manygil

        def log_something(i):
            import logging, threading
            logging.basicConfig(format="%(threadName)s %(message)s", level=logging.INFO)
            logging.info("from a task")
            return threading.current_thread().name

        pool = manygil.Pool(2)
        print(sorted(set(pool.map(log_something, range(20), chunksize=1))))
    """))
    assert code == 0
    assert "Exception ignored" not in err
    assert set(err.splitlines()) <= {"manygil.Pool-0_0 from a task", "manygil.Pool-0_1 from a task"}
    assert out.startswith("['manygil.Pool-0_")


def start_a_process():
    import concurrent.futures
    import multiprocessing
    import time

    p = multiprocessing.Process(target=time.sleep, args=(0,))
    p.start()
    p.join()
    with concurrent.futures.ProcessPoolExecutor(1) as executor:
        power = executor.submit(pow, 2, 10).result()
    return multiprocessing.get_start_method(), p.exitcode, power


def test_multiprocessing_in_a_worker_uses_a_start_method_that_works():
    with manygil.Pool(1) as pool:
        method, exitcode, power = pool.submit(start_a_process).result()
    assert (exitcode, power) == (0, 1024)
    assert method == ("spawn" if sys.version_info < (3, 14) else "forkserver")


def explicit_fork_refused():
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    try:
        ctx.Process(target=print).start()
    except RuntimeError as e:
        return str(e)
    return "started"


def test_an_explicit_fork_start_method_is_still_refused_clearly():
    with manygil.Pool(1) as pool:
        assert "fork" in pool.submit(explicit_fork_refused).result()
