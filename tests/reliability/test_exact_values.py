"""Values are stored exactly or refused (README: Column types), on both databases and both twins."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from nextorm import (
    Json,
    ObjectCopyError,
    Optional,
    OrmError,
    QueryError,
    Required,
    SerializationFailure,
    TransactionIntegrityError,
    ValidationError,
    db_session,
    desc,
)

PLUS5 = timezone(timedelta(hours=5))
MINUS3 = timezone(timedelta(hours=-3))


def declare(storage: Any) -> tuple[Any, Any]:
    """A database with an ``Item`` entity holding one attribute of every exact type; returns (db, Item)."""
    db = storage.database()

    class Item(db.Entity):
        _table_ = "item"
        name = Required(str)
        price = Optional(Decimal, 20, 2)
        wide = Optional(Decimal, 40, 10)
        share = Optional(Decimal, min=0, max=100)
        score = Optional(float)
        when = Optional(datetime, tz_aware=True)
        at = Optional(time)
        took = Optional(timedelta)
        data = Optional(Json)

    db.generate_mapping(create_tables=True)
    return db, Item


def names(objects: Any) -> list[str]:
    """The names of ``objects`` in order."""
    return [obj.name for obj in objects]


# -- Decimal ------------------------------------------------------------------------------------


def test_decimal_keeps_every_digit_and_the_scale(storage: Any) -> None:
    """Each value reads back, in a new session and from a plain connection, with every digit."""
    _, Item = declare(storage)
    values = {
        "big": (Decimal("123456789012345678.91"), "123456789012345678.91"),
        "tenth": (Decimal("0.10"), "0.10"),
        "short": (Decimal("0.1"), "0.10"),
        "whole": (Decimal("5"), "5.00"),
        "negative": (Decimal("-0.01"), "-0.01"),
        "zero": (Decimal("-0"), "0.00"),
        "zero with exponent": (Decimal("0E-10"), "0.00"),
        "trailing zeros": (Decimal("1.2300"), "1.23"),
    }
    wide = Decimal("123456789012345678901234567890.0123456789")
    with db_session:
        for name, (value, _) in values.items():
            Item(name=name, price=value, wide=wide)
    with db_session:
        for name, (value, text) in values.items():
            item = Item.get(name=name)
            assert item.price == value
            assert str(item.price) == text
            assert item.wide == wide and str(item.wide) == str(wide)
    stored = dict(storage.fetch("SELECT name, price FROM item"))
    assert {name: Decimal(str(stored[name])) for name in values} == {n: v for n, (v, _) in values.items()}


def test_decimal_queries_compare_and_order_by_value(storage: Any) -> None:
    """==, <, >, in_ and order_by follow the numbers, not their text, even beyond a float's digits."""
    db, Item = declare(storage)
    prices = {
        "a": "9.50",
        "b": "10.00",
        "c": "-2.00",
        "d": "100.25",
        "e": "0.10",
        "f": "123456789012345678.91",
        "g": "123456789012345678.92",
    }
    with db_session:
        for name, price in prices.items():
            Item(name=name, price=Decimal(price))
    with db_session:
        order = Item.select().order_by(Item.price)
        assert names(order) == ["c", "e", "a", "b", "d", "f", "g"]
        assert names(Item.select().order_by(desc(Item.price))) == ["g", "f", "d", "b", "a", "e", "c"]
        assert sorted(names(Item.select(Item.price > Decimal("9.6")))) == ["b", "d", "f", "g"]
        assert sorted(names(Item.select(Item.price < 10))) == ["a", "c", "e"]
        assert names(Item.select(Item.price == Decimal("10"))) == ["b"]
        assert names(Item.select(Item.price == Decimal("123456789012345678.92"))) == ["g"]
        many = [Decimal("10"), Decimal("0.1")] + [Decimal(n) for n in range(1000, 1020)]
        assert sorted(names(Item.select(Item.price.in_(many)))) == ["b", "e"]
        assert sorted(names(Item.select(Item.price.in_([Decimal("-2"), Decimal("9.5")])))) == ["a", "c"]
        raw = db.select("SELECT name FROM item WHERE price > 9.6 ORDER BY price DESC")
        assert list(raw) == ["g", "f", "d", "b"]


