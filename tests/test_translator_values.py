"""Values in queries (README "Queries in Pony's syntax"): arithmetic, functions, selected values,
aggregates, ordering by values, on SQLite and PostgreSQL; each generator form beside the
attribute-expression form it compiles to."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest

from nextorm import Database, Optional, PrimaryKey, Required, db_session
from nextorm.expressions import coalesce, concat

EMPLOYEES = [
    # name, dept, salary, hired, born
    ("Ann", "eng", 100, datetime(2020, 3, 4, 10, 30, 15), date(1990, 5, 1)),
    ("bob ", "eng", 80, datetime(2021, 7, 1, 9, 0, 0), None),
    ("Cid", "ops", 60, datetime(2019, 1, 2, 23, 59, 1), date(1985, 12, 24)),
    ("Dee", "ops", 60, datetime(2022, 11, 30, 0, 0, 0), date(2000, 2, 29)),
    ("  Eve", "hr", 90, datetime(2020, 3, 5, 12, 0, 0), date(1990, 7, 7)),
]


@pytest.fixture
def Emp(db: Database) -> Iterator[Any]:
    """An entity with str, int, datetime and date columns holding EMPLOYEES (ids 1..5)."""

    class Emp(db.Entity):
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        dept = Required(str)
        salary = Required(int)
        hired = Required(datetime)
        born = Optional(date)

    db.generate_mapping(create_tables=True)
    with db_session:
        for name, dept, salary, hired, born in EMPLOYEES:
            Emp(name=name, dept=dept, salary=salary, hired=hired, born=born)
    yield Emp


def ids(objects: Any) -> list[int]:
    """The sorted ids of ``objects``."""
    return sorted(o.id for o in objects)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (lambda E: E.salary + 10 > 95, [1, 5]),
        (lambda E: E.salary * 2 == E.salary + 60, [3, 4]),
        (lambda E: E.salary - E.id == 97, []),
        (lambda E: E.salary / 7 > 12.5, [1, 5]),
        (lambda E: E.salary // 7 == 8, [3, 4]),
        (lambda E: E.salary % 7 == 4, [3, 4]),
        (lambda E: abs(E.id - 3) == 2, [1, 5]),
        (lambda E: E.name.upper() == "ANN", [1]),
        (lambda E: E.name.lower() == "ann", [1]),
        (lambda E: E.name.strip() == "bob", [2]),
        (lambda E: E.name.lstrip() == "Eve", [5]),
        (lambda E: E.name.rstrip() == "bob", [2]),
        (lambda E: E.name.length() == 4, [2]),
        (lambda E: E.name[1:3] == "nn", [1]),
        (lambda E: E.name[0] == "D", [4]),
        (lambda E: E.name + "!" == "Ann!", [1]),
        (lambda E: concat(E.name, "-", E.salary) == "Cid-60", [3]),
        (lambda E: E.name.lower().startswith("a"), [1]),
        (lambda E: E.name.upper().endswith("EE"), [4]),
        (lambda E: E.name.lower().contains("ve"), [5]),
        (lambda E: E.hired.year == 2020, [1, 5]),
        (lambda E: E.hired.month == 3, [1, 5]),
        (lambda E: E.hired.day == 30, [4]),
        (lambda E: E.hired.hour == 23, [3]),
        (lambda E: E.hired.minute == 30, [1]),
        (lambda E: E.hired.second == 15, [1]),
        (lambda E: E.hired.date() == date(2020, 3, 4), [1]),
        (lambda E: E.born.year < 1990, [3]),
        (lambda E: coalesce(E.born, date(1970, 1, 1)) < date(1980, 1, 1), [2]),
        (lambda E: E.salary.in_([60, 90]), [3, 4, 5]),
        (lambda E: (E.salary + 0).in_([60, 90]), [3, 4, 5]),
        (lambda E: E.born.is_(None), [2]),
        (lambda E: E.born.year.is_(None), [2]),
        (lambda E: E.salary > E.id * 30, [1, 2]),
    ],
)
def test_value_expressions_filter_on_both_databases(Emp: Any, condition: Any, expected: list[int]) -> None:
    """Arithmetic, string and date functions of attributes compile to SQL both databases run."""
    with db_session:
        assert ids(Emp.select(condition(Emp))) == expected
