"""A query's result (``fetch()``, ``q[:]``): a read-only ``QueryResult`` that can be reordered, and
entity objects ordered by primary key."""

from __future__ import annotations

import copy
import io
import pickle
import re

import pytest

from nextorm import Database, QueryResult, Required, db_session, select


@pytest.fixture
def people(db: Database) -> type:
    """Three people, ids 1-3 in the order Cid, Ann, Bob."""

    class Person(db.Entity):
        name = Required(str)
        age = Required(int)

    db.generate_mapping(create_tables=True)
    with db_session:
        for name, age in (("Cid", 30), ("Ann", 20), ("Bob", 40)):
            Person(name=name, age=age)  # ids 1, 2, 3
    return Person


@pytest.mark.parametrize(
    ("change", "title"),
    [
        (lambda r: r.append(None), "append"),
        (lambda r: r.extend([]), "extend"),
        (lambda r: r.insert(0, None), "insert"),
        (lambda r: r.pop(), "pop"),
        (lambda r: r.remove(r[0]), "remove"),
        (lambda r: r.clear(), "clear"),
        (lambda r: r.__setitem__(0, None), "item assignment"),
        (lambda r: r.__delitem__(0), "item deletion"),
        (lambda r: r.__iadd__([None]), "+="),
        (lambda r: r * 2, "*"),
    ],
)
def test_a_result_refuses_changes(people: type, change, title) -> None:
    """Every method that would change the items raises TypeError and leaves the result as it was."""
    with db_session:
        result = select(p for p in people)[:]
        with pytest.raises(
            TypeError, match=re.escape(f"In order to do {title}, cast QueryResult to list first")
        ):
            change(result)
        assert sorted(p.id for p in result) == [1, 2, 3]  # left as it was


def test_a_result_reads_as_a_list(people: type) -> None:
    """Reading works as on a list; + and slices give plain lists; to_list() gives one the caller owns."""
    with db_session:
        result = people.select().order_by(people.id).fetch()
        assert isinstance(result, QueryResult) and isinstance(result, list)
        assert result == [people[1], people[2], people[3]]
        assert len(result) == 3 and people[2] in result and result.index(people[3]) == 2
        assert result[1:] == [people[2], people[3]] and type(result[1:]) is list
        assert result + [None] == [people[1], people[2], people[3], None]  # noqa: RUF005 - + itself is tested
        assert [None] + result == [None, people[1], people[2], people[3]]  # noqa: RUF005
        assert type(result + []) is list  # noqa: RUF005
        owned = result.to_list()
        assert type(owned) is list and owned == result
        owned.append(None)  # the caller's own list changes, the result does not
        assert len(result) == 3


def test_a_result_reorders_in_place(people: type) -> None:
    """sort() (by primary key or a key), reverse() and shuffle() reorder the result itself."""
    with db_session:
        result = select(p for p in people).order_by(lambda p: p.name)[:]
        assert [p.name for p in result] == ["Ann", "Bob", "Cid"]
        result.sort()  # objects order by primary key
        assert [p.id for p in result] == [1, 2, 3]
        result.reverse()
        assert [p.id for p in result] == [3, 2, 1]
        result.sort(key=lambda p: p.age)
        assert [p.age for p in result] == [20, 30, 40]
        result.shuffle()
        assert sorted(p.id for p in result) == [1, 2, 3]


def test_a_result_of_values_pickles_and_copies(people: type) -> None:
    """A result of values pickles and copies as a QueryResult holding the same items."""
    with db_session:
        names = select(p.name for p in people).order_by(1)[:]
        assert names == ["Ann", "Bob", "Cid"]
        again = pickle.loads(pickle.dumps(names))
        assert isinstance(again, QueryResult) and again == names
        copied = copy.copy(names)
        assert isinstance(copied, QueryResult) and copied == names and copied is not names
        with pytest.raises(TypeError, match="append"):
            again.append("Dan")


def test_a_result_shows_its_objects(people: type) -> None:
    """show() prints the objects of a result as a table."""
    with db_session:
        out = io.StringIO()
        people.select().order_by(people.id)[:].show(stream=out)
        lines = out.getvalue().splitlines()
        assert [cell.strip() for cell in lines[0].split("|")] == ["id", "name", "age"]
        assert "Cid" in lines[2] and "Bob" in lines[4]


def test_objects_order_by_primary_key_new_ones_last(people: type) -> None:
    """Objects compare by primary key, new ones after them; comparing with a non-object raises TypeError."""
    with db_session:
        a, b, c = people[1], people[2], people[3]
        assert a < b < c and c > a and a <= a and b >= a and not (b < a)
        new1 = people(name="Dan", age=50)
        new2 = people(name="Eve", age=60)
        assert sorted([new2, c, new1, a, b]) == [a, b, c, new1, new2]
        pairs = sorted([(c, "x"), (a, "y"), (b, "z")])
        assert [p for p, _ in pairs] == [a, b, c]
        with pytest.raises(TypeError):
            _ = a < 1
