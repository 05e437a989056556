"""A Django project on PostgreSQL (psycopg 3), laid out as django-admin startproject lays one out:
settings, urls, wsgi, and one app (guestbook) with models, migrations, templates, sessions and a CSRF
form. The database comes from libpq's environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE)."""
