from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    stock = models.IntegerField(default=0)

    class Meta:
        ordering = ["id"]


class Entry(models.Model):
    """A guestbook entry; `key` is the client's own id for it (unique: a retried write is not a second row)."""
    key = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    message = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
