"""The workloads of `manygil bench`: pure Python, each a task function plus the arguments of its tasks.

This module imports nothing from manygil, so every model can run it: threads, processes, interpreter
pools, and a free-threaded Python that has no manygil installed (ft_runner.py loads it by path).
Every task returns a small, deterministic value that the runner compares with the serial run's.
"""

import json
import math
import re

# ---- CPU-bound --------------------------------------------------------------------------------------


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def nbody(steps):
    """The classic 5-body simulation (Sun and the gas giants); returns the final energy, rounded."""
    pi, days = math.pi, 365.24
    solar_mass = 4 * pi * pi
    bodies = [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, solar_mass],
        [4.84143144246472090e00, -1.16032004402742839e00, -1.03622044471123109e-01, 1.66007664274403694e-03 * days,
         7.69901118419740425e-03 * days, -6.90460016972063023e-05 * days, 9.54791938424326609e-04 * solar_mass],
        [8.34336671824457987e00, 4.12479856412430479e00, -4.03523417114321381e-01, -2.76742510726862411e-03 * days,
         4.99852801234917238e-03 * days, 2.30417297573763929e-05 * days, 2.85885980666130812e-04 * solar_mass],
        [1.28943695621391310e01, -1.51111514016986312e01, -2.23307578892655734e-01, 2.96460137564761618e-03 * days,
         2.37847173959480950e-03 * days, -2.96589568540237556e-05 * days, 4.36624404335156298e-05 * solar_mass],
        [1.53796971148509165e01, -2.59193146099879641e01, 1.79258772950371181e-01, 2.68067772490389322e-03 * days,
         1.62824170038242295e-03 * days, -9.51592254519715870e-05 * days, 5.15138902046611451e-05 * solar_mass],
    ]
    pairs = [(bodies[i], bodies[j]) for i in range(5) for j in range(i + 1, 5)]
    dt = 0.01
    for _ in range(steps):
        for b1, b2 in pairs:
            dx, dy, dz = b1[0] - b2[0], b1[1] - b2[1], b1[2] - b2[2]
            mag = dt * (dx * dx + dy * dy + dz * dz) ** -1.5
            m1, m2 = b1[6] * mag, b2[6] * mag
            b1[3] -= dx * m2
            b1[4] -= dy * m2
            b1[5] -= dz * m2
            b2[3] += dx * m1
            b2[4] += dy * m1
            b2[5] += dz * m1
        for b in bodies:
            b[0] += dt * b[3]
            b[1] += dt * b[4]
            b[2] += dt * b[5]
    energy = 0.0
    for i, b in enumerate(bodies):
        energy += 0.5 * b[6] * (b[3] * b[3] + b[4] * b[4] + b[5] * b[5])
        for b2 in bodies[i + 1:]:
            energy -= b[6] * b2[6] / math.dist(b[:3], b2[:3])
    return round(energy, 9)


def _document(seed, size):
    return {
        "id": seed,
        "name": f"item-{seed}",
        "tags": [f"t{(seed + i) % 17}" for i in range(8)],
        "children": [{"k": i, "v": (seed * i) % 101, "ok": i % 3 == 0, "x": i / 7} for i in range(size)],
    }


def json_roundtrips(seed, size=60, times=40):
    """Encodes and decodes a nested document `times` times; returns a checksum of the last decode."""
    doc = _document(seed, size)
    for _ in range(times):
        doc = json.loads(json.dumps(doc))
    return sum(c["v"] for c in doc["children"]) + len(doc["tags"])


_WORDS = ("alpha beta gamma delta user@example.com 2024-05-17 error warning 10.0.0.1 http://x.y/z "
          "lorem ipsum dolor sit amet 42 3.14159 foo_bar BazQux id=1234 status:ok").split()
_PATTERNS = [re.compile(p) for p in (r"\b[\w.]+@[\w.]+\b", r"\d{4}-\d{2}-\d{2}", r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
                                       r"https?://\S+", r"\b[A-Z][a-z]+[A-Z]\w*\b", r"(\w+)=(\d+)", r"\berror|warning\b")]


def regex_scan(seed, words=4000):
    """Runs a handful of regexes over generated text; returns the number of matches."""
    text = " ".join(_WORDS[(seed * 7 + i * 13) % len(_WORDS)] for i in range(words))
    return sum(len(p.findall(text)) for p in _PATTERNS)


_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*)|(.))")


def _tokens(text):
    for number, op in _TOKEN.findall(text):
        yield ("num", float(number)) if number else ("op", op)
    yield ("end", None)


