"""The ORM's workloads beside the driver doing the same work, each ratio measured in one run.

    pytest benchmarks/test_orm.py --benchmark-only --benchmark-json=orm.json
    python benchmarks/ratios.py orm.json

Each group holds the DB-API baseline (``sqlite3`` with hand-written SQL) and nextorm doing the
same work; nextorm's row is labelled with the implementation that loaded (``compiled``, or
``pure`` under ``NEXTORM_NO_EXTENSIONS=1``). Sizes: 10k objects per write batch, 10k rows loaded,
500 repeated queries. The README's "Performance" section quotes the ratios.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

import nextorm
from nextorm import Database, Optional, PrimaryKey, Required, Set, commit, db_session

ROWS = 10_000
BATCH = 10_000
QUERIES = 500
PARENTS = 200
ROUNDS = 7
IMPL = "compiled" if nextorm.COMPILED else "pure"
COLUMNS = ("id", "name", "email", "age", "score")


def person_rows(count: int, start: int = 0) -> list[tuple[Any, ...]]:
    """(name, email, age, score) rows, emails distinct."""
    return [(f"p{i}", f"p{i}@x.org", 18 + i % 73, i * 0.25) for i in range(start, start + count)]


class Fixture:
    """One SQLite file (in RAM where /dev/shm exists) with nextorm's mapping and a raw connection."""

    def __init__(self, unique_email: bool = False) -> None:
        self.dir = tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        path = os.path.join(self.dir.name, "bench.sqlite3")
        db = Database("sqlite", path, create_db=True)

        class Person(db.Entity):
            _table_ = "person"
            id = PrimaryKey(int, auto=True)
            name = Required(str)
            email = Optional(str, unique=unique_email, index=not unique_email)
            age = Required(int, index=True)
            score = Required(float)

        class Parent(db.Entity):
            _table_ = "parent"
            name = Required(str)
            children = Set("Child")

        class Child(db.Entity):
            _table_ = "child"
            name = Required(str)
            parent = Required(Parent, index=True)

        db.generate_mapping(create_tables=True)
        self.db, self.Person, self.Parent, self.Child = db, Person, Parent, Child
        self.raw = sqlite3.connect(path, isolation_level=None)
        self.raw.execute("BEGIN")
        self.raw.executemany(
            "INSERT INTO person (name, email, age, score) VALUES (?, ?, ?, ?)", person_rows(ROWS)
        )
        self.raw.executemany("INSERT INTO parent (name) VALUES (?)", [(f"r{i}",) for i in range(PARENTS)])
        self.raw.executemany(
            "INSERT INTO child (name, parent) VALUES (?, ?)",
            [(f"c{i}", i % PARENTS + 1) for i in range(PARENTS * 10)],
        )
        self.raw.execute("COMMIT")
        self.raw.isolation_level = ""  # the DB-API's implicit transactions, as the raw runner uses them

    def close(self) -> None:
        """Close both connections and remove the file."""
        self.raw.close()
        self.db.disconnect()
        self.dir.cleanup()


@pytest.fixture(scope="module")
def env() -> Iterator[Fixture]:
    """The database, mapped and filled."""
    fixture = Fixture()
    yield fixture
    fixture.close()


def timed(benchmark: Any, run: Any) -> Any:
    """``run`` measured ROUNDS times after one warm-up; what it returned."""
    return benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)


# -- update + commit ---------------------------------------------------------------------------------


@pytest.mark.benchmark(group="update+commit 10k objects")
def test_update_baseline_executemany(benchmark: Any, env: Fixture) -> None:
    """Baseline: one executemany UPDATE of 10k rows by id, then commit."""
    rows = env.raw.execute("SELECT id, age FROM person WHERE id <= ?", (BATCH,)).fetchall()
    env.raw.commit()

    def run() -> None:
        env.raw.executemany("UPDATE person SET age = ? WHERE id = ?", [(age + 1, pk) for pk, age in rows])
        env.raw.commit()

    timed(benchmark, run)


@pytest.mark.benchmark(group="update+commit 10k objects")
@pytest.mark.parametrize("impl", [IMPL])
def test_update(benchmark: Any, env: Fixture, impl: str) -> None:
    """``obj.age += 1`` on 10k loaded objects, then ``commit()``."""
    Person = env.Person
    with db_session:
        objs = Person.select(Person.id <= BATCH)[:]

        def run() -> None:
            for obj in objs:
                obj.age += 1
            commit()

        timed(benchmark, run)


