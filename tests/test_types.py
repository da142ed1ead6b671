"""Column types: round trips through the database, comparisons in queries, and rejected values."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from nextorm import (
    AttributeTypeError,
    Json,
    Optional,
    Required,
    ValidationError,
    coalesce,
    db_session,
    desc,
    select,
)

PLUS2 = timezone(timedelta(hours=2))

#: one value of each column type, with a second, larger value of the same type
SAMPLES = {
    int: (-(2**63), 2**63 - 1),
    str: ("héllo wörld ✓", "zzz"),
    float: (-1.5e-300, 3.25e300),
    bool: (False, True),
    Decimal: (Decimal("-1234567890.12"), Decimal("1234567890.12")),
    datetime: (datetime(1999, 12, 31, 23, 59, 59, 999999), datetime(2024, 2, 29, 12, 0, 0)),
    date: (date(1, 1, 1), date(9999, 12, 31)),
    time: (time(0, 0, 0, 1), time(23, 59, 59)),
    timedelta: (timedelta(days=-3, seconds=5, microseconds=7), timedelta(days=400, microseconds=1)),
    bytes: (b"\x00\x01\xff", b"\xff" * 1000),
    UUID: (UUID("00000000-0000-0000-0000-000000000001"), UUID("ffffffff-ffff-4fff-bfff-ffffffffffff")),
    Json: ({"a": [1, 2.5, None, True, {"b": "ü"}], "c": {}}, [1, [2, [3, {"d": []}]]]),
}


@pytest.fixture
def Sample(db):  # type: ignore[no-untyped-def]
    """An entity with one Optional attribute of every column type, named after the type."""

    class Sample(db.Entity):
        v_int = Optional(int)
        v_str = Optional(str)
        v_float = Optional(float)
        v_bool = Optional(bool)
        v_Decimal = Optional(Decimal)
        v_datetime = Optional(datetime)
        v_date = Optional(date)
        v_time = Optional(time)
        v_timedelta = Optional(timedelta)
        v_bytes = Optional(bytes)
        v_UUID = Optional(UUID)
        v_Json = Optional(Json)

    db.generate_mapping(create_tables=True)
    return Sample


def attr_name(py_type: type) -> str:
    """The Sample attribute holding ``py_type`` values."""
    return f"v_{py_type.__name__}"


TYPES = list(SAMPLES)
TYPE_IDS = [t.__name__ for t in TYPES]


@pytest.mark.parametrize("py_type", TYPES, ids=TYPE_IDS)
def test_round_trip_through_a_fresh_session(Sample, py_type) -> None:
    """Both sample values come back equal and of the same type in a new session."""
    name = attr_name(py_type)
    low, high = SAMPLES[py_type]
    with db_session:
        Sample(**{name: low})
        Sample(**{name: high})
    with db_session:
        got = [getattr(r, name) for r in Sample.select().order_by(Sample.id)]
    assert got == [low, high]
    if py_type is Json:  # dicts and lists come back as tracked values (subclasses of dict and list)
        assert isinstance(got[0], type(low)) and isinstance(got[1], type(high))
    else:
        assert [type(v) for v in got] == [py_type, type(high)]


@pytest.mark.parametrize("py_type", TYPES, ids=TYPE_IDS)
def test_none_round_trip(Sample, py_type, other_connection) -> None:
    """An Optional attribute of every type stores None as NULL and reads it back as None."""
    name = attr_name(py_type)
    with db_session:
        Sample(**{name: None})
    assert other_connection.execute(f"SELECT {name} FROM Sample").fetchall() == [(None,)]
    with db_session:
        assert getattr(Sample[1], name) is None


@pytest.mark.parametrize("py_type", TYPES, ids=TYPE_IDS)
def test_equality_in_queries(Sample, py_type) -> None:
    """``attr == value`` and ``attr.in_([value])`` find exactly the row holding that value."""
    name = attr_name(py_type)
    low, high = SAMPLES[py_type]
    attr = getattr(Sample, name)
    with db_session:
        Sample(**{name: low})
        Sample(**{name: high})
    with db_session:
        assert [r.id for r in Sample.select(attr == high)] == [2]
        assert [r.id for r in Sample.select(attr != high)] == [1]
        assert [r.id for r in Sample.select(attr.in_([low]))] == [1]
        assert Sample.get(**{name: low}).id == 1


ORDERED = [int, str, float, Decimal, datetime, date, time, timedelta]


@pytest.mark.parametrize("py_type", ORDERED, ids=[t.__name__ for t in ORDERED])
def test_ordering_comparisons_in_queries(Sample, py_type) -> None:
    """``<``, ``>`` and order_by agree with Python's ordering of the values."""
    name = attr_name(py_type)
    low, high = SAMPLES[py_type]
    attr = getattr(Sample, name)
    with db_session:
        Sample(**{name: high})
        Sample(**{name: low})
    with db_session:
        assert [getattr(r, name) for r in Sample.select(attr < high)] == [low]
        assert [getattr(r, name) for r in Sample.select(attr > low)] == [high]
        assert [getattr(r, name) for r in Sample.select(attr <= low)] == [low]
        assert [getattr(r, name) for r in Sample.select(attr >= high)] == [high]
        assert [getattr(r, name) for r in Sample.select().order_by(attr)] == [low, high]
        assert [getattr(r, name) for r in Sample.select().order_by(desc(attr))] == [high, low]


