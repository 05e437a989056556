"""How callables and arguments travel to workers.

A callable goes by reference ("module:qualname") when a worker can import it: the worker resolves it
once and caches it. A function defined in the caller's main script goes as "__mp_main__:qualname":
the worker runs the script once under that name, like multiprocessing's spawn. Anything else
(lambdas, closures, functions from the REPL, ``python -c`` or ``exec``) is pickled by value with
cloudpickle, which also carries closure cells and referenced globals.
"""

import sys
import weakref

from . import _core
from ._worker import dumps  # the one pickler, the same in workers and in the caller

# The types whose objects travel by reference: a worker gets the same object, not a copy.
_SHARED_TYPES = (_core.SharedBuffer, _core.Channel, _core.SharedDict, _core.Lock, _core.Event, _core.Semaphore,
                 _core.Barrier)

_by_reference = weakref.WeakKeyDictionary()  # callable -> "module:qualname"


def main_script():
    """The path of the caller's main script if it is a file (not the REPL, -c or stdin), else None."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or path.startswith("<") or getattr(getattr(main, "__spec__", None), "name", None):
        return None  # `python -m pkg` re-imports by its module name instead
    import os

    return os.path.abspath(path) if os.path.isfile(path) else None


def _lookup(module, qualname):
    obj = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


def _reference(fn):
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None  # lambdas and functions defined inside functions have no importable name
    if _lookup(module, qualname) is not fn:
        return None
    if module == "__main__":
        return f"__mp_main__:{qualname}" if main_script() else None
    return f"{module}:{qualname}"


def callable_spec(fn):
    """What the worker needs to find ``fn``: a "module:qualname" str, the pickled callable (bytes), or
    (object, method name) for a method of an object that travels by reference (``event.wait``: the
    worker calls ``wait`` on the same Event).

    A str argument is taken as a "module:function" target. Raises TypeError naming the callable and
    saying why when it cannot be sent.
    """
    holder = getattr(fn, "__self__", None)
    if holder is not None and isinstance(holder, _SHARED_TYPES) and isinstance(getattr(fn, "__name__", None), str):
        return (holder, fn.__name__)
    if isinstance(fn, str):
        module, sep, name = fn.partition(":")
        if not sep or not module or not name or ":" in name:
            raise ValueError(f"target {fn!r} is not of the form 'module:function'")
        return fn
    try:
        spec = _by_reference.get(fn)
    except TypeError:  # not weak-referenceable or not hashable
        spec = None
    if spec is not None:
        return spec
    if not callable(fn):
        raise TypeError(f"{fn!r} is not callable")
    spec = _reference(fn)
    if spec is not None:
        try:
            _by_reference[fn] = spec
        except TypeError:
            pass
        return spec
    try:
        return dumps(fn)
    except Exception as e:
        raise TypeError(f"cannot send {_describe(fn)} to a worker: {_why(fn, e)}") from e


def _describe(fn):
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return f"function {name!r}" if name else f"callable {fn!r}"


def _why(fn, error):
    """Names the closure variable or global that could not be pickled, when that is the reason."""
    code = getattr(fn, "__code__", None)
    cells = getattr(fn, "__closure__", None) or ()
    if code is not None:
        for name, cell in zip(code.co_freevars, cells):
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            try:
                dumps(value)
            except Exception as e:
                return f"its closure variable {name!r} holds a {type(value).__qualname__} that cannot be pickled ({e})"
        globals_ = getattr(fn, "__globals__", {})
        for name in code.co_names:
            if name in globals_:
                value = globals_[name]
                try:
                    dumps(value)
                except Exception as e:
                    return f"the global {name!r} it uses is a {type(value).__qualname__} that cannot be pickled ({e})"
    return str(error)
