"""`make compat-survey`: which popular PyPI packages load in an own-GIL interpreter (docs/compat.md).

Steps, each reusing what a previous run left in the work directory (build/compat-survey):

1. a venv of its own (never the project's .venv), on the same CPython as the project's;
2. manygil, as a wheel built from this tree by the project's .venv (incremental, build/py);
3. every requirement of tools/compat-survey-requirements.txt, wheels only and one at a time, so that
   a package without a wheel for this Python is skipped with a note instead of failing the rest;
4. `manygil compat --json` in that venv, on the import names of what installed;
5. docs/compat.md, rendered from that JSON (`--render-only` redoes just this step).

Run by hand (it downloads a few hundred MB); it is not part of `make test`.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_requirements(path):
    """[(requirement, distribution name, [import names])] from the requirements list.

    A line is a pip requirement, optionally followed by "# import: a b" when the modules to import
    are not the distribution's name with "-" turned into "_".
    """
    entries = []
    with open(path) as f:
        for line in f:
            requirement, _, comment = line.partition("#")
            requirement = requirement.strip()
            if not requirement:
                continue
            dist = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
            found = re.match(r"\s*import:\s*(.+)", comment)
            imports = found.group(1).split() if found else [dist.replace("-", "_").lower()]
            entries.append((requirement, dist, imports))
    return entries


def run(cmd, log, **kwargs):
    """Runs cmd with its output appended to the log file; returns the CompletedProcess."""
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True, **kwargs)


def make_venv(workdir, base_python, log):
    venv = os.path.join(workdir, "venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        print(f"[survey] creating {venv} on {base_python}", flush=True)
        if run([base_python, "-m", "venv", venv], log).returncode:
            sys.exit(f"[survey] could not create the venv (log: {log})")
    return python


def install_manygil(workdir, python, log):
    """Builds a manygil wheel with the project's .venv (its CMake tree build/py is reused) and installs it."""
    wheels = os.path.join(workdir, "wheel")
    os.makedirs(wheels, exist_ok=True)
    for old in os.listdir(wheels):
        os.remove(os.path.join(wheels, old))
    builder = os.path.join(REPO, ".venv", "bin", "python")
    env = dict(os.environ, PATH=os.path.dirname(builder) + os.pathsep + os.environ.get("PATH", ""))
    print("[survey] building the manygil wheel", flush=True)
    if run([builder, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--disable-pip-version-check",
            "-w", wheels, REPO], log, env=env, cwd=REPO).returncode:
        sys.exit(f"[survey] building the manygil wheel failed (log: {log})")
    wheel = os.path.join(wheels, os.listdir(wheels)[0])
    if run([python, "-m", "pip", "install", "--disable-pip-version-check", "--force-reinstall", wheel], log).returncode:
        sys.exit(f"[survey] installing manygil failed (log: {log})")


def install_requirements(entries, python, log):
    """Installs each requirement from wheels only; returns {distribution: note} for those that did not."""
    skipped = {}
    for i, (requirement, dist, _imports) in enumerate(entries, 1):
        print(f"[survey] {i}/{len(entries)} pip install {requirement}", flush=True)
        proc = run([python, "-m", "pip", "install", "--disable-pip-version-check", "--only-binary=:all:",
                    requirement], log)
        if proc.returncode:
            skipped[dist] = "no wheel for this Python (pip install --only-binary=:all: found none)"
            with open(log) as f:
                tail = f.read()[-3000:]
            if "No matching distribution" not in tail and "from versions: none" not in tail:
                skipped[dist] = "pip install failed (see the survey's pip log)"
    return skipped


def installed_distributions(python):
    """{normalized distribution name: version} in the survey venv."""
    out = subprocess.run([python, "-c", "import importlib.metadata as m, json; print(json.dumps("
                          "{d.metadata['Name']: d.version for d in m.distributions()}))"],
                         capture_output=True, text=True, check=True).stdout
    return {normalize(k): v for k, v in json.loads(out).items()}


def normalize(dist):
    return re.sub(r"[-_.]+", "-", dist).lower()


