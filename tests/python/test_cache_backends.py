"""manygil.django.SharedCache and manygil.flask_caching.SharedCache: each answers a sequence of calls as
the framework's own in-memory backend does (LocMemCache, SimpleCache), every worker shares one cache,
and under manygil serve requests served by different workers count in one place."""

import http.client
import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import manygil
import cache_tasks

DJANGO_SEQUENCE = textwrap.dedent("""
    import asyncio, json, time
    from django.conf import settings
    settings.configure(CACHES={
        "shared": {"BACKEND": "manygil.django.SharedCache", "LOCATION": "conformance", "TIMEOUT": 60},
        "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "conformance",
                   "TIMEOUT": 60},
    })
    import django
    django.setup()
    from django.core.cache import caches

    def run(cache):
        out = []
        def call(name, *args, **kwargs):
            try:
                out.append((name, repr(getattr(cache, name)(*args, **kwargs))))
            except Exception as e:
                out.append((name, type(e).__name__))
        call("get", "a")
        call("set", "a", {"nested": [1, 2.5, None]})
        call("get", "a")
        call("add", "a", "other")
        call("add", "b", 1)
        call("incr", "b")
        call("incr", "b", 10)
        call("decr", "b", 3)
        call("incr", "missing")
        call("set", "f", 1.5)
        call("incr", "f", 2)
        call("get", "f")
        call("set", "flag", True)
        call("get", "flag")
        call("set_many", {"x": 1, "y": "two", "z": (3,)})
        call("get_many", ["x", "y", "z", "nope"])
        call("delete_many", ["x", "y"])
        call("has_key", "x")
        call("has_key", "z")
        call("delete", "z")
        call("delete", "z")
        call("get_or_set", "computed", lambda: "made")
        call("get_or_set", "computed", lambda: "made again")
        call("set", "v", "version one", version=1)
        call("incr_version", "v", version=1)
        call("get", "v", version=1)
        call("get", "v", version=2)
        call("set", "zero", "gone", timeout=0)
        call("get", "zero", "default")
        call("set", "short", "soon gone", timeout=0.2)
        call("set", "forever", "kept", timeout=None)
        call("set", "touched", "kept", timeout=0.2)
        call("touch", "touched", None)
        call("touch", "nothing")
        time.sleep(0.5)
        call("get", "short")
        call("get", "forever")
        call("get", "touched")
        out.append(("aget", repr(asyncio.run(cache.aget("forever")))))
        out.append(("aset", repr(asyncio.run(cache.aset("async", 5)))))
        call("get", "async")
        call("clear")
        call("get", "forever")
        return out

    print(json.dumps([run(caches["shared"]), run(caches["locmem"])]))
""")


def test_django_backend_answers_as_locmemcache_does(tmp_path):
    script = tmp_path / "django_sequence.py"
    script.write_text(DJANGO_SEQUENCE)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    shared, locmem = json.loads(out.stdout)
    assert len(shared) == len(locmem) == 42
    for ours, theirs in zip(shared, locmem):
        assert ours == theirs


def test_flask_backend_answers_as_simplecache_does():
    from flask import Flask
    from flask_caching import Cache

    def run(config):
        cache = Cache(Flask("conformance"), config=config).cache  # the backend: inc/dec live there
        out = []
        for name, args in [("get", ("a",)), ("set", ("a", [1, {"k": "v"}])), ("get", ("a",)), ("add", ("a", 2)),
                           ("add", ("b", 1)), ("inc", ("b",)), ("dec", ("b", 5)), ("inc", ("new",)),
                           ("set_many", ({"x": 1, "y": 2},)), ("get_many", ("x", "y", "nope")),
                           ("get_dict", ("x", "nope")), ("has", ("x",)), ("delete", ("x",)), ("delete", ("x",)),
                           ("has", ("x",)), ("set", ("t", "v", 0)), ("get", ("t",)), ("clear", ()), ("get", ("a",))]:
            out.append((name, repr(getattr(cache, name)(*args))))
        return out

    ours = run({"CACHE_TYPE": "manygil.flask_caching.SharedCache", "CACHE_OPTIONS": {"name": "conformance"}})
    theirs = run({"CACHE_TYPE": "SimpleCache"})
    assert ours == theirs


def test_every_worker_shares_one_django_cache_and_one_flask_cache():
    with manygil.Pool(2) as pool:
        assert sorted(pool.map(cache_tasks.django_count, [200] * 4))[-1] == 800
        seen = pool.submit(cache_tasks.django_keys_seen).result()
        assert len(seen) >= 1  # written by the workers, seen through the store
        assert max(pool.map(cache_tasks.flask_count, [150] * 4)) == 600


def _get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, json.loads(body)


def _serve_and_count(app):
    with manygil.Server(app, workers=2, bind="127.0.0.1:0") as server:
        port = int(server.addresses[0].rsplit(":", 1)[1])
        with ThreadPoolExecutor(8) as clients:
            answers = list(clients.map(lambda _: _get(port, "/count"), range(80)))
        reports = [_get(port, "/report") for _ in range(10)]
    assert all(status == 200 for status, _ in answers + reports)
    hits = sorted(body["hits"] for _, body in answers)
    assert hits == list(range(1, 81))  # every request counted once, whichever worker served it
    assert {body["sum"] for _, body in reports} == {328350}
    return {body["thread"] for _, body in answers}


def test_django_views_under_manygil_serve_count_in_one_cache():
    _serve_and_count("serve_apps.django_cache_app:application")


def test_flask_views_under_manygil_serve_count_in_one_cache():
    _serve_and_count("serve_apps.flask_cache_app:app")
