"""A Jupyter notebook executed headless (nbclient, with ipykernel as the kernel), as users run one:
functions and lambdas defined in cells, handed to manygil.duckdb and to a Pool. A notebook's
__main__ has no file to re-run, so its functions travel by value."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    "import functools\nimport manygil",
    "def score(a, b):\n    return a * 3 + b",
    "class Scaler:\n    def __init__(self, k):\n        self.k = k\n    def __call__(self, x):\n        return x * self.k",
    "with manygil.Pool(2) as pool:\n"
    "    print('submit', pool.submit(score, 2, 1).result())\n"
    "    print('map', sum(pool.map(score, range(100), range(100))))\n"
    "    print('lambda', list(pool.map(lambda x: x * x, range(5))))\n"
    "    print('callable', pool.submit(Scaler(7), 6).result())",
]

DUCKDB_CELLS = [
    "import duckdb, manygil.duckdb as mgd\ncon = duckdb.connect()\n_ = con.sql('SET threads = 2')",
    "k = 10\n"
    "mgd.register(con, 'score', score, ['BIGINT', 'BIGINT'], 'BIGINT')\n"
    "mgd.register(con, 'shout', lambda s: s.upper() + '!', ['VARCHAR'], 'VARCHAR')\n"
    "mgd.register(con, 'part', functools.partial(score, k), ['BIGINT'], 'BIGINT')\n"
    "mgd.register(con, 'scaled', Scaler(3), ['BIGINT'], 'BIGINT', mode='row')",
    "print('duckdb', con.sql(\"SELECT sum(score(i, i % 7)), max(shout('x' || i)), sum(part(i)), sum(scaled(i)) "
    "FROM range(20000) t(i)\").fetchall())",
]


def run_notebook(cells):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3").execute()  # raises CellExecutionError
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_a_notebooks_functions_run_on_a_pool():
    out = run_notebook(CELLS)
    assert "submit 7\n" in out
    assert f"map {sum(3 * i + i for i in range(100))}\n" in out
    assert "lambda [0, 1, 4, 9, 16]\n" in out
    assert "callable 42\n" in out


def test_a_notebooks_functions_as_duckdb_udfs():
    pytest.importorskip("duckdb")
    out = run_notebook(CELLS[:3] + DUCKDB_CELLS)
    expected = (sum(3 * i + i % 7 for i in range(20000)), "X9999!", sum(30 + i for i in range(20000)),
                3 * sum(range(20000)))
    assert f"duckdb [{expected}]\n" in out, out
