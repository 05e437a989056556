"""What the cache backend tests run in workers: each worker interpreter configures Django (or builds a
Flask-Caching cache) of its own, over the one shared store."""


def django_cache():
    from django.conf import settings

    if not settings.configured:
        settings.configure(CACHES={"default": {"BACKEND": "manygil.django.SharedCache",
                                               "LOCATION": "workers-test"}})
        import django

        django.setup()
    from django.core.cache import cache

    return cache


def django_count(rounds):
    cache = django_cache()
    cache.add("counter", 0)
    for _ in range(rounds):
        cache.incr("counter")
    cache.set(("from", _interpreter_id()).__repr__(), "hello", timeout=None)
    return cache.get("counter")


def django_keys_seen():
    cache = django_cache()
    return sorted(k for k in cache._store.keys() if "from" in k)


def flask_count(rounds):
    from flask import Flask
    from flask_caching import Cache

    cache = Cache(Flask("worker"), config={"CACHE_TYPE": "manygil.flask_caching.SharedCache",
                                           "CACHE_OPTIONS": {"name": "workers-test"}})
    for _ in range(rounds):
        cache.cache.inc("counter")
    return cache.get("counter")


def _interpreter_id():
    import _interpreters

    return _interpreters.get_current()[0]
