"""Functions tests/python/test_serve_postgres.py runs in workers (no pytest import: see helpers.py)."""


def query_products(env):
    """The catalogue's products through a SQLAlchemy engine over psycopg, with the implementation used."""
    import psycopg
    from sqlalchemy import create_engine, text

    url = f"postgresql+psycopg://{env['PGUSER']}@/{env['PGDATABASE']}?host={env['PGHOST']}&port={env['PGPORT']}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = [[r.name, str(r.price)] for r in conn.execute(text("SELECT name, price FROM product ORDER BY id"))]
    finally:
        engine.dispose()
    return {"psycopg": psycopg.pq.__impl__, "rows": rows}
