"""`manygil compat`: which modules load in an own-GIL interpreter, and how fully.

Each module gets a fresh child process (``_compat_probe.py``, run as a script): the child imports the
module in its main interpreter first, then in a fresh manygil interpreter (own GIL, isolated,
multi-phase extensions only), and compares. Nothing is imported in the calling process, and in the
child no worker tries a module before the main interpreter has imported it (see _compat_probe for
why that order matters). A child that dies or hangs is reported, not fatal: it announces each step
before taking it, so the step it died in is known, and a new child goes on with the rest.

Statuses:

- works: the worker imports it and has every extension module the main interpreter's import loaded;
- source: the worker imports it, some of those modules loaded from their Python source because their
  extension refuses own-GIL interpreters (the source fallback of manygil's workers; ``source`` names
  them, with why): it works, slower. MANYGIL_SOURCE_FALLBACK=0 in the environment shows what they
  would be without it;
- degraded: the worker imports it, but without some of those extension modules (they refused, and the
  package fell back to pure Python or to less): ``lacking`` names them;
- refuses: the worker's import raised ImportError because an extension module refuses own-GIL
  interpreters; ``culprit`` names it (found along the exception chain, else from the loader that
  raised), ``kind`` says what kind of module it is and ``kind_evidence`` how that was decided;
- fails: another exception, in the worker only or in the main interpreter too (``main`` says), or the
  import hung;
- missing: not installed (ModuleNotFoundError for the module itself in the main interpreter);
- crashes: the process died (with the signal), in the worker or in the main interpreter too.
"""

import importlib.metadata
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import sysconfig
import tempfile

from . import _compat_probe

STATUSES = ("works", "source", "degraded", "refuses", "fails", "missing", "crashes")
SCHEMA = "manygil-compat/3"
# A child that says nothing for this long (one import, or ending its interpreter) is stopped.
DEFAULT_TIMEOUT = 300.0

_REFUSAL = re.compile(_compat_probe.REFUSAL_PATTERN)
_KIND_LABELS = {_compat_probe.KIND_SINGLE_PHASE: "single-phase",
                _compat_probe.KIND_MULTI_PHASE: "multi-phase, no own GIL",
                _compat_probe.KIND_OWN_GIL: "multi-phase, own GIL"}


def default_modules():
    """The stdlib's extension modules, then the top-level modules installed in this environment."""
    names = set(sys.builtin_module_names)
    # Where the stdlib's shared extension modules live (DESTSHARED; a venv's own paths do not say).
    dirs = {sysconfig.get_config_var("DESTSHARED")} | {p for p in sys.path if p.endswith("lib-dynload")}
    for d in filter(None, dirs):
        if os.path.isdir(d):
            names.update(f.split(".", 1)[0] for f in os.listdir(d) if f.endswith((".so", ".pyd")))
    # CPython's own test helpers are not modules anyone imports.
    stdlib = sorted(n for n in names if not n.startswith(("_test", "_xxtest", "_ctypes_test", "xx")) and n != "__main__")
    installed = set()
    try:
        for top, _dists in importlib.metadata.packages_distributions().items():
            if top.isidentifier() and not top.startswith("_"):
                installed.add(top)
    except Exception:
        pass
    return stdlib + sorted(installed - set(stdlib))


