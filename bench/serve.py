"""manygil serve against granian and gunicorn, with wrk, in one run (issue 14).

  python bench/serve.py [--rounds 3] [--duration 5] [--connections 64] [--json PATH] [--baseline DIR]

Each server runs the same applications (bench/serve_apps.py) with 2 workers: manygil serve (2 own-GIL
interpreters in one process), granian (2 worker processes, --interface wsgi), gunicorn sync (2
processes) and gunicorn gthread (2 processes x 4 threads). Workloads: hello world, a JSON response,
a Flask page rendered from a Jinja template. wrk runs -t2 -c64 against each; servers take turns
within every round, in a rotating order, and each keeps its best round (req/s, with that round's
p50/p99 latency). Memory is the whole process tree's RSS and PSS after the run, the most seen.

--baseline DIR adds "manygil-base": the same command with an earlier build of the package, installed
in DIR (`pip install --target DIR`), first on its path: a same-run A/B of two builds
(`make bench-ab BASE=<git revision>` builds one and runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
WORKLOADS = {"hello": ("serve_apps:hello", "/"), "json": ("serve_apps:json_app", "/"),
             "flask": ("serve_apps:flask_app", "/")}


BASELINE: str | None = None  # --baseline: where the earlier build of the package is installed


def commands(app: str, port: int) -> dict[str, list[str]]:
    bind = f"127.0.0.1:{port}"
    return {
        "manygil": [sys.executable, "-m", "manygil", "serve", app, "--workers", "2", "--bind", bind],
        "manygil-base": [sys.executable, "-m", "manygil", "serve", app, "--workers", "2", "--bind", bind],
        "granian": [str(BIN / "granian"), "--interface", "wsgi", "--workers", "2", "--host", "127.0.0.1",
                    "--port", str(port), "--no-ws", app],
        "gunicorn-sync": [str(BIN / "gunicorn"), "-w", "2", "-b", bind, "--log-level", "warning", app],
        "gunicorn-gthread": [str(BIN / "gunicorn"), "-w", "2", "--threads", "4", "-k", "gthread", "-b", bind,
                             "--log-level", "warning", app],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60.0, context=None) -> None:
    """Until `url` answers 200 (`context`: an ssl.SSLContext for https)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def tree(pid: int) -> list[int]:
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out += tree(int(child))
    return out


def memory_mib(pid: int) -> tuple[float, float]:
    """RSS and PSS of the process and its descendants, in MiB."""
    rss = pss = 0
    for p in tree(pid):
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        rss += int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))
        pss += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))
    return rss / 1024, pss / 1024


def parse_wrk(text: str) -> dict[str, float]:
    def latency(label):
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": rps, "p50_ms": latency("50%"), "p99_ms": latency("99%"),
            "non_2xx": int(errors.group(1)) if errors else 0}


def measure(server: str, workload: str, duration: int, connections: int) -> dict[str, float]:
    app, path = WORKLOADS[workload]
    port = free_port()
    env = dict(os.environ)
    if server == "manygil-base":
        env["PYTHONPATH"] = os.pathsep.join(p for p in (BASELINE, env.get("PYTHONPATH")) if p)
    return measure_command(commands(app, port)[server], f"http://127.0.0.1:{port}{path}", duration, connections,
                           env=env)