def test_decimal_order_on_an_async_database(storage: Any) -> None:
    """aiosqlite and psycopg async connections compare Decimal columns by value too."""
    db = storage.database(asyncio=True)

    class Item(db.Entity):
        _table_ = "item"
        name = Required(str)
        price = Required(Decimal)

    db.generate_mapping(create_tables=True)

    async def main() -> tuple[list[str], list[str]]:
        async with db_session:
            for name, price in (("a", "9.5"), ("b", "10"), ("c", "-1")):
                Item(name=name, price=Decimal(price))
        async with db_session:
            ordered = await Item.select().order_by(Item.price).afetch()
            above = await Item.select(Item.price > Decimal("9.6")).afetch()
            return names(ordered), names(above)

    assert storage.run(main) == (["c", "a", "b"], ["b"])


def test_decimal_min_and_max_are_enforced(storage: Any) -> None:
    """A Decimal outside min=/max= is refused in the constructor and at assignment; nothing is written."""
    _, Item = declare(storage)
    with db_session:
        with pytest.raises(ValidationError, match=r"Decimal\('-5'\) of attr Item.share is less than the minimum allowed value"):
            Item(name="low", share=Decimal("-5"))
        item = Item(name="ok", share=Decimal("100"))
        with pytest.raises(ValidationError, match=r"Decimal\('100.01'\) of attr Item.share is greater than the maximum allowed value"):
            item.share = Decimal("100.01")
    assert storage.fetch("SELECT name, share FROM item") in ([("ok", "100.00")], [("ok", Decimal("100.00"))])


# -- dates and times ---------------------------------------------------------------------------


def test_aware_datetimes_compare_and_order_by_instant(storage: Any) -> None:
    """Aware datetimes with different offsets compare and sort as the instants they are."""
    _, Item = declare(storage)
    whens = {
        "early": datetime(2024, 5, 1, 11, 0, tzinfo=PLUS5),  # 06:00Z
        "utc": datetime(2024, 5, 1, 9, 0, tzinfo=UTC),  # 09:00Z
        "late": datetime(2024, 5, 1, 7, 0, tzinfo=MINUS3),  # 10:00Z
        "micro": datetime(2024, 5, 1, 9, 0, 0, 500, tzinfo=UTC),
    }
    with db_session:
        for name, when in whens.items():
            Item(name=name, when=when)
    eight = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    with db_session:
        assert sorted(names(Item.select(Item.when > eight))) == ["late", "micro", "utc"]
        assert names(Item.select(Item.when < eight)) == ["early"]
        assert names(Item.select(Item.when == datetime(2024, 5, 1, 14, 0, tzinfo=PLUS5))) == ["utc"]
        assert names(Item.select().order_by(Item.when)) == ["early", "utc", "micro", "late"]
        for name, when in whens.items():
            assert Item.get(name=name).when == when


def test_aware_time_is_refused_and_naive_time_round_trips(storage: Any) -> None:
    """A time with an offset is refused (it would read back as another time); a naive one is kept."""
    _, Item = declare(storage)
    aware = time(10, 0, tzinfo=timezone(timedelta(hours=3)))
    with db_session:
        with pytest.raises(ValidationError, match=r"of attribute Item.at has a tzinfo"):
            Item(name="aware", at=aware)
        item = Item(name="naive", at=time(10, 0, 1, 5))
        with pytest.raises(ValidationError, match=r"of attribute Item.at has a tzinfo"):
            item.at = aware
    with db_session:
        assert Item.get(name="naive").at == time(10, 0, 1, 5)
        assert Item.select().count() == 1


# -- bad values: refused at assignment and in the constructor, nothing written --------------------

