"""Attribute options, declaration checks, value conversion, entity types given as functions, LongStr
(docs/api.md, "Attribute options" and "Value conversion")."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from nextorm import (
    AttributeTypeError,
    ERDiagramError,
    LongStr,
    LongUnicode,
    MappingError,
    Optional,
    PrimaryKey,
    Required,
    Set,
    ValidationError,
    commit,
    db_session,
)
from nextorm.attributes import Attribute
from nextorm.types import parse_date, parse_datetime, parse_time, parse_timedelta

# -- autostrip ------------------------------------------------------------------------------------


def test_str_values_are_stripped_by_default(db) -> None:  # type: ignore[no-untyped-def]
    """autostrip (on by default) removes surrounding whitespace; a Required str of spaces is missing."""

    class Person(db.Entity):
        name = Required(str)
        tel = Optional(str)
        nick = Optional(str, autostrip=False)

    db.generate_mapping(create_tables=True)
    with db_session:
        p = Person(name=" John  ", tel=" ", nick=" vlad  ")
        assert (p.name, p.tel, p.nick) == ("John", "", " vlad  ")
        p.name = "\tAnn\n"
        assert p.name == "Ann"
        with pytest.raises(ValidationError, match=r"Attribute Person\[new:\d+\]\.name is required"):
            p.name = "   "
        with pytest.raises(ValidationError, match=r"Attribute Person\.name is required"):
            Person(name=" ")
    with db_session:
        stored = Person.select().first()
        assert (stored.name, stored.tel, stored.nick) == ("Ann", "", " vlad  ")


def test_max_len_is_checked_after_stripping(db) -> None:  # type: ignore[no-untyped-def]
    """A value that fits once stripped is accepted; max_len counts the stored characters."""

    class Code(db.Entity):
        value = Required(str, 3)

    db.generate_mapping(create_tables=True)
    with db_session:
        assert Code(value="  abc  ").value == "abc"
        with pytest.raises(ValidationError, match=r"Value 'abcd' of attribute Code\.value is longer than max_len=3"):
            Code(value="abcd")


# -- py_check -------------------------------------------------------------------------------------


def test_py_check_refuses_values_on_construction_and_assignment(db) -> None:  # type: ignore[no-untyped-def]
    """A false answer of py_check is a ValidationError (a ValueError) naming the attribute and the value."""

    def positive(value: int) -> bool:
        if value == 13:
            raise ValueError("13 is unlucky")
        return value > 0

    class Item(db.Entity):
        qty = Required(int, py_check=positive)
        born = Optional(date, py_check=lambda d: d.year >= 2000)
        gpa = Optional(float, py_check=lambda v: 0 <= v <= 5)

    db.generate_mapping(create_tables=True)
    with db_session:
        with pytest.raises(ValueError, match=r"^Check for attribute Item\.qty failed\. Value: -1$"):
            Item(qty=-1)
        with pytest.raises(ValueError, match="13 is unlucky"):
            Item(qty=13)
        item = Item(qty=1, born=None, gpa=5)
        with pytest.raises(ValidationError, match=r"Item\.born failed\. Value: datetime\.date\(1999, 1, 1\)"):
            item.born = date(1999, 1, 1)
        with pytest.raises(ValidationError, match=r"Item\.gpa failed\. Value: 6\.0"):
            item.gpa = 6
        assert (item.born, item.gpa) == (None, 5.0)
        commit()
    with db_session:
        assert Item.select().first().qty == 1


def test_py_check_message_cuts_long_values(db) -> None:  # type: ignore[no-untyped-def]
    """The refused value is shown cut to 100 characters."""

    class Note(db.Entity):
        text = Required(str, py_check=lambda v: False)

    db.generate_mapping(create_tables=True)
    with db_session, pytest.raises(ValidationError) as info:
        Note(text="1234567890" * 1000)
    shown = str(info.value).split("Value: ", 1)[1]
    assert len(shown) == 100 and shown.endswith("...") and shown.startswith("'1234")


# -- size, unsigned, min, max ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "unsigned", "low", "high"),
    [
        (8, False, -128, 127),
        (8, True, 0, 255),
        (16, False, -32768, 32767),
        (16, True, 0, 65535),
        (24, False, -(2**23), 2**23 - 1),
        (24, True, 0, 2**24 - 1),
        (32, False, -(2**31), 2**31 - 1),
        (32, True, 0, 2**32 - 1),
        (64, False, -(2**63), 2**63 - 1),
    ],
)
def test_int_size_bounds_are_stored_and_refused_beyond(db, size: int, unsigned: bool, low: int, high: int) -> None:  # type: ignore[no-untyped-def]
    """Each size keeps its whole range (the column type holds it) and refuses one past either end."""

    class Counter(db.Entity):
        value = Required(int, size=size, unsigned=unsigned)

    db.generate_mapping(create_tables=True)
    with db_session:
        Counter(value=low)
        Counter(value=high)
        with pytest.raises(ValidationError, match=rf"^Value {low - 1} of attr Counter\.value is less than the minimum allowed value {low}$"):
            Counter(value=low - 1)
        with pytest.raises(ValidationError, match=rf"is greater than the maximum allowed value {high}$"):
            Counter(value=high + 1)
    with db_session:
        assert sorted(c.value for c in Counter.select()) == [low, high]


def test_unsigned_alone_is_32_bits_and_min_max_narrow_the_range(db) -> None:  # type: ignore[no-untyped-def]
    """unsigned=True without size is 0..2**32-1; min/max narrow a size's range; assignment is checked too."""

    class Box(db.Entity):
        u = Optional(int, unsigned=True)
        age = Optional(int, min=10, max=60)

    db.generate_mapping(create_tables=True)
    with db_session:
        box = Box(u=2**32 - 1, age=60)
        with pytest.raises(ValidationError):
            box.u = 2**32
        with pytest.raises(ValueError, match=r"^Value 9 of attr Box\.age is less than the minimum allowed value 10$"):
            box.age = 9
        assert (box.u, box.age) == (2**32 - 1, 60)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"size": 12}, TypeError, r"incorrect value of 'size' option for attribute E\.x\. Should be 8, 16, 24, 32 or 64\. Got: 12"),
        ({"size": "8"}, TypeError, r"'size' option for attribute E\.x must be of int type"),
        ({"unsigned": 1}, TypeError, r"'unsigned' option for attribute E\.x must be of bool type"),
        ({"size": 64, "unsigned": True}, TypeError, r"unsigned 64-bit integers are not supported"),
        ({"size": 8, "max": 300}, ValueError, r"'max' argument should be less or equal to 127"),
        ({"size": 8, "unsigned": True, "min": -1}, ValueError, r"'min' argument should be greater or equal to 0"),
        ({"min": 1.5}, TypeError, r"'min' argument for attribute E\.x must be int"),
    ],
)
def test_bad_int_options_are_refused_at_declaration(db, options: dict, error: type, message: str) -> None:  # type: ignore[no-untyped-def]
    """size/unsigned/min/max values no database column could honour raise when the entity is declared."""
    with pytest.raises(error, match=message):

        class E(db.Entity):
            x = Required(int, **options)


