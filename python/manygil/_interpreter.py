"""manygil.Interpreter: one own-GIL interpreter on its own thread, for direct use."""

from __future__ import annotations

from . import _pool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future
    from types import TracebackType
    from typing import Any, ParamSpec, TypeVar

    _P = ParamSpec("_P")
    _T = TypeVar("_T")


class Interpreter:
    """One isolated interpreter with its own GIL, living on its own thread until close().

    ``exec(source)`` runs code in its ``__main__``; ``call(fn, *args, **kwargs)`` runs a callable there
    and returns the result (``fn`` may be a "module:function" string, e.g. "__main__:f" for a function
    that exec() defined). Errors are raised as in Pool. Usable as a context manager.
    """

    def __init__(self) -> None:
        self._pool = _pool.Pool(1, reuse_interpreters=False)  # exec() state must not outlive close()
        self._pool.wait_ready()

    def exec(self, source: str) -> None:
        if not isinstance(source, str):
            raise TypeError(f"source must be str, not {type(source).__name__}")
        future = _pool._Future()
        self._pool._core.submit_exec(future, source)
        future.result()

    def call(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return self._pool.submit(fn, *args, **kwargs).result()

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Like call() without waiting: returns a concurrent.futures.Future."""
        return self._pool.submit(fn, *args, **kwargs)

    @property
    def id(self) -> int:
        return self._pool.interpreter_ids()[0]

    def close(self) -> None:
        """Runs what was queued, ends the interpreter and joins its thread. Idempotent."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Interpreter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        self.close()
        return False
