from django.apps import AppConfig


class GuestbookConfig(AppConfig):
    name = "serve_apps.pgdjango.guestbook"
    label = "guestbook"
