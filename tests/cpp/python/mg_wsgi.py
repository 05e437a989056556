"""WSGI applications the C++ tests serve through manygil::wsgi::WsgiHandler (tests/cpp/wsgi_test.cpp)."""


def app(environ, start_response):
    if environ["PATH_INFO"] == "/raise":
        raise KeyError("on purpose")
    body = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {environ['wsgi.input'].read()!r}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def chunks(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (f"{i};".encode() for i in range(3))
