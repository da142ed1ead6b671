"""SQLAlchemy 2.x ORM: DeclarativeBase, Session, select(), Session.get()."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from nextorm.bench.dataset import Target, lookup_order, make_rows, postgres_url
from nextorm.bench.runners import Runner, Timed, Unsupported, read_attributes
from nextorm.bench.workloads import Config


class SQLAlchemyRunner(Runner):
    """SQLAlchemy's 2.0-style ORM with default settings."""

    distributions = ("sqlalchemy",)
    notes = {"session": "sessionmaker.begin()"}

    def __init__(self, target: Target, config: Config) -> None:
        super().__init__(target, config)
        if int(sqlalchemy.__version__.split(".")[0]) < 2:
            raise Unsupported(f"needs SQLAlchemy 2.x, found {sqlalchemy.__version__}")

        class Base(DeclarativeBase):
            pass

        class Person(Base):
            __tablename__ = "person"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str]
            email: Mapped[str | None]
            age: Mapped[int]
            score: Mapped[float]

        if target.is_postgres:
            url = postgres_url(target.location, "psycopg")
        else:
            url = f"sqlite:///{target.location}"
        self.engine = create_engine(url)
        self.Session = sessionmaker(self.engine)
        self.Person: Any = Person

    def versions(self) -> dict[str, str]:
        """SQLAlchemy's version (and psycopg's on PostgreSQL)."""
        found = super().versions()
        if self.target.is_postgres:
            found["psycopg"] = importlib.metadata.version("psycopg")
        return found

    def close(self) -> None:
        """Dispose of the engine's pool."""
        self.engine.dispose()

    @contextmanager
    def load(self) -> Iterator[Timed]:
        """``session.scalars(select(Person)).all()`` in a fresh session."""
        query = select(self.Person)
        with self.Session() as session:
            yield lambda: session.scalars(query).all()

    @contextmanager
    def get_by_pk(self) -> Iterator[Timed]:
        """``session.get(Person, pk)`` for every loaded row: identity map hits."""
        Person = self.Person
        order = lookup_order(self.config.rows)
        with self.Session() as session:
            # The identity map holds weak references: keep the objects alive.
            objs = session.scalars(select(Person)).all()

            def run() -> None:
                for pk in order:
                    session.get(Person, pk)

            yield run
            del objs

    @contextmanager
    def read_attrs(self) -> Iterator[Timed]:
        """Read four attributes of every loaded object."""
        with self.Session() as session:
            objs = session.scalars(select(self.Person)).all()

            yield lambda: read_attributes(objs)

    @contextmanager
    def update(self) -> Iterator[Timed]:
        """``obj.age += 1`` on M loaded objects, then ``session.commit()``."""
        Person = self.Person
        with self.Session() as session:
            objs = session.scalars(select(Person).where(Person.id <= self.config.batch)).all()

            def run() -> None:
                for obj in objs:
                    obj.age += 1
                session.commit()

            yield run

    @contextmanager
    def insert(self) -> Iterator[Timed]:
        """``session.add(Person(...))`` M times, then ``session.commit()``."""
        Person = self.Person
        values = make_rows(self.config.batch, start=self.config.rows)
        with self.Session() as session:

            def run() -> None:
                for name, email, age, score in values:
                    session.add(Person(name=name, email=email, age=age, score=score))
                session.commit()

            yield run

    @contextmanager
    def empty_session(self) -> Iterator[Timed]:
        """``with Session.begin(): pass`` (a session that commits on exit, like db_session)."""
        factory = self.Session
        count = self.config.rows

        def run() -> None:
            for _ in range(count):
                with factory.begin():
                    pass

        yield run


RUNNER = SQLAlchemyRunner
