"""A real stack on a real database (issue 24): a Django project and a Flask + SQLAlchemy 2.1 app on
PostgreSQL through psycopg 3, served by `manygil serve` (the CLI, 2 worker interpreters) and driven
by real HTTP clients. PostgreSQL is Debian's, started here in a temporary directory on a Unix socket
(temp_postgres.py); a missing PostgreSQL fails these tests (run the bootstrap), it does not skip them.

Checked: pages render rows read from the database; Django's database sessions and its CSRF-protected
form; writes from many concurrent clients all land exactly once; SIGTERM in the middle of a write load
loses no write that was answered 2xx; in a worker psycopg runs its pure-Python implementation over
libpq and SQLAlchemy its Cython modules' Python source, with no change to the application."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

import manygil

APPS = Path(__file__).parent
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))

import served  # noqa: E402
from temp_postgres import PostgresMissing, TempPostgres  # noqa: E402

DJANGO = "serve_apps.pgdjango.wsgi:application"
FLASK = "serve_apps.pg_flask:app"


@pytest.fixture(scope="module")
def pg():
    try:
        server = TempPostgres(durable=False)
    except PostgresMissing as e:
        pytest.fail(str(e))  # not a skip: `make test` includes these tests
    with server:
        yield server


def app_env(pg: TempPostgres, dbname: str) -> dict[str, str]:
    env = {**os.environ, **pg.env(dbname)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APPS), env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture(scope="module")
def django_db(pg):
    """A database migrated the way users do it (manage.py migrate)."""
    pg.create_database("guestbook")
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v0", "--settings=serve_apps.pgdjango.settings"],
                   cwd=APPS, env=app_env(pg, "guestbook"), check=True, timeout=120)
    return "guestbook"


@pytest.fixture(scope="module")
def flask_db(pg):
    pg.create_database("shop")
    subprocess.run([sys.executable, "-m", "flask", "--app", "serve_apps.pg_flask", "init-db"], cwd=APPS,
                   env=app_env(pg, "shop"), check=True, timeout=120, capture_output=True)
    return "shop"


class Served(served.Served):
    """`manygil serve APP --workers 2` on a free port, with the app's database in its environment."""

    def __init__(self, pg: TempPostgres, app: str, dbname: str) -> None:
        super().__init__(app, env=app_env(pg, dbname))


