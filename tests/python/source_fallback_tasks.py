"""Tasks for test_source_fallback.py, run by reference in workers and called directly in the main
interpreter for the answer to compare with. Each imports its library inside, so that the main
interpreter loads it only when a test calls it there."""


def orm_session(url, names):
    """A SQLAlchemy 2.x ORM round trip: a model, inserts, a filtered query."""
    import sqlalchemy
    from sqlalchemy import String, create_engine, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))
        karma: Mapped[int] = mapped_column(default=0)

    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([User(name=n, karma=len(n)) for n in names])
        session.commit()
        query = select(User).where(User.name.like("a%")).order_by(User.karma.desc(), User.id)
        rows = [(u.id, u.name, u.karma) for u in session.scalars(query)]
        total = session.scalar(select(sqlalchemy.func.sum(User.karma)))
    engine.dispose()
    return rows, total, sqlalchemy.__version__


def module_files(*names):
    """Each module's __file__, imported here."""
    import importlib

    return [importlib.import_module(n).__file__ for n in names]


def toml_parse(text):
    import tomli

    return tomli.loads(text)


def detect(data):
    import charset_normalizer

    best = charset_normalizer.from_bytes(data).best()
    return best.encoding, str(best)


def black_format(source):
    import black

    return black.format_str(source, mode=black.Mode(line_length=60))


def black_format_file(path):
    """Formats the file in place; returns whether it changed and its new text."""
    from pathlib import Path

    import black

    changed = black.format_file_in_place(Path(path), fast=False, mode=black.Mode(), write_back=black.WriteBack.YES)
    return changed, Path(path).read_text()


def import_error(name):
    """The ImportError an import raises here (its message), or None."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError as e:
        return str(e)
    return None


def import_after_barrier(barrier, name):
    """All workers import `name` at once."""
    import importlib

    barrier.wait(30)
    module = importlib.import_module(name)
    return module.__file__


def in_sys_modules(name):
    import sys

    return name in sys.modules