def test_datetime_comparisons_with_and_without_microseconds(Sample) -> None:
    """Datetimes compare by time, whether or not they have microseconds."""
    values = [
        datetime(2020, 1, 1, 10, 0, 0),
        datetime(2020, 1, 1, 10, 0, 0, 500),
        datetime(2020, 1, 1, 9, 59, 59, 999999),
    ]
    with db_session:
        for v in values:
            Sample(v_datetime=v)
    with db_session:
        assert [r.v_datetime for r in Sample.select(Sample.v_datetime > datetime(2020, 1, 1, 10, 0, 0))] == [
            values[1]
        ]
        assert [r.v_datetime for r in Sample.select(Sample.v_datetime < datetime(2020, 1, 1, 10, 0, 0))] == [
            values[2]
        ]
        assert [r.v_datetime for r in Sample.select().order_by(Sample.v_datetime)] == sorted(values)


def test_time_comparisons_with_and_without_microseconds(Sample) -> None:
    """Times compare by time, whether or not they have microseconds."""
    values = [time(10, 0), time(10, 0, 0, 1), time(9, 59, 59, 999999)]
    with db_session:
        for v in values:
            Sample(v_time=v)
    with db_session:
        assert [r.v_time for r in Sample.select(Sample.v_time >= time(10, 0))] == values[:2]
        assert [r.v_time for r in Sample.select().order_by(Sample.v_time)] == sorted(values)


def test_decimal_comparisons_are_numeric(Sample) -> None:
    """Decimals compare as numbers (9.5 < 10 < 100.25), not as text."""
    values = [Decimal("100.25"), Decimal("9.5"), Decimal("10"), Decimal("-3")]
    with db_session:
        for v in values:
            Sample(v_Decimal=v)
    with db_session:
        assert sorted(r.v_Decimal for r in Sample.select(Sample.v_Decimal > Decimal("9.75"))) == [
            Decimal("10"),
            Decimal("100.25"),
        ]
        assert [r.v_Decimal for r in Sample.select().order_by(Sample.v_Decimal)] == sorted(values)
        assert Sample.get(v_Decimal=Decimal("10.00")).v_Decimal == Decimal("10")


