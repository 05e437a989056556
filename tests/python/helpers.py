"""Functions the Python tests run in workers (importable there: pytest puts this folder on sys.path,
and pools propagate sys.path)."""

import os
import threading


def square(x):
    return x * x


def add(a, b=0, *, scale=1):
    return (a + b) * scale


def identity(x):
    return x


def kinds(*values):
    return [type(v).__name__ for v in values]


def raise_value_error(message):
    raise ValueError(message)


def outer_frame(n):
    return inner_frame(n)


def inner_frame(n):
    return {}[n]


class CustomError(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def raise_custom():
    raise CustomError(7, "detail")


def raise_unpicklable_local():
    class LocalError(Exception):
        pass

    raise LocalError("from a local class")


def in_main_interpreter():
    from manygil import _core

    return _core.in_main_interpreter()


def interpreter_config():
    import _interpreters

    config = _interpreters.get_config(_interpreters.get_current()[0])
    return dict(vars(config))


def interpreter_id():
    import _interpreters

    return _interpreters.get_current()[0]


def meet(write_fd, read_fd):
    """Half of a rendezvous between two tasks through two pipes: only returns if the other half runs too."""
    os.write(write_fd, b"x")
    return os.read(read_fd, 1)


def block_on(read_fd):
    """Blocks the worker until the test writes to the pipe."""
    return os.read(read_fd, 1)


def get_lock():
    return threading.Lock()


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def norm2(self):
        return self.x * self.x + self.y * self.y


def make_pool_inside_worker():
    import manygil

    manygil.Pool(1)


def sys_exit(code):
    raise SystemExit(code)


def sys_path():
    import sys

    return list(sys.path)


def cwd():
    return os.getcwd()


def tag_initialized():
    return globals().get("TAG")


def set_tag(value):
    globals()["TAG"] = value


def fail_initializer(message):
    raise RuntimeError(message)


def started_then_block(started_fd, read_fd):
    """Tells the test it is running (a byte on started_fd), then blocks until the test writes to read_fd."""
    os.write(started_fd, b"s")
    return os.read(read_fd, 1)


class ClearsOnPickle:
    """Pickling it empties the container it sits in (arbitrary code during conversion)."""

    def __init__(self, container):
        self.container = container

    def __reduce__(self):
        self.container.clear()
        return (int, (0,))


def fill(buf, value):
    """Writes `value` into every byte of a buffer, in place."""
    view = memoryview(buf)
    view[:] = bytes([value]) * len(view)


def make_buffer(nbytes, value):
    import manygil

    buf = manygil.SharedBuffer(nbytes)
    fill(buf, value)
    return buf


_kept = []


def keep(obj):
    """Holds obj in this worker's module state (until the interpreter ends)."""
    _kept.append(obj)


def buffer_address(buf):
    import ctypes

    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def produce(channel, start, count):
    for i in range(start, start + count):
        channel.send(i)
    return count


def drain(channel):
    """Receives until the channel is closed and drained."""
    return list(channel)


def echo_doubled(inbox, outbox):
    for x in inbox:
        outbox.send(x * 2)
    outbox.close()


def recv_one(channel):
    return channel.recv(timeout=60)


def send_one(channel, obj):
    channel.send(obj)


class Counter:
    def __init__(self, start=0):
        self.value = start
        self.log = []

    def add(self, n):
        self.value += n
        self.log.append(n)
        return self.value

    def history(self):
        return list(self.log)

    def fail(self, message):
        raise ValueError(message)


class BrokenOnCreate:
    def __init__(self):
        raise RuntimeError("cannot build")

    def ping(self):
        return "pong"


def locked_increments(lock, counter_buf, times):
    """Read-modify-write of a shared int64 under `lock`; without mutual exclusion updates get lost."""
    cell = memoryview(counter_buf).cast("q")
    for _ in range(times):
        with lock:
            value = cell[0]
            for _ in range(20):  # widen the window between read and write
                pass
            cell[0] = value + 1
    return times


def wait_event(event, timeout):
    return event.wait(timeout)


def pong(inbox, reply, n):
    """Sends back each of the n items it receives."""
    for _ in range(n):
        reply.send(inbox.recv(timeout=60))
    return n


def barrier_wait(barrier):
    return barrier.wait(timeout=60)


def placement(barrier):
    """(this worker's index, the CPUs its thread may run on, its interpreter's id); `barrier` (one
    party per worker) makes every worker answer one of these calls."""
    barrier.wait(timeout=60)
    return int(threading.current_thread().name.rsplit("_", 1)[1]), sorted(os.sched_getaffinity(0)), interpreter_id()


def release_lock(lock):
    lock.release()


_kept_floats = []


def keep_first_float(values):
    """Keeps values[0] alive in this worker after the task (so it must not be recycled)."""
    _kept_floats.append(values[0])
    return len(values)


def kept_floats(barrier):
    """What keep_first_float() kept in this worker; `barrier` (one party per worker) makes every
    worker answer one of these calls."""
    barrier.wait(timeout=30)
    return list(_kept_floats)


def scaled(values, factor):
    return [v * factor for v in values]


def fails_to_load_in_main():
    raise RuntimeError("this object cannot be rebuilt in the main interpreter")


class LoadsOnlyInWorkers:
    """Pickles fine; unpickles in workers only (in the main interpreter its loader raises)."""

    def __reduce__(self):
        return (_load_only_in_workers, ())


def _load_only_in_workers():
    import manygil._core

    if manygil._core.in_main_interpreter():
        fails_to_load_in_main()
    return LoadsOnlyInWorkers()


def big_result_with(obj, n):
    return [float(i) for i in range(n)] + [obj]


def make_unloadable_big_result(n):
    return big_result_with(LoadsOnlyInWorkers(), n)


def spin():
    """Pure Python that never ends by itself."""
    x = 0
    while True:
        x += 1


def busy_for(seconds):
    import time

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


def sleep_then(seconds, value):
    """Blocked in C (time.sleep) for a while, then back in Python."""
    import time

    time.sleep(seconds)
    return value


def raise_own_timeout():
    raise TimeoutError("the task's own timeout")


def spin_until_set(fd_to_signal):
    """Signals that it started (writes to a pipe), then spins."""
    import os

    os.write(fd_to_signal, b"x")
    spin()


def do_fork():
    import os

    return os.fork()


def do_exec():
    import os
    import sys

    os.execv(sys.executable, [sys.executable, "-c", "print('the process was replaced')"])


def run_subprocess():
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True, check=True).stdout


