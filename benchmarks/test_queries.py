"""Query forms side by side: Pony's generator and lambda syntax, attribute expressions, raw SQL.

``pytest benchmarks/test_queries.py --benchmark-only``. Group "build" times making the query
object alone (the translation is cached per code object, so a repeated generator query only binds
its values); group "run" times building and running it, 10 objects out of 1,000 in the identity
map of one session. The README's "Queries in Pony's syntax" quotes the ratios.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nextorm import Database, Required, db_session, select

ROWS = 1000


@pytest.fixture(scope="module")
def Person() -> Iterator[Any]:
    """A Person table of 1,000 rows in in-memory SQLite."""
    db = Database("sqlite", ":memory:")

    class Person(db.Entity):
        name = Required(str)
        age = Required(int)

    db.generate_mapping(create_tables=True)
    with db_session:
        for i in range(ROWS):
            Person(name=f"name{i}", age=i % 100)
    yield Person
    db.disconnect()


@pytest.fixture
def session() -> Iterator[None]:
    """One open db_session around the measured calls."""
    with db_session:
        yield


def generator_query(Person: Any, age: int, prefix: str) -> Any:
    """The query as a generator."""
    return select(p for p in Person if p.age == age and p.name.startswith(prefix))


def lambda_query(Person: Any, age: int, prefix: str) -> Any:
    """The query as a lambda."""
    return Person.select(lambda p: p.age == age and p.name.startswith(prefix))


def expression_query(Person: Any, age: int, prefix: str) -> Any:
    """The query as attribute expressions."""
    return Person.select((Person.age == age) & Person.name.startswith(prefix))


FORMS = {"generator": generator_query, "lambda": lambda_query, "expression": expression_query}


@pytest.mark.benchmark(group="build")
@pytest.mark.parametrize("form", list(FORMS))
def test_build(benchmark: Any, Person: Any, session: None, form: str) -> None:
    """Making the query object (translation cached after the first call)."""
    make = FORMS[form]
    query = benchmark(make, Person, 7, "name")
    assert query.sql() == expression_query(Person, 7, "name").sql()


@pytest.mark.benchmark(group="run")
@pytest.mark.parametrize("form", list(FORMS))
def test_run(benchmark: Any, Person: Any, session: None, form: str) -> None:
    """Building and running the query: 10 objects, already in the identity map."""
    make = FORMS[form]
    result = benchmark(lambda: make(Person, 7, "name").fetch())
    assert len(result) == ROWS // 100


@pytest.mark.benchmark(group="run")
def test_run_raw_sql(benchmark: Any, Person: Any, session: None) -> None:
    """The same rows through raw SQL (``select_by_sql`` with bound values)."""
    sql = 'SELECT * FROM "Person" WHERE "age" = $age AND instr("name", $prefix) = 1'

    def run() -> list[Any]:
        return Person.select_by_sql(sql, {"age": 7, "prefix": "name"})

    assert len(benchmark(run)) == ROWS // 100