def test_computed_decimals_compare_and_order_as_numbers(Sample) -> None:
    """A Decimal the query computes (arithmetic, abs(), coalesce()) compares with a Decimal value
    and orders by number, as a Decimal column does: SQLite stores Decimals as text, where
    ``'10' < '4.5'`` and any number sorts below any text."""
    values = [Decimal("1.50"), Decimal("4.00"), Decimal("10.00"), Decimal("2.25")]
    with db_session:
        for v in values:
            Sample(v_Decimal=v)
    limit = Decimal("4.5")
    with db_session:
        def picked(query: Any) -> list[Decimal]:
            return sorted(r.v_Decimal for r in query)

        assert picked(select(s for s in Sample if s.v_Decimal * 2 > limit)) == [Decimal("4.00"), Decimal("10.00")]
        assert picked(select(s for s in Sample if s.v_Decimal + 0 > limit)) == [Decimal("10.00")]
        assert picked(select(s for s in Sample if abs(s.v_Decimal) > limit)) == [Decimal("10.00")]
        at_least = select(s for s in Sample if coalesce(s.v_Decimal, Decimal(0)) >= Decimal("2.25"))
        assert picked(at_least) == [Decimal("2.25"), Decimal("4.00"), Decimal("10.00")]
        assert picked(select(s for s in Sample if s.v_Decimal > s.v_Decimal * 0 + limit)) == [Decimal("10.00")]
        ordered = select(s for s in Sample).order_by(lambda s: coalesce(s.v_Decimal, Decimal(0)))
        assert [r.v_Decimal for r in ordered] == sorted(values)
        descending = select(s for s in Sample).order_by(lambda s: desc(s.v_Decimal * 1))
        assert [r.v_Decimal for r in descending] == sorted(values, reverse=True)
        # a value read back keeps its digits
        assert sorted(select(coalesce(s.v_Decimal, Decimal(0)) for s in Sample)) == sorted(values)


def test_decimal_keeps_cents_exactly(Sample) -> None:
    """A Decimal with cents comes back exactly (no binary float rounding)."""
    values = [Decimal("0.10"), Decimal("0.20"), Decimal("1234567890.99")]
    with db_session:
        for v in values:
            Sample(v_Decimal=v)
    with db_session:
        got = [r.v_Decimal for r in Sample.select().order_by(Sample.id)]
    assert got == values
    assert sum(got[:2]) == Decimal("0.30")


def test_decimal_accepts_int_and_str(Sample) -> None:
    """A Decimal attribute converts an int or a numeric str to Decimal."""
    with db_session:
        a = Sample(v_Decimal=5)
        b = Sample(v_Decimal="2.50")
        assert (a.v_Decimal, b.v_Decimal) == (Decimal(5), Decimal("2.50"))
        assert type(a.v_Decimal) is Decimal


def test_timedelta_comparisons(Sample) -> None:
    """Timedeltas, negative ones included, compare by duration."""
    values = [timedelta(hours=25), timedelta(days=1), timedelta(seconds=-1), timedelta(0)]
    with db_session:
        for v in values:
            Sample(v_timedelta=v)
    with db_session:
        assert sorted(r.v_timedelta for r in Sample.select(Sample.v_timedelta > timedelta(hours=23))) == [
            timedelta(days=1),
            timedelta(hours=25),
        ]
        assert [r.v_timedelta for r in Sample.select(Sample.v_timedelta < timedelta(0))] == [
            timedelta(seconds=-1)
        ]
        assert [r.v_timedelta for r in Sample.select().order_by(Sample.v_timedelta)] == sorted(values)


def test_date_in_query(Sample) -> None:
    """``date_attr.in_([...])`` and range conditions work on dates."""
    days = [date(2024, 1, d) for d in (5, 1, 20, 31)]
    with db_session:
        for d in days:
            Sample(v_date=d)
    with db_session:
        assert sorted(
            r.v_date for r in Sample.select(Sample.v_date.in_([date(2024, 1, 1), date(2024, 1, 31)]))
        ) == [
            date(2024, 1, 1),
            date(2024, 1, 31),
        ]
        assert sorted(
            r.v_date
            for r in Sample.select((Sample.v_date > date(2024, 1, 1)) & (Sample.v_date < date(2024, 1, 31)))
        ) == [date(2024, 1, 5), date(2024, 1, 20)]


def test_bool_round_trip_and_query(Sample) -> None:
    """Booleans come back as bool (not 0/1) and filter with == True/False."""
    with db_session:
        Sample(v_bool=True)
        Sample(v_bool=False)
        Sample(v_bool=True)
    with db_session:
        assert [r.id for r in Sample.select(Sample.v_bool == True).order_by(Sample.id)] == [1, 3]  # noqa: E712
        assert [r.id for r in Sample.select(v_bool=False)] == [2]
        assert all(type(r.v_bool) is bool for r in Sample.select())


