import json

from django.db import IntegrityError
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .forms import EntryForm
from .models import Entry, Product


def catalogue(request):
    """A page from the database through a template: the products, and the newest entries."""
    products = Product.objects.all()[:20]
    entries = Entry.objects.order_by("-id")[:5]
    return render(request, "guestbook/catalogue.html", {"products": products, "entries": entries})


def visits(request):
    """A counter kept in the session (database-backed): each visit saves it."""
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"visits": request.session["visits"]})


def sign(request):
    """The guestbook form: GET renders it (with the CSRF token), POST validates and saves, then redirects."""
    if request.method == "POST":
        form = EntryForm(request.POST)
        if form.is_valid():
            form.save()
            return redirect("catalogue")
    else:
        form = EntryForm()
    return render(request, "guestbook/sign.html", {"form": form})


@csrf_exempt  # a JSON API for non-browser clients: no cookies, so no CSRF
@require_POST
def api_entries(request):
    try:
        data = json.loads(request.body)
        entry = Entry.objects.create(key=data["key"], name=data["name"], message=data.get("message", ""))
    except (ValueError, KeyError):
        return HttpResponseBadRequest("expected JSON with key and name")
    except IntegrityError:
        return JsonResponse({"error": "duplicate key"}, status=409)
    return JsonResponse({"id": entry.id, "key": entry.key}, status=201)
