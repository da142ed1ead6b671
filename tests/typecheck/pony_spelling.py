"""Pony's ``class Person(db.Entity)`` for pyright, which accepts it (mypy cannot: README, Typing)."""

from typing import reveal_type

from nextorm import Database, Optional, Required, db_session

db = Database()


class Person(db.Entity):
    name = Required(str)
    nickname = Optional(str)


@db_session
def rename(person_id: int, name: str) -> str:
    person = Person[person_id]
    reveal_type(person)  # revealed: Person
    reveal_type(person.name)  # revealed: str
    person.name = name
    person.nickname = 3  # error
    return person.name
