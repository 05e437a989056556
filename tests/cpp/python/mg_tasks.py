"""Task functions the C++ tests call in worker interpreters."""

import sys
import threading


def identity(x):
    return x


def add(a, b=0, *, scale=1):
    return (a + b) * scale


def fail(message):
    raise ValueError(message)


def _inner(n):
    return {}[n]


def fail_nested(n):
    return _inner(n)


class Custom(Exception):
    pass


def fail_custom():
    raise Custom("custom failure")


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def native_thread_id():
    return threading.get_native_id()


def return_set():
    return {1, 2}


def return_nested_bad():
    return [1, {"k": object()}]


def exit_now(code):
    sys.exit(code)


def interpreter_config():
    """The live config of the calling interpreter (CPython 3.13+), as a dict."""
    import _interpreters

    interp_id = _interpreters.get_current()[0]
    config = _interpreters.get_config(interp_id)
    return {name: getattr(config, name) for name in vars(config)}


def import_module(name):
    __import__(name)
    return True


def rendezvous_holding_gil(name, parties):
    import _manygil_testing

    return _manygil_testing.rendezvous(name, parties, 30.0)


def block_until(started, go):
    import _manygil_testing

    _manygil_testing.set_event(started)
    return _manygil_testing.wait_event(go, 60.0)


def spawn_thread_and_return():
    """Starts a non-daemon thread that outlives the call; ending the interpreter must join it."""
    import time

    done = []
    t = threading.Thread(target=lambda: (time.sleep(0.05), done.append(1)))
    t.start()
    return True


def start_daemon_thread(marker_path):
    """Starts a daemon thread that never ends by itself; it writes to marker_path how it was stopped."""
    import time

    def run():
        try:
            while True:
                time.sleep(0.01)
        except BaseException as e:
            with open(marker_path, "w") as f:
                f.write(type(e).__name__)
            raise

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t.daemon and t.is_alive()


_setup_value = None


def setup(value):
    """An initializer target: records its argument in this worker's module state."""
    global _setup_value
    _setup_value = value


def get_setup():
    return _setup_value


def rendezvous_in_two_threads_of_one_interpreter(name, timeout):
    """Control for the own-GIL proof: two threads of ONE interpreter share its GIL, so two
    rendezvous callers that hold the GIL cannot both arrive before the first one's timeout.
    Returns the two results."""
    import _manygil_testing

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(_manygil_testing.rendezvous(name, 2, timeout)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(results)


def spin_after(path):
    """Creates `path` (so the test knows it started), then spins in pure Python until interrupted."""
    open(path, "w").close()
    x = 0
    while True:
        x += 1


def read_after(path, fd):
    """Creates `path`, then blocks in C reading one byte from `fd` (a pipe the test holds): an
    interrupt cannot stop it until the test writes."""
    import os

    open(path, "w").close()
    return os.read(fd, 1).decode()


def interpreter_and_setup():
    """(this interpreter's id, what the initializer `setup` recorded in it)."""
    import _interpreters

    return [_interpreters.get_current()[0], _setup_value]


def where():
    """[interpreter id, native thread id, whether on the thread that started Python]: where a call ran."""
    import _interpreters

    return [_interpreters.get_current()[0], threading.get_native_id(),
            threading.get_ident() == threading.main_thread().ident]


def legacy_module_name():
    """Imports the single-phase test module, which only the main interpreter can load."""
    import _manygil_testing_legacy

    return _manygil_testing_legacy.__name__


def via_host_call_in_main(*str_args, timeout=None):
    """A task that calls into main through the C++ API (the testing module's call_in_main)."""
    import _manygil_testing

    return _manygil_testing.call_in_main(*str_args, timeout=timeout)


def spin_after_event(started):
    """Sets event `started`, then spins in pure Python until interrupted (Task::interrupt, a timeout)."""
    import _manygil_testing

    _manygil_testing.set_event(started)
    x = 0
    while True:
        x += 1


def placement(point, parties):
    """[this worker's index, the CPUs its thread may run on] once `parties` workers met at `point`."""
    import os
    import threading

    import _manygil_testing

    _manygil_testing.rendezvous(point, parties, 30.0)
    with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:  # "mg-<pool>-<index>"
        index = int(f.read().strip().rsplit("-", 1)[1])
    return [index, sorted(os.sched_getaffinity(0))]
