"""Pools used from scripts as people write them: the script defines its task functions and, at its top,
imports multiprocessing (directly, through concurrent.futures' process pool, or through a library).

Importing multiprocessing points sys.modules["__mp_main__"] at sys.modules["__main__"]; in a worker,
which re-runs the script as __mp_main__ to find its functions, that used to hide every one of them.
Each test runs a real script in a child process and compares with the main interpreter's answers.
"""

import sys

import pytest


def script_ok(result):
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout.split()


def test_top_level_import_multiprocessing(run_python):
    result = run_python("""
        import manygil, multiprocessing

        def work(x):
            return x * 2

        if __name__ == "__main__":
            with manygil.Pool(2) as p:
                print(list(p.map(work, [1, 2, 3])) == [2, 4, 6])
                print(p.submit(work, 21).result())
                print(list(p.map(work, range(100), chunksize=7)) == [x * 2 for x in range(100)])
    """)
    assert script_ok(result) == ["True", "42", "True"]


def test_the_workers_mp_main_is_the_script_and_pickles_its_functions(run_python):
    # Code in a worker that relies on the alias: pickle finds the script's functions under __mp_main__.
    result = run_python("""
        import multiprocessing
        import pickle
        import sys
        import manygil

        def work(x):
            return x + 1

        def inside():
            import multiprocessing  # a task importing it again changes nothing
            mod = sys.modules["__mp_main__"]
            again = pickle.loads(pickle.dumps(work))
            return mod.__name__, hasattr(mod, "work"), again is work, again(1)

        if __name__ == "__main__":
            with manygil.Pool(1) as p:
                print(*p.submit(inside).result())
    """)
    assert script_ok(result) == ["__mp_main__", "True", "True", "2"]


def test_process_pool_executor_next_to_a_pool(run_python):
    result = run_python("""
        from concurrent.futures import ProcessPoolExecutor
        import manygil

        def square(x):
            return x * x

        if __name__ == "__main__":
            with ProcessPoolExecutor(2) as procs, manygil.Pool(2) as pool:
                a = list(procs.map(square, range(10)))
                b = list(pool.map(square, range(10)))
                c = [f.result() for f in [pool.submit(square, i) for i in range(10)]]
                d = list(procs.map(square, range(10)))
            print(a == b == c == d == [x * x for x in range(10)])
    """)
    assert script_ok(result) == ["True"]


def test_a_library_that_imports_multiprocessing(run_python, tmp_path):
    (tmp_path / "mylib.py").write_text("import multiprocessing\n\ndef scale(x, k):\n    return x * k\n")
    result = run_python("""
        import sys
        sys.path.insert(0, ".")
        import manygil
        import mylib

        def work(x):
            return mylib.scale(x, 3)

        def init(tag):
            global TAG
            TAG = tag

        def tagged(x):
            return f"{TAG}{x}"

        if __name__ == "__main__":
            with manygil.Pool(2, initializer=init, initargs=("t",)) as p:
                print(list(p.map(work, [1, 2])), p.submit(tagged, 5).result())
    """)
    assert script_ok(result) == ["[3,", "6]", "t5"]


def test_initializer_and_actor_from_a_script_that_imports_multiprocessing(run_python):
    result = run_python("""
        import multiprocessing
        import manygil

        STATE = {}

        def init(base):
            STATE["base"] = base

        def add(x):
            return STATE["base"] + x

        class Counter:
            def __init__(self, start):
                self.n = start

            def add(self, k):
                self.n += k
                return self.n

        if __name__ == "__main__":
            with manygil.Pool(2, initializer=init, initargs=(100,)) as p:
                print(list(p.map(add, [1, 2])))
            counter = manygil.actor(Counter, 10)
            counter.add(5).result()
            print(counter.add(1).result())
            counter.close()
    """)
    assert script_ok(result) == ["[101,", "102]", "16"]