def _signal_name(code):
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _run_child(python, args, timeout):
    """Runs the probe child on args; returns (events, returncode, stderr tail, timed_out).

    Events are read as they come, so that a child silent for ``timeout`` seconds can be stopped; its
    stderr goes to a file, so that a chatty import cannot fill a pipe and stall it.
    """
    events, buffer, timed_out = [], b"", False
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([python, _compat_probe.__file__, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err, bufsize=0)
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while True:
                if not selector.select(timeout):
                    timed_out = True
                    proc.kill()
                    break
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    try:
                        events.append(json.loads(line))
                    except ValueError:
                        pass
        proc.stdout.close()
        proc.wait()
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()
    return events, proc.returncode, tail, timed_out


def _probe_all(name, python, deep, timeout, progress):
    """Runs children until every name of this unit (the module, and with deep its extension submodules)
    has an outcome. Returns (order, main, worker, kinds, stopped): the names in report order; the main
    and worker probe results by name; (kind, evidence) by extension name; and (phase, why) by name
    for one whose child died or hung in that phase ("main", "worker" or "end")."""
    order, main, worker, kinds, stopped = [name], {}, {}, {}, {}
    args = (["--deep"] if deep else []) + [name]
    while True:
        if progress:
            progress(f"compat: {name}", detail=True)
        events, code, tail, timed_out = _run_child(python, args, timeout)
        current = None
        for e in events:
            if e["event"] == "begin":
                current = (e["phase"], e["module"])
                if progress:
                    progress(f"compat: {e['module']} ({e['phase']})", detail=True)
            elif e["event"] == "submodules":
                order += [s for s in e["submodules"] if s not in order]
            elif e["event"] == "result":
                (main if e["phase"] == "main" else worker)[e["module"]] = e
                if current == (e["phase"], e["module"]):
                    current = None
            elif e["event"] == "kind":
                kinds[e["module"]] = (e["kind"], e["evidence"])
                current = None
            elif e["event"] == "ended":
                current = None
        if current is None and not timed_out and code == 0:
            break
        if current is None:
            raise RuntimeError(f"the compat child failed outside any import (exit status {code}): "
                               + " ".join(tail[-3:])[-500:])
        phase, where = current
        if phase == "kind":
            kinds[where] = (None, f"reading its definition stopped the process ({_death(code, timed_out, timeout)})")
        else:
            stopped[where] = (phase, _death(code, timed_out, timeout) + (f" ({tail[-1][:200]})" if tail else ""))
        # Go on with the names that still lack an outcome (their main imports again come first).
        rest = [n for n in order if n not in stopped and n not in worker and main.get(n, {}).get("ok", True)]
        if not rest:
            break
        args = rest
    return order, main, worker, kinds, stopped


def _death(code, timed_out, timeout):
    if timed_out:
        return f"no progress for {timeout:g} s: stopped"
    return _signal_name(code) if code < 0 else f"exit status {code}"


_PHASES = {"main": "main interpreter", "worker": "own-GIL interpreter"}


def _row(name, main, worker, kinds, stopped):
    """One result row from what the child reported about name."""
    row = {"module": name, "status": None, "detail": "", "culprit": None, "kind": None, "kind_evidence": None,
           "lacking": [], "source": [], "main": "works"}
    m, w = main.get(name), worker.get(name)
    phase, why = stopped.get(name, (None, None))
    if phase in _PHASES:  # the process died, or hung, importing it
        hung = why.startswith("no progress")
        row.update(status="fails" if hung else "crashes",
                   detail=f"{'the import hung' if hung else why} in the {_PHASES[phase]}" + (f": {why}" if hung else ""))
        if phase == "main":
            row["main"] = row["status"]
            row["detail"] += " (not specific to own-GIL interpreters)"
        return row
    if m is None or (m["ok"] and w is None):  # not expected: every child ends in a result or a stop
        row.update(status="fails", detail="not probed: the child process ended before it")
        return row
    if not m["ok"]:
        row["main"] = "missing" if m["missing"] else "fails"
        row.update(status=row["main"], detail=m["error"] if m["missing"] else f"{m['error']} (in the main interpreter too)")
        return row
    if not w["ok"]:
        import_errors = ("ImportError", "ModuleNotFoundError")
        # The refusal named along the exception chain; else the innermost extension whose loader raised.
        culprit = w["refused"] or next((x for x, err in w["failed_loads"] if err.startswith(import_errors)), None)
        if culprit and w["error"].startswith(import_errors):
            kind, evidence = kinds.get(culprit, (None, None))
            row.update(status="refuses", detail=w["error"], culprit=culprit, kind=kind, kind_evidence=evidence)
        else:
            row.update(status="fails", detail=f"{w['error']} (in the own-GIL interpreter only)")
    else:
        errors = {x: err for x, err in w["failed_loads"]}
        source = w.get("source") or {}
        # Present, or loaded from source, or a library only such modules would have needed (mypyc's).
        present = set(w["extensions"]) | set(source) | set(w.get("bypassed") or ())
        row["source"] = [{"module": x, "why": why, "kind": kinds.get(x, (None, None))[0]} for x, why in source.items()]
        # Those that raised first (the cause), then those the worker never tried: they come with a
        # refused module (numpy brings unicodedata along) or the package chose not to try them.
        lacking = sorted((x for x in m["loaded"] if x not in present), key=lambda x: (x not in errors, x))
        if lacking:
            row["lacking"] = [{"module": x, "kind": kinds.get(x, (None, None))[0],
                               "kind_evidence": kinds.get(x, (None, None))[1], "error": errors.get(x)} for x in lacking]
            first = row["lacking"][0]
            refused = [x for x in lacking if x in errors]
            untried = [x for x in lacking if x not in errors]
            detail = f"imports without {', '.join(refused)} ({first['error']})" if refused else ""
            if untried:
                detail += ("; " if detail else "imports without ") + ", ".join(untried) + (
                    " (not loaded: they come with the modules above)" if refused else " (never loaded in the worker)")
            row.update(status="degraded", culprit=first["module"], kind=first["kind"], kind_evidence=first["kind_evidence"],
                       detail=detail)
        elif source:
            first = next(iter(source))
            kind, evidence = kinds.get(first, (None, None))
            row.update(status="source", culprit=first, kind=kind, kind_evidence=evidence,
                       detail=f"from Python source: {', '.join(source)}; {'its extension refuses' if len(source) == 1 else 'their extensions refuse'} "
                              f"own-GIL interpreters ({source[first]})")
        else:
            row["status"] = "works"
    if phase == "end":  # it imported; then ending its interpreter killed the process, or hung
        hung = why.startswith("no progress")
        row.update(status="fails" if hung else "crashes", detail=f"ending the own-GIL interpreter after the import "
                   f"({row['status']}) {'hung: ' if hung else 'killed the process: '}{why}")
    return row


def check(modules, python=None, progress=None, deep=False, timeout=DEFAULT_TIMEOUT):
    """Probes each module (one child process each); returns one row per module, in the order given.

    A row: ``module``, ``status`` (one of STATUSES), ``detail`` (the error, or what a degraded import
    goes without), ``culprit`` (refuses: the extension that refused; degraded: the first one lacking),
    ``kind`` and ``kind_evidence`` (of the culprit), ``lacking`` ([{module, kind, kind_evidence, error}]
    for degraded), ``source`` ([{module, why, kind}]: the modules the worker loaded from their Python
    source, status source, or degraded too), ``main`` (the same import in the main interpreter: works, fails, missing or crashes)
    and, with ``deep``, ``submodules``: a row like this one for each extension module found on disk under
    the package, each imported on its own.
    """
    python = python or sys.executable
    rows = []
    for name in dict.fromkeys(modules):
        if not all(part.isidentifier() for part in name.split(".")):
            rows.append({"module": name, "status": "missing", "detail": "not a module name", "culprit": None,
                         "kind": None, "kind_evidence": None, "lacking": [], "source": [], "main": "missing"})
            continue
        order, main, worker, kinds, stopped = _probe_all(name, python, deep, timeout, progress)
        row = _row(name, main, worker, kinds, stopped)
        if deep:
            row["submodules"] = [_row(sub, main, worker, kinds, stopped) for sub in order[1:]
                                 if _is_module(main.get(sub))]
        rows.append(row)
    return rows


def _is_module(main_result):
    """False for a file with an extension suffix that defines no PyInit_ function: a shared library
    that its package loads by other means (ctypes, cffi), which --deep does not report."""
    error = (main_result or {}).get("error") or ""
    return "does not define module export function" not in error


def summary(detail):
    """One line of an error text for the table: the refusal itself when it is buried in advice."""
    found = _REFUSAL.search(detail)
    if found:
        return found.group(0)
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    return lines[0][:160] if lines else ""


def format_table(rows):
    """The human-readable report: a count per status, then a line per module (and submodule)."""
    flat = []
    for top in rows:
        flat += [(top, 0)] + [(sub, 1) for sub in top.get("submodules") or []]
    width = max([len(r["module"]) + 2 * d for r, d in flat] + [6])
    culprits = [_culprit_cell(r) for r, _d in flat]
    cwidth = max([len(c) for c in culprits] + [7])
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    lines = [f"manygil compat: CPython {sys.version.split()[0]}, {len(rows)} modules, each imported in the main "
             "interpreter of a fresh process, then in an own-GIL interpreter",
             "  " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)]
    subs = [r for r, depth in flat if depth]
    if subs:
        from_source = sum(r["status"] == "source" for r in subs)
        lines.append(f"  --deep: {sum(r['status'] == 'refuses' for r in subs)} of {len(subs)} extension submodules refuse"
                     + (f", {from_source} load from their Python source" if from_source else ""))
    lines += ["",
              f"  {'module':<{width}}  {'status':<8}  {'culprit':<{cwidth}}  {'kind':<23}  detail"]
    for (r, depth), culprit in zip(flat, culprits):
        kind = _KIND_LABELS.get(r["kind"], "?" if r["culprit"] and not r["kind"] else "")
        module = "  " * depth + r["module"]
        detail = "" if r["status"] == "works" else summary(r["detail"])
        lines.append(f"  {module:<{width}}  {r['status']:<8}  {culprit:<{cwidth}}  {kind:<23}  {detail}".rstrip())
    if any(r["kind"] for r, _d in flat):
        lines += ["", "  kind: single-phase = single-phase init; multi-phase, no own GIL = multi-phase init without "
                  "Py_MOD_PER_INTERPRETER_GIL_SUPPORTED"]
    return "\n".join(lines)


def _culprit_cell(r):
    """refuses: the culprit; degraded: the extensions that refused (all lacking ones if none did);
    source: the modules loaded from source."""
    if r["status"] == "source":
        names = [x["module"] for x in r["source"]]
        return names[0] + (f" (+{len(names) - 1})" if len(names) > 1 else "")
    if r["status"] == "degraded":
        refused = [x["module"] for x in r["lacking"] if x["error"]]
        untried = len(r["lacking"]) - len(refused)
        if not refused:
            return ", ".join(x["module"] for x in r["lacking"])
        return ", ".join(refused) + (f" (+{untried} not loaded)" if untried else "")
    return r["culprit"] or ""


if __name__ == "__main__":
    sys.exit("run `python -m manygil compat`; the child is manygil/_compat_probe.py")