def recurse(n):
    return recurse(n + 1)


def import_single_phase():
    import _testsinglephase  # noqa: F401  (refuses to load in sub-interpreters)


def swallow_first_interrupt(fd_to_signal):
    """Signals its start, swallows the first interrupt (signalling again), then spins on."""
    import os

    try:
        os.write(fd_to_signal, b"x")  # inside the try: the interrupt may land right after it
        spin()
    except TimeoutError:
        os.write(fd_to_signal, b"y")
    spin()


def echo_buffers(inbox, outbox):
    """Sends back every (i, buffer) it receives, in order, until the inbox closes; returns how many."""
    n = 0
    for item in inbox:
        outbox.send(item)
        n += 1
    outbox.close()
    return n


def needs_single_phase_module(x):
    """Imports an extension that refuses own-GIL interpreters; returns where it ran."""
    import os

    import _testsinglephase  # noqa: F401

    return x * 2, in_main_interpreter(), os.getpid()


def blocked_in(kind, obj, started):
    """Blocks in a manygil object until interrupted: obj is held/empty/full, as the test made it."""
    started.set()
    if kind in ("lock", "semaphore"):
        return obj.acquire()
    if kind == "event":
        return obj.wait()
    if kind == "barrier":
        return obj.wait()
    if kind == "recv":
        return obj.recv()
    if kind == "send":
        return obj.send("one more")
    raise ValueError(kind)


def serve_requests(requests, n):
    """Answers n requests (x, reply channel) with x * x on their reply channel."""
    for _ in range(n):
        x, reply = requests.recv(timeout=30)
        reply.send(x * x)
    return n


def in_main_then_single_phase(x):
    """Items below 5 run anywhere; from 5 on the task imports an extension that refuses own-GIL
    interpreters. Returns (2 * x if it imported, else x; whether it runs in the main interpreter)."""
    if x < 5:
        return x, in_main_interpreter()
    import _testsinglephase  # noqa: F401

    return 2 * x, in_main_interpreter()


def thread_name():
    import threading

    return threading.current_thread().name


def import_module(name):
    import importlib

    importlib.import_module(name)


def is_imported(name):
    import sys

    return name in sys.modules


def start_thread_for(seconds):
    """Starts a (non-daemon) thread that sleeps, and returns while it runs."""
    import threading
    import time

    threading.Thread(target=time.sleep, args=(seconds,)).start()


def register_atexit_writer(path):
    import atexit

    def write():
        with open(path, "w") as f:
            f.write("ran")

    atexit.register(write)


_recorded_setup = None


def record_setup(value):
    """An initializer: records its argument in this worker interpreter's module state."""
    global _recorded_setup
    _recorded_setup = value


def interpreter_and_setup_value():
    """(this interpreter's id, what record_setup recorded in it)."""
    import _interpreters

    return _interpreters.get_current()[0], _recorded_setup


def environ_and_interpreter(name):
    """(os.environ.get(name), this interpreter's id)."""
    import _interpreters

    return os.environ.get(name), _interpreters.get_current()[0]


def send_after(channel, delay, value):
    """Sends value on channel after delay seconds (from a worker: a wake-up from another interpreter)."""
    import time

    time.sleep(delay)
    channel.send(value)


def async_receive_until_none(channel):
    """Runs an event loop in this worker that takes messages with Channel.recv_async until None."""
    import asyncio

    async def go():
        got = []
        while (item := await channel.recv_async()) is not None:
            got.append(item)
        return got

    return asyncio.run(go())


class LoopTicks:
    """Counts the turns a task on the running loop gets every `period` seconds while started: more
    than one proves the loop was not blocked by what ran meanwhile."""

    def __init__(self, period=0.01):
        self.period = period
        self.count = 0
        self._task = None

    def start(self):
        import asyncio

        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self):
        import asyncio

        while True:
            self.count += 1
            await asyncio.sleep(self.period)

    def stop(self):
        self._task.cancel()
        return self.count


def async_send_all(channel, items):
    """Runs an event loop in this worker that sends items with Channel.send_async (waiting for room
    in a bounded channel), and returns how many times its loop ticked while doing so."""
    import asyncio

    async def go():
        ticks = LoopTicks(0.005).start()
        for item in items:
            await channel.send_async(item)
        return ticks.stop()

    return asyncio.run(go())


def recv_after(channel, delay, count):
    """Receives count messages from channel after delay seconds (from a worker: room made by another
    interpreter)."""
    import time

    time.sleep(delay)
    return [channel.recv(timeout=60) for _ in range(count)]


def layer_receive(name, channel, count):
    """Receives count messages from a SharedChannelLayer's channel in this worker's own event loop."""
    import asyncio

    from manygil.channels import SharedChannelLayer

    layer = SharedChannelLayer(name=name)

    async def go():
        return [await layer.receive(channel) for _ in range(count)]

    return asyncio.run(go())
