"""IntArray, StrArray and FloatArray attributes and their queries (docs/entity-model.md)."""

from __future__ import annotations

from typing import Any

import pytest

from nextorm import (
    AttributeTypeError,
    Database,
    FloatArray,
    IntArray,
    Optional,
    PrimaryKey,
    Required,
    StrArray,
    db_session,
    select,
)
from nextorm.types import TrackedArray


@pytest.fixture
def Foo(db: Database) -> Any:
    """Pony's array test entity: arrays of each item type, Optional ones with and without nullable."""

    class Foo(db.Entity):
        id = PrimaryKey(int)
        numbers = Required(IntArray, index=True)
        floats = Required(FloatArray)
        words = Required(StrArray)
        extra = Optional(IntArray)
        maybe = Optional(IntArray, nullable=True)

    db.generate_mapping(create_tables=True)
    with db_session:
        Foo(id=1, numbers=[10, 20, 30, 40, 50], floats=[1.1, 2, 3.3], words=["foo", "bar"])
        Foo(id=2, numbers=[], floats=[], words=["baz"])
    return Foo


def test_arrays_round_trip_and_default_to_empty(Foo: Any) -> None:
    """Lists come back as tracked lists; an Optional array is [] unless nullable=True (then None)."""
    with db_session:
        foo = Foo[1]
        assert foo.numbers == [10, 20, 30, 40, 50] and type(foo.numbers) is TrackedArray
        assert foo.floats == [1.1, 2.0, 3.3] and type(foo.floats[1]) is float
        assert (foo.words, foo.extra, foo.maybe) == (["foo", "bar"], [], None)


def test_in_place_changes_of_arrays_are_saved(Foo: Any) -> None:
    """append, item assignment, extend and slices mark the object changed."""
    with db_session:
        foo = Foo[1]
        foo.extra.append(1)
        foo.words[0] = "x"
        foo.numbers[1:3] = [0]
        foo.floats.extend([4])
    with db_session:
        foo = Foo[1]
        assert (foo.extra, foo.words, foo.numbers, foo.floats) == (
            [1],
            ["x", "bar"],
            [10, 0, 40, 50],
            [1.1, 2.0, 3.3, 4.0],
        )


@pytest.mark.parametrize(
    "change",
    [
        lambda foo: foo.words.append(123),
        lambda foo: foo.words.__setitem__(0, 123),
        lambda foo: foo.words.extend(["str", 123]),
        lambda foo: foo.numbers.append("1"),
        lambda foo: foo.numbers.append(True),
    ],
)
def test_items_of_the_wrong_type_are_refused_before_any_change(Foo: Any, change: Any) -> None:
    """Pony's message "Cannot store 'int' item in array of 'str'" (a TypeError), nothing changed."""
    with db_session:
        foo = Foo[1]
        with pytest.raises(AttributeTypeError, match=r"Cannot store '(int|str|bool)' item in array of"):
            change(foo)
        assert foo.words == ["foo", "bar"] and foo.numbers == [10, 20, 30, 40, 50]
        assert foo._status_ == 2  # LOADED: nothing queued


def test_in_on_an_array_value_tests_an_item_or_every_item_of_a_list(Foo: Any) -> None:
    """``10 in foo.numbers`` and ``[20, 10] in foo.numbers`` (Pony's subset test)."""
    with db_session:
        foo = Foo[1]
        assert 10 in foo.numbers and 1000 not in foo.numbers
        assert [20, 10] in foo.numbers and [10, 1000] not in foo.numbers and [] in foo.numbers


def ids(query: Any) -> list[int]:
    """The ids a query returns, sorted."""
    return sorted(f.id for f in query)


def test_array_queries(Foo: Any) -> None:
    """``in`` (an item, a list), ``len()``, indexing from both ends and equality in queries."""
    wanted = [10, 20, 50]
    with db_session:
        assert ids(select(f for f in Foo if 10 in f.numbers)) == [1]
        assert ids(select(f for f in Foo if wanted in f.numbers)) == [1]
        assert ids(select(f for f in Foo if [] in f.numbers)) == [1, 2]
        assert ids(select(f for f in Foo if [10, 60] in f.numbers)) == []
        assert ids(select(f for f in Foo if 1.1 in f.floats)) == [1]
        assert ids(select(f for f in Foo if "baz" in f.words)) == [2]
        assert ids(select(f for f in Foo if "baz" not in f.words)) == [1]
        assert ids(select(f for f in Foo if len(f.numbers) == 0)) == [2]
        assert ids(select(f for f in Foo if len(f.words) >= 1)) == [1, 2]
        assert ids(select(f for f in Foo if f.numbers[0] == 10)) == [1]
        assert ids(select(f for f in Foo if f.numbers[-2] == 40)) == [1]
        assert ids(select(f for f in Foo if f.numbers[7] is None)) == [1, 2]
        assert ids(select(f for f in Foo if f.numbers == [10, 20, 30, 40, 50])) == [1]
        assert ids(Foo.select(Foo.words.contains(["bar", "foo"]))) == [1]


