"""A Django page and a Flask + SQLAlchemy page on a real PostgreSQL, under wrk, against manygil serve,
gunicorn (sync and gthread) and granian, in one run (issue 24).

  python bench/serve_postgres.py [--rounds 5] [--duration 5] [--connections 32] [--json PATH]

The applications are the tests' (tests/python/serve_apps/pgdjango and pg_flask.py): each page reads
20 rows through the ORM and renders them with a template (Django's, Jinja). Django keeps its
connections (CONN_MAX_AGE=600, what production sites set); SQLAlchemy pools them per worker.
PostgreSQL 15 (Debian) runs in a temporary directory on a Unix socket, started and stopped here
(tests/python/temp_postgres.py). Every server has 2 workers: manygil serve (2 own-GIL interpreters in
one process: psycopg's pure-Python implementation over libpq, SQLAlchemy's Cython modules from their
Python source), gunicorn sync (2 processes), gunicorn gthread (2 processes x 4 threads) and granian
(--interface wsgi, 2 processes); the three of them run psycopg's C implementation (psycopg-binary)
and SQLAlchemy's compiled modules, as users run them there.

Servers take turns within every round, in a rotating order; each keeps its best round (req/s, with
that round's p50/p99). Memory is the whole process tree's RSS after the run (the most seen); DB
connections is the most sessions pg_stat_activity showed on the app's database during the load.
Uses bench/serve.py's wait_ready, run_wrk and stop.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from serve import commands, cpu_seconds, free_port, keep_best, run_wrk, stop, tree, wait_ready, write_json

HERE = Path(__file__).resolve().parent
APPS = HERE.parent / "tests" / "python"  # serve_apps/ and temp_postgres.py
sys.path.insert(0, str(APPS))

from temp_postgres import PostgresMissing, TempPostgres  # noqa: E402

WORKLOADS = {"django": ("serve_apps.pgdjango.wsgi:application", "/", "guestbook"),
             "flask-sqlalchemy": ("serve_apps.pg_flask:app", "/", "shop")}
SERVERS = "manygil,gunicorn-sync,gunicorn-gthread,granian"


def prepare(pg: TempPostgres) -> None:
    """The two databases, migrated / created as users do it: manage.py migrate, flask init-db."""
    env = app_env(pg, "guestbook")
    pg.create_database("guestbook")
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v0", "--settings=serve_apps.pgdjango.settings"],
                   cwd=APPS, env=env, check=True)
    pg.create_database("shop")
    subprocess.run([sys.executable, "-m", "flask", "--app", "serve_apps.pg_flask", "init-db"], cwd=APPS,
                   env=app_env(pg, "shop"), check=True, stdout=subprocess.DEVNULL)


def app_env(pg: TempPostgres, dbname: str) -> dict[str, str]:
    env = {**os.environ, **pg.env(dbname)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APPS), env.get("PYTHONPATH")) if p)
    return env


def postmaster(pg: TempPostgres) -> int:
    return int((pg.dir / "data" / "postmaster.pid").read_text().split()[0])


def server_commands(app: str, port: int) -> dict[str, list[str]]:
    """bench/serve.py's commands, and manygil with 4 workers (more interpreters than cores, to overlap
    the database waits: not in the headline, which compares 2 workers with 2)."""
    cmds = commands(app, port)
    cmds["manygil-4w"] = [*cmds["manygil"][:-4], "--workers", "4", "--bind", f"127.0.0.1:{port}"]
    return cmds


def measure(pg: TempPostgres, server: str, workload: str, duration: int, connections: int) -> dict[str, float]:
    app, path, dbname = WORKLOADS[workload]
    # The previous server's sessions end a moment after it does: not counted for this one.
    deadline = time.monotonic() + 10
    while pg.connections(dbname) and time.monotonic() < deadline:
        time.sleep(0.1)
    port = free_port()
    # A process group of its own (stop() ends the whole tree), in the same session (see bench/serve.py).
    proc = subprocess.Popen(server_commands(app, port)[server], cwd=APPS, env=app_env(pg, dbname),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
    try:
        url = f"http://127.0.0.1:{port}{path}"
        wait_ready(url, proc)
        seen = [0]
        done = threading.Event()

        def sample() -> None:  # the sessions on the app's database while wrk runs
            while not done.wait(0.5):
                seen[0] = max(seen[0], pg.connections(dbname))

        sampler = threading.Thread(target=sample)
        sampler.start()
        # CPU used by the server's process tree and by PostgreSQL during the run (warm-up included:
        # per request, the warm-up's requests are counted too, from wrk's rate).
        server_pids, db_pids = tree(proc.pid), tree(postmaster(pg))
        cpu0, db0, t0 = cpu_seconds(server_pids), cpu_seconds(db_pids), time.monotonic()
        try:
            result = run_wrk(proc, url, duration, connections)
        finally:
            done.set()
            sampler.join()
        elapsed = time.monotonic() - t0
        # Backends started during the run are missed by db_pids, so count them again at the end.
        server_cpu = cpu_seconds(tree(proc.pid)) - cpu0
        db_cpu = cpu_seconds(tree(postmaster(pg))) - db0
        requests = result["rps"] * elapsed
        result["server_cpu_ms"] = server_cpu / requests * 1000
        result["db_cpu_ms"] = db_cpu / requests * 1000
        result["db_connections"] = seen[0]
        return result
    finally:
        stop(proc)


# The page's own cost with no server at all: one process calls the WSGI application in a loop (the
# environ of wrk's GET, no socket), on the C implementations the other servers run ("c") and on the
# pure-Python ones a worker interpreter runs ("python": psycopg's Python implementation,
# SQLAlchemy's modules from source). Application + PostgreSQL CPU per request bounds every server
# on this machine: no server can exceed cores / (app + db CPU per request) req/s.
FLOOR_CHILD = r"""
import importlib, sys, time, io
module, _, attr = sys.argv[1].partition(":")
app = getattr(importlib.import_module(module), attr)
n = int(sys.argv[2])
def environ():
    return {"REQUEST_METHOD": "GET", "PATH_INFO": sys.argv[3], "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}
def call():
    status = []
    body = app(environ(), lambda s, h, e=None: status.append(s))
    b"".join(body)
    getattr(body, "close", lambda: None)()
    assert status[0].startswith("200"), status
for _ in range(200):
    call()
print("ready", flush=True)
sys.stdin.readline()
c0 = time.process_time()
for _ in range(n):
    call()
print(time.process_time() - c0, flush=True)
"""


def app_floor(pg: TempPostgres, workload: str, impl: str, requests: int = 3000) -> dict[str, float]:
    """CPU per request of the application itself and of PostgreSQL, with no server (FLOOR_CHILD)."""
    app, path, dbname = WORKLOADS[workload]
    env = app_env(pg, dbname)
    if impl == "python":
        env["PSYCOPG_IMPL"] = "python"
        env["DISABLE_SQLALCHEMY_CEXT_RUNTIME"] = "1"
    child = subprocess.Popen([sys.executable, "-c", FLOOR_CHILD, app, str(requests), path], cwd=APPS, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        db0 = cpu_seconds(tree(postmaster(pg)))
        child.stdin.write("go\n")
        child.stdin.flush()
        app_cpu = float(child.stdout.readline())
        db_cpu = cpu_seconds(tree(postmaster(pg))) - db0
    finally:
        child.kill()
        child.wait()
    return {"app_cpu_ms": app_cpu / requests * 1000, "db_cpu_ms": db_cpu / requests * 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--servers", default=SERVERS)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--floor-only", action="store_true", help="only the no-server floor (app_floor)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/serve_postgres.py needs wrk (the bootstrap installs it)", file=sys.stderr)
        return 1
    servers, workloads = args.servers.split(","), args.workloads.split(",")
    try:
        pg = TempPostgres(settings={"max_connections": 200})
    except PostgresMissing as e:
        print(f"bench/serve_postgres.py: {e}", file=sys.stderr)
        return 1
    best: dict[tuple[str, str], dict[str, float]] = {}
    floors: dict[tuple[str, str], dict[str, float]] = {}
    with pg:
        prepare(pg)
        for w in workloads:
            for impl in ("c", "python"):
                for _ in range(3):  # best of 3
                    f = app_floor(pg, w, impl)
                    if (w, impl) not in floors or f["app_cpu_ms"] < floors[(w, impl)]["app_cpu_ms"]:
                        floors[(w, impl)] = f
                f = floors[(w, impl)]
                print(f"no server: {w:16} {impl:6} app CPU {f['app_cpu_ms']:.3f} ms/req, db {f['db_cpu_ms']:.3f} "
                      f"ms/req: at most {os.cpu_count() / (f['app_cpu_ms'] + f['db_cpu_ms']) * 1000:.0f} req/s "
                      f"on {os.cpu_count()} CPUs", flush=True)
        if args.floor_only:
            return 0
        for r in range(args.rounds):
            for w in workloads:
                order = servers[r % len(servers):] + servers[:r % len(servers)]
                for s in order:
                    m = measure(pg, s, w, args.duration, args.connections)
                    keep_best(best, (s, w), m, most=("rss_mib", "db_connections"))
                    print(f"round {r + 1}: {w:16} {s:17} {m['rps']:8.0f} req/s  p50 {m['p50_ms']:6.2f} ms  "
                          f"p99 {m['p99_ms']:7.2f} ms  RSS {m['rss_mib']:5.0f} MiB  db conns {m['db_connections']:3}  "
                          f"CPU/req server {m['server_cpu_ms']:.2f} ms, db {m['db_cpu_ms']:.2f} ms"
                          + (f"  non-2xx {m['non_2xx']}" if m["non_2xx"] else ""), flush=True)
    print(f"\nbest of {args.rounds} rounds, wrk -t2 -c{args.connections} -d{args.duration}s, 2 workers each, "
          f"PostgreSQL 15 on a Unix socket, {os.cpu_count()} CPUs:\n")
    print("| page | server | req/s | p50 ms | p99 ms | RSS MiB | DB conns | req/s vs gunicorn sync |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        for s in servers:
            m = best[(s, w)]
            peer = best.get(("gunicorn-sync", w))
            ratio = f"{m['rps'] / peer['rps']:.2f}x" if peer else "-"
            print(f"| {w} | {s} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['rss_mib']:.0f} | "
                  f"{m['db_connections']} | {ratio} |")
    print("\nThe ceiling no server can pass on this machine, from the no-server floor (cores / (app + db CPU"
          " per request)), against gunicorn sync's req/s:")
    for w in workloads:
        peer = best.get(("gunicorn-sync", w))
        for impl in ("c", "python"):
            f = floors[(w, impl)]
            ceiling = os.cpu_count() / (f["app_cpu_ms"] + f["db_cpu_ms"]) * 1000
            vs = f" = {ceiling / peer['rps']:.2f}x gunicorn sync" if peer else ""
            print(f"  {w} ({impl} implementations): {ceiling:.0f} req/s{vs}")
    write_json(args.json, best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
