"""Django's usual settings for a small site on PostgreSQL, as a user writes them for production:
DEBUG off, sessions in the database, CSRF on, persistent connections (CONN_MAX_AGE).

The database comes from libpq's environment (tests/python/temp_postgres.py's TempPostgres.env()).
DJANGO_CONN_MAX_AGE overrides CONN_MAX_AGE (0: a connection per request, Django's default)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "manygil-test-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "serve_apps.pgdjango.guestbook",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

ROOT_URLCONF = "serve_apps.pgdjango.urls"
WSGI_APPLICATION = "serve_apps.pgdjango.wsgi.application"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
}]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",  # psycopg 3 when installed (else psycopg2)
        "NAME": os.environ.get("PGDATABASE", "guestbook"),
        "USER": os.environ.get("PGUSER", ""),
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
        # One connection per worker thread, kept across requests: what production sites set.
        # (CONN_HEALTH_CHECKS stays off, Django's default: on, it costs a SELECT 1 per request.)
        "CONN_MAX_AGE": int(os.environ.get("DJANGO_CONN_MAX_AGE", "600")),
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.db"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False
