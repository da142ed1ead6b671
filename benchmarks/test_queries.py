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

from nextorm import Database, Required, count, db_session, max, select
from nextorm.expressions import Aggregate

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


# -- values and aggregates: the same statement from a generator, from expressions, as raw SQL -----------


def generator_values(Person: Any, age: int) -> Any:
    """Values and a computed value of the rows, as a generator."""
    return select((p.name, p.age * 2) for p in Person if p.age == age and len(p.name) > 4)


def expression_values(Person: Any, age: int) -> Any:
    """The same values as attribute expressions."""
    return Person.select((Person.age == age) & (Person.name.length() > 4)).values(Person.name, Person.age * 2)


def generator_groups(Person: Any, age: int) -> Any:
    """Rows grouped by a value with aggregates and a HAVING condition, as a generator."""
    return select((p.age, count(p), max(p.name)) for p in Person if p.age < age and count(p) > 5)


def expression_groups(Person: Any, age: int) -> Any:
    """The same groups as attribute expressions."""
    return Person.select(
        (Person.age < age) & (Aggregate("count", Person.id._value_(), distinct=True) > 5)
    ).values(
        Person.age,
        Aggregate("count", Person.id._value_(), distinct=True),
        Aggregate("max", Person.name._value_()),
    )


VALUE_FORMS = {
    "values": (
        generator_values,
        expression_values,
        'SELECT DISTINCT "name", ("age" * ?) FROM "Person" WHERE ("age" = ? AND length("name") > ?)',
        (2, 7, 4),
        10,
    ),
    "groups": (
        generator_groups,
        expression_groups,
        'SELECT "age", COUNT(DISTINCT "id"), MAX("name") FROM "Person" WHERE "age" < ? GROUP BY "age" HAVING COUNT(DISTINCT "id") > ?',
        (10, 5),
        10,
    ),
}


@pytest.mark.benchmark(group="values run")
@pytest.mark.parametrize("form", ["generator", "expression", "raw"])
@pytest.mark.parametrize("kind", list(VALUE_FORMS))
def test_values_run(benchmark: Any, Person: Any, session: None, kind: str, form: str) -> None:
    """Building and running a query of values (a tuple per row) three ways: generator, expressions, raw SQL."""
    generator, expression, sql, params, rows = VALUE_FORMS[kind]
    age = 7 if kind == "values" else 10
    assert generator(Person, age).sql() == (sql, list(params)) == expression(Person, age).sql()
    if form == "raw":
        connection = Person._database_.get_connection()
        result = benchmark(lambda: connection.execute(sql, params).fetchall())
    else:
        make = generator if form == "generator" else expression
        result = benchmark(lambda: make(Person, age).fetch())
    assert len(result) == rows
