"""Peewee: Model classes, get_by_id(), save() inside atomic().

Peewee has no identity map or unit of work: a primary-key lookup is a SELECT
and every changed object is saved with its own statement. The notes say so.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import peewee
from peewee import prefetch
from playhouse.db_url import connect
from playhouse.shortcuts import model_to_dict

from nextorm.bench.dataset import Target, lookup_emails, lookup_order, make_rows, query_ages
from nextorm.bench.runners import Runner, Timed, read_attributes, read_children
from nextorm.bench.workloads import Config


class PeeweeRunner(Runner):
    """Peewee's idioms, with its default settings."""

    distributions = ("peewee",)
    notes = {
        "pk-lookup": "no identity map: a SELECT per get_by_id()",
        "update": "save() per object in atomic()",
        "insert": "create() per object in atomic()",
        "session": "atomic(): BEGIN/COMMIT",
        "prefetch": "prefetch(): children WHERE parent IN (subquery)",
        "get": "no identity map: Person.get(Person.email == email)",
        "n-plus-1": "parent.children: a SELECT per parent",
        "to-dict": "playhouse.shortcuts.model_to_dict()",
        "query-gen": "Peewee has no generator query syntax",
        "async-load": "not measured: Peewee 4's playhouse.pwasyncio is not wired in",
        "async-update": "not measured: Peewee 4's playhouse.pwasyncio is not wired in",
        "async-insert": "not measured: Peewee 4's playhouse.pwasyncio is not wired in",
    }

    def __init__(self, target: Target, config: Config) -> None:
        super().__init__(target, config)
        if target.is_postgres:
            db = connect(target.location)
        else:
            db = peewee.SqliteDatabase(target.location)

        class Person(peewee.Model):
            id = peewee.AutoField()
            name = peewee.TextField()
            email = peewee.TextField(null=True)
            age = peewee.IntegerField()
            score = peewee.FloatField()

            class Meta:
                database = db
                table_name = "person"

        class Parent(peewee.Model):
            id = peewee.AutoField()
            name = peewee.TextField()

            class Meta:
                database = db
                table_name = "parent"

        class Child(peewee.Model):
            id = peewee.AutoField()
            name = peewee.TextField()
            parent = peewee.ForeignKeyField(Parent, backref="children", column_name="parent")

            class Meta:
                database = db
                table_name = "child"

        db.connect()
        self.db = db
        self.Person: Any = Person
        self.Parent: Any = Parent
        self.Child: Any = Child

    def versions(self) -> dict[str, str]:
        """Peewee's version (and psycopg's on PostgreSQL)."""
        found = super().versions()
        if self.target.is_postgres:
            found["psycopg"] = importlib.metadata.version("psycopg")
        return found

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def load(self) -> Iterator[Timed]:
        """``list(Person.select())``."""
        Person = self.Person
        yield lambda: list(Person.select())

    @contextmanager
    def get_by_pk(self) -> Iterator[Timed]:
        """``Person.get_by_id(pk)`` for every row: one SELECT each, no identity map."""
        Person = self.Person
        order = lookup_order(self.config.rows)

        def run() -> None:
            for pk in order:
                Person.get_by_id(pk)

        yield run

    @contextmanager
    def read_attrs(self) -> Iterator[Timed]:
        """Read four attributes of every loaded object."""
        objs = list(self.Person.select())
        yield lambda: read_attributes(objs)

    @contextmanager
    def update(self) -> Iterator[Timed]:
        """``obj.age += 1; obj.save()`` on M loaded objects inside ``atomic()``."""
        Person = self.Person
        objs = list(Person.select().where(Person.id <= self.config.batch))
        db = self.db

        def run() -> None:
            with db.atomic():
                for obj in objs:
                    obj.age += 1
                    obj.save()

        yield run

    @contextmanager
    def insert(self) -> Iterator[Timed]:
        """``Person.create(...)`` M times inside ``atomic()``."""
        Person = self.Person
        values = make_rows(self.config.batch, start=self.config.rows)
        db = self.db

        def run() -> None:
            with db.atomic():
                for name, email, age, score in values:
                    Person.create(name=name, email=email, age=age, score=score)

        yield run

    @contextmanager
    def prefetch(self) -> Iterator[Timed]:
        """``prefetch(Parent.select(), Child.select())``, then every child's name."""
        Parent, Child = self.Parent, self.Child

        def run() -> tuple[int, int]:
            parents = prefetch(Parent.select(), Child.select())
            return len(parents), read_children(parents)

        yield run

    @contextmanager
    def query(self) -> Iterator[Timed]:
        """``Person.select().where(Person.age == age).order_by(Person.id).limit(10)``, M times."""
        Person = self.Person
        ages = query_ages(self.config.batch)

        def run() -> int:
            return sum(
                len(list(Person.select().where(Person.age == age).order_by(Person.id).limit(10)))
                for age in ages
            )

        yield run

    #: Peewee's query is written with attribute expressions already
    query_expression = query

    @contextmanager
    def count(self) -> Iterator[Timed]:
        """``Person.select().where(Person.age == age).count()``, M times."""
        Person = self.Person
        ages = query_ages(self.config.batch)

        def run() -> int:
            return sum(Person.select().where(Person.age == age).count() for age in ages)

        yield run

    @contextmanager
    def get_by_email(self) -> Iterator[Timed]:
        """``Person.get(Person.email == email)`` for M emails."""
        Person = self.Person
        emails = lookup_emails(self.config)

        def run() -> int:
            return len([Person.get(Person.email == email) for email in emails])

        yield run

    @contextmanager
    def children_lazily(self) -> Iterator[Timed]:
        """``Parent.select()``, then every child's name through ``parent.children`` (a SELECT each)."""
        Parent = self.Parent

        def run() -> tuple[int, int]:
            parents = list(Parent.select())
            count = 0
            for parent in parents:
                for child in parent.children:
                    child.name  # noqa: B018
                    count += 1
            return len(parents), count

        yield run

    @contextmanager
    def to_dicts(self) -> Iterator[Timed]:
        """``model_to_dict(obj)`` of every loaded object."""
        objs = list(self.Person.select())
        yield lambda: [model_to_dict(obj) for obj in objs]

    @contextmanager
    def empty_session(self) -> Iterator[Timed]:
        """``with db.atomic(): pass``."""
        db = self.db
        count = self.config.rows

        def run() -> None:
            for _ in range(count):
                with db.atomic():
                    pass

        yield run


RUNNER = PeeweeRunner
