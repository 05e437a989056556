"""WebSocket echo messages/s: manygil's C++ front end and its ASGI binding against granian and the `websockets` library, in
one run (issue 26, point 6's WebSocket row, front-end half).

  python bench/websocket_echo.py [--rounds 3] [--duration 5] [--connections 64] [--size 64] [--json PATH]

The load generator is tests/cpp/websocket_load_client (C++, one thread, poll(); built with the C++
tests): CONNECTIONS connections, each with one SIZE-byte text message in flight (send, wait for the
echo, send the next). Servers, one process each:

  manygil      tests/cpp/websocket_echo_server: the C++ front end (1 I/O thread, wslay) with an echo
               listener written in C++: the front end's own ceiling, no Python. The ASGI binding
               (issue 26's src/asgi) adds a worker interpreter's event loop on top of this.
  manygil-asgi `manygil serve --interface asgi --workers 1` with the same raw ASGI echo app as granian:
               the front end plus one worker interpreter's asyncio loop (src/asgi, manygil._asgi).
  granian      granian --interface asgi --workers 1, a raw ASGI echo app (bench/websocket_apps.py):
               Rust I/O plus the Python app on its event loop.
  websockets   the `websockets` library's asyncio server, pure Python, 1 process.

Servers take turns within every round, in a rotating order; each keeps its best round (messages/s,
with that round's round-trip p50/p99). RSS is the server process's after its runs, the most seen.
Ratios are against manygil, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
CLIENT = ROOT / "build" / "tests" / "cpp" / "websocket_load_client"
ECHO = ROOT / "build" / "tests" / "cpp" / "websocket_echo_server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name: str) -> tuple[subprocess.Popen, str]:
    if name == "manygil":
        proc = subprocess.Popen([str(ECHO)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        return proc, proc.stdout.readline().split()[1]
    port = free_port()
    if name == "manygil-asgi":
        cmd = [sys.executable, "-m", "manygil", "serve", "websocket_apps:asgi_echo", "--interface", "asgi",
               "--workers", "1", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    elif name == "granian":
        cmd = [str(BIN / "granian"), "--interface", "asgi", "--workers", "1", "--host", "127.0.0.1", "--port",
               str(port), "--log-level", "warning", "websocket_apps:asgi_echo"]
    else:
        cmd = [sys.executable, str(HERE / "websocket_apps.py"), str(port)]
    proc = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
    try:
        return proc, wait_listening(name, proc, port)
    except BaseException:
        stop(proc)
        raise


def wait_listening(name: str, proc: subprocess.Popen, port: int) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen within 60 s")


def tree_rss_kib(pid: int) -> int:
    """RSS of the process and its children (granian's worker), in KiB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def stop(proc: subprocess.Popen) -> None:
    """manygil's echo server stops when its stdin closes; the others get SIGTERM, their process group
    (granian's worker too) SIGKILL if they are still there after 20 s."""
    if proc.stdin:
        proc.stdin.close()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    if not proc.stdin:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--json")
    args = ap.parse_args()
    for tool in (CLIENT, ECHO):
        if not tool.exists():
            sys.exit(f"{tool} is not built: run `make build-cpp`")
    names = ["manygil", "manygil-asgi", "granian", "websockets"]
    best: dict[str, dict] = {}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            proc, address = start(name)
            try:
                out = subprocess.run([str(CLIENT), address, "/", str(args.connections), str(args.duration),
                                      str(args.size)], capture_output=True, text=True, timeout=args.duration + 90)
                rss = tree_rss_kib(proc.pid)
            finally:
                stop(proc)
            if out.returncode != 0:
                print(f"round {r + 1} {name}: failed: {out.stderr.strip()}")
                continue
            f = out.stdout.split()
            got = {"msgs_per_s": int(f[1]) / float(f[3]), "p50_us": float(f[5]), "p99_us": float(f[7]), "rss_mib": rss / 1024}
            print(f"round {r + 1} {name:10s} {got['msgs_per_s']:10.0f} msg/s  p50 {got['p50_us']:6.0f} us  "
                  f"p99 {got['p99_us']:6.0f} us  rss {got['rss_mib']:.0f} MiB", flush=True)
            if name not in best or got["msgs_per_s"] > best[name]["msgs_per_s"]:
                rss_max = max(got["rss_mib"], best.get(name, {}).get("rss_mib", 0))
                best[name] = got | {"rss_mib": rss_max}
    base = best.get("manygil", {}).get("msgs_per_s")
    print(f"\nWebSocket echo, {args.connections} connections x 1 message of {args.size} B in flight, best of {args.rounds}:")
    print(f"{'server':12s} {'msg/s':>10s} {'vs manygil':>11s} {'p50 us':>8s} {'p99 us':>8s} {'RSS MiB':>8s}")
    for name in names:
        if name not in best:
            continue
        b = best[name]
        ratio = f"{b['msgs_per_s'] / base:.2f}x" if base else "-"
        print(f"{name:12s} {b['msgs_per_s']:10.0f} {ratio:>11s} {b['p50_us']:8.0f} {b['p99_us']:8.0f} {b['rss_mib']:8.0f}")
    if "manygil-asgi" in best and "granian" in best:
        print(f"manygil-asgi vs granian (both a Python ASGI app on one worker): "
              f"{best['manygil-asgi']['msgs_per_s'] / best['granian']['msgs_per_s']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(best, indent=2))


if __name__ == "__main__":
    main()