def wait_no_connections(pg: TempPostgres, dbname: str) -> int:
    """The sessions on `dbname` once they are gone (or after 10 s, what is left)."""
    deadline = time.monotonic() + 10
    while (n := pg.connections(dbname)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return n


# ---- pages ----------------------------------------------------------------------------------------------


def test_django_page_renders_rows_from_the_database(pg, django_db):
    pg.query(django_db, "INSERT INTO guestbook_entry (key, name, message, created) "
                        "VALUES ('psql-1', 'written by psql', 'hello &amp; welcome', now())")
    with Served(pg, DJANGO, django_db) as served:
        for _ in range(4):  # both workers, each on its kept connection
            status, headers, body = served.request("GET", "/")
            assert status == 200, body
            page = body.decode()
            assert headers["content-type"].startswith("text/html")
            assert page.count("<tr><td>") == 20
            assert "<td>product number 20</td><td>25.00</td><td>60</td>" in page
            # The row psql wrote, escaped by the template engine.
            assert "written by psql: hello &amp;amp; welcome" in page
        # CONN_MAX_AGE: each worker keeps one connection across requests.
        assert 1 <= pg.connections(django_db) <= 2
        assert served.stop() == 0
    assert wait_no_connections(pg, django_db) == 0


def test_flask_sqlalchemy_page_renders_rows_from_the_database(pg, flask_db):
    pg.query(flask_db, "UPDATE product SET name = 'renamed by psql' WHERE id = 7")
    try:
        with Served(pg, FLASK, flask_db) as served:
            for _ in range(4):
                status, _, body = served.request("GET", "/")
                assert status == 200, body
                page = body.decode()
                assert page.count("<tr><td>") == 20
                assert "<tr><td>7</td><td>renamed by psql</td><td>8.75</td><td>21</td></tr>" in page
            # A pool per worker: connections are returned to it, not closed, after each request.
            assert 1 <= pg.connections(flask_db) <= 2
            assert served.stop() == 0
        assert wait_no_connections(pg, flask_db) == 0
    finally:
        pg.query(flask_db, "UPDATE product SET name = 'product number 7' WHERE id = 7")


# ---- Django sessions and CSRF ------------------------------------------------------------------------------


def cookies_of(headers: dict) -> dict[str, str]:
    return dict(re.findall(r"(?:^|, )(\w+)=([^;]*)", headers.get("set-cookie", "")))


def test_django_session_is_kept_in_the_database(pg, django_db):
    with Served(pg, DJANGO, django_db) as served:
        status, headers, body = served.request("GET", "/visits")
        assert status == 200 and json.loads(body) == {"visits": 1}
        session = cookies_of(headers)["sessionid"]
        for n in (2, 3, 4):  # the two workers take turns; the count lives in PostgreSQL
            status, _, body = served.request("GET", "/visits", headers={"Cookie": f"sessionid={session}"})
            assert status == 200 and json.loads(body) == {"visits": n}
        assert pg.query(django_db, f"SELECT count(*) FROM django_session WHERE session_key = '{session}'") == [["1"]]
        # Another client has its own session.
        _, _, body = served.request("GET", "/visits")
        assert json.loads(body) == {"visits": 1}


def test_django_form_post_needs_the_csrf_token(pg, django_db):
    with Served(pg, DJANGO, django_db) as served:
        status, headers, body = served.request("GET", "/sign")
        assert status == 200
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
        cookie = cookies_of(headers)["csrftoken"]
        form = {"key": "form-1", "name": "Ada", "message": "signed through the form"}

        # Without the token (and its cookie): 403, and nothing written.
        status, _, _ = served.request("POST", "/sign", urllib.parse.urlencode(form),
                                      {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 403
        # The cookie without the form's token: still 403.
        status, _, _ = served.request("POST", "/sign", urllib.parse.urlencode(form),
                                      {"Content-Type": "application/x-www-form-urlencoded",
                                       "Cookie": f"csrftoken={cookie}"})
        assert status == 403
        assert pg.query(django_db, "SELECT count(*) FROM guestbook_entry WHERE key = 'form-1'") == [["0"]]

        # With both, as a browser sends them: saved, then redirected to the catalogue.
        status, headers, _ = served.request("POST", "/sign", urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token}),
                                            {"Content-Type": "application/x-www-form-urlencoded",
                                             "Cookie": f"csrftoken={cookie}"})
        assert status == 302 and headers["location"] == "/"
        assert pg.query(django_db, "SELECT name, message FROM guestbook_entry WHERE key = 'form-1'") == \
            [["Ada", "signed through the form"]]
        # An invalid form (duplicate key) renders the form again with the error.
        status, _, body = served.request("POST", "/sign", urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token}),
                                         {"Content-Type": "application/x-www-form-urlencoded",
                                          "Cookie": f"csrftoken={cookie}"})
        assert status == 200 and b"already exists" in body


# ---- concurrent writes, and SIGTERM under load ---------------------------------------------------------------

WRITES = {  # app -> (database fixture, path, body for a key, table)
    "django": (DJANGO, "django_db", "/api/entries", lambda k: {"key": k, "name": "load", "message": k},
               "guestbook_entry"),
    "flask": (FLASK, "flask_db", "/orders", lambda k: {"key": k, "product_id": 3, "quantity": 2}, "orders"),
}


def keys_in(pg: TempPostgres, dbname: str, table: str, prefix: str) -> list[str]:
    return [r[0] for r in pg.query(dbname, f"SELECT key FROM {table} WHERE key LIKE '{prefix}%'")]


