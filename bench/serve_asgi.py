"""manygil serve (ASGI) against granian, uvicorn and gunicorn's uvicorn worker, with wrk, in one run
(issue 26).

  python bench/serve_asgi.py [--rounds 3] [--duration 5] [--connections 64] [--json PATH]

Each server runs the same applications (bench/serve_asgi_apps.py) with 2 workers: manygil serve (2
own-GIL interpreters in one process, each running an asyncio loop), granian (2 worker processes,
--interface asgi), uvicorn (2 worker processes; httptools and uvloop where they install) and gunicorn
with uvicorn workers (2 processes). Workloads: hello world, a JSON response, a Starlette page rendered
from a Jinja template. wrk runs -t2 -c64 against each; servers take turns within every round, in a
rotating order, and each keeps its best round (req/s, with that round's p50/p99 latency). Memory is
the whole process tree's RSS and PSS after the run, the most seen. The machine may be shared: the
ratios of one run are what to read, not the absolute numbers.
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
from serve import free_port, keep_best, run_wrk, stop, wait_ready, write_json  # noqa: E402  (bench/serve.py's harness)

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
WORKLOADS = {"hello": "serve_asgi_apps:hello", "json": "serve_asgi_apps:json_app",
             "starlette": "serve_asgi_apps:starlette_app"}
HAVE_HTTPTOOLS = importlib.util.find_spec("httptools") is not None
HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


def commands(app: str, port: int) -> dict[str, list[str]]:
    bind = f"127.0.0.1:{port}"
    uvicorn_fast = (["--http", "httptools"] if HAVE_HTTPTOOLS else []) + (["--loop", "uvloop"] if HAVE_UVLOOP else [])
    return {
        "manygil": [sys.executable, "-m", "manygil", "serve", app, "--interface", "asgi", "--workers", "2",
                    "--bind", bind, "--log-level", "warning"],
        "granian": [str(BIN / "granian"), "--interface", "asgi", "--workers", "2", "--host", "127.0.0.1",
                    "--port", str(port), "--no-ws", "--log-level", "warning", app],
        "uvicorn": [str(BIN / "uvicorn"), app, "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
                    "--log-level", "warning", "--no-access-log", *uvicorn_fast],
        "gunicorn-uvicorn": [str(BIN / "gunicorn"), "-w", "2", "-k", "uvicorn.workers.UvicornWorker", "-b", bind,
                             "--log-level", "warning", app],
    }


def measure(server: str, workload: str, duration: int, connections: int) -> dict[str, float]:
    app = WORKLOADS[workload]
    port = free_port()
    cmd = commands(app, port)[server]
    proc = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0,
                            env=dict(os.environ))
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_ready(url, proc)
        return run_wrk(proc, url, duration, connections)
    finally:
        stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--servers", default="manygil,granian,uvicorn,gunicorn-uvicorn")
    parser.add_argument("--workloads", default="hello,json,starlette")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/serve_asgi.py needs wrk (Debian: apt-get install wrk; the bootstrap installs it)", file=sys.stderr)
        return 1
    servers = [s for s in args.servers.split(",")
               if s == "manygil" or (BIN / {"granian": "granian", "uvicorn": "uvicorn",
                                             "gunicorn-uvicorn": "gunicorn"}[s]).exists()]
    workloads = args.workloads.split(",")
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
                      f"p99 {m['p99_ms']:6.2f} ms  RSS {m['rss_mib']:5.0f} MiB  PSS {m['pss_mib']:5.0f} MiB"
                      + (f"  non-2xx {m['non_2xx']}" if m["non_2xx"] else ""), flush=True)
    print(f"\nbest of {args.rounds} rounds, wrk -t2 -c{args.connections} -d{args.duration}s, 2 workers each "
          f"(uvicorn: {'httptools' if HAVE_HTTPTOOLS else 'h11'}, {'uvloop' if HAVE_UVLOOP else 'asyncio'}):")
    print(f"{'workload':9} {'server':17} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'RSS MiB':>8} {'PSS MiB':>8}"
          f" {'vs granian':>10} {'vs uvicorn':>10}")
    for w in workloads:
        for s in servers:
            if (s, w) not in best:
                continue
            m = best[(s, w)]
            ratio = lambda peer: (f"{m['rps'] / best[(peer, w)]['rps']:.2f}x" if (peer, w) in best else "-")  # noqa: E731
            print(f"{w:9} {s:17} {m['rps']:9.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} {m['rss_mib']:8.0f}"
                  f" {m['pss_mib']:8.0f} {ratio('granian'):>10} {ratio('uvicorn'):>10}")
    write_json(args.json, best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