BAD_VALUES = [
    ("score", 10**400, ValidationError, r"Value 1000+ of attribute Item.score is too large for a float"),
    ("score", 10**5000, ValidationError, r"Value <int of 16610 bits> of attribute Item.score is too large"),
    (
        "price",
        Decimal("1" * 40),
        ValidationError,
        r"Value Decimal\('1+'\) of attribute Item.price does not fit precision=20, scale=2",
    ),
    (
        "price",
        Decimal("0." + "1" * 40),
        ValidationError,
        r"Value Decimal\('0.1+'\) of attribute Item.price has more than scale=2 decimal places",
    ),
    (
        "wide",
        Decimal("1" * 31),
        ValidationError,
        r"Value Decimal\('1+'\) of attribute Item.wide does not fit precision=40, scale=10",
    ),
    (
        "took",
        timedelta(days=999_999_999),
        ValidationError,
        r"Value datetime.timedelta\(days=999999999\) of attribute Item.took is out of range",
    ),
    (
        "data",
        {1: "a", "b": 2},
        ValidationError,
        r"Value \{1: 'a', 'b': 2\} of attribute Item.data has the dict key 1, which is not a str",
    ),
    (
        "data",
        [{"ok": {2.5: 3}}],
        ValidationError,
        r"of attribute Item.data has the dict key 2.5",
    ),
]


@pytest.mark.parametrize(
    ("attr", "value", "error", "message"),
    BAD_VALUES,
    ids=[f"{case[0]}-{n}" for n, case in enumerate(BAD_VALUES)],
)
def test_bad_value_is_refused_and_nothing_is_written(
    storage: Any, attr: str, value: Any, error: type[Exception], message: str
) -> None:
    """The documented error names entity, attribute and value, in the constructor and at assignment."""
    _, Item = declare(storage)
    with db_session:
        with pytest.raises(error, match=message):
            Item(name="new", **{attr: value})
        item = Item(name="kept")
        with pytest.raises(error, match=message):
            setattr(item, attr, value)
        assert getattr(item, attr) is None
    assert storage.fetch(f"SELECT name, {attr} FROM item") == [("kept", None)]


def test_json_changed_in_place_to_a_non_text_key_is_refused_at_flush(storage: Any) -> None:
    """A dict key that is not a str added in place is refused when the change is saved; nothing is written."""
    _, Item = declare(storage)
    with db_session:
        Item(name="j", data={"a": [1]})
    with pytest.raises(ValidationError, match=r"of attribute Item.data has the dict key 2"):
        with db_session:
            item = Item.get(name="j")
            item.data["a"].append({"b": 1, 2: "c"})
            item.name = "changed"
    assert storage.fetch("SELECT name FROM item") == [("j",)]
    with db_session:
        assert Item.get(name="j").data == {"a": [1]}


def test_the_longest_storable_timedelta_round_trips(storage: Any) -> None:
    """The range limit is what SQLite's INTEGER of microseconds holds; its ends are stored exactly."""
    _, Item = declare(storage)
    longest = timedelta(microseconds=2**63 - 1)
    with db_session:
        Item(name="max", took=longest)
        Item(name="min", took=-longest)
    with db_session:
        assert Item.get(name="max").took == longest
        assert Item.get(name="min").took == -longest


# -- long IN lists ---------------------------------------------------------------------------


def test_in_list_of_any_length(storage: Any) -> None:
    """in_() and not_in() with 300k values run as one statement and match exactly."""
    _, Item = declare(storage)
    with db_session:
        for n in range(50):
            Item(name=f"n{n}")
    wanted = list(range(1, 300_001, 2))
    wanted.extend(range(-300_000, 0))
    with db_session:
        odd = {item.id for item in Item.select(Item.id.in_(wanted))}
        assert odd == set(range(1, 51, 2))
        assert Item.select(Item.id.not_in(wanted)).count() == 25
        names_wanted = [f"n{n}" for n in range(10)] + [f"x{n}" for n in range(300_000)]
        assert Item.select(Item.name.in_(names_wanted)).count() == 10


