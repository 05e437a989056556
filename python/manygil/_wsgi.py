"""What `manygil serve` gives WSGI applications in its workers (PEP 3333): wsgi.file_wrapper.
Imported in each worker's interpreter; pure Python, no dependencies."""

from __future__ import annotations

from typing import IO, Any, Iterator

__all__ = ["FileWrapper"]


class FileWrapper:
    """environ["wsgi.file_wrapper"]: wraps a file-like object as the response body. Over a regular
    file, the server sends the rest of the file from the file's current position with sendfile();
    anything else is read in blocks of `blksize` bytes."""

    def __init__(self, filelike: IO[bytes], blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        close = getattr(filelike, "close", None)
        if close is not None:
            self.close = close

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data: Any = self.filelike.read(self.blksize)
        if data:
            return bytes(data)
        raise StopIteration


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
