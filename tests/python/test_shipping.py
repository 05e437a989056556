"""Which callables reach workers, and how: by reference, __main__ of a script, by value."""

import threading

import pytest

import helpers
import manygil


def test_importable_function_and_builtin(pool):
    assert pool.submit(helpers.square, 9).result() == 81
    assert pool.submit(sorted, [3, 1, 2]).result() == [1, 2, 3]
    assert pool.submit(str.upper, "abc").result() == "ABC"


def test_lambda_nested_function_and_closure(pool):
    offset = 10

    def nested(x):
        return x + offset

    assert pool.submit(lambda x: x * 2, 21).result() == 42
    assert pool.submit(nested, 5).result() == 15


def test_bound_method_and_partial(pool):
    import functools

    p = helpers.Point(3, 4)
    assert pool.submit(p.norm2).result() == 25
    assert pool.submit(functools.partial(helpers.add, 1, scale=3), 2).result() == 9


def test_closure_over_unpicklable_value_fails_at_submit_naming_it(pool):
    lock = threading.Lock()

    def uses_lock():
        with lock:
            return 1

    with pytest.raises(TypeError) as info:
        pool.submit(uses_lock)
    message = str(info.value)
    assert "uses_lock" in message and "'lock'" in message and "lock" in message


def test_script_main_functions_and_classes(run_python):
    result = run_python("""
        import manygil

        class Acc:
            def __init__(self, n):
                self.n = n

        def work(x):
            return x * 3

        def make(n):
            return Acc(n)

        if __name__ == "__main__":
            with manygil.Pool(2) as pool:
                print(pool.submit(work, 5).result())
                print(list(pool.map(work, range(4))))
                print(pool.submit(lambda a: a.n + 1, Acc(41)).result())
                print(type(pool.submit(make, 1).result()).__name__)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["15", "[0,", "3,", "6,", "9]", "42", "Acc"]


def test_python_dash_c_main_functions(run_python):
    result = run_python("""
        import manygil
        def cube(x):
            return x ** 3
        with manygil.Pool(2) as pool:
            print(pool.submit(cube, 3).result(), list(pool.map(cube, [1, 2])))
    """, mode="-c")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "27 [1, 8]"


def test_repl_like_stdin_and_exec(run_python):
    result = run_python("""
        import manygil
        ns = {}
        exec("def triple(x):\\n    return 3 * x", ns)
        def double(x):
            return 2 * x
        with manygil.Pool(1) as pool:
            print(pool.submit(ns["triple"], 5).result(), pool.submit(double, 5).result())
    """, mode="stdin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "15 10"


def test_interactive_prompt(run_python):
    # At the prompt a compound statement ends with a blank line.
    result = run_python("import manygil\n"
                        "def halve(x):\n"
                        "    return x / 2\n"
                        "\n"
                        "class Box:\n"
                        "    def __init__(self, v):\n"
                        "        self.v = v\n"
                        "\n"
                        "pool = manygil.Pool(2)\n"
                        "print('R', pool.submit(halve, 9).result(), pool.submit(lambda b: b.v, Box(4)).result())\n"
                        "pool.shutdown()\n", mode="repl")
    assert result.returncode == 0, result.stderr
    assert "R 4.5 4" in result.stdout, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr


def test_not_callable_is_a_type_error(pool):
    with pytest.raises(TypeError, match="not callable"):
        pool.submit(42)


def test_bound_methods_of_shared_objects_travel_as_object_and_method_name(pool):
    channel = manygil.Channel()
    buffer = manygil.SharedBuffer.from_bytes(b"abc")
    event = manygil.Event()
    assert pool.submit(channel.send, "from a worker").result() is None
    assert channel.recv(timeout=5) == "from a worker"
    assert pool.submit(buffer.__len__).result() == 3
    waiting = pool.submit(event.wait, 30)  # the same Event, waited on in a worker
    event.set()
    assert waiting.result() is True
    assert list(pool.map(channel.send, range(5))) == [None] * 5
    assert sorted(channel.recv(timeout=5) for _ in range(5)) == list(range(5))
    # A SharedDict too: the worker reads and writes the same store (a user's pool.map(d.incr, keys)).
    store = manygil.SharedDict()
    store.update(seen=1, a=0, b=0)
    assert pool.submit(store.get, "seen").result() == 1
    assert list(pool.map(store.incr, ["a", "b", "a"])) == [1, 1, 2]
    assert (store["a"], store["b"]) == (2, 1)


def test_a_bound_method_of_an_ordinary_object_is_pickled_with_its_object(pool):
    class_free = {"k": 1}
    assert pool.submit(class_free.get, "k").result() == 1