# -- conversion on assignment ------------------------------------------------------------------


def test_values_are_converted_as_pony_converts_them(db) -> None:  # type: ignore[no-untyped-def]
    """int from int-like text, float from numeric text, Decimal from a float, date from a datetime or text,
    datetime/time/timedelta from text; text that is no such value is a ValidationError naming it."""

    class Row(db.Entity):
        n = Optional(int)
        f = Optional(float)
        price = Optional(Decimal)
        rate = Optional(Decimal, precision=11)
        day = Optional(date)
        moment = Optional(datetime)
        at = Optional(time)
        span = Optional(timedelta)

    db.generate_mapping(create_tables=True)
    with db_session:
        row = Row(
            n="42",
            f="1.5",
            price=3.1,
            rate=0.980000000001,
            day=datetime(2011, 3, 3, 12, 30),
            moment="2010-12-10 14:12:09.019473",
            at="1:33 pm",
            span="-1:02:03.5",
        )
        assert row.n == 42 and type(row.n) is int
        assert row.f == 1.5
        assert row.price == Decimal("3.1") and row.rate == Decimal("0.98")
        assert row.day == date(2011, 3, 3)
        assert row.moment == datetime(2010, 12, 10, 14, 12, 9, 19473)
        assert row.at == time(13, 33)
        assert row.span == -timedelta(hours=1, minutes=2, seconds=3, microseconds=500000)
        row.day = "12/31/2024"
        assert row.day == date(2024, 12, 31)
        with pytest.raises(AttributeTypeError, match=r"Value type for attribute Row\.n must be int\. Got string 'x1'"):
            row.n = "x1"
        with pytest.raises(ValidationError, match=r"Value '25:99' of attribute Row\.at is not a time"):
            row.at = "25:99"
        with pytest.raises(ValidationError, match=r"Row\.day is not a date: Unrecognized date format"):
            row.day = "someday"
        with pytest.raises(ValidationError, match="scale=2"):
            row.price = Decimal("1.234")  # a Decimal is exact: more places than the column holds are refused
        commit()
    with db_session:
        row = Row.select().first()
        assert (row.n, row.price, row.rate, row.day) == (42, Decimal("3.1"), Decimal("0.98"), date(2024, 12, 31))


