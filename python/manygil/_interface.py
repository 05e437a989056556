"""Which interface an application speaks, for ``manygil serve --interface auto``: ``probe`` runs in a
worker that has loaded the application. Kept apart from manygil._asgi (asyncio, the event loop) so that
the server's main interpreter and its supervisor, which import this, do not load asyncio: about 7 MiB
of RSS in each process that never runs a loop."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["is_asgi", "probe"]


def is_asgi(app: Any) -> bool:
    """An ASGI 3 application: a coroutine function, or an object whose ``__call__`` is one, taking
    (scope, receive, send). Anything else callable is taken for WSGI."""
    import inspect  # here: the server's main interpreter imports this module, and needs inspect only to probe

    if inspect.isclass(app):
        return False
    call = app if inspect.iscoroutinefunction(app) else getattr(app, "__call__", None)
    if call is None or not inspect.iscoroutinefunction(call):
        return False
    try:
        params = inspect.signature(call).parameters.values()
    except (TypeError, ValueError):
        return True  # no signature to read: the coroutine function is the evidence
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 3 or any(p.kind == p.VAR_POSITIONAL for p in params)


def probe(ref: str) -> bool:
    """In a worker that has loaded the application "module:attribute": is_asgi() of it."""
    import importlib

    module_name, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return is_asgi(obj)
