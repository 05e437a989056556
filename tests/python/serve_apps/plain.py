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
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    return _json(start_response, {"path": path, "method": environ["REQUEST_METHOD"]})


validated = wsgiref.validate.validator(app)