def test_time_precision_cuts_fractional_seconds(db) -> None:  # type: ignore[no-untyped-def]
    """precision=N on datetime, time and timedelta keeps N digits of the seconds' fraction."""

    class Log(db.Entity):
        stamp = Required(datetime, precision=3)
        at = Optional(time, precision=0)
        took = Optional(timedelta, precision=2)

    db.generate_mapping(create_tables=True)
    with db_session:
        log = Log(stamp=datetime(2020, 1, 1, 0, 0, 0, 123456), at=time(1, 2, 3, 999999), took=timedelta(microseconds=129999))
        assert (log.stamp.microsecond, log.at.microsecond, log.took.microseconds) == (123000, 0, 120000)
    with db_session:
        assert Log.select().first().stamp == datetime(2020, 1, 1, 0, 0, 0, 123000)
    with pytest.raises(ValueError, match="must be between 0 and 6"):
        Optional(datetime, precision=7)


def test_text_parsers_read_the_common_forms() -> None:
    """The parsers behind the conversions: times with units and a.m./p.m., dates in several orders."""
    assert parse_time("12h 34 min 56.789 sec a.m.") == time(0, 34, 56, 789000)
    assert parse_time("12u34") == time(12, 34)
    assert parse_time("01:02:03.4") == time(1, 2, 3, 400000)
    for bad in ("1:", "1: 2", "1:2:", "1:2:3:", "1:2:3.1234567"):
        with pytest.raises(ValueError, match="Unrecognized time format"):
            parse_time(bad)
    assert parse_date("31.12.2024") == parse_date("Dec 31 2024") == parse_date("2024-12-31") == date(2024, 12, 31)
    assert parse_datetime("12/31/2024 1:30 pm") == datetime(2024, 12, 31, 13, 30)
    assert parse_timedelta("1 day, 2:03:04") == timedelta(days=1, hours=2, minutes=3, seconds=4)


