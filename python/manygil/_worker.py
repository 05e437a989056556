"""Helpers that run inside worker interpreters (imported there by the native core)."""

import pickle
import sys

# The caller's main script, when it is a file: functions defined there are found by re-running it as
# module "__mp_main__" in the worker (the spawn semantics of multiprocessing).
main_script = None


def dumps(obj):
    """Pickles a result or argument of a non-native type (by value where needed)."""
    import cloudpickle

    return cloudpickle.dumps(obj, protocol=5)


def loads_callable(data):
    return pickle.loads(data)


def dump_exception(exc):
    """The exception pickled, or None: the caller then rebuilds it from its type name and message."""
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


def run_initializer(blob):
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
