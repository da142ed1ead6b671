"""Shared by Pony and nextorm, whose public session APIs have the same shape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import ModuleType
from typing import Any, ClassVar

from nextorm.bench.dataset import Target, lookup_emails, lookup_order, make_rows, query_rounds
from nextorm.bench.runners import Runner, Timed, read_attributes, read_children
from nextorm.bench.workloads import Config


class PonyLikeRunner(Runner):
    """db_session, ``Entity.select()[:]``, ``Entity[pk]``, ``obj.attr += 1``, ``commit()``."""

    orm: ClassVar[ModuleType]
    email_options: ClassVar[dict[str, object]] = {}

    def __init__(self, target: Target, config: Config) -> None:
        super().__init__(target, config)
        db = self.orm.Database()
        self.Person, self.Parent, self.Child = self.declare(db)
        self.bind(db)
        db.generate_mapping(create_tables=False)
        self.db = db

    def declare(self, db: Any) -> tuple[Any, Any, Any]:
        """Declare ``Person``, ``Parent`` and ``Child`` on ``db``, mapped to the benchmark's tables."""
        orm = self.orm

        class Person(db.Entity):  # type: ignore[name-defined,misc]
            _table_ = "person"
            id = orm.PrimaryKey(int, auto=True)
            name = orm.Required(str)
            email = orm.Optional(str, **self.email_options)
            age = orm.Required(int)
            score = orm.Required(float)

        class Parent(db.Entity):  # type: ignore[name-defined,misc]
            _table_ = "parent"
            id = orm.PrimaryKey(int, auto=True)
            name = orm.Required(str)
            children = orm.Set("Child")

        class Child(db.Entity):  # type: ignore[name-defined,misc]
            _table_ = "child"
            id = orm.PrimaryKey(int, auto=True)
            name = orm.Required(str)
            parent = orm.Required(Parent)

        return Person, Parent, Child

    def bind(self, db: Any) -> None:
        """Bind the database to the target."""
        if self.target.is_postgres:
            db.bind(provider="postgres", dsn=self.target.location)
        else:
            db.bind(provider="sqlite", filename=self.target.location)

    def select_batch(self) -> Any:
        """The query for the first M rows (``id <= batch``), in this ORM's dialect."""
        raise NotImplementedError

    def close(self) -> None:
        """Disconnect."""
        self.db.disconnect()

    @contextmanager
    def load(self) -> Iterator[Timed]:
        """``Person.select()[:]`` in a fresh session."""
        Person = self.Person
        with self.orm.db_session:
            yield lambda: Person.select()[:]

    @contextmanager
    def get_by_pk(self) -> Iterator[Timed]:
        """``Person[pk]`` for every loaded row: identity map hits."""
        Person = self.Person
        order = lookup_order(self.config.rows)

        def run() -> None:
            for pk in order:
                Person[pk]

        with self.orm.db_session:
            objs = Person.select()[:]
            yield run
            del objs

    @contextmanager
    def read_attrs(self) -> Iterator[Timed]:
        """Read four attributes of every loaded object."""
        with self.orm.db_session:
            objs = self.Person.select()[:]

            yield lambda: read_attributes(objs)

    @contextmanager
    def update(self) -> Iterator[Timed]:
        """``obj.age += 1`` on M loaded objects, then ``commit()``."""
        commit = self.orm.commit
        with self.orm.db_session:
            objs = self.select_batch()[:]

            def run() -> None:
                for obj in objs:
                    obj.age += 1
                commit()

            yield run

    @contextmanager
    def insert(self) -> Iterator[Timed]:
        """``Person(...)`` M times, then ``commit()``."""
        Person = self.Person
        commit = self.orm.commit
        values = make_rows(self.config.batch, start=self.config.rows)

        def run() -> None:
            for name, email, age, score in values:
                Person(name=name, email=email, age=age, score=score)
            commit()

        with self.orm.db_session:
            yield run

    @contextmanager
    def prefetch(self) -> Iterator[Timed]:
        """``Parent.select().prefetch(Parent.children)[:]``, then every child's name."""
        Parent = self.Parent

        def run() -> tuple[int, int]:
            parents = Parent.select().prefetch(Parent.children)[:]
            return len(parents), read_children(parents)

        with self.orm.db_session:
            yield run

    def query(self) -> AbstractContextManager[Timed]:
        """``Person.select(lambda p: p.age == age).order_by(Person.id)[:10]``, M times, a session per round."""
        Person = self.Person
        return self.in_rounds(lambda age: len(Person.select(lambda p: p.age == age).order_by(Person.id)[:10]))

    def query_generator(self) -> AbstractContextManager[Timed]:
        """``select(p for p in Person if p.age == age).order_by(Person.id)[:10]``, M times, a session per round."""
        Person = self.Person
        select = self.orm.select
        return self.in_rounds(
            lambda age: len(select(p for p in Person if p.age == age).order_by(Person.id)[:10])
        )

    def count(self) -> AbstractContextManager[Timed]:
        """``Person.select(lambda p: p.age == age).count()``, M times, a session per round."""
        Person = self.Person
        return self.in_rounds(lambda age: Person.select(lambda p: p.age == age).count())

    @contextmanager
    def in_rounds(self, query: Callable[[int], int]) -> Iterator[Timed]:
        """Time ``query(age)`` for the ages of ``query_rounds``, each round in a session of its own."""
        rounds = query_rounds(self.config.batch)
        db_session = self.orm.db_session

        def run() -> int:
            total = 0
            for ages in rounds:
                with db_session:
                    total += sum(map(query, ages))
            return total

        yield run

    @contextmanager
    def get_by_email(self) -> Iterator[Timed]:
        """``Person.get(email=email)`` for M emails, in one session."""
        Person = self.Person
        emails = lookup_emails(self.config)

        def run() -> int:
            with self.orm.db_session:
                return len([Person.get(email=email) for email in emails])

        yield run

    @contextmanager
    def children_lazily(self) -> Iterator[Timed]:
        """``Parent.select()[:]``, then every child's name through ``parent.children``, in a fresh session."""
        Parent = self.Parent

        def run() -> tuple[int, int]:
            with self.orm.db_session:
                parents = Parent.select()[:]
                return len(parents), read_children(parents)

        yield run

    @contextmanager
    def to_dicts(self) -> Iterator[Timed]:
        """``obj.to_dict()`` of every loaded object."""
        with self.orm.db_session:
            objs = self.Person.select()[:]
            yield lambda: [obj.to_dict() for obj in objs]

    @contextmanager
    def empty_session(self) -> Iterator[Timed]:
        """``with db_session: pass``."""
        db_session = self.orm.db_session
        count = self.config.rows

        def run() -> None:
            for _ in range(count):
                with db_session:
                    pass

        yield run
