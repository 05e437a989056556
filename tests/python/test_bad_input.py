"""Bad input end to end: what a worker may not do, and what the caller sees. Each case leaves the
pool usable (checked after every one)."""

import pytest

import helpers
import manygil


def still_works(pool):
    assert pool.submit(helpers.add, 20, 22).result(timeout=60) == 42


def test_fork_in_a_worker_is_refused_with_a_hint(pool):
    with pytest.raises(RuntimeError, match="fork not supported for isolated subinterpreters") as info:
        pool.submit(helpers.do_fork).result()
    assert any("subprocess" in note for note in info.value.__notes__)
    still_works(pool)


def test_exec_in_a_worker_is_refused_and_the_process_lives(pool):
    with pytest.raises(RuntimeError, match="exec not supported for isolated subinterpreters") as info:
        pool.submit(helpers.do_exec).result()
    assert any("subprocess" in note for note in info.value.__notes__)
    still_works(pool)


def test_subprocess_works_in_a_worker(pool):
    assert pool.submit(helpers.run_subprocess).result(timeout=60) == "42\n"


def test_runaway_recursion_is_a_recursion_error(pool):
    with pytest.raises(RecursionError):
        pool.submit(helpers.recurse, 0).result()
    still_works(pool)


def test_an_extension_that_refuses_names_itself_and_the_remedy(pool):
    with pytest.raises(ImportError, match="_testsinglephase") as info:
        pool.submit(helpers.import_single_phase).result()
    assert any("manygil compat" in note for note in info.value.__notes__)
    still_works(pool)


def test_ctrl_c_during_map_stops_the_work_and_exits(run_python):
    # The tasks never end by themselves: without the interrupt the process would hang here. Ctrl-C
    # comes once both workers run a task (each writes a byte to the pipe when it starts).
    result = run_python("""
        import os, signal, threading
        import manygil, helpers

        r, w = os.pipe()

        def press_ctrl_c():
            os.read(r, 1), os.read(r, 1)
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=press_ctrl_c, daemon=True).start()
        pool = manygil.Pool(2)
        try:
            with pool:
                for _ in pool.map(helpers.spin_until_set, [w] * 6, chunksize=1):
                    pass
        except KeyboardInterrupt:
            print("interrupted, pool shut down:", pool._core_shut_down())
    """, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "interrupted, pool shut down: True", result.stdout + result.stderr