def test_json_nested_round_trip(Sample) -> None:
    """Nested dicts and lists, unicode and nulls round-trip through a Json column."""
    doc = {"name": "ü", "tags": ["a", "b"], "nested": {"list": [1, {"x": None}], "empty": []}, "n": 1.5}
    with db_session:
        Sample(v_Json=doc)
        Sample(v_Json=[doc, [doc]])
        Sample(v_Json="just a string")
        Sample(v_Json=42)
    with db_session:
        assert [r.v_Json for r in Sample.select().order_by(Sample.id)] == [
            doc,
            [doc, [doc]],
            "just a string",
            42,
        ]


def test_json_change_of_nested_value_is_saved(Sample) -> None:
    """Assigning a new Json value replaces the stored document."""
    with db_session:
        Sample(v_Json={"a": 1})
    with db_session:
        Sample[1].v_Json = {"a": 2, "b": [3]}
    with db_session:
        assert Sample[1].v_Json == {"a": 2, "b": [3]}


def test_json_in_place_change_is_saved(Sample) -> None:
    """Changing a loaded Json document in place (nested dict item, list append) is saved, as in Pony."""
    with db_session:
        Sample(v_Json={"a": 1, "tags": ["x"], "nested": {"n": 1}})
    with db_session:
        doc = Sample[1].v_Json
        doc["a"] = 2
        doc["tags"].append("y")
        doc["nested"]["n"] = 5
    with db_session:
        assert Sample[1].v_Json == {"a": 2, "tags": ["x", "y"], "nested": {"n": 5}}


def test_bytes_accepts_bytearray_and_memoryview(Sample) -> None:
    """bytearray and memoryview values are stored and come back as bytes."""
    with db_session:
        Sample(v_bytes=bytearray(b"ab"))
        Sample(v_bytes=memoryview(b"cd"))
    with db_session:
        got = [r.v_bytes for r in Sample.select().order_by(Sample.id)]
    assert got == [b"ab", b"cd"]
    assert all(type(v) is bytes for v in got)


def test_uuid_accepts_its_str_form(Sample) -> None:
    """A UUID attribute converts a UUID string and stores a UUID."""
    text = "12345678-1234-5678-1234-567812345678"
    with db_session:
        r = Sample(v_UUID=text)
        assert r.v_UUID == UUID(text)
    with db_session:
        assert Sample.get(v_UUID=UUID(text)).v_UUID == UUID(text)
        assert Sample.get(v_UUID=text).id == 1


