"""manygil serve (ASGI) against granian, uvicorn and gunicorn's uvicorn worker, with wrk, in one run
(issue 26).

  python bench/serve_asgi.py [--rounds 3] [--duration 5] [--connections 64] [--json PATH] [--floor-only]
                            [--baseline DIR]

Each server runs the same applications (bench/serve_asgi_apps.py) with 2 workers: manygil serve (2
own-GIL interpreters in one process, each running an asyncio loop), granian (2 worker processes,
--interface asgi), uvicorn (2 worker processes; httptools and uvloop where they install) and gunicorn
with uvicorn workers (2 processes). Workloads: hello world, a JSON response, a Starlette page rendered
from a Jinja template. wrk runs -t2 -c64 against each; servers take turns within every round, in a
rotating order, and each keeps its best round (req/s, with that round's p50/p99 latency and the CPU
its process tree used per request, which other load on the machine moves least). Memory is
the whole process tree's RSS and PSS after the run, the most seen. The machine may be shared: the
ratios of one run are what to read, not the absolute numbers.

First, the no-server floor of each workload (app_floor; --floor-only prints just that): the
application called in a loop in one process, no socket. cores / its CPU per request is a ceiling no
server can pass here; the summary sets it against granian's and uvicorn's req/s from the same run.

--baseline DIR adds "manygil-base", an earlier build of the package installed in DIR, as bench/serve.py
does (`make bench-ab BASE=<git revision> BENCH_AB=bench/serve_asgi.py`).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import free_port, keep_best, measure_command, write_json  # noqa: E402  (bench/serve.py's harness)

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
WORKLOADS = {"hello": "serve_asgi_apps:hello", "json": "serve_asgi_apps:json_app",
             "starlette": "serve_asgi_apps:starlette_app"}
HAVE_HTTPTOOLS = importlib.util.find_spec("httptools") is not None
HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None
BASELINE: str | None = None  # --baseline: where an earlier build of the package is installed


def commands(app: str, port: int) -> dict[str, list[str]]:
    bind = f"127.0.0.1:{port}"
    uvicorn_fast = (["--http", "httptools"] if HAVE_HTTPTOOLS else []) + (["--loop", "uvloop"] if HAVE_UVLOOP else [])
    return {
        "manygil": [sys.executable, "-m", "manygil", "serve", app, "--interface", "asgi", "--workers", "2",
                    "--bind", bind, "--log-level", "warning"],
        "manygil-base": [sys.executable, "-m", "manygil", "serve", app, "--interface", "asgi", "--workers", "2",
                         "--bind", bind, "--log-level", "warning"],
        "granian": [str(BIN / "granian"), "--interface", "asgi", "--workers", "2", "--host", "127.0.0.1",
                    "--port", str(port), "--no-ws", "--log-level", "warning", app],
        "uvicorn": [str(BIN / "uvicorn"), app, "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
                    "--log-level", "warning", "--no-access-log", *uvicorn_fast],
        "gunicorn-uvicorn": [str(BIN / "gunicorn"), "-w", "2", "-k", "uvicorn.workers.UvicornWorker", "-b", bind,
                             "--log-level", "warning", app],
    }


def measure(server: str, workload: str, duration: int, connections: int) -> dict[str, float]:
    port = free_port()
    env = dict(os.environ)
    if server == "manygil-base":  # the earlier build first on the path
        env["PYTHONPATH"] = os.pathsep.join(p for p in (BASELINE, env.get("PYTHONPATH")) if p)
    return measure_command(commands(WORKLOADS[workload], port)[server], f"http://127.0.0.1:{port}/", duration,
                           connections, env=env)


# The application's own cost with no server at all: one process calls the ASGI application in a loop
# on one asyncio task (the scope of wrk's GET, the request's body at once, a send() that drops what it
# is given). cores / (that CPU per request) bounds every server on this machine, whatever its I/O costs.
FLOOR_CHILD = r"""
import asyncio, importlib, sys, time
module, _, attr = sys.argv[1].partition(":")
app = getattr(importlib.import_module(module), attr)
n = int(sys.argv[2])
REQUEST = {"type": "http.request", "body": b"", "more_body": False}
def scope():
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000")], "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000), "state": {}}
async def receive():
    return REQUEST
statuses = []
async def send(message):
    if message["type"] == "http.response.start":
        statuses.append(message["status"])
async def run(count):
    for _ in range(count):
        await app(scope(), receive, send)
async def main():
    await run(200)
    assert set(statuses) == {200}, set(statuses)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    c0 = time.process_time()
    await run(n)
    print(time.process_time() - c0, flush=True)
