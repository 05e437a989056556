"""Runs bench workloads on threads in a free-threaded CPython (which has no manygil installed).

  python3.13t ft_runner.py < spec.json > results.json

The spec lists workloads as {"name", "fn", "items"} plus "workers" and "rounds"; the output maps each
name to {"time": best seconds, "checksums": [...]} or {"error": "..."}. `manygil bench` drives it.
"""

import concurrent.futures as cf
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402  (this directory's module, not manygil's package)


def main():
    spec = json.load(sys.stdin)
    out = {"python": sys.version.split()[0], "gil_enabled": getattr(sys, "_is_gil_enabled", lambda: True)()}
    with cf.ThreadPoolExecutor(spec["workers"]) as pool:
        list(pool.map(workloads.noop, range(4 * spec["workers"])))
        for w in spec["workloads"]:
            try:
                fn = getattr(workloads, w["fn"])
                items = [workloads.materialize(i) for i in w["items"]]
                best, results = float("inf"), None
                for _ in range(spec["rounds"]):
                    t0 = time.perf_counter()
                    results = list(pool.map(fn, items))
                    best = min(best, time.perf_counter() - t0)
                out[w["name"]] = {"time": best, "checksums": [workloads.checksum(r) for r in results]}
            except Exception as e:  # reported per workload; the others still run
                out[w["name"]] = {"error": f"{type(e).__name__}: {e}"}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