# -- copying and pickling ----------------------------------------------------------------------

COPIES: list[tuple[str, Callable[[Any], Any], str]] = [
    ("copy", copy.copy, "copied"),
    ("deepcopy", copy.deepcopy, "copied"),
    ("pickle", pickle.dumps, "pickled"),
]


@pytest.mark.parametrize(("how", "action", "word"), COPIES, ids=[c[0] for c in COPIES])
def test_copying_an_entity_object_is_refused(storage: Any, how: str, action: Any, word: str) -> None:
    """copy, deepcopy and pickle raise ObjectCopyError naming to_dict() and make_proxy(); one object per row stays."""
    _, Item = declare(storage)
    with db_session:
        item = Item(name="one")
    with db_session:
        item = Item.get(name="one")
        with pytest.raises(ObjectCopyError) as info:
            action(item)
        assert str(info.value) == (
            f"Item[{item.id}] cannot be {word}: a session holds one object per row. "
            "Use to_dict() for its values or make_proxy() for a reference usable in other sessions"
        )
        assert isinstance(info.value, TypeError)
        item.name = "two"
    assert storage.fetch("SELECT name FROM item") == [("two",)]


# -- raw SQL interpolation ---------------------------------------------------------------------


def test_raw_sql_never_evaluates_inside_literals_comments_or_with_explicit_params(storage: Any) -> None:
    """$(expr) in a string literal or comment stays text; with params given nothing is evaluated."""
    db, Item = declare(storage)
    calls: list[int] = []

    def bump() -> int:
        calls.append(1)
        return len(calls)

    with db_session:
        Item(name="$(bump())")
    with db_session:
        rows = db.select("SELECT name FROM item WHERE name = '$(bump())' -- $(bump())\n")
        assert list(rows) == ["$(bump())"]
        rows = db.select("SELECT /* $(bump()) */ name FROM item WHERE length(name) <> $(bump())")
        assert list(rows) == ["$(bump())"] and calls == [1]
        with pytest.raises(OrmError, match=r"Parameter \$bump\(\) of the SQL is not in the given params"):
            db.select("SELECT name FROM item WHERE name = $(bump())", {"x": 1})
        with pytest.raises(OrmError):
            db.select("SELECT name FROM item WHERE name = '$(bump())", {})
        assert calls == [1]
    assert bump  # referenced by the SQL text above


# -- errors classified by what the driver reports ----------------------------------------------


def test_errors_are_classified_by_code_not_by_message(storage: Any) -> None:
    """A trigger's error whose text says 'locked' or 'connection' is an integrity error or a DatabaseError."""
    _, Item = declare(storage)
    client = storage.client()
    if storage.kind == "sqlite":
        client.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON item WHEN NEW.name = 'bad' "
            "BEGIN SELECT RAISE(ABORT, 'database is locked; connection lost'); END"
        )
        expected: type[Exception] = TransactionIntegrityError
    else:
        client.execute(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.name = 'bad' THEN "
            "RAISE EXCEPTION 'database is locked; connection lost'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        client.execute("CREATE TRIGGER refuse BEFORE INSERT ON item FOR EACH ROW EXECUTE FUNCTION refuse()")
        expected = OrmError
    with pytest.raises(OrmError) as info:
        with db_session:
            Item(name="bad")
    assert isinstance(info.value, expected)
    assert not isinstance(info.value, SerializationFailure)
    assert "ConnectionClosedError" not in [type(e).__name__ for e in [info.value, info.value.__cause__]]
    assert storage.fetch("SELECT name FROM item") == []


# -- misuse of queries -------------------------------------------------------------------------


def test_negated_attribute_in_order_by_is_a_query_error(storage: Any) -> None:
    """-Item.score names the problem and the spellings that work."""
    _, Item = declare(storage)
    with db_session:
        with pytest.raises(QueryError, match=r"-Item.score is not an order: use desc\(Item.score\)"):
            Item.select().order_by(-Item.score)
