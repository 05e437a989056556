"""A Django application served through its ASGI handler (django.core.asgi): a sync view (run on the
worker's executor, as Django runs sync views under ASGI) and an async one."""

import asyncio

from django.conf import settings

settings.configure(
    DEBUG=False, SECRET_KEY="manygil-test", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"],
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"], INSTALLED_APPS=[], USE_TZ=True,
)

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def hello(request):
    return HttpResponse(f"hello from django asgi, {request.GET.get('name', 'nobody')}")


@csrf_exempt
def echo(request, name):
    return JsonResponse({"method": request.method, "body": request.body.decode(), "name": name})


async def slow(request):
    await asyncio.sleep(0.2)
    return HttpResponse("slow async view")


urlpatterns = [path("", hello), path("echo/<slug:name>", echo), path("slow", slow)]

application = get_asgi_application()
