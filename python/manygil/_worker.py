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


# The caller's main script as this worker's module "__mp_main__", once it has been run here.
_script_module = None
# True while the script runs: code it runs at import time (a Pool without the __main__ guard) is told so.
running_main_script = False


def ensure_main_module():
    """Runs the caller's main script as __mp_main__ once, so its functions can be found by name.

    multiprocessing's first import points sys.modules["__mp_main__"] at sys.modules["__main__"] (the
    worker's own, which holds none of the script's functions). The script, or a module it imports, may
    well import multiprocessing (concurrent.futures' process pool, Dask, joblib do), so the name is
    bound to the script's module again as soon as multiprocessing has run, and on every call here.
    """
    global _script_module, running_main_script
    if _script_module is not None:
        sys.modules["__mp_main__"] = _script_module
        return
    if main_script is None:
        raise ImportError("the caller's main script is unknown in this worker")
    import types

    with open(main_script, "rb") as f:
        code = compile(f.read(), main_script, "exec")
    module = types.ModuleType("__mp_main__")
    module.__file__ = main_script
    # The script's own imports go through _script_import: one of a module that refuses this
    # interpreter (numpy, duckdb, ...) gives a stand-in instead of stopping the script, so its other
    # functions still load (see _Unloadable).
    import builtins

    module.__builtins__ = dict(builtins.__dict__, __import__=_script_import)
    after_import("multiprocessing", _rebind_mp_main)
    sys.modules["__mp_main__"] = _script_module = module
    running_main_script = True
    try:
        exec(code, module.__dict__)  # the script's `if __name__ == "__main__":` part does not run
    except BaseException:
        _script_module = None
        if sys.modules.get("__mp_main__") is module:
            del sys.modules["__mp_main__"]
        raise
    finally:
        running_main_script = False
    sys.modules["__mp_main__"] = module


def _script_import(name, globals=None, locals=None, fromlist=(), level=0):
    """__import__ for the main script re-run here: while the script's top level runs, an import of a
    module that refuses own-GIL interpreters binds an _Unloadable stand-in (the script's `import
    numpy`, needed by its main part only, must not hide its other functions). At any other time, and
    for every other error, the plain import."""
    import builtins

    try:
        return builtins.__import__(name, globals, locals, fromlist, level)
    except ImportError as e:
        if not running_main_script or "does not support loading in subinterpreters" not in str(e):
            raise
        return _Unloadable(name, e)


class _Unloadable:
    """Stands for a module the main script imports but that cannot load in this interpreter. Reading
    an attribute gives another stand-in; calling one raises the original ImportError, so a task that
    does use the module fails as it would have (and Pool(fallback=...) re-routes it)."""

    def __init__(self, name, error):
        self.__name__ = name
        self._error = error

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return _Unloadable(f"{self.__name__}.{attr}", self._error)

    def __call__(self, *args, **kwargs):
        raise ImportError(str(self._error), name=self._error.name) from self._error

    def __repr__(self):
        return f"<{self.__name__}: cannot load in this interpreter ({self._error})>"


def _rebind_mp_main(_multiprocessing):
    if _script_module is not None:
        sys.modules["__mp_main__"] = _script_module


class _MainScriptFinder:
    """Makes `import __mp_main__` run the caller's main script here (ensure_main_module), whoever
    imports it: a task's function resolved by name, a DuckDB UDF, pickle finding a class."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "__mp_main__" or main_script is None:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(name, _MainScriptFinder, origin=main_script)

    @staticmethod
    def create_module(spec):
        ensure_main_module()
        return _script_module

    @staticmethod
    def exec_module(module):
        pass  # ensure_main_module ran the script


# ---- The source fallback (see _source_fallback, imported only once an extension module is found) -----

# Where the source fallback reports the modules it loads from source: (fd, token), or None when off.
source_fallback_report = None


class _SourceFallbackFinder:
    """Just before PathFinder on sys.meta_path: PathFinder's spec, unless it is an extension module
    that refuses own-GIL interpreters with its Python source beside it (then the source's spec)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        import _frozen_importlib_external as bootstrap  # always loaded: importlib's own

        spec = bootstrap.PathFinder.find_spec(name, path, target)
        if spec is None or not isinstance(spec.loader, bootstrap.ExtensionFileLoader):
            return spec
        from . import _source_fallback

        return _source_fallback.source_spec(name, spec) or spec


def _set_source_fallback(report):
    """Puts the finder on sys.meta_path (report: (fd, token)) or takes it off (None). A reused
    interpreter reports the modules it loaded from source already to its new pool."""
    global source_fallback_report
    import _frozen_importlib_external as bootstrap

    source_fallback_report = report
    meta = sys.meta_path
    if report is None:
        while _SourceFallbackFinder in meta:
            meta.remove(_SourceFallbackFinder)
        return
    if _SourceFallbackFinder not in meta and bootstrap.PathFinder in meta:
        meta.insert(meta.index(bootstrap.PathFinder), _SourceFallbackFinder)
    done = sys.modules.get("manygil._source_fallback")
    if done is not None:
        done.report_again()


# ---- Threads and processes started by tasks, as in the main interpreter ---------------------------


def setup(thread_name, source_fallback=None):
    """Runs first in every worker, before the initializer. Nothing here imports a module a task may
    not need: what concerns threading or multiprocessing is applied when a task first imports them.
    ``source_fallback``: None, or (fd, token) where the source fallback reports the modules it loads
    from source (see _source_fallback); a reused interpreter set up without it loses its finder."""
    after_import("threading", lambda threading: _name_this_thread(threading, thread_name))
    if _MainScriptFinder not in sys.meta_path:
        sys.meta_path.append(_MainScriptFinder)
    _set_source_fallback(None if source_fallback is None else tuple(source_fallback))
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


def protect_forked_children():
    """Makes forkserver multiprocessing's default start method where it would be fork and nobody chose
    one: now if multiprocessing is imported, else once it is. Called when manygil is imported in the
    main interpreter, not only when a pool starts: a ProcessPoolExecutor() created before the first
    pool takes multiprocessing's default context then (and fixes it), then forks its workers lazily,
    while the pool's interpreters exist, and every child dies (CPython gh-139759)."""
    after_import("multiprocessing.context", lambda context: avoid_fork_by_default(context, "forkserver"))


def run_initializer(blob):
    """Runs the pool's initializer: (callable or "module:qualname", args) pickled. By name when the
    worker can import it, so that an initializer defined in the main script sets the globals of the
    script's module here (__mp_main__), where the script's tasks read them, as with multiprocessing."""
    import pickle

    fn, args = pickle.loads(blob)
    if isinstance(fn, str):
        fn = resolve(fn)
    fn(*args)


def resolve(target):
    """The object a "module:qualname" reference names (the main script's functions: "__mp_main__:f")."""
    module_name, _, qualname = target.partition(":")
    if module_name == "__mp_main__":
        ensure_main_module()
    import importlib

    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


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
