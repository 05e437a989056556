"""What `manygil serve` runs in its workers before they serve: the application's import. (Their
wsgi.file_wrapper is defined by the C++ side, src/wsgi/environ.cpp, so C++ hosts need no package.)"""

from __future__ import annotations

from typing import Any

__all__ = ["load_app"]


def load_app(ref: str) -> None:
    """Imports the application "module:attribute" in this interpreter, so that a worker that cannot
    load it fails at start rather than on its first request. Raises ImportError, AttributeError, or
    TypeError when it is not callable."""
    import importlib

    module_name, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{ref} is a {type(obj).__name__}, not a WSGI application (a callable)")
