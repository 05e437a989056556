"""Helpers that run inside worker interpreters (imported there by the native core). Every worker
imports this module at start: it imports nothing at module level but sys (pickle, for one, is
imported by the tasks that need it)."""

import sys

# The caller's main script, when it is a file: functions defined there are found by re-running it as
# module "__mp_main__" in the worker (the spawn semantics of multiprocessing).
main_script = None


def dumps(obj):
    """Pickles a result or argument of a non-native type (by value where needed)."""
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
    _after_import("threading", lambda threading: _name_this_thread(threading, thread_name))
    _after_import("multiprocessing.context", _spawn_by_default)


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
    default = context._default_context
    if default.get_start_method(allow_none=True) is None and default._default_context._name == "fork":
        context._default_context = context.DefaultContext(context._concrete_contexts["spawn"])


class _AfterImport:
    """A sys.meta_path finder that finds nothing itself: for the modules it watches, it asks the
    finders behind it for the spec and makes the module's loader call a hook once the module has
    executed. It leaves sys.meta_path when nothing is left to watch."""

    def __init__(self):
        self.hooks = {}

    def find_spec(self, name, path=None, target=None):
        hook = self.hooks.get(name)
        if hook is None:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        self._forget(name)
        run = spec.loader.exec_module  # each module's spec has a loader object of its own

        def exec_module(module):
            run(module)
            hook(module)

        spec.loader.exec_module = exec_module
        return spec

    def _forget(self, name):
        del self.hooks[name]
        if not self.hooks and self in sys.meta_path:
            sys.meta_path.remove(self)


_after_import_finder = _AfterImport()


def _after_import(name, hook):
    """Calls hook(module) once module `name` is imported: now if it already is, else right after it
    executes for the first time."""
    module = sys.modules.get(name)
    if module is not None:
        hook(module)
        return
    _after_import_finder.hooks[name] = hook
    if _after_import_finder not in sys.meta_path:
        sys.meta_path.insert(0, _after_import_finder)


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