# -- declaration checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declare", "error", "message"),
    [
        (lambda: {"id": PrimaryKey(int, another_option=3)}, TypeError, r"^Attribute E\.id has unknown option 'another_option'$"),
        (lambda: {"b": Required(int, default=None)}, TypeError, r"Default value for required attribute E\.b cannot be None"),
        (lambda: {"a": PrimaryKey(float)}, TypeError, r"PrimaryKey attribute E\.a cannot be of type float"),
        (lambda: {"a": Required(float, unique=True)}, TypeError, r"Unique attribute E\.a cannot be of type float"),
        (lambda: {"a": PrimaryKey(int, volatile=True)}, TypeError, r"PrimaryKey attribute E\.a cannot be volatile"),
        (lambda: {"a": PrimaryKey(int, lazy=True)}, TypeError, r"Primary key attribute E\.a cannot be lazy"),
        (lambda: {"_a_": Required(str)}, ERDiagramError, r"cannot both start and end with underscore\. Got: _a_"),
        (lambda: {"a": Required(int, py_check=5)}, TypeError, r"'py_check' parameter of E\.a attribute should be callable"),
        (lambda: {"a": Required(str, sql_default="")}, TypeError, r"'sql_default' option value cannot be empty string"),
        (lambda: {"a": Required(str, sql_default=5)}, TypeError, r"'sql_default' option of E\.a attribute must be of string or bool type"),
        (lambda: {"id": PrimaryKey(int, columns=["a", "b"])}, MappingError, r"Too many columns were specified for E\.id"),
        (lambda: {"a": Required(int, cascade_delete=True)}, TypeError, r"'cascade_delete' option cannot be set for attribute E\.a"),
        (lambda: {"a": Required(LongStr, max_len=10)}, TypeError, r"Max length is not supported"),
        (lambda: {"s": Set("E", unique=True)}, TypeError, r"'unique' option cannot be set for attribute E\.s because it is collection"),
        (lambda: {"s": Set("E", flavour=1)}, TypeError, r"^Attribute E\.s has unknown option 'flavour'$"),
    ],
)
def test_bad_declarations_are_refused_when_the_entity_is_declared(db, declare, error: type, message: str) -> None:  # type: ignore[no-untyped-def]
    """Options that contradict each other raise Pony's exception class, naming the attribute."""
    with pytest.raises(error, match=message):
        type("E", (db.Entity,), declare())


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Attribute(str), TypeError, "'Attribute' is abstract type"),
        (lambda: Required(str, reverse="x"), TypeError, "Reverse option cannot be set for this type"),
        (lambda: Required("E", reverse=123), TypeError, "Value of 'reverse' option must be name of reverse attribute"),
        (lambda: Optional("E", column="a", columns=["b", "c"]), TypeError, "Parameters 'column' and 'columns' cannot be specified simultaneously"),
        (lambda: PrimaryKey(int, column=4), TypeError, "Parameter 'column' must be a string. Got: 4"),
        (lambda: PrimaryKey(int, columns={"a"}), TypeError, "Parameter 'columns' must be a list"),
        (lambda: Required("E", columns=[1, 2]), TypeError, r"Items of parameter 'columns' must be strings\. Got: \[1, 2\]"),
        (lambda: Set("E", reverse_column="a", reverse_columns=["b"]), TypeError, "'reverse_column' and 'reverse_columns' cannot"),
        (lambda: Set("E", reverse_columns="c"), TypeError, "Parameter 'reverse_columns' must be a list"),
        (lambda: Set("E", table=5), TypeError, "Parameter 'table' must be a string. Got: 5"),
        (lambda: Set("E", py_check=bool), NotImplementedError, "'py_check' parameter is not supported for collection"),
        (lambda: Required(3), TypeError, "Incorrect type of attribute: 3"),
    ],
)
def test_bad_option_values_are_refused_by_the_constructor(make, error: type, message: str) -> None:  # type: ignore[no-untyped-def]
    """Option values of the wrong type raise as the attribute is built."""
    with pytest.raises(error, match=message):
        make()


def test_columns_option_names_the_column(db) -> None:  # type: ignore[no-untyped-def]
    """columns=[name] is column=name; attr.columns lists the column(s) after mapping."""

    class Car(db.Entity):
        id = PrimaryKey(int, columns=["car_id"])
        model = Required(str, column="car_model")

    db.generate_mapping(create_tables=True)
    assert Car.id.column == "car_id" and Car.id.columns == ["car_id"]
    assert Car.model.columns == ["car_model"]
    with db_session:
        Car(id=1, model="T")
    with db_session:
        assert db.select("SELECT car_id, car_model FROM car") == [(1, "T")]


