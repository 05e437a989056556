"""A Django application whose views use the cache framework on manygil.django.SharedCache: under
manygil serve every worker interpreter builds this module, and all of them share one cache."""

import threading

from django.conf import settings

settings.configure(
    DEBUG=False, SECRET_KEY="manygil-test", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], MIDDLEWARE=[],
    INSTALLED_APPS=[], USE_TZ=True,
    CACHES={"default": {"BACKEND": "manygil.django.SharedCache", "LOCATION": "serve-test", "TIMEOUT": 300,
                        "OPTIONS": {"MAX_BYTES": 8 << 20}}},
)

import django  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

computed = 0  # how often this interpreter computed the report (per worker)
computed_lock = threading.Lock()


def count(request):
    """Counts requests across every worker: cache.incr is one atomic step in the shared store."""
    cache.add("hits", 0)
    return JsonResponse({"hits": cache.incr("hits"), "thread": threading.current_thread().name})


def report(request):
    """An expensive result computed once for all workers (get_or_set)."""
    def compute():
        global computed
        with computed_lock:
            computed += 1
        return {"squares": [i * i for i in range(100)]}

    value = cache.get_or_set("report", compute, timeout=None)
    return JsonResponse({"sum": sum(value["squares"]), "computed_here": computed,
                         "thread": threading.current_thread().name})


urlpatterns = [path("count", count), path("report", report)]

application = get_wsgi_application()