def measure_command(cmd: list[str], url: str, duration: int, connections: int, *, cwd: Path = HERE,
                    env: dict[str, str] | None = None, context=None,
                    probe: Callable[[dict[str, float]], None] | None = None) -> dict[str, float]:
    """One measurement of one server: starts `cmd` (in `cwd`, with `env`), waits until `url` answers
    (`context`: an ssl.SSLContext for https), runs wrk against it (run_wrk: req/s, latency, memory),
    lets `probe` add to the result while the server still runs, and stops it. The benchmarks of
    bench/serve*.py all measure through here."""
    # Its own process group (to stop the whole tree) but not its own session: with the kernel's
    # autogroup scheduling, a new session would be one scheduling group that shares the CPUs 50/50
    # with wrk's, instead of thread by thread.
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0,
                            env=env)
    try:
        wait_ready(url, proc, context=context)
        result = run_wrk(proc, url, duration, connections)
        if probe is not None:
            probe(result)
        return result
    finally:
        stop(proc)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(proc: subprocess.Popen, url: str, duration: int, connections: int) -> dict[str, float]:
    """A 1 s warm-up, then the measured wrk run against the server `proc`, with its memory after and
    the CPU its process tree used per request meanwhile (cpu_us: what other load on the machine
    moves least)."""
    subprocess.run(["wrk", "-t2", "-c", str(connections), "-d", "1s", url], capture_output=True, check=True)
    pids = tree(proc.pid)
    cpu0 = cpu_seconds(pids)
    out = subprocess.run(["wrk", "-t2", "-c", str(connections), "-d", f"{duration}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pids) - cpu0
    result = parse_wrk(out)
    requests = re.search(r"(\d+) requests in", out)
    result["cpu_us"] = cpu / int(requests.group(1)) * 1e6 if requests and int(requests.group(1)) else float("nan")
    result["rss_mib"], result["pss_mib"] = memory_mib(proc.pid)
    return result


def stop(proc: subprocess.Popen) -> None:
    """Stops the server's whole process group (SIGTERM, then SIGKILL after 30 s)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def keep_best(best: dict, key: tuple[str, str], m: dict[str, float], most: tuple[str, ...] = ("rss_mib", "pss_mib")) -> None:
    """Keeps, per (server, workload), the round with the most req/s; the fields in `most` (memory,
    connections) keep the most any round saw instead."""
    peak = {f: max(m[f], best.get(key, {}).get(f, 0)) for f in most}
    if key not in best or m["rps"] > best[key]["rps"]:
        best[key] = m
    best[key].update(peak)


def write_json(path: str | None, best: dict) -> None:
    """The best rounds as a JSON list of {"server", "workload", measurements...}, if a path is given."""
    if path:
        Path(path).write_text(json.dumps([{"server": s, "workload": w, **m} for (s, w), m in best.items()], indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--servers", default="manygil,granian,gunicorn-sync,gunicorn-gthread")
    parser.add_argument("--workloads", default="hello,json,flask")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--baseline", metavar="DIR", help="an earlier build of the package (pip install --target "
                        "DIR): adds the server manygil-base, run with it first on its path")
    args = parser.parse_args()
    global BASELINE
    if args.baseline:
        BASELINE = str(Path(args.baseline).resolve())
        if not (Path(BASELINE) / "manygil").is_dir():
            print(f"bench/serve.py: no manygil package in {BASELINE}", file=sys.stderr)
            return 1
        if "manygil-base" not in args.servers:
            args.servers += ",manygil-base"
    if shutil.which("wrk") is None:
        print("bench/serve.py needs wrk (Debian: apt-get install wrk; the bootstrap installs it)", file=sys.stderr)
        return 1
    servers = args.servers.split(",")
    if "manygil-base" in servers and not BASELINE:
        print("bench/serve.py: manygil-base needs --baseline DIR", file=sys.stderr)
        return 1
    workloads = args.workloads.split(",")
    best: dict[tuple[str, str], dict[str, float]] = {}
    for r in range(args.rounds):
        for w in workloads:
            order = servers[r % len(servers):] + servers[:r % len(servers)]
            for s in order:
                m = measure(s, w, args.duration, args.connections)
                keep_best(best, (s, w), m)
                print(f"round {r + 1}: {w:6} {s:17} {m['rps']:9.0f} req/s  p50 {m['p50_ms']:6.2f} ms  "
                      f"p99 {m['p99_ms']:6.2f} ms  RSS {m['rss_mib']:5.0f} MiB  PSS {m['pss_mib']:5.0f} MiB"
                      + (f"  non-2xx {m['non_2xx']}" if m["non_2xx"] else ""), flush=True)
    print(f"\nbest of {args.rounds} rounds, wrk -t2 -c{args.connections} -d{args.duration}s, 2 workers each:")
    print(f"{'workload':8} {'server':17} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'RSS MiB':>8} {'PSS MiB':>8}"
          f" {'vs granian':>10} {'vs gunicorn-sync':>16}" + (f" {'vs manygil-base':>15}" if BASELINE else ""))
    for w in workloads:
        for s in servers:
            m = best[(s, w)]
            ratio = lambda peer: (f"{m['rps'] / best[(peer, w)]['rps']:.2f}x" if (peer, w) in best else "-")  # noqa: E731
            print(f"{w:8} {s:17} {m['rps']:9.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} {m['rss_mib']:8.0f}"
                  f" {m['pss_mib']:8.0f} {ratio('granian'):>10} {ratio('gunicorn-sync'):>16}"
                  + (f" {ratio('manygil-base'):>15}" if BASELINE else ""))
    write_json(args.json, best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
