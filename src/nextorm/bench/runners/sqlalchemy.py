"""SQLAlchemy 2.x ORM: DeclarativeBase, Session, select(), Session.get()."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any

import sqlalchemy
from sqlalchemy import ForeignKey, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload, sessionmaker

from nextorm.bench.dataset import Target, lookup_emails, lookup_order, make_rows, postgres_url, query_rounds
from nextorm.bench.runners import (
    AsyncTimed,
    Runner,
    Timed,
    Unsupported,
    driver_versions,
    read_attributes,
    read_children,
    require_modules,
)
from nextorm.bench.workloads import Config


class SQLAlchemyRunner(Runner):
    """SQLAlchemy's 2.0-style ORM with default settings."""

    distributions = ("sqlalchemy",)
    notes = {
        "session": "sessionmaker.begin()",
        "query-gen": "SQLAlchemy has no generator query syntax",
        "async-load": "AsyncSession",
        "async-update": "AsyncSession, expire_on_commit=False",
        "async-insert": "AsyncSession, expire_on_commit=False",
    }

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

        class Parent(Base):
            __tablename__ = "parent"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str]
            children: Mapped[list[Child]] = relationship(back_populates="parent")

        class Child(Base):
            __tablename__ = "child"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str]
            parent_id: Mapped[int] = mapped_column("parent", ForeignKey("parent.id"))
            parent: Mapped[Parent] = relationship(back_populates="children")

        self.engine = create_engine(self.url("psycopg", "pysqlite"))
        self.Session = sessionmaker(self.engine)
        self.Person: Any = Person
        self.Parent: Any = Parent
        # The class registry holds weak references: keep Child alive for Parent.children to resolve.
        self.Child: Any = Child
        self.async_engine: Any = None

    def url(self, postgres_driver: str, sqlite_driver: str) -> str:
        """The target's SQLAlchemy URL with the given driver."""
        if self.target.is_postgres:
            return postgres_url(self.target.location, postgres_driver)
        return f"sqlite+{sqlite_driver}:///{self.target.location}"

    def versions(self) -> dict[str, str]:
        """SQLAlchemy's version and its drivers'."""
        return {**super().versions(), **driver_versions(self.target)}

    def close(self) -> None:
        """Dispose of the engine's pool."""
        self.engine.dispose()

    async def aclose(self) -> None:
        """Dispose of the asyncio engine's pool."""
        if self.async_engine is not None:
            await self.async_engine.dispose()

    def async_sessionmaker(self) -> Any:
        """An ``async_sessionmaker`` on an asyncio engine (aiosqlite or psycopg async), made on first use.

        ``expire_on_commit=False`` as SQLAlchemy's asyncio documentation advises: expired
        attributes cannot be loaded lazily in asyncio.
        """
        if self.async_engine is None:
            needed = ("greenlet",) if self.target.is_postgres else ("greenlet", "aiosqlite")
            require_modules(*needed, purpose="SQLAlchemy's asyncio extension")
            from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

            self.async_engine = create_async_engine(self.url("psycopg", "aiosqlite"))
            self.AsyncSession = async_sessionmaker(self.async_engine, expire_on_commit=False)
        return self.AsyncSession

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
    def prefetch(self) -> Iterator[Timed]:
        """``select(Parent).options(selectinload(Parent.children))``, then every child's name."""
        Parent = self.Parent
        query = select(Parent).options(selectinload(Parent.children))
        with self.Session() as session:

            def run() -> tuple[int, int]:
                parents = session.scalars(query).all()
                return len(parents), read_children(parents)

            yield run

    def query(self) -> AbstractContextManager[Timed]:
        """``select(Person).where(Person.age == age).order_by(Person.id).limit(10)``, M times, a session per round."""
        Person = self.Person
        return self.in_rounds(
            lambda session, age: len(
                session.scalars(select(Person).where(Person.age == age).order_by(Person.id).limit(10)).all()
            )
        )

    @contextmanager
    def in_rounds(self, query: Callable[[Any, int], int]) -> Iterator[Timed]:
        """Time ``query(session, age)`` for the ages of ``query_rounds``, each round in a session of its own."""
        rounds = query_rounds(self.config.batch)
        Session = self.Session

        def run() -> int:
            total = 0
            for ages in rounds:
                with Session() as session:
                    total += sum(query(session, age) for age in ages)
            return total

        yield run

    query_expression = query

    def count(self) -> AbstractContextManager[Timed]:
        """``select(func.count()).select_from(Person).where(Person.age == age)``, M times, a session per round."""
        Person = self.Person
        return self.in_rounds(
            lambda session, age: session.scalar(
                select(func.count()).select_from(Person).where(Person.age == age)
            )
        )

    @contextmanager
    def get_by_email(self) -> Iterator[Timed]:
        """``session.scalars(select(Person).where(Person.email == email)).one()`` for M emails."""
        Person = self.Person
        emails = lookup_emails(self.config)

        def run() -> int:
            with self.Session() as session:
                return len(
                    [session.scalars(select(Person).where(Person.email == email)).one() for email in emails]
                )

        yield run

    @contextmanager
    def children_lazily(self) -> Iterator[Timed]:
        """``select(Parent)``, then every child's name through the lazy ``parent.children``, in a fresh session."""
        Parent = self.Parent

        def run() -> tuple[int, int]:
            with self.Session() as session:
                parents = session.scalars(select(Parent)).all()
                return len(parents), read_children(parents)

        yield run

    @contextmanager
    def to_dicts(self) -> Iterator[Timed]:
        """``{key: getattr(obj, key) for key in the mapper's column keys}`` of every loaded object."""
        keys = [column.key for column in sqlalchemy.inspect(self.Person).column_attrs]
        with self.Session() as session:
            objs = session.scalars(select(self.Person)).all()
            yield lambda: [{key: getattr(obj, key) for key in keys} for obj in objs]

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

    @asynccontextmanager
    async def async_load(self) -> AsyncIterator[AsyncTimed]:
        """``(await session.scalars(select(Person))).all()`` in a fresh AsyncSession."""
        factory = self.async_sessionmaker()
        query = select(self.Person)
        async with factory() as session:

            async def run() -> Any:
                return (await session.scalars(query)).all()

            yield run

    @asynccontextmanager
    async def async_update(self) -> AsyncIterator[AsyncTimed]:
        """``obj.age += 1`` on M loaded objects, then ``await session.commit()``."""
        factory = self.async_sessionmaker()
        Person = self.Person
        async with factory() as session:
            objs = (await session.scalars(select(Person).where(Person.id <= self.config.batch))).all()

            async def run() -> None:
                for obj in objs:
                    obj.age += 1
                await session.commit()

            yield run

    @asynccontextmanager
    async def async_insert(self) -> AsyncIterator[AsyncTimed]:
        """``session.add(Person(...))`` M times, then ``await session.commit()``."""
        factory = self.async_sessionmaker()
        Person = self.Person
        values = make_rows(self.config.batch, start=self.config.rows)
        async with factory() as session:

            async def run() -> None:
                for name, email, age, score in values:
                    session.add(Person(name=name, email=email, age=age, score=score))
                await session.commit()

            yield run


RUNNER = SQLAlchemyRunner
