"""manygil.Interpreter: one own-GIL interpreter on its own thread, for direct use."""

from . import _pool


class Interpreter:
    """One isolated interpreter with its own GIL, living on its own thread until close().

    ``exec(source)`` runs code in its ``__main__``; ``call(fn, *args, **kwargs)`` runs a callable there
    and returns the result (``fn`` may be a "module:function" string, e.g. "__main__:f" for a function
    that exec() defined). Errors are raised as in Pool. Usable as a context manager.
    """

    def __init__(self):
        self._pool = _pool.Pool(1)
        self._pool.wait_ready()

    def exec(self, source):
        if not isinstance(source, str):
            raise TypeError(f"source must be str, not {type(source).__name__}")
        future = _pool._Future()
        self._pool._core.submit_exec(future, source)
        future.result()

    def call(self, fn, /, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs).result()

    def submit(self, fn, /, *args, **kwargs):
        """Like call() without waiting: returns a concurrent.futures.Future."""
        return self._pool.submit(fn, *args, **kwargs)

    @property
    def id(self):
        return self._pool.interpreter_ids()[0]

    def close(self):
        """Runs what was queued, ends the interpreter and joins its thread. Idempotent."""
        self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False
