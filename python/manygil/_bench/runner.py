"""`manygil bench`: runs the workloads on every model, prints a table, writes JSON and a chart.

Shared machines are noisy, so within a round every model runs the workload in turn and each keeps its
best round. Results are checked against the serial run's: a model that computes something else fails.
"""

import datetime
import json
import os
import subprocess
import sys
import time

from . import models as m
from . import workloads

SCHEMA = "manygil-bench/1"


class Progress:
    """One live status line on a terminal. Elsewhere (CI logs) one line per step, without the details."""

    def __init__(self, stream=sys.stderr):
        self.stream, self.live = stream, stream.isatty()

    def __call__(self, text, detail=False):
        if self.live:
            self.stream.write("\r\033[K" + text)
        elif not detail:
            self.stream.write(f"[manygil] {text}\n")
        else:
            return
        self.stream.flush()

    def done(self):
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _error(e):
    text = f"{type(e).__name__}: {e}".strip()
    return text if len(text) < 160 else text[:157] + "..."


def run(workers, quick=False, rounds=None, only_models=None, progress=None):
    """Runs everything; returns the results document (the JSON schema of the README)."""
    progress = progress or Progress()
    rounds = rounds or (5 if quick else 3)
    catalogue = workloads.catalogue(workers, quick)
    methods = m.process_start_methods()
    # Process pools first: forking once sub-interpreters exist crashes the child (CPython gh-139759).
    candidates = [m.Serial(), m.Threads()] + [m.Processes(x) for x in methods] + [m.StdlibInterpreters(), m.Manygil()]
    if only_models:
        candidates = [x for x in candidates if x.name in only_models or x.name == "serial"]
    doc = {
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "workers": workers,
        "quick": quick,
        "rounds": rounds,
        "models": [],
        "workloads": [],
    }
    live = []
    for model in candidates:
        progress(f"starting {model.name} ({workers} workers)", detail=True)
        entry = {"name": model.name, "available": True, "reason": None, "startup_s": None, "rss_per_worker_mb": None}
        try:
            model.start(workers)
            entry["startup_s"], entry["rss_per_worker_mb"] = model.startup_s, model.rss_per_worker_mb
            live.append(model)
        except Exception as e:
            entry["available"], entry["reason"] = False, e.args[0] if isinstance(e, m.Unavailable) else _error(e)
        doc["models"].append(entry)
    ft_python = m.find_free_threaded_python()
    ft_entry = {"name": "free-threaded threads", "available": bool(ft_python), "startup_s": None,
                "rss_per_worker_mb": None, "reason": None if ft_python else m.free_threaded_unavailable_reason()}
    if only_models and "free-threaded threads" not in only_models:
        ft_entry.update(available=False, reason="not selected")
    doc["models"].append(ft_entry)

    progress(f"running {len(catalogue) + 2} workloads on {len(live)} models, {rounds} round(s) each")
    try:
        for name, (kind, fn_name, description, items) in catalogue.items():
            doc["workloads"].append(_run_workload(name, kind, fn_name, description, items, live, rounds, progress))
        doc["workloads"] += _overhead(live, quick, rounds, progress)
    finally:
        for model in live:
            progress(f"stopping {model.name}", detail=True)
            try:
                model.stop()
            except Exception:
                pass
    if ft_entry["available"]:
        progress(f"running the workloads on free-threaded threads ({ft_python})")
        _free_threaded(ft_python, ft_entry, catalogue, workers, rounds, doc)
    _add_ratios(doc)
    progress.done()
    return doc


def _run_workload(name, kind, fn_name, description, items, live, rounds, progress):
    fn = getattr(workloads, fn_name)
    entry = {"name": name, "kind": kind, "unit": "s", "description": description, "results": {}}
    shared_buffer_type = None
    if any("shared_buffer" in i for i in items if isinstance(i, dict)):
        import manygil

        shared_buffer_type = manygil.SharedBuffer
    expected = None
    active = {}
    for model in live:
        try:
            args = [workloads.materialize(i, shared_buffer_type if model.shares_buffers else None) for i in items]
            active[model.name] = (model, args)
            entry["results"][model.name] = {"time": float("inf"), "error": None}
        except LookupError as e:
            entry["results"][model.name] = {"time": None, "error": f"n/a: {e}"}
    for r in range(rounds):
        # The models take turns, starting one further each round, so that none always runs first or
        # last in a round (serial's first round gives the expected results).
        order = list(active.items())
        order = order[r % len(order):] + order[:r % len(order)] if order else order
        for model_name, (model, args) in order:
            if model_name not in active:
                continue
            progress(f"{name}: {model_name}, round {r + 1}/{rounds}", detail=True)
            result = entry["results"][model_name]
            try:
                t0 = time.perf_counter()
                out = model.map(fn, args)
                elapsed = time.perf_counter() - t0
                sums = [workloads.checksum(x) for x in out]
                if expected is None:
                    expected = sums  # serial runs first
                elif sums != expected:
                    raise AssertionError("results differ from the serial run's")
                result["time"] = min(result["time"], elapsed)
            except Exception as e:
                result.update(time=None, error=_error(e))
                del active[model_name]
    entry["expected_checksums"] = expected
    return entry


