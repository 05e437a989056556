"""The WSGI entry point: manygil serve serve_apps.pgdjango.wsgi:application (gunicorn and granian the same)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "serve_apps.pgdjango.settings")

application = get_wsgi_application()