def test_columns_of_a_reference_to_a_composite_key_is_a_list_of_its_columns(db) -> None:  # type: ignore[no-untyped-def]
    """attr.columns is a new list each time: one name per key column of the target, given or derived."""

    class Course(db.Entity):
        name = Required(str)
        term = Required(int)
        PrimaryKey(name, term)
        lessons = Set("Lesson")
        notes = Set("Note")

    class Lesson(db.Entity):
        course = Required(Course, columns=["c_name", "c_term"])

    class Note(db.Entity):
        course = Required(Course)

    db.generate_mapping(create_tables=True)
    assert Lesson.course.columns == ["c_name", "c_term"]
    assert Note.course.columns == ["course_name", "course_term"]
    Lesson.course.columns.append("other")  # the caller's copy: the mapping is unchanged
    assert Lesson.course.columns == ["c_name", "c_term"]
    with db_session:
        Lesson(course=Course(name="Art", term=1))
    with db_session:
        assert db.select("SELECT c_name, c_term FROM lesson") == [("Art", 1)]


# -- entity types given as functions -----------------------------------------------------------


def test_entity_type_given_as_a_function_is_resolved_at_mapping(db) -> None:  # type: ignore[no-untyped-def]
    """Required(lambda: Car) and Set(lambda: Person) name entities declared later."""

    class Person(db.Entity):
        name = Required(str)
        cars = Set(lambda: Car)

    class Car(db.Entity):
        model = Required(str)
        owner = Optional(lambda: Person)

    db.generate_mapping(create_tables=True)
    assert Person.cars.py_type is Car and Car.owner.py_type is Person
    assert Person.cars.reverse is Car.owner
    with db_session:
        ann = Person(name="Ann")
        Car(model="T", owner=ann)
    with db_session:
        assert [c.model for c in Person.select().first().cars] == ["T"]


def test_entity_type_functions_that_do_not_give_an_entity_are_refused(db, another_db) -> None:  # type: ignore[no-untyped-def]
    """A function returning a name, raising, or giving another database's entity is an error at mapping."""

    class Other(another_db.Entity):
        x = Required(int)

    class A(db.Entity):
        b = Optional(lambda: "B")

    with pytest.raises(TypeError, match=r"Invalid type of attribute A\.b: expected entity class, got 'B'"):
        db.generate_mapping(create_tables=True)
    A.b.py_type = lambda: Missing  # noqa: F821 - the name is undefined on purpose
    with pytest.raises(ERDiagramError, match=r"entity type of A\.b could not be resolved.*NameError"):
        db.generate_mapping(create_tables=True)
    A.b.py_type = lambda: Other
    with pytest.raises(ERDiagramError, match="Entities A and Other belongs to different databases"):
        db.generate_mapping(create_tables=True)


# -- LongStr --------------------------------------------------------------------------------------


def test_longstr_is_unbounded_text_loaded_lazily(db) -> None:  # type: ignore[no-untyped-def]
    """LongStr (and LongUnicode) store text of any length and are lazy unless lazy=False."""

    class Article(db.Entity):
        title = Required(str)
        body = Required(LongStr)
        summary = Optional(LongUnicode, lazy=False)

    db.generate_mapping(create_tables=True)
    assert Article.body.lazy and not Article.summary.lazy and LongUnicode is LongStr
    text = "word " * 20000
    with db_session:
        Article(title="t", body=text, summary=" short ")
    with db_session:
        article = Article.select().first()
        assert not Article.body.is_loaded(article) and Article.summary.is_loaded(article)
        assert article.body == text.strip() and article.summary == "short"


# -- volatile on a Set ----------------------------------------------------------------------------


