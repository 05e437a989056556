"""manygil.actor: an object that lives in its own interpreter, reached only through its methods."""

from __future__ import annotations

import itertools

from . import _pool, _worker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from concurrent.futures import Future
    from types import TracebackType
    from typing import Any

_keys = itertools.count()


def _method_names(cls):
    return frozenset(name for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name, None)))


class ActorMethod:
    """``handle.name(*args, **kwargs)`` returns a Future; ``await handle.name.run(...)`` for asyncio."""

    def __init__(self, handle: ActorHandle, name: str) -> None:
        self._handle = handle
        self._name = name

    def __call__(self, /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._handle._pool.submit(_worker.actor_call, self._handle._key, self._name, args, kwargs)

    async def run(self, /, *args: Any, **kwargs: Any) -> Any:
        import asyncio  # only for asyncio users: it costs ~45 ms to import

        return await asyncio.wrap_future(self(*args, **kwargs))

    def __repr__(self) -> str:
        return f"<actor method {self._handle._cls_name}.{self._name}>"


class ActorHandle:
    """The caller's side of an actor. Method calls run one at a time, in call order, in the actor's
    interpreter; attributes are not reachable except through methods. close() ends the actor."""

    def __init__(self, cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._cls_name = getattr(cls, "__qualname__", repr(cls))
        self._methods = _method_names(cls)
        self._key = next(_keys)
        self._pool = _pool.Pool(1, reuse_interpreters=False)  # the object must end with the actor
        # Queued first, so every method call runs after construction; a constructor error surfaces
        # on the first call (and on wait_created()).
        self._created = self._pool.submit(_worker.actor_create, self._key, cls, args, kwargs)

    def __getattr__(self, name: str) -> ActorMethod:
        if name in self.__dict__.get("_methods", ()):
            return ActorMethod(self, name)
        raise AttributeError(f"actor {self.__dict__.get('_cls_name', '?')} has no method {name!r} "
                             "(an actor's attributes are reachable only through its methods)")

    def wait_created(self, timeout: float | None = None) -> None:
        """Blocks until the object exists in its interpreter; re-raises its constructor's error."""
        self._created.result(timeout)

    def close(self) -> None:
        """Runs the calls already made, then ends the actor's interpreter. Idempotent."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> ActorHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        self.close()
        return False

    def __repr__(self) -> str:
        return f"<manygil actor {self._cls_name}>"


def actor(cls: type, /, *args: Any, **kwargs: Any) -> ActorHandle:
    """Creates ``cls(*args, **kwargs)`` inside a dedicated own-GIL interpreter and returns its handle.

    ``handle.method(*a, **kw)`` returns a concurrent.futures.Future; calls run one at a time in call
    order; exceptions propagate as in Pool; ``await handle.method.run(...)`` works with asyncio.
    """
    if not isinstance(cls, type):
        raise TypeError(f"actor() needs a class, not {type(cls).__name__}")
    return ActorHandle(cls, args, kwargs)
