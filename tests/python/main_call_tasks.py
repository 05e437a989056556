"""Functions for test_call_in_main: tasks that run in workers and call into the main interpreter, and
the functions they call there. Importable in workers (no numpy at the top: it refuses them)."""

import threading

import helpers
from manygil import _core, call_in_main, call_in_main_with


# ---- run in main --------------------------------------------------------------------------------------


def where(*args, **kwargs):
    """What main saw: its arguments, that it is the main interpreter, and not the program's main thread."""
    return {
        "args": list(args),
        "kwargs": kwargs,
        "main_interpreter": _core.in_main_interpreter(),
        "main_thread": threading.get_ident() == threading.main_thread().ident,
    }


def add(a, b):
    return a + b


def raise_value_error(message):
    raise ValueError(message)


def raise_custom():
    helpers.raise_custom()


def fill_and_address(buf, value):
    """Writes into the buffer in place and says where its memory is, as main sees it."""
    helpers.fill(buf, value)
    return helpers.buffer_address(buf)


def numpy_doubles_in_place(buf):
    """NumPy over the worker's SharedBuffer, without a copy: doubles each float64 in place, returns the
    sum and the address of the array's data."""
    import numpy

    a = numpy.frombuffer(buf, dtype=numpy.float64)
    a *= 2
    return float(a.sum()), a.__array_interface__["data"][0]


def numpy_zeros(n):
    import numpy

    return numpy.zeros(n)


def block(started, release):
    """Blocks in main until `release` (a manygil.Event) is set; sets `started` first."""
    started.set()
    return release.wait(60)


def nested(x):
    """In main, call_in_main is a plain call."""
    return call_in_main(add, x, 1), call_in_main_with(add, (x, 2), timeout=5), threading.get_ident()


# ---- run in workers -----------------------------------------------------------------------------------


def call(fn, *args, **kwargs):
    return call_in_main(fn, *args, **kwargs)


def call_with(fn, args, kwargs, timeout):
    return call_in_main_with(fn, args, kwargs, timeout=timeout)


def call_closure(k):
    """Functions only a worker has (a closure, a lambda) travel by value."""

    def scaled(x):
        return x * k, _core.in_main_interpreter()

    return call_in_main(scaled, 3), call_in_main(lambda: _core.in_main_interpreter())


def error_seen_in_worker(fn, *args):
    """The exception a call in main raised, as the worker sees it."""
    try:
        call_in_main(fn, *args)
    except BaseException as e:
        return {
            "type": f"{type(e).__module__}.{type(e).__qualname__}",
            "args": list(map(str, e.args)),
            "cause": str(e.__cause__),
            "in_worker": not _core.in_main_interpreter(),
        }
    return None


def timeout_seen_in_worker(fn, args, timeout):
    try:
        call_in_main_with(fn, args, timeout=timeout)
    except TimeoutError as e:
        return type(e).__name__, str(e)
    return None


def buffer_in_main(n):
    """A buffer made in the worker, written by main in place: same memory on both sides."""
    from manygil import SharedBuffer

    buf = SharedBuffer(n)
    address_in_main = call_in_main(fill_and_address, buf, 7)
    return address_in_main == helpers.buffer_address(buf), bytes(memoryview(buf)[:4])


def numpy_in_main():
    """NumPy refuses this interpreter, and works through main on the worker's memory."""
    from manygil import SharedBuffer

    try:
        import numpy  # noqa: F401
        refused = False
    except ImportError as e:
        refused = "does not support loading in subinterpreters" in str(e)
    buf = SharedBuffer(8 * 4)
    view = memoryview(buf).cast("d")
    for i in range(4):
        view[i] = float(i)
    total, address = call_in_main(numpy_doubles_in_place, buf)
    return refused, total, list(view), address == helpers.buffer_address(buf)


def many_calls(n):
    total = 0
    for i in range(n):
        total += call_in_main(add, i, 1)
    return total


def call_from_a_thread_of_the_worker():
    """Any thread of a worker's interpreter may call, not only the worker's own."""
    out = []
    t = threading.Thread(target=lambda: out.append(call_in_main(add, 20, 22)))
    t.start()
    t.join()
    return out
