"""manygil.call_in_main: from inside a worker, a call made in the main interpreter, where every module
loads (NumPy, PyTorch, readline, ... refuse own-GIL interpreters) and the program's own objects live.

How it travels: ``fn`` as a task's function does (by reference when importable, else pickled by value);
arguments and the result through the codec (native types without pickle, SharedBuffer and the other
shared objects by reference: main sees the same memory). The worker waits with its GIL released.

Where it runs: on one of manygil's main-side threads (src/runtime/main_calls.hpp), never on the
program's own main thread, so a main thread blocked in ``future.result()`` does not deadlock them.
They start on demand, one per call in flight, up to 16 (more calls queue). They share the main
interpreter's GIL: pure-Python calls in main run one at a time; while the main thread itself runs
Python, a call waits for the GIL until CPython's switch interval (5 ms by default) makes it let go.
"""

from __future__ import annotations

from . import _core, _shipping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, ParamSpec, TypeVar, overload

    _P = ParamSpec("_P")
    _T = TypeVar("_T")

_in_main = _core.in_main_interpreter()  # fixed for the life of this module's interpreter

if TYPE_CHECKING:
    @overload
    def call_in_main(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T: ...
    @overload
    def call_in_main(fn: str, /, *args: Any, **kwargs: Any) -> Any: ...


def call_in_main(fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Runs ``fn(*args, **kwargs)`` in the main interpreter and returns its result.

    From a worker, the worker waits for it with its GIL released; an interrupt of the worker's task
    (``Future.interrupt()``, ``submit_with(timeout=...)``, ``shutdown(timeout=...)``) ends the wait
    with manygil.Interrupted for the task. Exceptions are re-raised as their own type, with main's
    traceback as ``__cause__``. In the main interpreter (including inside a call made this way) it
    simply calls ``fn``. ``fn`` may be a "module:function" string. See call_in_main_with() for a
    timeout.
    """
    if _in_main:
        return _local(fn)(*args, **kwargs)
    return _core._call_in_main(_spec(fn), args, kwargs or None, None)


def call_in_main_with(fn: Callable[..., _T] | str, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None,
                      *, timeout: float | None = None) -> _T:
    """call_in_main(fn, *args, **kwargs) with options, as Pool.submit_with is to submit.

    ``timeout``: seconds the caller waits for the result (None: as long as it takes). Past it,
    TimeoutError is raised in the caller, and the call is withdrawn: if it has not started in main it
    never runs; if it has, it runs to completion there and its result is dropped. In the main
    interpreter the call is made directly and ``timeout`` does not apply.
    """
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    args = tuple(args)
    if _in_main:
        return _local(fn)(*args, **(kwargs or {}))
    return _core._call_in_main(_spec(fn), args, dict(kwargs) if kwargs else None,
                               None if timeout is None else float(timeout))


# Specs of callables that cannot be weakly referenced (builtins: operator.add, math.sqrt), which
# _shipping cannot cache; bounded, as distinct such callables are few.
_builtin_specs: dict[Any, Any] = {}


def _spec(fn):
    try:
        return _builtin_specs[fn]
    except (KeyError, TypeError):
        pass
    spec = _shipping.callable_spec(fn)
    if isinstance(spec, str) and type(fn).__name__ == "builtin_function_or_method":
        if len(_builtin_specs) >= 256:
            _builtin_specs.clear()
        _builtin_specs[fn] = spec
    return spec


def _local(fn):
    if isinstance(fn, str):
        from ._worker import resolve

        _shipping.callable_spec(fn)  # the form's check: "module:function"
        return resolve(fn)
    return fn
