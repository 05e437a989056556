from django.urls import path

from .guestbook import views

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("visits", views.visits, name="visits"),
    path("sign", views.sign, name="sign"),
    path("api/entries", views.api_entries, name="api_entries"),
]