# -- insert + commit ---------------------------------------------------------------------------------


@pytest.mark.benchmark(group="insert+commit 10k objects")
def test_insert_baseline_executemany(benchmark: Any, env: Fixture) -> None:
    """Baseline: one executemany INSERT of 10k rows (keys generated, not read back), then commit."""
    values = person_rows(BATCH, start=ROWS)

    def run() -> None:
        env.raw.executemany("INSERT INTO person (name, email, age, score) VALUES (?, ?, ?, ?)", values)
        env.raw.commit()

    timed(benchmark, run)


@pytest.mark.benchmark(group="insert+commit 10k objects")
@pytest.mark.parametrize("impl", [IMPL])
def test_insert(benchmark: Any, env: Fixture, impl: str) -> None:
    """``Person(...)`` 10k times (keys generated), then ``commit()``."""
    Person = env.Person
    values = person_rows(BATCH, start=ROWS)

    def run() -> None:
        with db_session:
            for name, email, age, score in values:
                Person(name=name, email=email, age=age, score=score)

    timed(benchmark, run)


# -- queries ------------------------------------------------------------------------------------------


def ages() -> list[int]:
    """The ages the repeated queries filter on."""
    return [18 + i % 73 for i in range(QUERIES)]


@pytest.mark.benchmark(group="select+order_by+limit x500")
def test_query_baseline_fetchall(benchmark: Any, env: Fixture) -> None:
    """Baseline: SELECT ... WHERE age = ? ORDER BY id LIMIT 10, fetchall(), 500 times."""
    sql = "SELECT id, name, email, age, score FROM person WHERE age = ? ORDER BY id LIMIT 10"
    execute = env.raw.execute
    assert (
        timed(benchmark, lambda: sum(len(execute(sql, (age,)).fetchall()) for age in ages())) == QUERIES * 10
    )


@pytest.mark.benchmark(group="select+order_by+limit x500")
@pytest.mark.parametrize("impl", [IMPL])
def test_query(benchmark: Any, env: Fixture, impl: str) -> None:
    """``Person.select(Person.age == age).order_by(Person.id)[:10]``, 500 times in one session."""
    Person = env.Person
    with db_session:
        run = lambda: sum(len(Person.select(Person.age == age).order_by(Person.id)[:10]) for age in ages())  # noqa: E731
        assert timed(benchmark, run) == QUERIES * 10


@pytest.mark.benchmark(group="count() x500")
def test_count_baseline_fetchall(benchmark: Any, env: Fixture) -> None:
    """Baseline: SELECT COUNT(*) ... WHERE age = ?, 500 times."""
    sql = "SELECT COUNT(*) FROM person WHERE age = ?"
    execute = env.raw.execute
    assert timed(benchmark, lambda: sum(execute(sql, (age,)).fetchone()[0] for age in ages())) > 0


@pytest.mark.benchmark(group="count() x500")
@pytest.mark.parametrize("impl", [IMPL])
def test_count(benchmark: Any, env: Fixture, impl: str) -> None:
    """``Person.select(Person.age == age).count()``, 500 times."""
    Person = env.Person
    with db_session:
        assert timed(benchmark, lambda: sum(Person.select(Person.age == age).count() for age in ages())) > 0


@pytest.mark.benchmark(group="get(email=...) x500")
def test_get_baseline_fetchall(benchmark: Any, env: Fixture) -> None:
    """Baseline: SELECT ... WHERE email = ? LIMIT 2 and fetchall(), 500 emails: a get's work (it must
    see a second match to report it)."""
    sql = "SELECT id, name, email, age, score FROM person WHERE email = ? LIMIT 2"
    execute = env.raw.execute
    emails = [f"p{i}@x.org" for i in range(QUERIES)]

    def run() -> list[Any]:
        found = [execute(sql, (e,)).fetchall() for e in emails]
        assert all(len(rows) == 1 for rows in found)
        return found

    assert timed(benchmark, run)[-1] is not None


@pytest.mark.benchmark(group="get(email=...) x500")
@pytest.mark.parametrize("impl", [IMPL])
def test_get(benchmark: Any, env: Fixture, impl: str) -> None:
    """``Person.get(email=...)`` of 500 emails, each in a fresh session (so each is a SELECT)."""
    Person = env.Person
    emails = [f"p{i}@x.org" for i in range(QUERIES)]

    def run() -> list[Any]:
        with db_session:
            return [Person.get(email=e) for e in emails]

    assert timed(benchmark, run)[-1] is not None


