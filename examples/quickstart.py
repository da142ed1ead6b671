"""A tour of nextorm on the built-in SQLite: entities, sessions, queries, optimistic checks."""

from __future__ import annotations

import nextorm
from nextorm import Database, Entity, Optional, PrimaryKey, Required, commit, db_session, desc, flush

db = Database("sqlite", ":memory:")


class Person(Entity, db=db):
    _table_ = "person"
    id = PrimaryKey(int, auto=True)
    name = Required(str, max_len=100)
    email = Optional(str, unique=True)
    age = Required(int, default=0)


db.generate_mapping(create_tables=True)


@db_session
def populate() -> None:
    """Create a few people; the session commits when the function returns."""
    for name, age in [("Ann", 31), ("Bob", 17), ("Cid", 45)]:
        Person(name=name, email=f"{name.lower()}@example.com", age=age)


def main() -> None:
    print(f"nextorm {nextorm.__version__}, compiled hot path: {nextorm.COMPILED}")
    populate()
    with db_session:
        adults = Person.select(Person.age >= 18).order_by(desc(Person.age))
        print("adults, oldest first:", [p.name for p in adults])
        ann = Person.get(name="Ann")
        assert ann is not None  # get() gives None when no row matches
        assert Person[ann.id] is ann  # the identity map: one object per row per session
        ann.age += 1  # tracked: only this column is sent, checked against the value read
        bea = Person(name="Bea", age=22)
        flush()  # INSERT/UPDATE go out now; bob gets its id
        print("new id:", bea.id, "count:", Person.select().count())
        commit()
    print("after the session, loaded values stay readable:", ann.name, ann.age)


if __name__ == "__main__":
    main()
