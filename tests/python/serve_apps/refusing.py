"""An application whose import needs a module that refuses own-GIL interpreters."""

import _testsinglephase  # noqa: F401


def app(environ, start_response):
    start_response("200 OK", [])
    return [b"never served"]