def test_volatile_set_marks_both_sides(db) -> None:  # type: ignore[no-untyped-def]
    """volatile=True on a Set is accepted and read back as is_volatile."""

    class Group(db.Entity):
        students = Set("Student", volatile=True)

    class Student(db.Entity):
        group = Required(Group)

    db.generate_mapping(create_tables=True)
    assert Group.students.is_volatile
    assert Student.group.is_volatile and not Student.group.checked


def test_volatile_set_reads_members_again(db) -> None:  # type: ignore[no-untyped-def]
    """A volatile collection sees rows another client added since it was first read."""

    class Group(db.Entity):
        number = PrimaryKey(int)
        students = Set("Student", volatile=True)

    class Student(db.Entity):
        id = PrimaryKey(int)
        group = Required(Group)

    db.generate_mapping(create_tables=True)
    with db_session:
        group = Group(number=1)
        Student(id=1, group=group)
    with db_session:
        group = Group[1]
        assert {s.id for s in group.students} == {1}
        db.execute("INSERT INTO student (id, " + '"group"' + ") VALUES (2, 1)")
        group.students.load()
        assert {s.id for s in group.students} == {1, 2}
        assert len(group.students) == 2 and not group.students.is_empty()


def test_sql_default_is_the_column_default(db) -> None:  # type: ignore[no-untyped-def]
    """sql_default becomes the column's DEFAULT: rows inserted without the column get it."""

    class Flag(db.Entity):
        name = Required(str)
        level = Optional(int, sql_default="7")
        active = Optional(bool, sql_default=True)

    db.generate_mapping(create_tables=True)
    with db_session:
        db.execute("INSERT INTO flag (name) VALUES ('raw')")
        Flag(name="orm", level=1, active=False)
    with db_session:
        rows = {f.name: (f.level, f.active) for f in Flag.select()}
        assert rows == {"raw": (7, True), "orm": (1, False)}


# -- entity-level declaration checks -------------------------------------------------------------


def test_entity_declarations_pony_refuses_are_refused(db) -> None:  # type: ignore[no-untyped-def]
    """Lower-case entity names, a non-str _table_, an 'id' that is no key, reused or foreign attributes."""
    from nextorm import Entity, composite_key

    with pytest.raises(ERDiagramError, match="Entity class name should start with a capital letter. Got: person"):
        type("person", (db.Entity,), {"name": Required(str)})
    with pytest.raises(TypeError, match=r"^Item\._table_ property must be a string\. Got: 123$"):
        type("Item", (db.Entity,), {"_table_": 123})
    with pytest.raises(ERDiagramError, match="Cannot create default primary key attribute for Tag because name 'id'"):
        type("Tag", (db.Entity,), {"id": Optional(str)})
    with pytest.raises(ERDiagramError, match="Base Entity does not belong to any database"):
        type("Loose", (Entity,), {"name": Required(str)})

    class First(db.Entity):
        a = Required(str)

    with pytest.raises(ERDiagramError, match=r"^Duplicate use of attribute First\.a in entity Second$"):
        type("Second", (db.Entity,), {"b": First.a})
    with pytest.raises(ERDiagramError, match=r"^Invalid use of attribute First\.a in entity Third$"):

        class Third(db.Entity):
            b = Required(str)
            composite_key(First.a, b)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("composite_key()", "composite_key() must receive at least two attributes as arguments"),
        ("composite_key(123, 456)", "composite_key() arguments must be attributes. Got: 123"),
        ("b = Set('Other')\n    composite_key(a, b)", "Set attribute Key.b cannot be part of unique index"),
        ("b = Set('Other')\n    PrimaryKey(a, b)", "Set attribute Key.b cannot be part of primary key"),
        ("b = Set('Other')\n    composite_index(a, b)", "Set attribute Key.b cannot be part of index"),
        ("b = Required(float)\n    composite_key(a, b)", "Attribute Key.b of type float cannot be part of unique index"),
        ("b = Optional(int)\n    PrimaryKey(a, b)", "Optional attribute Key.b cannot be part of primary key"),
        ("b = Required(int, volatile=True)\n    PrimaryKey(a, b)", "Volatile attribute Key.b cannot be part of primary key"),
    ],
)
def test_composite_key_parts_are_checked(db, body: str, message: str) -> None:  # type: ignore[no-untyped-def]
    """composite_key()/PrimaryKey(a, b) refuse what Pony refuses, naming the attribute."""
    from nextorm import composite_index, composite_key

    source = f"class Key(db.Entity):\n    a = Required(int)\n    {body}\n"
    with pytest.raises(TypeError) as info:
        exec(source, {**globals(), "db": db, "composite_key": composite_key, "composite_index": composite_index})
    assert str(info.value) == message


