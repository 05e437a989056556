"""A Starlette application: routes, JSON, a Jinja template, a streaming response, a request body echo,
a background task, lifespan state."""

import asyncio
import contextlib
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route
from starlette.templating import Jinja2Templates

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
DONE: list = []  # background tasks run, per worker


async def page(request):
    return templates.TemplateResponse(request, "page.html", {"title": "manygil", "items": ["one", "two", "three"]})


async def hello(request):
    return PlainTextResponse("Hello, world!")


async def data(request):
    return JSONResponse({"method": request.method, "query": dict(request.query_params),
                         "path": request.url.path, "worker": request.state.worker})


async def echo(request):
    body = await request.body()
    return PlainTextResponse(body, media_type="application/octet-stream",
                             headers={"x-length": str(len(body))})


async def upload(request):
    # request.stream(): the body piece by piece as the front end streams it in.
    total, pieces = 0, 0
    async for piece in request.stream():
        total += len(piece)
        pieces += 1
    return JSONResponse({"total": total, "pieces": pieces})


async def stream(request):
    async def parts():
        for i in range(int(request.query_params.get("n", "3"))):
            yield f"chunk {i}\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(parts(), media_type="text/plain")


async def remember(what):
    await asyncio.sleep(0.05)
    DONE.append(what)


async def background(request):
    return PlainTextResponse("queued", background=BackgroundTask(remember, request.query_params.get("what", "x")))


async def done(request):
    return JSONResponse(DONE)


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"worker": os.getpid()}


app = Starlette(routes=[
    Route("/", page), Route("/hello", hello), Route("/json", data, methods=["GET", "POST"]),
    Route("/echo", echo, methods=["POST"]), Route("/upload", upload, methods=["POST"]),
    Route("/stream", stream), Route("/background", background),
    Route("/done", done),
], lifespan=lifespan)
