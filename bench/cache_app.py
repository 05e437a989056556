"""The Django view bench/shared_dict.py serves: a page looked up in the cache (computed and stored on a
miss) and a view counter incremented in it. MANYGIL_BENCH_CACHE picks the backend: "manygil" (one
SharedDict for every worker interpreter of manygil serve) or "redis:/path/to/redis.sock" (Django's
RedisCache over a Unix socket, what process servers share a cache through)."""

import os
import random

from django.conf import settings

_backend = os.environ.get("MANYGIL_BENCH_CACHE", "manygil")
if _backend.startswith("redis:"):
    CACHE = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"unix://{_backend[6:]}"}
else:
    CACHE = {"BACKEND": "manygil.django.SharedCache", "LOCATION": "bench", "OPTIONS": {"MAX_BYTES": 64 << 20}}

settings.configure(
    DEBUG=False, SECRET_KEY="manygil-bench", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], MIDDLEWARE=[],
    INSTALLED_APPS=[], USE_TZ=True, CACHES={"default": CACHE},
)

import django  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def page(request):
    key = f"product:{random.randrange(200)}"
    product = cache.get(key)
    if product is None:
        n = int(key.split(":")[1])
        product = {"id": n, "name": f"product {n}", "price": n * 1.25, "tags": ["a", "b", str(n % 7)]}
        cache.set(key, product, 60)
    if not cache.add("views", 1):
        cache.incr("views")
    return JsonResponse({"product": product})


def ready(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("", page), path("ready", ready)]

application = get_wsgi_application()