@pytest.mark.benchmark(group="N+1 over a Set, 200 parents")
def test_children_baseline_fetchall(benchmark: Any, env: Fixture) -> None:
    """Baseline: SELECT the parents, then one SELECT of the children per parent."""
    execute = env.raw.execute

    def run() -> int:
        count = 0
        for parent in execute("SELECT id, name FROM parent").fetchall():
            count += len(
                execute("SELECT id, name, parent FROM child WHERE parent = ?", (parent[0],)).fetchall()
            )
        env.raw.commit()
        return count

    assert timed(benchmark, run) == PARENTS * 10


@pytest.mark.benchmark(group="N+1 over a Set, 200 parents")
@pytest.mark.parametrize("impl", [IMPL])
def test_children_lazily(benchmark: Any, env: Fixture, impl: str) -> None:
    """``Parent.select()[:]`` then ``len(parent.children)`` of each, lazily loaded, in a fresh session."""
    Parent = env.Parent

    def run() -> int:
        with db_session:
            return sum(len(parent.children) for parent in Parent.select()[:])

    assert timed(benchmark, run) == PARENTS * 10


# -- loading and dicts --------------------------------------------------------------------------------


@pytest.mark.benchmark(group="to_dict() of 10k objects")
def test_to_dict_baseline_zip(benchmark: Any, env: Fixture) -> None:
    """Baseline: ``dict(zip(names, row))`` of 10k row tuples."""
    rows = env.raw.execute("SELECT id, name, email, age, score FROM person WHERE id <= ?", (ROWS,)).fetchall()
    env.raw.commit()
    assert len(timed(benchmark, lambda: [dict(zip(COLUMNS, row)) for row in rows])) == ROWS


@pytest.mark.benchmark(group="to_dict() of 10k objects")
@pytest.mark.parametrize("impl", [IMPL])
def test_to_dict(benchmark: Any, env: Fixture, impl: str) -> None:
    """``obj.to_dict()`` of 10k loaded objects."""
    Person = env.Person
    with db_session:
        objs = Person.select(Person.id <= ROWS)[:]
        assert len(timed(benchmark, lambda: [obj.to_dict() for obj in objs])) == ROWS


@pytest.mark.benchmark(group="load 10k rows")
def test_load_baseline_fetchall(benchmark: Any, env: Fixture) -> None:
    """Baseline: fetchall() of 10k rows."""
    sql = "SELECT id, name, email, age, score FROM person WHERE id <= ?"

    def run() -> list[Any]:
        rows = env.raw.execute(sql, (ROWS,)).fetchall()
        env.raw.commit()
        return rows

    assert len(timed(benchmark, run)) == ROWS


@pytest.mark.benchmark(group="load 10k rows")
@pytest.mark.parametrize("impl", [IMPL])
def test_load(benchmark: Any, env: Fixture, impl: str) -> None:
    """``Person.select(Person.id <= 10k)[:]`` in a fresh session."""
    Person = env.Person

    def run() -> list[Any]:
        with db_session:
            return Person.select(Person.id <= ROWS)[:]

    assert len(timed(benchmark, run)) == ROWS


@pytest.fixture(scope="module")
def unique_env() -> Iterator[Fixture]:
    """The same database with ``Person.email`` declared unique."""
    fixture = Fixture(unique_email=True)
    yield fixture
    fixture.close()


@pytest.mark.benchmark(group="load 10k rows: unique attribute / none")
def test_load_baseline_no_unique_attribute(benchmark: Any, env: Fixture) -> None:
    """Baseline of this group: nextorm's own load of the entity without a unique attribute."""
    Person = env.Person

    def run() -> list[Any]:
        with db_session:
            return Person.select(Person.id <= ROWS)[:]

    assert len(timed(benchmark, run)) == ROWS


@pytest.mark.benchmark(group="load 10k rows: unique attribute / none")
@pytest.mark.parametrize("impl", [IMPL])
def test_load_with_a_unique_attribute(benchmark: Any, unique_env: Fixture, impl: str) -> None:
    """As test_load, the entity declaring ``email`` unique (its values indexed in the session)."""
    Person = unique_env.Person

    def run() -> list[Any]:
        with db_session:
            return Person.select(Person.id <= ROWS)[:]

    assert len(timed(benchmark, run)) == ROWS