def test_aware_datetime_round_trip(db) -> None:
    """A ``tz_aware=True`` attribute keeps the instant of an aware datetime and reads back an aware one."""

    class Event(db.Entity):
        at = Required(datetime, tz_aware=True)

    db.generate_mapping(create_tables=True)
    moment = datetime(2024, 5, 1, 12, 30, tzinfo=PLUS2)
    with db_session:
        Event(at=moment)
        Event(at=datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    with db_session:
        got = [e.at for e in Event.select().order_by(Event.id)]
    assert got[0] == moment
    assert got[0].utcoffset() is not None
    assert got[1] == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def test_long_str_and_unicode_round_trip(Sample) -> None:
    """Long strings and any Unicode (emoji, NUL-free control chars) round-trip unchanged."""
    text = "🙂 ünïcødé \t\n" + "x" * 100_000
    with db_session:
        Sample(v_str=text)
    with db_session:
        assert Sample[1].v_str == text


@pytest.mark.sqlite_only
def test_sql_column_types(Sample, other_connection) -> None:
    """Values are stored with sensible SQLite storage classes (int, real, blob, text)."""
    with db_session:
        Sample(v_int=1, v_float=1.5, v_bytes=b"x", v_str="s", v_bool=True)
    row = other_connection.execute(
        "SELECT typeof(v_int), typeof(v_float), typeof(v_bytes), typeof(v_str), v_bool FROM Sample"
    ).fetchone()
    assert row == ("integer", "real", "blob", "text", 1)


# -- rejected values ----------------------------------------------------------------------------

WRONG = [
    (int, 1.5),
    (int, "abc"),
    (str, 12),
    (str, b"bytes"),
    (float, "abc"),
    (float, [1.5]),
    (Decimal, [1]),
    (datetime, 12345),
    (datetime, date(2020, 1, 1)),
    (date, 12345),
    (time, 12345),
    (timedelta, 5),
    (bytes, "text"),
    (UUID, [1]),
]


@pytest.mark.parametrize(
    ("py_type", "value"), WRONG, ids=[f"{t.__name__}-{type(v).__name__}" for t, v in WRONG]
)
def test_wrong_type_is_rejected(Sample, py_type, value) -> None:
    """A value of the wrong type raises AttributeTypeError (a TypeError) naming entity, attribute and value."""
    name = attr_name(py_type)
    with db_session:
        with pytest.raises(AttributeTypeError) as info:
            Sample(**{name: value})
    assert isinstance(info.value, TypeError)
    assert f"Sample.{name}" in str(info.value)
    assert repr(value) in str(info.value)


def test_wrong_type_on_assignment_keeps_old_value(Sample) -> None:
    """A rejected assignment raises and leaves the attribute and the object unchanged."""
    with db_session:
        r = Sample(v_date=date(2020, 1, 1))
        with pytest.raises(AttributeTypeError):
            r.v_date = 20210101
        with pytest.raises(ValidationError):
            r.v_date = "not a date"
        assert r.v_date == date(2020, 1, 1)


@pytest.mark.parametrize(
    ("py_type", "value"),
    [
        (Decimal, "abc"),
        (Decimal, Decimal("NaN")),
        (Decimal, Decimal("Infinity")),
        (float, float("nan")),
        (float, float("inf")),
        (UUID, "not-a-uuid"),
        (Json, {"x": {1, 2}}),
        (Json, float("nan")),
        (Json, object()),
        (int, 2**63),
        (int, -(2**63) - 1),
    ],
    ids=[
        "decimal-text",
        "decimal-nan",
        "decimal-inf",
        "float-nan",
        "float-inf",
        "uuid-text",
        "json-set",
        "json-nan",
        "json-object",
        "int-too-big",
        "int-too-small",
    ],
)
def test_unacceptable_value_is_validation_error(Sample, py_type, value) -> None:
    """A value of an accepted type that cannot be stored raises ValidationError naming the attribute."""
    name = attr_name(py_type)
    with db_session:
        with pytest.raises(ValidationError) as info:
            Sample(**{name: value})
    assert f"Sample.{name}" in str(info.value)


def test_naive_datetime_rejected_by_aware_attribute(db) -> None:
    """A ``tz_aware=True`` attribute rejects a naive datetime with a ValidationError naming it."""

    class Event(db.Entity):
        at = Required(datetime, tz_aware=True)

    db.generate_mapping(create_tables=True)
    with db_session:
        with pytest.raises(ValidationError) as info:
            Event(at=datetime(2024, 1, 1))
    assert "Event.at" in str(info.value)
    assert "2024" in str(info.value)


def test_aware_datetime_rejected_by_naive_attribute(Sample) -> None:
    """A plain datetime attribute rejects an aware datetime with a ValidationError naming it."""
    with db_session:
        with pytest.raises(ValidationError) as info:
            Sample(v_datetime=datetime(2024, 1, 1, tzinfo=UTC))
    assert "Sample.v_datetime" in str(info.value)


def test_bytes_max_len(db) -> None:
    """``Optional(bytes, max_len=4)`` accepts 4 bytes and rejects 5."""

    class Blob(db.Entity):
        data = Optional(bytes, max_len=4)

    db.generate_mapping(create_tables=True)
    with db_session:
        Blob(data=b"1234")
        with pytest.raises(ValidationError, match=r"Blob\.data"):
            Blob(data=b"12345")


def test_str_max_len_positional(db) -> None:
    """``Required(str, 5)`` is the same as ``max_len=5``."""

    class Code(db.Entity):
        value = Required(str, 5)

    db.generate_mapping(create_tables=True)
    with db_session:
        Code(value="12345")
        with pytest.raises(ValidationError, match=r"Code\.value"):
            Code(value="123456")


def test_int_min_max_options(db) -> None:
    """``min``/``max`` bound an int attribute; values outside raise ValidationError."""

    class Level(db.Entity):
        value = Required(int, min=0, max=10)

    db.generate_mapping(create_tables=True)
    with db_session:
        Level(value=0)
        Level(value=10)
        with pytest.raises(ValidationError, match=r"Level\.value"):
            Level(value=-1)
        with pytest.raises(ValidationError, match=r"Level\.value"):
            Level(value=11)


def test_required_accepts_falsy_values(db, other_connection) -> None:
    """Required attributes accept 0, False, 0.0, Decimal 0, zero timedelta, b'' and empty Json (only None/'' are missing)."""

    class Zero(db.Entity):
        i = Required(int)
        b = Required(bool)
        f = Required(float)
        d = Required(Decimal)
        td = Required(timedelta)
        by = Required(bytes)
        j = Required(Json)

    db.generate_mapping(create_tables=True)
    values = {"i": 0, "b": False, "f": 0.0, "d": Decimal(0), "td": timedelta(0), "by": b"", "j": {}}
    with db_session:
        Zero(**values)
    with db_session:
        z = Zero[1]
        assert {name: getattr(z, name) for name in values} == values


def test_unsupported_type_is_rejected_at_declaration(db) -> None:
    """An attribute of a type that is no column type fails at declaration with an error naming it."""
    from nextorm import OrmError

    with pytest.raises((OrmError, TypeError), match="complex"):

        class Bad(db.Entity):
            value = Required(complex)


@pytest.mark.sqlite_only
def test_values_stored_by_raw_sql_are_converted(Sample, other_connection) -> None:
    """Rows written by another client in the storage format are read back as Python values."""
    other_connection.execute(
        "INSERT INTO Sample (v_bool, v_Decimal, v_date, v_datetime, v_timedelta, v_UUID, v_Json) "
        "VALUES (1, '2.50', '2024-03-01', '2024-03-01 10:11:12', 1500000, "
        "'12345678-1234-5678-1234-567812345678', '{\"k\": [1]}')"
    )
    with db_session:
        r = Sample[1]
        assert r.v_bool is True
        assert r.v_Decimal == Decimal("2.5")
        assert r.v_date == date(2024, 3, 1)
        assert r.v_datetime == datetime(2024, 3, 1, 10, 11, 12)
        assert r.v_timedelta == timedelta(seconds=1.5)
        assert r.v_UUID == UUID("12345678-1234-5678-1234-567812345678")
        assert r.v_Json == {"k": [1]}


#: values written to a loaded object: of the columns' own types (in and out of their checks) and others
WRITTEN_VALUES = [
    ("count", 7),
    ("count", -5),
    ("count", 101),
    ("count", 2**63),
    ("count", True),
    ("count", 7.0),
    ("count", "7"),
    ("ratio", 0.5),
    ("ratio", float("nan")),
    ("ratio", float("inf")),
    ("ratio", 3),
    ("label", "abc"),
    ("label", "  abc "),
    ("label", "abcdefghi"),
    ("label", ""),
    ("label", "a\x00b"),
    ("label", "héllo"),
    ("label", "\x1fab"),
    ("label", 12),
    ("text", " any "),
    ("text", "x" * 500),
]


@pytest.mark.parametrize(("name", "value"), WRITTEN_VALUES, ids=[f"{n}-{v!r}"[:40] for n, v in WRITTEN_VALUES])
def test_a_written_value_is_stored_as_validate_returns_it_or_refused_as_it_refuses(db, name, value) -> None:
    """Writing a value to a loaded object stores what the attribute's ``validate`` returns, or raises
    the error it raises, also for values of the column's own type that skip the hook."""

    class Gauge(db.Entity):
        count = Required(int, min=-5, max=100)
        ratio = Required(float)
        label = Required(str, 8)
        text = Optional(str, autostrip=False)

    db.generate_mapping(create_tables=True)
    attr = getattr(Gauge, name)
    with db_session:
        Gauge(count=1, ratio=1.0, label="start", text="start")
    with db_session:
        gauge = Gauge[1]
        try:
            expected: Any = ("stored", attr.validate(value, gauge))
        except Exception as exc:  # the outcome to compare with, whatever it is
            expected = ("raised", type(exc), str(exc))
        try:
            setattr(gauge, name, value)
            outcome: Any = ("stored", getattr(gauge, name))
        except Exception as exc:
            outcome = ("raised", type(exc), str(exc))
    if expected[0] == "stored" and isinstance(expected[1], float) and expected[1] != expected[1]:
        assert outcome[0] == "stored" and outcome[1] != outcome[1]
    else:
        assert outcome == expected
