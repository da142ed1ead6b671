"""Runs a fixed set of Pony-syntax queries on in-memory SQLite and prints what they compiled to.

Run by tests/test_translator_versions.py under every Python found, whose outputs must agree:
the statement, the parameters and the result of each query, or its error.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from nextorm import (
    Database,
    Optional,
    Required,
    TranslationError,
    count,
    db_session,
    desc,
    raw_sql,
    select,
    sum,
)

db = Database("sqlite", ":memory:")


class Person(db.Entity):
    name = Required(str)
    age = Required(int)
    email = Optional(str)
    active = Required(bool, default=True)


db.generate_mapping(create_tables=True)

LIMIT = 30


def queries(low: int, names: list[str]) -> dict[str, Any]:
    """Each query of the set by name: a Query, or the error it raised."""

    class Box:
        age = 40

    box = Box()
    built: dict[str, Any] = {}
    forms = {
        "generator": lambda: select(p for p in Person if p.age > low and p.active),
        "multiline": lambda: select(
            p for p in Person if p.age >= low if p.email is not None or p.name in names
        ),
        "global-and-attribute": lambda: select(p for p in Person if LIMIT < p.age <= box.age),
        "lambda": lambda: Person.select(lambda p: not p.active or p.name.startswith("A")),
        "two-lambdas-one-line": lambda: Person.select(lambda p: p.age > 1).filter(lambda q: q.age < 50),
        "text": lambda: select("p for p in Person if p.age < low and 'n' in p.name"),
        "order": lambda: Person.select(lambda p: p.age > 0).order_by(lambda p: (desc(p.age), p.name)),
        "arithmetic": lambda: select(p.name for p in Person if p.age + 1 > low),
        "values-tuple": lambda: select(
            (p.name, p.age * 2, len(p.name)) for p in Person if p.name.lower() != "bob"
        ),
        "aggregates-grouped": lambda: select(
            (p.active, count(p), sum(p.age)) for p in Person if count(p) > 1
        ),
        "f-string": lambda: select(p for p in Person if f"{p.name}:{p.age}" == "Ann:20"),
        "string-functions": lambda: select(
            p.name.upper()[0:2] for p in Person if p.name.strip().endswith("n")
        ),
        "order-position": lambda: select((p.name, p.age) for p in Person).order_by(-2),
        "raw-sql": lambda: select(p for p in Person if raw_sql('"age" > $low')),
        "lambda-values": lambda: Person.select(lambda p: abs(p.age - 35) < 10 and max(p.age, 30) == 30),
        "unsupported": lambda: select(p for p in Person if p.age**2 > low),
    }
    for name, make in forms.items():
        try:
            built[name] = make()
        except TranslationError as exc:
            built[name] = exc
    return built


def _plain(row: Any) -> Any:
    """A result row as JSON: an object by its name, a tuple as a list."""
    if isinstance(row, tuple):
        return [_plain(item) for item in row]
    return row.name if isinstance(row, Person) else row


def main() -> None:
    with db_session:
        for i, (name, email) in enumerate([("Ann", "a@x"), ("Bob", None), ("Cyn", None), ("Dan", "d@x")]):
            Person(name=name, age=20 + 10 * i, email=email, active=i != 2)
    report = {}
    with db_session:
        for name, query in queries(25, ["Bob"]).items():
            if isinstance(query, Exception):
                report[name] = {"error": type(query).__name__, "message": str(query).split(" at line ")[0]}
            else:
                result = [_plain(row) for row in query]
                ordered = name.startswith("order")
                report[name] = {"sql": query.sql(), "result": result if ordered else sorted(result, key=repr)}
    print(json.dumps({"python": sys.version.split()[0], "queries": report}, sort_keys=True))


if __name__ == "__main__":
    main()