class Writer(threading.Thread):
    """One client on one keep-alive connection, POSTing new keys until told to stop or `count` are sent.
    `accepted`: the keys answered 2xx; `failed`: the others (error status or connection error)."""

    def __init__(self, served: Served, path: str, body, prefix: str, count: int | None = None) -> None:
        super().__init__(daemon=True)
        self.served, self.path, self.body, self.prefix, self.count = served, path, body, prefix, count
        self.accepted: list[str] = []
        self.failed: list[tuple[str, object]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        conn = self.served.connect()
        i = 0
        while not self.halt.is_set() and (self.count is None or i < self.count):
            key = f"{self.prefix}{i}"
            i += 1
            try:
                conn.request("POST", self.path, json.dumps(self.body(key)), {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                (self.accepted if 200 <= r.status < 300 else self.failed).append(key if r.status < 300
                                                                                   else (key, r.status))
            except (OSError, http.client.HTTPException) as e:
                self.failed.append((key, repr(e)))
                conn.close()
                if self.count is None:
                    return  # the server is going away
                conn = self.served.connect()
        conn.close()


@pytest.mark.parametrize("app", ["django", "flask"])
def test_concurrent_writes_all_land_exactly_once(pg, app, request):
    target, db_fixture, path, body, table = WRITES[app]
    dbname = request.getfixturevalue(db_fixture)
    with Served(pg, target, dbname) as served:
        writers = [Writer(served, path, body, f"conc-{app}-{t}-", count=25) for t in range(8)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(120)
        assert all(not w.is_alive() for w in writers)
        assert [f for w in writers for f in w.failed] == []
        sent = sorted(k for w in writers for k in w.accepted)
        assert len(sent) == 200
        # Every row is there, once (the key is unique in the schema, and here counted again).
        assert sorted(keys_in(pg, dbname, table, f"conc-{app}-")) == sent
        # A retried key is refused by the database, not written twice.
        status, _, _ = served.request("POST", path, json.dumps(body(sent[0])), {"Content-Type": "application/json"})
        assert status == 409
        assert served.stop() == 0


@pytest.mark.parametrize("app", ["django", "flask"])
def test_sigterm_mid_load_loses_no_accepted_write(pg, app, request):
    target, db_fixture, path, body, table = WRITES[app]
    dbname = request.getfixturevalue(db_fixture)
    served = Served(pg, target, dbname)
    try:
        writers = [Writer(served, path, body, f"term-{app}-{t}-") for t in range(8)]
        for w in writers:
            w.start()
        deadline = time.monotonic() + 30
        while sum(len(w.accepted) for w in writers) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(len(w.accepted) for w in writers) >= 100, [w.failed[:3] for w in writers]
        served.proc.send_signal(signal.SIGTERM)  # mid-load: every writer has a request in flight or about to be
        assert served.proc.wait(60) == 0
        for w in writers:
            w.halt.set()
            w.join(60)
        assert all(not w.is_alive() for w in writers)
    finally:
        served.stop()
    accepted = {k for w in writers for k in w.accepted}
    stored = keys_in(pg, dbname, table, f"term-{app}-")
    assert len(stored) == len(set(stored))
    # Nothing answered 2xx is missing: the graceful stop finished the requests in flight.
    assert accepted - set(stored) == set()
    # And nothing was written without its answer: a request the server took, it answered.
    assert set(stored) - accepted == set()
    assert wait_no_connections(pg, dbname) == 0


# ---- what runs in the worker ---------------------------------------------------------------------------------


def test_psycopg_and_sqlalchemy_in_a_worker(pg, flask_db):
    """In a worker interpreter psycopg picks its pure-Python implementation over libpq (psycopg-binary's C
    modules refuse own-GIL interpreters, and psycopg falls back by itself), and SQLAlchemy runs its Cython
    modules from their Python source; in the main interpreter both keep their compiled code."""
    import pg_tasks

    env = pg.env(flask_db)
    with manygil.Pool(1) as pool:
        in_worker = pool.submit(pg_tasks.query_products, env).result(timeout=120)
        fallbacks = pool.stats()["source_fallback"]
    in_main = pg_tasks.query_products(env)
    assert in_worker["psycopg"] == "python"
    assert in_main["psycopg"] in ("binary", "c")
    assert in_worker["rows"] == in_main["rows"]
    assert len(in_worker["rows"]) == 20 and in_worker["rows"][6][0] == "product number 7"
    assert "sqlalchemy.engine._row_cy" in fallbacks
