"""Beyond one machine, shown on one: a Dask scheduler and two worker processes on loopback, standing
in for two machines, each worker with a manygil executor of N own-GIL interpreters as its default
executor (`dask worker --preload manygil.dask`). A pure-Python workload is submitted and the script
prints where each task ran: which worker (machine) and which interpreter.

  python examples/dask_two_machines.py [--interpreters 2] [--tasks 24]

On real machines, the same with the addresses of the machines:

  machine A:  dask scheduler --host 10.0.0.1 --port 8786
  machine B:  MANYGIL_DASK_DEFAULT=1 \\
              dask worker tcp://10.0.0.1:8786 --preload manygil.dask --nthreads 16   # 16 interpreters
  machine C:  (the same as B)
  client:     Client("tcp://10.0.0.1:8786").map(...)

Every worker machine needs manygil (and the task's modules) installed; its tasks' modules must load
in own-GIL interpreters (`manygil compat`), or those tasks re-run on the worker's own thread.
"""

from __future__ import annotations

import argparse
import collections
import os
import socket
import subprocess
import sys
import time


def spin(seconds: float) -> tuple[str, int]:
    """Pure Python for `seconds`; then where it ran: the worker's host:pid and the interpreter id."""
    import _interpreters
    import os
    import socket

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return f"{socket.gethostname()}:{os.getpid()}", _interpreters.get_current()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interpreters", type=int, default=2, help="manygil interpreters per worker")
    parser.add_argument("--tasks", type=int, default=24)
    args = parser.parse_args()
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, MANYGIL_DASK_DEFAULT="1",
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], env=env, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):  # two "machines"
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                           "--preload", "manygil.dask", "--nthreads", str(args.interpreters),
                                           "--host", "127.0.0.1",
                                           "--no-dashboard"], env=env, stderr=subprocess.DEVNULL))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            started = time.perf_counter()
            where = client.gather(client.map(spin, [0.08] * args.tasks, pure=False))
            elapsed = time.perf_counter() - started
        counts = collections.Counter(where)
        print(f"{args.tasks} tasks of 80 ms of pure Python in {elapsed:.2f} s on 2 workers x "
              f"{args.interpreters} interpreters:")
        for (worker, interp), n in sorted(counts.items()):
            print(f"  worker {worker}  interpreter {interp}: {n} tasks")
        return 0
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
