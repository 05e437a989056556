"""The catalogue's 20 products (a data migration)."""

from decimal import Decimal

from django.db import migrations


def add_products(apps, schema_editor):
    Product = apps.get_model("guestbook", "Product")
    Product.objects.bulk_create(Product(name=f"product number {i}", price=Decimal(i) * Decimal("1.25"), stock=i * 3)
                                for i in range(1, 21))


class Migration(migrations.Migration):
    dependencies = [("guestbook", "0001_initial")]
    operations = [migrations.RunPython(add_products, migrations.RunPython.noop)]