def test_a_query_item_of_the_wrong_type_is_refused(Foo: Any) -> None:
    """``"x" in f.numbers`` is an AttributeTypeError naming the attribute."""
    with db_session, pytest.raises(AttributeTypeError, match=r"Foo\.numbers"):
        select(f for f in Foo if "x" in f.numbers)[:]


def test_selected_items_slices_and_lengths_read_back_as_python_values(Foo: Any) -> None:
    """``f.numbers[i]``, ``f.numbers[a:b]`` and ``len(f.numbers)`` selected: Python's indexes and slices."""
    with db_session:
        one = Foo.id == 1
        def first(query: Any) -> Any:
            return query.filter(one).first()

        assert first(select(f.numbers[0] for f in Foo)) == 10
        assert first(select(f.numbers[-1] for f in Foo)) == 50
        assert first(select(f.numbers[9] for f in Foo)) is None  # past the end
        assert first(select(f.floats[1] for f in Foo)) == 2.0
        assert first(select(f.words[-1] for f in Foo)) == "bar"
        for start, stop in [(1, -1), (2, 4), (None, 3), (2, None), (-2, None), (10, -10), (-10, 2), (None, None)]:
            expected = [10, 20, 30, 40, 50][start:stop]
            assert first(select(f.numbers[start:stop] for f in Foo)) == expected, (start, stop)
        assert first(select(f.words[1:] for f in Foo)) == ["bar"]
        assert first(select(f.floats[:2] for f in Foo)) == [1.1, 2.0]
        assert select(f.numbers[1:] for f in Foo if f.id == 2).first() == []
        assert first(select((f.numbers[1], len(f.numbers)) for f in Foo)) == (20, 5)


@pytest.fixture
def Bar(db: Database) -> Any:
    """An array with int attributes to index it by."""

    class Bar(db.Entity):
        id = PrimaryKey(int)
        a = Required(int)
        b = Required(int)
        c = Required(int)
        numbers = Required(IntArray)
        maybe = Optional(IntArray, nullable=True)

    db.generate_mapping(create_tables=True)
    with db_session:
        Bar(id=1, a=1, b=3, c=-2, numbers=[10, 20, 30, 40, 50])
        Bar(id=2, a=0, b=-1, c=5, numbers=[7, 8])
    return Bar


def test_indexes_and_slice_bounds_may_read_the_query_object(Bar: Any) -> None:
    """``f.numbers[f.a]`` and ``f.numbers[f.a:f.c]`` use each row's values, negative from the end."""
    rows = {1: (1, 3, -2, [10, 20, 30, 40, 50]), 2: (0, -1, 5, [7, 8])}
    x = 1
    with db_session:
        def by_id(query: Any) -> dict[int, Any]:
            return dict(query[:])

        assert by_id(select((f.id, f.numbers[f.a]) for f in Bar)) == {1: 20, 2: 7}
        assert by_id(select((f.id, f.numbers[f.c]) for f in Bar)) == {1: 40, 2: None}
        assert by_id(select((f.id, f.numbers[f.a + x]) for f in Bar)) == {1: 30, 2: 8}
        for name, query in [
            ("a:c", select((f.id, f.numbers[f.a : f.c]) for f in Bar)),
            ("x:b", select((f.id, f.numbers[x : f.b]) for f in Bar)),
            (":b", select((f.id, f.numbers[: f.b]) for f in Bar)),
            ("c:", select((f.id, f.numbers[f.c :]) for f in Bar)),
        ]:
            got = by_id(query)
            for id_, (a, b, c, numbers) in rows.items():
                start, stop = {"a:c": (a, c), "x:b": (x, b), ":b": (None, b), "c:": (c, None)}[name]
                assert got[id_] == numbers[start:stop], (name, id_)
        assert sorted(select(f.id for f in Bar if f.numbers[f.a] == 20)) == [1]
        assert sorted(select(f.id for f in Bar if f.numbers[f.b] > f.numbers[0])) == [1, 2]


def test_a_slice_of_a_null_array_is_none(Bar: Any) -> None:
    """A slice of an array column holding NULL is None, as the column itself reads."""
    with db_session:
        assert select(f.maybe[1:] for f in Bar if f.id == 1).first() is None


def test_bad_indexes_and_slices_name_the_attribute(Foo: Any) -> None:
    """A step, a str index or a float value as an index is a QueryError naming the array."""
    from nextorm import QueryError

    with db_session:
        with pytest.raises(QueryError, match=r"slice of Foo\.numbers .* no step"):
            select(f.numbers[::2] for f in Foo)[:]
        with pytest.raises(QueryError, match=r"index into Foo\.numbers is an int, got 'x'"):
            select(f.numbers["x"] for f in Foo)[:]
        with pytest.raises(QueryError, match=r"index into Foo\.numbers is an int, got .*floats"):
            select(f.numbers[f.floats[0]] for f in Foo)[:]
