"""A plain WSGI application with one route per behaviour the serve tests check."""

import hashlib
import json
import time
import wsgiref.validate

closed = []  # paths whose response iterable was closed, in this worker


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Closing:
    def __init__(self, path, parts):
        self.path, self.parts = path, parts

    def __iter__(self):
        return iter(self.parts)

    def close(self):
        closed.append(self.path)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/environ"):
        keep = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, tuple))}
        keep["input"] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode("latin-1")
        return _json(start_response, keep)
    if path == "/upload":
        data = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        return _json(start_response, {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return Closing(path, [b"then ", b"iterated"])
    if path == "/closed":
        return _json(start_response, closed)
    if path == "/raise":
        raise ValueError("the application failed on purpose")
    if path == "/bad-status":
        start_response("OK", [])
        return [b""]
    if path == "/bad-header":
        start_response("200 OK", [("X-Injected", "a\r\nSet-Cookie: evil=1")])
        return [b""]
    if path == "/str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["not bytes"]
    if path == "/no-start":
        return [b"forgot start_response"]
    if path == "/pid":  # which server process and interpreter answered (the supervisor's tests)
        import os

        import _interpreters

        return _json(start_response, {"pid": os.getpid(), "interpreter": _interpreters.get_current()[0]})
    if path == "/crash":  # a C-level crash, as a buggy extension or a ctypes mistake makes one
        import ctypes

        ctypes.string_at(0)
    if path == "/spin":
        while True:  # pure Python: interruptible at any bytecode
            pass
    if path == "/sleep":
        time.sleep(float(environ["QUERY_STRING"] or "0.5"))
        return _json(start_response, {"slept": True})
    if path == "/file":
        f = open(environ["QUERY_STRING"], "rb")
        f.read(10)  # the server sends from the file's position on
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f)
    if path == "/stream":  # a generator: sent item by item, chunked (no Content-Length)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"part {i};".encode() for i in range(int(environ["QUERY_STRING"] or "3")))
    if path == "/stream-length":  # a generator with a Content-Length: sent as is
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
        return iter([b"abcd", b"efgh", b"ijkl"])
    if path == "/stream-big":  # 20 MiB in 64 KiB items: more than the stream window
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (bytes([i % 256]) * 65536 for i in range(320))
    if path == "/stream-wait":  # the second item waits until the client has seen the first
        return _wait_for_file(start_response, environ["QUERY_STRING"])
    if path == "/stream-fail":
        return _fail_after_one(start_response)
    if path == "/stream-write":
        return _write_between(start_response)
    if path == "/endless":
        return _endless(start_response, environ["QUERY_STRING"])
    if path == "/declares-less":
        start_response("200 OK", [("Content-Length", "5")])
        return [b"0123456789"]
    if path == "/declares-more":
        start_response("200 OK", [("Content-Length", "10")])
        return [b"01234"]
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    return _json(start_response, {"path": path, "method": environ["REQUEST_METHOD"]})


def _wait_for_file(start_response, path):
    import os

    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first;"
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield b"second" if os.path.exists(path) else b"the first item never arrived"


def _fail_after_one(start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"the beginning;"
    raise RuntimeError("failed after the response began")


def _write_between(start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"1;"
    write(b"2;")
    yield b"3;"
    write(b"4;")


def _endless(start_response, marker):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    try:
        while True:
            yield b"x" * 65536
    finally:
        open(marker, "w").close()  # closed by the server when the client went away


validated = wsgiref.validate.validator(app)