def _overhead(live, quick, rounds, progress):
    calls, items = (200, 10_000) if quick else (2_000, 100_000)
    submit = {"name": "submit().result()", "kind": "overhead", "unit": "us/call",
              "description": f"{calls} trivial tasks, one at a time", "results": {}}
    mapped = {"name": "map", "kind": "overhead", "unit": "us/item",
              "description": f"map over {items:,} trivial items", "results": {}}
    data = list(range(items))
    for model in live:
        for entry, measure in ((submit, lambda: _per(lambda: model.call(workloads.noop, 1), calls)),
                               (mapped, lambda: _time(lambda: _map_chunked(model, data)) / items)):
            progress(f"{entry['name']}: {model.name}", detail=True)
            try:
                entry["results"][model.name] = {"time": min(measure() for _ in range(rounds)) * 1e6, "error": None}
            except Exception as e:
                entry["results"][model.name] = {"time": None, "error": _error(e)}
    return [submit, mapped]


def _map_chunked(model, data):
    # Each model at its usual best: processes and interpreter pools chunk, threads and serial need not.
    chunk = 1 if isinstance(model, (m.Serial, m.Threads)) else max(1, len(data) // (4 * 8))
    if isinstance(model, m.Manygil):
        return model.map(workloads.noop, data, chunksize=None)  # its own chunking
    return model.map(workloads.noop, data, chunksize=chunk)


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _per(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def _free_threaded(python, entry, catalogue, workers, rounds, doc):
    runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ft_runner.py")
    spec = {"workers": workers, "rounds": rounds,
            "workloads": [{"name": n, "fn": fn, "items": items} for n, (_, fn, _, items) in catalogue.items()]}
    env = dict(os.environ, PYTHON_GIL="0")
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    try:
        proc = subprocess.run([python, runner], input=json.dumps(spec), capture_output=True, text=True, env=env,
                              timeout=3600)
        if proc.returncode:
            raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
        out = json.loads(proc.stdout)
    except Exception as e:
        entry.update(available=False, reason=_error(e))
        return
    entry["python"] = out.get("python")
    if out.get("gil_enabled") is not False:
        entry["reason"] = "warning: the GIL was enabled at run time"
    for w in doc["workloads"]:
        if w["kind"] == "overhead":
            continue
        got = out.get(w["name"], {"error": "not run"})
        if "error" in got:
            error = got["error"]
            if error.startswith("LookupError: "):  # a SharedBuffer: as for the other models, not applicable
                error = "n/a: " + error[len("LookupError: "):]
            w["results"]["free-threaded threads"] = {"time": None, "error": error}
        elif got["checksums"] != w.get("expected_checksums"):
            w["results"]["free-threaded threads"] = {"time": None, "error": "results differ from the serial run's"}
        else:
            w["results"]["free-threaded threads"] = {"time": got["time"], "error": None}


def _add_ratios(doc):
    for w in doc["workloads"]:
        serial = w["results"].get("serial", {}).get("time")
        ours = w["results"].get("manygil", {}).get("time")
        for r in w["results"].values():
            t = r["time"]
            # Speedup vs serial only means something for computation: serial transfers nothing.
            r["speedup"] = serial / t if (t and serial and w["kind"] == "cpu") else None
            r["vs_manygil"] = t / ours if (t and ours) else None
        w.pop("expected_checksums", None)


def _fmt_time(value, unit):
    if unit != "s":
        return f"{value:7.2f} {unit}"
    if value >= 1:
        return f"{value:7.3f} s"
    if value >= 1e-3:
        return f"{value * 1e3:7.1f} ms"
    return f"{value * 1e6:7.1f} us"


def format_table(doc):
    """The final table: per workload, each model's time, speedup vs serial and time relative to manygil."""
    lines = [f"manygil bench: CPython {doc['python']}, {doc['cpus']} CPUs, {doc['workers']} workers, "
             f"{'quick' if doc['quick'] else 'full'} run, best of {doc['rounds']}, {doc['date']}"]
    for model in doc["models"]:
        if not model["available"]:
            lines.append(f"  {model['name']}: unavailable ({model['reason']})")
    header = f"  {'workload':<24} {'model':<22} {'time':>13} {'speedup':>8} {'vs manygil':>11}"
    lines += ["", header, "  " + "-" * (len(header) - 2)]
    for w in doc["workloads"]:
        first = True
        for name, r in w["results"].items():
            label = w["name"] if first else ""
            first = False
            if r["time"] is None:
                lines.append(f"  {label:<24} {name:<22} {r['error']}")
                continue
            speedup = f"{r['speedup']:7.2f}x" if r.get("speedup") else ""
            v = r.get("vs_manygil")
            vs = "" if not v else f"{v:10.2f}x" if v >= 0.1 else f"{v:10.4f}x"
            lines.append(f"  {label:<24} {name:<22} {_fmt_time(r['time'], w['unit']):>13} {speedup:>8} {vs:>11}")
    lines += ["", f"  {'model':<22} {'start-up':>10} {'RSS per idle worker':>20}"]
    for model in doc["models"]:
        if model.get("startup_s") is not None:
            lines.append(f"  {model['name']:<22} {model['startup_s'] * 1e3:8.1f} ms {model['rss_per_worker_mb']:16.1f} MB")
    lines.append("  (time: best round; speedup: serial time / time, for computation only; vs manygil: time / manygil's "
                 "time, > 1 = slower than manygil. Threads share memory, so their transfers copy nothing.)")
    return "\n".join(lines)


def summary(doc):
    """One line: manygil's speedup over serial and its speed relative to the fastest other model on each
    CPU workload, as geometric means; None when manygil or serial did not run them."""
    speedups, relative = [], []
    for w in doc["workloads"]:
        if w["kind"] != "cpu":
            continue
        ours = w["results"].get("manygil", {})
        others = [r["time"] for name, r in w["results"].items() if name not in ("manygil", "serial") and r["time"]]
        if not ours.get("speedup") or not others:
            return None
        speedups.append(ours["speedup"])
        relative.append(min(others) / ours["time"])

    def geomean(values):
        product = 1.0
        for v in values:
            product *= v
        return product ** (1 / len(values))

    if not speedups:
        return None
    return (f"manygil: {geomean(speedups):.2f}x serial on {doc['cpus']} cores, {geomean(relative):.2f}x the best other "
            f"model (geometric means over the CPU workloads; per workload: "
            + ", ".join(f"{w['name']} {s:.2f}x/{r:.2f}x" for w, s, r in
                        zip([w for w in doc["workloads"] if w["kind"] == "cpu"], speedups, relative)) + ")")


def plot(doc, path):
    """A PNG: speedup vs serial of the computations (left), time of the transfers (right, log scale)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise RuntimeError(f"--plot needs matplotlib (pip install matplotlib): {e}") from None
    cpu = [w for w in doc["workloads"] if w["kind"] == "cpu"]
    transfer = [w for w in doc["workloads"] if w["kind"] == "transfer"]
    names = [mo["name"] for mo in doc["models"] if mo["name"] != "serial"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [len(cpu) or 1, len(transfer) or 1]})
    width = 0.8 / max(1, len(names))
    colors = {name: f"C{i}" for i, name in enumerate(names)}
    for i, name in enumerate(names):
        left.bar([j + i * width for j in range(len(cpu))],
                 [w["results"].get(name, {}).get("speedup") or 0 for w in cpu], width, label=name, color=colors[name])
        right.bar([j + i * width for j in range(len(transfer))],
                  [(w["results"].get(name, {}).get("time") or 0) * 1e3 for w in transfer], width, color=colors[name])
    left.axhline(1.0, color="gray", linewidth=0.8)
    left.set_xticks([j + 0.4 - width / 2 for j in range(len(cpu))], [w["name"] for w in cpu])
    left.set_ylabel("speedup vs serial (higher is better)")
    left.set_title("pure-Python computation")
    left.legend(fontsize=8, loc="lower right")
    right.set_yscale("log")
    right.set_xticks([j + 0.4 - width / 2 for j in range(len(transfer))],
                     [w["name"].replace("transfer ", "") for w in transfer])
    right.set_ylabel("time, ms (log; lower is better)")
    right.set_title("payload there and back (threads share it)")
    fig.suptitle(f"manygil bench: CPython {doc['python']}, {doc['workers']} workers, {doc['cpus']} CPUs, "
                 f"{doc['date'][:10]}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