class _Parser:
    """expr := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*; factor := num | '(' expr ')' | '-' factor"""

    def __init__(self, text):
        self.tokens = _tokens(text)
        self.tok = next(self.tokens)

    def take(self):
        tok, self.tok = self.tok, next(self.tokens)
        return tok

    def expr(self):
        value = self.term()
        while self.tok in (("op", "+"), ("op", "-")):
            value = value + self.term() if self.take()[1] == "+" else value - self.term()
        return value

    def term(self):
        value = self.factor()
        while self.tok in (("op", "*"), ("op", "/")):
            value = value * self.factor() if self.take()[1] == "*" else value / self.factor()
        return value

    def factor(self):
        kind, v = self.take()
        if kind == "num":
            return v
        if v == "-":
            return -self.factor()
        if v == "(":
            value = self.expr()
            self.take()  # ')'
            return value
        raise SyntaxError(f"unexpected {v!r}")


def _expression(seed, depth):
    if depth == 0:
        return str((seed * 31) % 97 + 1)
    a, b = _expression(seed * 3 + 1, depth - 1), _expression(seed * 5 + 2, depth - 1)
    return f"({a} {'+-*'[seed % 3]} {b})"


def parse_expressions(seed, count=150, depth=5):
    """Tokenizes and parses arithmetic expressions with a recursive-descent parser; returns their sum."""
    return round(sum(_Parser(_expression(seed + i, depth)).expr() for i in range(count)), 6)


# ---- transfer-bound: the payload goes to the task and comes back ----------------------------------


def echo(payload):
    return payload


def touch_buffer(buf):
    """Reads the first and last bytes of a buffer it received (without copying) and sends it back."""
    view = memoryview(buf)
    _ = view[0] + view[len(view) - 1]
    return buf


def checksum(result):
    """A small value the runner compares across models, whatever the task returned."""
    if isinstance(result, (int, float)):
        return result
    if isinstance(result, dict):
        return len(result)
    try:
        return len(result)
    except TypeError:
        return repr(result)


# ---- trivial tasks (overhead) -------------------------------------------------------------------------


def noop(x):
    return x


# ---- the catalogue -------------------------------------------------------------------------------------

# name -> (kind, task function name, description, items): items are plain data (JSON), so the
# free-threaded runner builds exactly the same tasks.
def catalogue(workers, quick):
    """The workloads. Full runs give each CPU workload 6 tasks per worker; quick runs (make demo) 4,
    sized so that each still takes 0.3-0.5 s serially on the machine this was tuned on: shorter,
    and start-up and noise decide the ratios."""
    w, q = workers, quick
    per = (4 if q else 6) * w  # tasks per CPU workload: a few per worker, to balance
    return {
        "fib": ("cpu", "fib", f"{per} x fib({29 if q else 27})", [29 if q else 27] * per),
        "nbody": ("cpu", "nbody", f"{per} x n-body, {9_000 if q else 40_000} steps", [9_000 if q else 40_000] * per),
        "json": ("cpu", "json_roundtrips", f"{per * (10 if q else 3)} x 40 JSON encode+decode of a nested document",
                 list(range(per * (10 if q else 3)))),
        "regex": ("cpu", "regex_scan", f"{per * (8 if q else 4)} x 7 regexes over 4,000 words",
                  list(range(per * (8 if q else 4)))),
        "parser": ("cpu", "parse_expressions", f"{per * (5 if q else 3)} x tokenize+parse 150 expressions",
                   list(range(per * (5 if q else 3)))),
        "transfer bytes": ("transfer", "echo", f"{4 * w} x {'1' if q else '16'} MB bytes there and back",
                           [{"bytes": (1 if q else 16) << 20}] * 4 * w),
        "transfer dict": ("transfer", "echo", f"{4 * w} x dict of {'10k' if q else '100k'} str->int there and back",
                          [{"dict": 10_000 if q else 100_000}] * 4 * w),
        "transfer SharedBuffer": ("transfer", "touch_buffer",
                                  f"{4 * w} x {'1' if q else '16'} MB SharedBuffer there and back",
                                  [{"shared_buffer": (1 if q else 16) << 20}] * 4 * w),
    }


def materialize(item, shared_buffer_type=None):
    """The task argument an item describes (payloads are built once per run, outside the timing)."""
    if not isinstance(item, dict):
        return item
    if "bytes" in item:
        return bytes(item["bytes"])
    if "dict" in item:
        return {f"key{i}": i for i in range(item["dict"])}
    if "shared_buffer" in item:
        if shared_buffer_type is None:
            raise LookupError("SharedBuffer is manygil's; this model cannot share one")
        return shared_buffer_type(item["shared_buffer"])
    raise ValueError(f"unknown item {item!r}")
