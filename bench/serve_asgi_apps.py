"""The ASGI applications bench/serve_asgi.py serves with each server: the same module for all of them."""

import json

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.templating import Jinja2Templates

ROWS = [{"id": i, "name": f"item number {i}", "price": i * 1.25} for i in range(20)]
HELLO_HEAD = {"type": "http.response.start", "status": 200,
              "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return  # lifespan: unsupported
    await send(HELLO_HEAD)
    await send({"type": "http.response.body", "body": b"Hello, World!"})


async def json_app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({"message": "Hello, World!", "rows": ROWS}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


templates = Jinja2Templates(directory="templates")  # bench/templates/page.html, run from bench/


async def page(request):
    return templates.TemplateResponse(request, "page.html", {"title": "manygil", "rows": ROWS})


starlette_app = Starlette(routes=[Route("/", page)])