def render(doc, entries, versions, skipped):
    """docs/compat.md from the compat JSON, the requirement list and what did not install."""
    rows = {r["module"]: r for r in doc["modules"]}
    counts = Counter(r["status"] for r in doc["modules"])
    subs = [s for r in doc["modules"] for s in r.get("submodules") or []]
    own = [s for s in subs if s["status"] == "refuses" and s["culprit"] == s["module"]]
    out = [
        "# Which popular packages load in a manygil worker",
        "",
        f"Generated by `make compat-survey` on {doc['date'][:10]} with CPython {doc['python']} ({doc['platform']}),",
        f"`manygil compat --deep --json` (schema `{doc['schema']}`), from the newest wheels PyPI served that day for",
        "the packages of `tools/compat-survey-requirements.txt`, each installed on its own in a venv of its own.",
        "Each module was imported in the main interpreter of a fresh process, then in a fresh own-GIL",
        "interpreter of that process, and the two compared ([cli.md](cli.md#manygil-compat) tells how).",
        "Where a package's top-level import loads none of its extension modules (`PIL`, `lxml`), a second",
        "import name loads them as its users do (`PIL.Image`, `lxml.etree`).",
        "",
        f"**{len(rows)} modules from {len(entries) - len(skipped)} distributions: "
        + ", ".join(f"{counts[s]} {s}" for s in ("works", "source", "degraded", "refuses", "fails", "missing", "crashes")
                    if counts[s]) + ".**",
        f"With `--deep`, {sum(s['status'] == 'refuses' for s in subs)} of the {len(subs)} extension modules found "
        f"inside these packages refuse when imported one by one, {len(own)} of them themselves (the others because "
        "a module they import refuses, NumPy's above all)"
        + (f"; {sum(s['status'] == 'source' for s in subs)} load from their Python source." if any(
            s["status"] == "source" for s in subs) else "."),
        "",
        "- `works`: imports, with every extension module that the main interpreter's import loads.",
        "- `source`: imports, with some of those modules loaded from the Python source their wheel ships beside",
        "  them, because their extensions refuse own-GIL interpreters (the workers' source fallback, on by",
        "  default; `MANYGIL_SOURCE_FALLBACK=0` turns it off): works, slower.",
        "- `degraded`: imports, but without some of those extension modules (they refused and the package fell",
        "  back to pure Python, or put off the error until use): slower, or with features missing.",
        "- `refuses`: the import raises ImportError because an extension module, the culprit, does not",
        "  support own-GIL interpreters. `kind`, read from the culprit's own module definition: a",
        "  *single-phase init* module, or a *multi-phase init* one that does not declare",
        "  `Py_MOD_PER_INTERPRETER_GIL_SUPPORTED`.",
        "- `fails`: another exception; `crashes`: the process died.",
        "- `submodules refusing`: with `--deep`, how many of the extension modules under the package refuse,",
        "  of how many, and how many of those are the culprit themselves.",
        "",
        "| package | version | import | status | culprit | kind | submodules refusing | detail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _requirement, dist, imports in entries:
        version = versions.get(normalize(dist), "")
        if dist in skipped:
            out.append(f"| {dist} | | {' '.join(imports)} | not installed | | | | {skipped[dist]} |")
            continue
        for name in imports:
            r = rows.get(name)
            if r is None:
                continue
            out.append(f"| {dist} | {version} | `{name}` | {r['status']} | {_culprit(r)} | {r['kind'] or ''} | "
                       f"{_submodules(r)} | {_cell(_detail(r))} |")
    sourced = [(dist, r) for _req, dist, imports in entries for r in (rows.get(n) for n in imports)
               if r and r.get("source")]
    if sourced:
        out += ["", "## Loaded from Python source in workers", ""]
        for dist, r in sourced:
            whys = Counter(x["why"] for x in r["source"])
            out.append(f"- **`{r['module']}`** ({dist}) {r['status']}: " + ", ".join(f"`{x['module']}`" for x in r["source"])
                       + " (" + "; ".join(f"{n} {why}" for why, n in whys.items()) + ").")
    causes = [(dist, r) for _req, dist, imports in entries for r in (rows.get(n) for n in imports)
              if r and r["status"] in ("refuses", "degraded", "fails", "crashes")]
    if causes:
        out += ["", "## Why each of those does not work", ""]
        for dist, r in causes:
            out.append(f"- **`{r['module']}`** ({dist}) {r['status']}: {_cause(r)}")
    if own:
        out += ["", "## Extension modules that refuse themselves (`--deep`)", ""]
        by_package = {}
        for r in doc["modules"]:
            for s in r.get("submodules") or []:
                if s["status"] == "refuses" and s["culprit"] == s["module"]:
                    by_package.setdefault(r["module"], []).append(s)
        for package, refusers in by_package.items():
            kinds = Counter(s["kind"] or "kind unknown" for s in refusers)
            out.append(f"- `{package}`: " + ", ".join(f"`{s['module']}`" for s in refusers) + " ("
                       + "; ".join(f"{n} {kind}" for kind, n in kinds.items()) + ")")
    if skipped:
        out += ["", "## Not surveyed", ""]
        out += [f"- {dist}: {why}" for dist, why in skipped.items()]
    return "\n".join(out) + "\n"


def _culprit(r):
    if r["status"] == "source":
        names = [x["module"] for x in r["source"]]
        return f"`{names[0]}`" + (f" (+{len(names) - 1})" if len(names) > 1 else "")
    if r["status"] == "degraded":
        refused = [x["module"] for x in r["lacking"] if x["error"]] or [x["module"] for x in r["lacking"]]
        return ", ".join(f"`{x}`" for x in refused)
    return f"`{r['culprit']}`" if r["culprit"] else ""


def _submodules(r):
    subs = r.get("submodules")
    if not subs:
        return ""
    refusing = [s for s in subs if s["status"] == "refuses"]
    own = [s for s in refusing if s["culprit"] == s["module"]]
    sourced = sum(s["status"] == "source" for s in subs)
    return (f"{len(refusing)} of {len(subs)}" + (f" ({len(own)} themselves)" if refusing else "")
            + (f"; {sourced} from source" if sourced else ""))


def _detail(r):
    if r["status"] == "works":
        return ""
    found = re.search(r"module \S+ does not support loading in subinterpreters", r["detail"])
    if r["status"] == "refuses" and found and found.group(0) not in r["detail"].splitlines()[0]:
        return r["detail"].strip().splitlines()[0].strip() + " ... " + found.group(0)
    return r["detail"]


def _cause(r):
    if r["status"] == "degraded":
        parts = []
        for x in r["lacking"]:
            what = f"`{x['module']}` ({x['kind'] or 'kind unknown'})"
            parts.append(what + (f" refused: {_short(x['error'])}" if x["error"] else " was not loaded"))
        return "the worker goes without " + "; ".join(parts) + "."
    if r["status"] == "refuses":
        because = f": {r['kind_evidence']}" if r["kind_evidence"] else ""
        return f"`{r['culprit']}` refuses ({r['kind'] or 'kind unknown'}){because}."
    return _short(r["detail"])


def _short(text, limit=300):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _cell(text):
    return _short(text, 160).replace("|", "\\|")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=os.path.join(REPO, "build", "compat-survey"))
    parser.add_argument("--requirements", default=os.path.join(REPO, "tools", "compat-survey-requirements.txt"))
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "compat.md"))
    parser.add_argument("--python", default=getattr(sys, "_base_executable", sys.executable),
                        help="the CPython the survey venv is made from (default: the one running this)")
    parser.add_argument("--render-only", action="store_true", help="re-render --out from the last run's JSON")
    args = parser.parse_args()

    args.workdir = os.path.abspath(args.workdir)
    os.makedirs(args.workdir, exist_ok=True)
    entries = read_requirements(args.requirements)
    log = os.path.join(args.workdir, "pip.log")
    result = os.path.join(args.workdir, "compat.json")
    state = os.path.join(args.workdir, "skipped.json")
    python = os.path.join(args.workdir, "venv", "bin", "python")
    if not args.render_only:
        open(log, "w").close()
        python = make_venv(args.workdir, args.python, log)
        install_manygil(args.workdir, python, log)
        skipped = install_requirements(entries, python, log)
        with open(state, "w") as f:
            json.dump(skipped, f, indent=2)
        modules = [n for _req, dist, imports in entries if dist not in skipped for n in imports]
        print(f"[survey] manygil compat on {len(modules)} modules", flush=True)
        proc = subprocess.run([python, "-m", "manygil", "compat", "--deep", "--json", result, *modules],
                              cwd=args.workdir)
        if proc.returncode:
            sys.exit("[survey] manygil compat failed")
    with open(result) as f:
        doc = json.load(f)
    with open(state) as f:
        skipped = json.load(f)
    with open(args.out, "w") as f:
        f.write(render(doc, entries, installed_distributions(python), skipped))
    print(f"[survey] wrote {args.out}")


if __name__ == "__main__":
    main()
