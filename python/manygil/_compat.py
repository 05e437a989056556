"""`manygil compat`: which modules load in an own-GIL interpreter.

Each module is imported in a fresh manygil interpreter (own GIL, isolated, multi-phase extensions
only) inside a child process, so a module that crashes the process is reported, not fatal: the child
announces each module before importing it; if the child dies, that module "crashes" (with the signal)
and a new child goes on with the rest.

Statuses: works, refuses (ImportError: e.g. a single-phase extension), fails (another exception at
import), missing (not installed), crashes (the process died).
"""

import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig

STATUSES = ("works", "refuses", "fails", "missing", "crashes")


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


def _child():
    """Runs in the child: one module name per stdin line; one JSON line per step on stdout."""
    import manygil

    def say(**fields):
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()

    for line in sys.stdin:
        name = line.strip()
        if not name:
            continue
        say(module=name, status="begin")
        try:
            with manygil.Interpreter() as interp:
                interp.exec(f"import {name}")
            say(module=name, status="works", detail="")
        except ModuleNotFoundError as e:
            status = "missing" if getattr(e, "name", None) == name or f"'{name}'" in str(e) else "refuses"
            say(module=name, status=status, detail=f"{type(e).__name__}: {e}")
        except ImportError as e:
            say(module=name, status="refuses", detail=f"{type(e).__name__}: {e}")
        except BaseException as e:  # noqa: B036 - SystemExit at import is a result too
            say(module=name, status="fails", detail=f"{type(e).__name__}: {e}")


def _signal_name(code):
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def check(modules, python=None, progress=None):
    """Returns [{"module", "status", "detail", "culprit"}] in the order given (culprit: the extension
    that refused, when one did)."""
    python = python or sys.executable
    pending = list(dict.fromkeys(modules))
    results = {}
    while pending:
        proc = subprocess.Popen([python, "-m", "manygil._compat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate("\n".join(pending) + "\n")
        current = None
        for line in out.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event["status"] == "begin":
                current = event["module"]
                if progress:
                    progress(f"compat: {current}", detail=True)
            else:
                results[event["module"]] = {"module": event["module"], "status": event["status"],
                                            "detail": event["detail"], "culprit": culprit(event["detail"])}
                current = None
        if current is not None:  # the child died importing it
            why = _signal_name(proc.returncode) if proc.returncode < 0 else f"exit status {proc.returncode}"
            tail = err.strip().splitlines()[-1:] if err.strip() else []
            results[current] = {"module": current, "status": "crashes",
                                "detail": why + (f" ({tail[0][:200]})" if tail else ""), "culprit": None}
        elif proc.returncode and not results.keys() >= set(pending):
            raise RuntimeError(f"the compat child failed before importing anything: {err.strip()[-500:]}")
        pending = [n for n in pending if n not in results]
    return [results[n] for n in dict.fromkeys(modules)]


_REFUSAL = re.compile(r"module (\S+) does not support loading in subinterpreters")


def summary(detail):
    """One line of an error text for the table: the refusal itself when it is buried in advice."""
    found = _REFUSAL.search(detail)
    if found:
        return found.group(0)
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    return lines[0][:160] if lines else ""


def culprit(detail):
    """The extension module that refused to load (e.g. numpy._core._multiarray_umath for numpy)."""
    found = _REFUSAL.search(detail)
    return found.group(1) if found else None


def format_table(rows):
    width = max([len(r["module"]) for r in rows] + [6])
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    lines = [f"manygil compat: CPython {sys.version.split()[0]}, {len(rows)} modules, each imported in a fresh "
             f"own-GIL interpreter",
             "  " + ", ".join(f"{n} {s}" for s, n in counts.items() if n), ""]
    for r in rows:
        lines.append(f"  {r['module']:<{width}}  {r['status']:<8}  {summary(r['detail'])}".rstrip())
    return "\n".join(lines)


if __name__ == "__main__":
    _child()
