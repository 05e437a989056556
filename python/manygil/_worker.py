"""Helpers that run inside worker interpreters (imported there by the native core). Every worker
imports this module at start: it imports nothing heavy at module level (pickle, for one, is imported
by the tasks that need it)."""

import sys

from ._after_import import after_import

# The caller's main script, when it is a file: functions defined there are found by re-running it as
# module "__mp_main__" in the worker (the spawn semantics of multiprocessing).
main_script = None


def dumps(obj):
    """The pickler for objects that are not native values, on both sides (_shipping uses it too):
    cloudpickle, protocol 5, so that lambdas and __main__ classes travel by value."""
    import cloudpickle

    return cloudpickle.dumps(obj, protocol=5)


def loads_callable(data):
    import pickle

    return pickle.loads(data)


def dump_exception(exc):
    """The exception pickled, or None: the caller then rebuilds it from its type name and message."""
    import pickle

    try:
        return pickle.dumps(exc, protocol=5)
    except Exception:
        return None


def ensure_main_module():
    """Runs the caller's main script as __mp_main__ once, so its functions can be found by name."""
    if "__mp_main__" in sys.modules:
        return
    if main_script is None:
        raise ImportError("the caller's main script is unknown in this worker")
    import types

    with open(main_script, "rb") as f:
        code = compile(f.read(), main_script, "exec")
    module = types.ModuleType("__mp_main__")
    module.__file__ = main_script
    sys.modules["__mp_main__"] = module
    try:
        exec(code, module.__dict__)  # the script's `if __name__ == "__main__":` part does not run
    except BaseException:
        del sys.modules["__mp_main__"]
        raise


# ---- Threads and processes started by tasks, as in the main interpreter ---------------------------


def setup(thread_name):
    """Runs first in every worker, before the initializer. Nothing here imports a module a task may
    not need: what concerns threading or multiprocessing is applied when a task first imports them."""
    after_import("threading", lambda threading: _name_this_thread(threading, thread_name))
    after_import("multiprocessing.context", _spawn_by_default)


def _name_this_thread(threading, name):
    """Gives the worker's own thread a Thread object named like ThreadPoolExecutor's threads
    (threading.current_thread().name, log records' threadName). Without it, threading would make a
    _DummyThread named "Dummy-N" for it, which on some 3.13 releases prints "Exception ignored in
    _DeleteDummyThreadOnDel" when the interpreter ends."""
    ident = threading.get_ident()
    present = threading._active.get(ident)
    if present is not None:  # 3.12 registers the thread that imports threading as its main thread
        present.name = name
        return
    _worker_thread_class(threading)(name)


def _worker_thread_class(threading):
    """The class is made once threading is imported (workers do not import it before a task does)."""

    class WorkerThread(threading.Thread):
        """The thread of a manygil worker, as threading sees it. It was not started by threading and
        lives as long as the worker's interpreter: it is alive, not a daemon, and cannot be joined."""

        def __init__(self, name):
            super().__init__(name=name, daemon=False)
            self._started.set()
            self._ident = ident = threading.get_ident()
            if hasattr(threading, "_make_thread_handle"):  # 3.13+
                self._handle = threading._make_thread_handle(ident)
            if getattr(threading, "_HAVE_THREAD_NATIVE_ID", False):
                self._set_native_id()
            with threading._active_limbo_lock:
                threading._active[ident] = self

        def is_alive(self):
            return True

        def join(self, timeout=None):
            raise RuntimeError("cannot join a manygil worker's own thread")

    return WorkerThread


def _spawn_by_default(context):
    """multiprocessing's default start method on Linux before 3.14, fork, cannot work in a worker
    (isolated interpreters refuse os.fork). Processes started from a worker use spawn instead;
    set_start_method() and get_context() still choose."""
    avoid_fork_by_default(context, "spawn")


def avoid_fork_by_default(context, method):
    """Makes `method` multiprocessing's default start method if the default would be fork and nobody
    chose one yet (multiprocessing.context is the module). Also used in the main interpreter while
    pools exist: a child forked from a process with sub-interpreters dies (CPython gh-139759)."""
    default = context._default_context  # the object multiprocessing's module functions are bound to
    if default.get_start_method(allow_none=True) is None and default._default_context._name == "fork":
        default._default_context = context._concrete_contexts[method]


def run_initializer(blob):
    import pickle

    fn, args = pickle.loads(blob)
    fn(*args)


# Actors living in this interpreter, by key (one interpreter usually holds one actor).
_actors = {}


def actor_create(key, cls, args, kwargs):
    _actors[key] = cls(*args, **kwargs)


def actor_call(key, name, args, kwargs):
    try:
        obj = _actors[key]
    except KeyError:
        raise RuntimeError("this actor has no object: its constructor raised (see wait_created())") from None
    return getattr(obj, name)(*args, **kwargs)
