"""A Flask + SQLAlchemy 2.1 application on PostgreSQL (psycopg 3): an ORM session per request over
the engine's connection pool. The module builds its engine when it is imported, so each worker gets
its own engine and pool: each manygil worker interpreter imports the module itself (as each gunicorn
or granian worker process does).

The database: DATABASE_URL, else libpq's environment (PGHOST, PGPORT, PGUSER, PGDATABASE).
Tables and the catalogue's rows: `flask --app serve_apps.pg_flask init-db`.
"""

from __future__ import annotations

import os
from decimal import Decimal

from flask import Flask, abort, g, jsonify, render_template, request
from sqlalchemy import Numeric, String, create_engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "product"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    stock: Mapped[int] = mapped_column(default=0)


class Order(Base):
    """An order; `key` is the client's own id for it (unique: a retried write is not a second row)."""
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[int]
    quantity: Mapped[int]


# "postgresql+psycopg://" with no host: libpq reads PGHOST (the socket's directory) and the rest.
engine = create_engine(os.environ.get("DATABASE_URL", "postgresql+psycopg://"), pool_size=4, max_overflow=4,
                       pool_pre_ping=False)
SessionLocal = sessionmaker(engine, expire_on_commit=False)

app = Flask(__name__)


def db() -> Session:
    """This request's session (opened on first use, closed at the end of the request)."""
    if "db" not in g:
        g.db = SessionLocal()
    return g.db


@app.teardown_appcontext
def close_session(exc):
    session = g.pop("db", None)
    if session is not None:
        session.close()  # the connection goes back to the pool


@app.route("/")
def catalogue():
    products = db().scalars(select(Product).order_by(Product.id).limit(20)).all()
    orders = db().scalar(select(func.count()).select_from(Order))
    return render_template("catalogue.html", products=products, orders=orders)


@app.post("/orders")
def create_order():
    data = request.get_json(silent=True) or {}
    if not isinstance(data.get("key"), str) or not isinstance(data.get("product_id"), int):
        abort(400, "expected JSON with key and product_id")
    session = db()
    order = Order(key=data["key"], product_id=data["product_id"], quantity=int(data.get("quantity", 1)))
    session.add(order)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return jsonify(error="duplicate key"), 409
    return jsonify(id=order.id, key=order.key), 201


@app.cli.command("init-db")
def init_db() -> None:
    """Creates the tables and the catalogue's 20 products (idempotent)."""
    Base.metadata.create_all(engine)
    with SessionLocal.begin() as session:
        if not session.scalar(select(func.count()).select_from(Product)):
            session.add_all(Product(name=f"product number {i}", price=Decimal(i) * Decimal("1.25"), stock=i * 3)
                            for i in range(1, 21))
    print("tables created")
