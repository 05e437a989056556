"""A Django application in one module: settings, URLs, views."""

from django.conf import settings

settings.configure(
    DEBUG=False, SECRET_KEY="manygil-test", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"],
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"], INSTALLED_APPS=[], USE_TZ=True,
)

import django  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def hello(request):
    return HttpResponse(f"hello from django, {request.GET.get('name', 'nobody')}")


@csrf_exempt
def echo(request, name):
    return JsonResponse({"method": request.method, "body": request.body.decode(), "name": name})


urlpatterns = [path("", hello), path("echo/<slug:name>", echo)]

application = get_wsgi_application()