def test_multiprocessing_imported_first_by_a_task_then_more_script_functions(run_python):
    # The alias made after the script ran (a task imports multiprocessing) must not hide functions
    # looked up later.
    result = run_python("""
        import manygil

        def load_mp():
            import multiprocessing
            return "multiprocessing" in repr(multiprocessing)

        def later(x):
            return -x

        if __name__ == "__main__":
            with manygil.Pool(1) as p:
                print(p.submit(load_mp).result(), p.submit(later, 3).result(), list(p.map(later, [4])))
    """)
    assert script_ok(result) == ["True", "-3", "[-4]"]


def test_fallback_process_with_a_function_of_the_script(run_python):
    result = run_python("""
        import multiprocessing
        import os
        import manygil

        def needs_numpy(x):
            import numpy
            return int(numpy.int64(x) * 2), os.getpid()

        if __name__ == "__main__":
            with manygil.Pool(2, fallback="process") as p:
                one, pid = p.submit(needs_numpy, 4).result(timeout=120)
                many = list(p.map(needs_numpy, range(5)))
                print(one, pid != os.getpid(), [v for v, _ in many], all(q != os.getpid() for _, q in many))
    """, timeout=240)
    assert script_ok(result) == ["8", "True", "[0,", "2,", "4,", "6,", "8]", "True"]


def test_a_script_without_the_main_guard_is_told_to_add_it(run_python):
    result = run_python("""
        import manygil

        def work(x):
            return x

        with manygil.Pool(1) as p:
            print(p.submit(work, 1).result())
    """)
    assert result.returncode != 0
    assert "re-runs your main script" in result.stderr, result.stderr
    assert 'if __name__ == "__main__":' in result.stderr, result.stderr


@pytest.mark.skipif(sys.version_info < (3, 12), reason="own-GIL interpreters")
def test_python_dash_m_module_importing_multiprocessing(run_python, tmp_path):
    # `python -m mod` re-imports by module name in the workers; multiprocessing at its top is harmless.
    (tmp_path / "usermod.py").write_text(
        "import multiprocessing\nimport manygil\n\ndef work(x):\n    return x * 5\n\n"
        "if __name__ == '__main__':\n    with manygil.Pool(2) as p:\n        print(list(p.map(work, [1, 2])))\n")
    import os
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "usermod"], capture_output=True, text=True, timeout=120,
                            env=env, cwd=tmp_path)
    assert script_ok(result) == ["[5,", "10]"]


def test_duckdb_udfs_of_a_script_that_imports_multiprocessing(run_python):
    pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    result = run_python("""
        import multiprocessing
        import duckdb
        import manygil.duckdb

        def triple(x):
            return 3 * x

        if __name__ == "__main__":
            con = duckdb.connect()
            manygil.duckdb.register(con, "triple", triple, ["BIGINT"], "BIGINT", pool=manygil.Pool(2))
            got = con.sql("SELECT sum(triple(i)) FROM range(10000) t(i)").fetchall()[0][0]
            print(got == 3 * sum(range(10000)))
    """)
    assert script_ok(result) == ["True"]


def test_a_script_importing_numpy_at_its_top_still_ships_its_functions(run_python):
    # numpy cannot load in a worker; the script's pure functions still run there, and one that does
    # use numpy fails with numpy's refusal (re-routed by fallback=).
    result = run_python("""
        import numpy as np
        from numpy import int64
        import manygil

        def pure(x):
            return x + 1

        def uses_numpy(x):
            return int(np.int64(x) * 2)

        if __name__ == "__main__":
            with manygil.Pool(2) as p:
                print(list(p.map(pure, [1, 2])), p.submit(pure, 9).result())
                try:
                    p.submit(uses_numpy, 1).result()
                except ImportError as e:
                    print("refused" if "does not support loading in subinterpreters" in str(e) else e)
            with manygil.Pool(2, fallback="main") as p:
                print(list(p.map(uses_numpy, [1, 2, 3])))
    """)
    assert script_ok(result) == ["[2,", "3]", "10", "refused", "[2,", "4,", "6]"]