asyncio.run(main())
"""


def app_floor(workload: str, requests: int = 5000) -> float:
    """CPU seconds per request of the application itself, with no server (FLOOR_CHILD)."""
    child = subprocess.Popen([sys.executable, "-c", FLOOR_CHILD, WORKLOADS[workload], str(requests)], cwd=HERE,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the no-server floor of {workload} did not start")
        child.stdin.write("go\n")
        child.stdin.flush()
        return float(child.stdout.readline()) / requests
    finally:
        child.kill()
        child.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--servers", default="manygil,granian,uvicorn,gunicorn-uvicorn")
    parser.add_argument("--workloads", default="hello,json,starlette")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--floor-only", action="store_true", help="only the no-server floor (app_floor)")
    parser.add_argument("--baseline", metavar="DIR", help="an earlier build of the package (pip install --target "
                        "DIR): adds the server manygil-base, run with it first on its path")
    args = parser.parse_args()
    global BASELINE
    if args.baseline:
        BASELINE = str(Path(args.baseline).resolve())
        if not (Path(BASELINE) / "manygil").is_dir():
            print(f"bench/serve_asgi.py: no manygil package in {BASELINE}", file=sys.stderr)
            return 1
        if "manygil-base" not in args.servers:
            args.servers += ",manygil-base"
    if shutil.which("wrk") is None and not args.floor_only:
        print("bench/serve_asgi.py needs wrk (Debian: apt-get install wrk; the bootstrap installs it)", file=sys.stderr)
        return 1
    servers = [s for s in args.servers.split(",")
               if s.startswith("manygil") or (BIN / {"granian": "granian", "uvicorn": "uvicorn",
                                             "gunicorn-uvicorn": "gunicorn"}[s]).exists()]
    workloads = args.workloads.split(",")
    cores = os.cpu_count() or 1
    floors: dict[str, float] = {}
    for w in workloads:
        floors[w] = min(app_floor(w) for _ in range(3))  # best of 3
        print(f"no server: {w:9} app CPU {floors[w] * 1e6:7.1f} us/req: at most {cores / floors[w]:8.0f} req/s "
              f"on {cores} CPUs", flush=True)
    if args.floor_only:
        return 0
    best: dict[tuple[str, str], dict[str, float]] = {}
    for r in range(args.rounds):
        for w in workloads:
            order = servers[r % len(servers):] + servers[:r % len(servers)]
            for s in order:
                try:
                    m = measure(s, w, args.duration, args.connections)
                except (RuntimeError, subprocess.CalledProcessError) as e:
                    print(f"round {r + 1}: {w:9} {s:17} failed: {e}", flush=True)
                    continue
                keep_best(best, (s, w), m)
                print(f"round {r + 1}: {w:9} {s:17} {m['rps']:9.0f} req/s  p50 {m['p50_ms']:6.2f} ms  "
                      f"p99 {m['p99_ms']:6.2f} ms  CPU/req {m['cpu_us']:6.1f} us  RSS {m['rss_mib']:5.0f} MiB  "
                      f"PSS {m['pss_mib']:5.0f} MiB"
                      + (f"  non-2xx {m['non_2xx']}" if m["non_2xx"] else ""), flush=True)
    print(f"\nbest of {args.rounds} rounds, wrk -t2 -c{args.connections} -d{args.duration}s, 2 workers each "
          f"(uvicorn: {'httptools' if HAVE_HTTPTOOLS else 'h11'}, {'uvloop' if HAVE_UVLOOP else 'asyncio'}):")
    print(f"{'workload':9} {'server':17} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'CPU us':>7} {'RSS MiB':>8}"
          f" {'PSS MiB':>8}"
          f" {'vs granian':>10} {'vs uvicorn':>10}" + (f" {'vs manygil-base':>15}" if BASELINE else ""))
    for w in workloads:
        for s in servers:
            if (s, w) not in best:
                continue
            m = best[(s, w)]
            ratio = lambda peer: (f"{m['rps'] / best[(peer, w)]['rps']:.2f}x" if (peer, w) in best else "-")  # noqa: E731
            print(f"{w:9} {s:17} {m['rps']:9.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} {m['cpu_us']:7.1f}"
                  f" {m['rss_mib']:8.0f}"
                  f" {m['pss_mib']:8.0f} {ratio('granian'):>10} {ratio('uvicorn'):>10}"
                  + (f" {ratio('manygil-base'):>15}" if BASELINE else ""))
    print("\nThe ceiling no server can pass on this machine, from the no-server floor (cores / the application's"
          " CPU per request), against the peers' req/s:")
    for w in workloads:
        ceiling = cores / floors[w]
        peers = ", ".join(f"{ceiling / best[(p, w)]['rps']:.2f}x {p}" for p in ("granian", "uvicorn") if (p, w) in best)
        mine = f"; manygil reaches {best[('manygil', w)]['rps'] / ceiling:.0%} of it" if ("manygil", w) in best else ""
        print(f"  {w}: {ceiling:.0f} req/s" + (f" = {peers}" if peers else "") + mine)
    write_json(args.json, best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