def test_relationship_declarations_pony_refuses_are_refused(db) -> None:  # type: ignore[no-untyped-def]
    """Different join table names on the two sides, a reverse given as an attribute already paired."""

    class A(db.Entity):
        bs = Set("B", table="ab")

    class B(db.Entity):
        as_ = Set(A, table="ba")

    with pytest.raises(MappingError, match=r"Parameter 'table' for A\.bs and B\.as_ do not match"):
        db.generate_mapping(create_tables=True)


def test_reverse_given_as_an_attribute_must_agree(db) -> None:  # type: ignore[no-untyped-def]
    """reverse=Other.attr pairs the two sides; pointing at an attribute paired elsewhere is refused."""

    class Person(db.Entity):
        car = Optional("Car")

    class Car(db.Entity):
        owner = Required(Person)

    class Truck(db.Entity):
        owner = Required(Car, reverse=Car.owner)

    with pytest.raises(ERDiagramError, match=r"Inconsistent reverse attributes Truck\.owner and Car\.owner"):
        db.generate_mapping(create_tables=True)


def test_two_attributes_on_one_column_are_refused(db) -> None:  # type: ignore[no-untyped-def]
    """Two attributes mapped onto the same column raise DBSchemaError naming the column and the table."""
    from nextorm import DBSchemaError

    class Student(db.Entity):
        name = Required(str, column="name")
        record = Required(str, column="name")

    with pytest.raises(DBSchemaError, match="(?i)Column 'name' already exists in table 'student'"):
        db.generate_mapping(create_tables=True)


def test_one_to_one_side_without_the_key_has_no_column(db) -> None:  # type: ignore[no-untyped-def]
    """Of a one-to-one, the side holding the key has the column; the other side's column is None."""

    class Stat(db.Entity):
        show = Optional("Show")

    class Show(db.Entity):
        stats = Required(Stat)

    db.generate_mapping(create_tables=True)
    assert (Stat.show.column, Stat.show.columns) == (None, [])
    assert (Show.stats.column, Show.stats.columns) == ("stats", ["stats"])
    with db_session:
        Show(stats=Stat())
    with db_session:
        assert Stat.select().first().show is Show.select().first()


def test_reference_column_type_follows_its_key_or_its_own_sql_type(db) -> None:  # type: ignore[no-untyped-def]
    """A reference's column has its own sql_type when given, else its target key's type."""
    from nextorm.database import Database

    class Foo(db.Entity):
        id = PrimaryKey(str, sql_type="VARCHAR(20)")
        bars = Set("Bar")
        bazs = Set("Baz")

    class Bar(db.Entity):
        foo = Required(Foo)

    class Baz(db.Entity):
        foo = Required(Foo, sql_type="TEXT")

    db.generate_mapping(create_tables=True)
    dialect = db.provider.dialect
    assert dialect.reference_sql_type(Bar.foo) == "VARCHAR(20)"
    assert dialect.reference_sql_type(Baz.foo) == "TEXT"
    with db_session:
        Bar(foo=Foo(id="x"))
    with db_session:
        assert Bar.select().first().foo.id == "x"
    assert isinstance(db, Database)
