"""Entity declarations, mapping onto tables, CRUD on objects, hooks and the errors users see."""

from __future__ import annotations

import itertools
import re
import sqlite3

import pytest

import nextorm

from nextorm import (
    AttributeTypeError,
    CacheIndexError,
    Database,
    DBSchemaError,
    Entity,
    ERDiagramError,
    ObjectNotFound,
    Optional,
    OrmError,
    PrimaryKey,
    ReadOnlyAttributeError,
    Required,
    Set,
    TableIsNotEmpty,
    TransactionIntegrityError,
    UnknownAttributeError,
    ValidationError,
    composite_key,
    db_session,
    flush,
)

# -- helpers ------------------------------------------------------------------------------------


try:
    import psycopg
except ImportError:  # PostgreSQL support is an extra
    psycopg = None

#: what another client's driver raises for a constraint violation
DRIVER_INTEGRITY_ERRORS: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,) + (
    (psycopg.IntegrityError,) if psycopg is not None else ()
)


def rows(conn, sql: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    """All rows of ``sql`` run by the other client ``conn``, as tuples."""
    return [tuple(r) for r in conn.execute(sql).fetchall()]


def is_sqlite(conn) -> bool:  # type: ignore[no-untyped-def]
    """Whether the other client is a sqlite3 connection (else PostgreSQL)."""
    return isinstance(conn, sqlite3.Connection)


def table_names(conn) -> set[str]:  # type: ignore[no-untyped-def]
    """The user tables of the test database."""
    if is_sqlite(conn):
        return {r[0] for r in rows(conn, "SELECT name FROM sqlite_master WHERE type = 'table'")} - {
            "sqlite_sequence"
        }
    return {
        r[0]
        for r in rows(
            conn, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }


def column_names(conn, table: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The columns of ``table`` in table order."""
    if is_sqlite(conn):
        return [r[1] for r in rows(conn, f'PRAGMA table_info("{table}")')]
    return [
        r[0]
        for r in rows(
            conn,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            f" AND table_name = '{table}' ORDER BY ordinal_position",
        )
    ]


def auto_pk_ddl(conn) -> str:  # type: ignore[no-untyped-def]
    """The column type of an auto-incrementing int primary key for raw CREATE TABLE."""
    return "INTEGER PRIMARY KEY AUTOINCREMENT" if is_sqlite(conn) else "SERIAL PRIMARY KEY"


def writes(sql_log) -> list[str]:  # type: ignore[no-untyped-def]
    """The INSERT/UPDATE/DELETE statements in ``sql_log``."""
    return [s for s in sql_log.statements if re.match(r"(EXECUTEMANY \(\d+\) )?(INSERT|UPDATE|DELETE)", s)]


def selects(sql_log) -> list[str]:  # type: ignore[no-untyped-def]
    """The SELECT statements in ``sql_log``."""
    return [s for s in sql_log.statements if s.upper().startswith("SELECT")]


@pytest.fixture
def ann(Person) -> int:  # type: ignore[no-untyped-def]
    """A committed Person row (Ann, 30, ann@x); returns its id."""
    with db_session:
        p = Person(name="Ann", age=30, email="ann@x", score=1.5)
        flush()
        return p.id


# -- primary keys -------------------------------------------------------------------------------


def test_auto_primary_key_is_assigned_on_flush(Person) -> None:
    """An auto int pk is None-less after flush: ids are 1, 2 in creation order."""
    with db_session:
        a = Person(name="A")
        b = Person(name="B")
        flush()
        assert (a.id, b.id) == (1, 2)
        assert repr(a) == "Person[1]"


def test_new_object_repr_before_flush_shows_new_counter(Person) -> None:
    """An unflushed object with an auto pk reprs as ``Person[new:N]``."""
    with db_session:
        p = Person(name="A")
        assert re.fullmatch(r"Person\[new:\d+\]", repr(p))


def test_explicit_int_primary_key(db, other_connection) -> None:
    """A non-auto int pk takes the given value and is stored as such."""

    class Item(db.Entity):
        number = PrimaryKey(int)
        title = Required(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        item = Item(number=42, title="x")
        assert item.get_pk() == 42
        assert repr(item) == "Item[42]"
    assert rows(other_connection, "SELECT number, title FROM Item") == [(42, "x")]
    with db_session:
        assert Item[42].title == "x"


def test_explicit_str_primary_key(db) -> None:
    """A str pk is looked up with ``Entity['key']`` and reprs with quotes."""

    class Country(db.Entity):
        code = PrimaryKey(str, max_len=2)
        name = Required(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        Country(code="FR", name="France")
    with db_session:
        fr = Country["FR"]
        assert fr.name == "France"
        assert repr(fr) == "Country['FR']"
        assert fr.get_pk() == "FR"


def test_explicit_pk_must_be_given(db) -> None:
    """A non-auto pk left out of the constructor is a ValidationError naming it."""

    class Country(db.Entity):
        code = PrimaryKey(str)

    db.generate_mapping(create_tables=True)
    with db_session, pytest.raises(ValidationError, match=r"Attribute Country\.code is required"):
        Country()


@pytest.fixture
def Enrollment(db):  # type: ignore[no-untyped-def]
    """An entity with the composite primary key (course, year)."""

    class Enrollment(db.Entity):
        course = Required(str)
        year = Required(int)
        _pk_ = PrimaryKey(course, year)
        grade = Optional(int)

    db.generate_mapping(create_tables=True)
    return Enrollment


def test_composite_primary_key_declared_without_assignment(db, other_connection) -> None:
    """Pony's form, a bare ``PrimaryKey(a, b)`` statement in the class body, makes (a, b) the pk (no ``id``)."""

    class Seat(db.Entity):
        aisle = Required(str)
        number = Required(int)
        PrimaryKey(aisle, number)

    db.generate_mapping(create_tables=True)
    assert column_names(other_connection, Seat._table_) == ["aisle", "number"]
    other_connection.execute("INSERT INTO Seat (aisle, number) VALUES ('A', 1)")
    other_connection.execute("INSERT INTO Seat (aisle, number) VALUES ('A', 2)")
    with pytest.raises(DRIVER_INTEGRITY_ERRORS):
        other_connection.execute("INSERT INTO Seat (aisle, number) VALUES ('A', 1)")
    with db_session:
        seat = Seat(aisle="B", number=7)
        assert repr(seat) == "Seat['B',7]"
    with db_session:
        assert Seat["B", 7].get_pk() == ("B", 7)


def test_composite_primary_key_lookup_repr_and_get_pk(Enrollment, sql_log) -> None:
    """``X['a', 1]`` finds the row, repr is ``X['a',1]`` and get_pk() a tuple."""
    with db_session:
        Enrollment(course="Math", year=1, grade=5)
    with db_session:
        e = Enrollment["Math", 1]
        assert repr(e) == "Enrollment['Math',1]"
        assert e.get_pk() == ("Math", 1)
        assert e.grade == 5
        sql_log.clear()
        assert Enrollment["Math", 1] is e
        assert selects(sql_log) == []


def test_composite_primary_key_not_found_message(Enrollment) -> None:
    """A missing composite pk raises ObjectNotFound shown as ``X['a',2]`` (the entity repr)."""
    with db_session:
        with pytest.raises(ObjectNotFound) as info:
            Enrollment["Math", 2]
    assert str(info.value) == "Enrollment['Math',2]"


def test_composite_primary_key_clash_in_session(Enrollment) -> None:
    """Creating a second object with a composite pk already in the session gives Pony's CacheIndexError."""
    with db_session:
        Enrollment(course="Math", year=1)
        with pytest.raises(CacheIndexError) as info:
            Enrollment(course="Math", year=1)
    assert str(info.value) == "Cannot create Enrollment: instance with primary key Math, 1 already exists"


def test_composite_primary_key_is_a_db_constraint(Enrollment, other_connection) -> None:
    """The table's primary key spans both columns: a duplicate pair is rejected by SQLite."""
    with db_session:
        Enrollment(course="Math", year=1)
        Enrollment(course="Math", year=2)
    with pytest.raises(DRIVER_INTEGRITY_ERRORS):
        other_connection.execute("INSERT INTO Enrollment (course, year) VALUES ('Math', 1)")


def test_implicit_id_when_no_primary_key(db, other_connection) -> None:
    """An entity without a pk gets an auto int ``id`` column."""

    class Note(db.Entity):
        text = Required(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        n = Note(text="hi")
        flush()
        assert n.id == 1
        assert n.get_pk() == 1
    assert rows(other_connection, "SELECT id, text FROM Note") == [(1, "hi")]


def test_two_primary_keys_are_an_er_diagram_error(db) -> None:
    """Declaring two PrimaryKey attributes raises ERDiagramError."""
    with pytest.raises(ERDiagramError, match="Only one primary key"):

        class Bad(db.Entity):
            a = PrimaryKey(int)
            b = PrimaryKey(int)


def test_entity_bound_with_db_keyword_is_a_db_entity(db, other_connection) -> None:
    """``class Person(Entity, db=db)`` (README: Typing) declares the same entity as ``db.Entity``."""

    class Author(Entity, db=db):
        name = Required(str)
        books = Set("Book")

    class Book(db.Entity):
        author = Required(Author)

    db.generate_mapping(create_tables=True)
    assert issubclass(Author, db.Entity) and db.entities == {"Author": Author, "Book": Book}
    with db_session:
        Book(author=Author(name="Ann"))
    with db_session:
        assert Book[1].author is Author[1]
    assert rows(other_connection, "SELECT id, name FROM Author") == [(1, "Ann")]


def test_entity_with_db_keyword_derives_from_entity_alone(db) -> None:
    """``db=`` binds a class deriving from nextorm.Entity only; anything else is an ERDiagramError."""
    with pytest.raises(ERDiagramError, match=r"Entity Bad with db= must derive from nextorm\.Entity alone"):

        class Bad(db.Entity, db=db):
            name = Required(str)


# -- keys and uniqueness ---------------------------------------------------------------------


@pytest.fixture
def Slot(db):  # type: ignore[no-untyped-def]
    """An entity with ``composite_key(day, hour)``."""

    class Slot(db.Entity):
        day = Required(int)
        hour = Required(int)
        label = Optional(str)
        composite_key(day, hour)

    db.generate_mapping(create_tables=True)
    return Slot


def test_composite_key_clash_in_session_is_cache_index_error(Slot) -> None:
    """A second (day, hour) pair in the session raises Pony's composite-key CacheIndexError."""
    with db_session:
        Slot(day=1, hour=9)
        with pytest.raises(CacheIndexError) as info:
            Slot(day=1, hour=9)
    assert str(info.value) == "Cannot create Slot: value (1, 9) for composite key (day, hour) already exists"


def test_composite_key_allows_pairs_differing_in_one_part(Slot, other_connection) -> None:
    """Pairs that share one part only are both stored."""
    with db_session:
        Slot(day=1, hour=9)
        Slot(day=1, hour=10)
        Slot(day=2, hour=9)
    assert rows(other_connection, "SELECT count(*) FROM Slot") == [(3,)]


def test_composite_key_is_a_db_constraint(Slot, other_connection) -> None:
    """The table has UNIQUE (day, hour): a raw duplicate insert fails in SQLite."""
    with db_session:
        Slot(day=1, hour=9)
    with pytest.raises(DRIVER_INTEGRITY_ERRORS):
        other_connection.execute("INSERT INTO Slot (day, hour) VALUES (1, 9)")


def test_composite_key_clash_on_update_is_cache_index_error(Slot) -> None:
    """Changing one part so the pair clashes with another object raises Pony's CacheIndexError naming both."""
    with db_session:
        Slot(day=1, hour=9)
        b = Slot(day=1, hour=10)
        flush()
        with pytest.raises(CacheIndexError) as info:
            b.hour = 9
        assert b.hour == 10
    assert (
        str(info.value)
        == "Cannot update Slot[2]: composite key (day, hour) with value (1, 9) already exists for Slot[1]"
    )


def test_unique_attribute_is_a_db_constraint(Person, ann, other_connection) -> None:
    """``unique=True`` creates a UNIQUE column: a raw duplicate fails in SQLite."""
    with pytest.raises(DRIVER_INTEGRITY_ERRORS):
        other_connection.execute("INSERT INTO person (name, email, age, score) VALUES ('X', 'ann@x', 1, 0)")


def test_unique_clash_on_create_in_session(Person) -> None:
    """Creating a second object with a unique value in the session gives Pony's CacheIndexError."""
    with db_session:
        Person(name="A", email="a@x")
        with pytest.raises(CacheIndexError) as info:
            Person(name="B", email="a@x")
    assert str(info.value) == "Cannot create Person: value 'a@x' for key email already exists"


def test_unique_clash_on_update_in_session(Person) -> None:
    """Assigning a unique value another object of the session has gives Pony's CacheIndexError."""
    with db_session:
        Person(name="A", email="a@x")
        b = Person(name="B", email="b@x")
        flush()
        with pytest.raises(CacheIndexError) as info:
            b.email = "a@x"
        assert b.email == "b@x"
    assert str(info.value) == "Cannot update Person.email: Person[1] with key a@x already exists"


def test_unique_value_freed_by_delete_can_be_reused(Person, other_connection) -> None:
    """After deleting the holder, another object may take its unique value in the same session."""
    with db_session:
        a = Person(name="A", email="a@x")
        flush()
        a.delete()
        Person(name="B", email="a@x")
    assert rows(other_connection, "SELECT name, email FROM person") == [("B", "a@x")]


def test_unique_clash_with_db_row_on_insert(Person, ann, other_connection) -> None:
    """An INSERT clashing with a row the session never loaded raises TransactionIntegrityError naming it."""
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            Person(name="Bo", email="ann@x")
    message = str(info.value)
    assert re.search(r"Person\[new:\d+\]", message)
    assert "email" in message and "ann@x" in message
    assert isinstance(info.value.original_exc, DRIVER_INTEGRITY_ERRORS)
    assert rows(other_connection, "SELECT id, name, email FROM person") == [(ann, "Ann", "ann@x")]


def test_unique_clash_with_db_row_writes_nothing(Person, ann, other_connection) -> None:
    """When one INSERT of a flush fails, the statements before it in the same flush are rolled back."""
    with pytest.raises(TransactionIntegrityError):
        with db_session:
            Person(name="Ok", email="ok@x")
            Person(name="Bad", email="ann@x")
    assert rows(other_connection, "SELECT name FROM person") == [("Ann",)]


def test_unique_clash_with_db_row_names_only_the_failing_object(Person, ann) -> None:
    """With auto pks (row by row INSERTs) the message names the failing object and value, not its neighbours."""
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            Person(name="Ok", email="ok@x")
            Person(name="Bad", email="ann@x")
    message = str(info.value)
    assert "ann@x" in message
    assert "ok@x" not in message


def test_unique_clash_with_db_row_on_update(Person, ann, other_connection) -> None:
    """An UPDATE clashing with an unloaded row raises TransactionIntegrityError naming object and value."""
    with db_session:
        bo = Person(name="Bo", email="bo@x")
        flush()
        bo_id = bo.id
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            Person[bo_id].email = "ann@x"
    message = str(info.value)
    assert f"Person[{bo_id}]" in message
    assert "email" in message and "ann@x" in message
    assert rows(other_connection, "SELECT email FROM person ORDER BY id") == [("ann@x",), ("bo@x",)]


def test_optional_unique_allows_several_nulls(Person, other_connection) -> None:
    """Several objects may leave an optional unique attribute None."""
    with db_session:
        Person(name="A")
        Person(name="B")
    assert rows(other_connection, "SELECT count(*) FROM person WHERE email IS NULL") == [(2,)]


# -- attribute options ------------------------------------------------------------------------


def test_default_value(Person, other_connection) -> None:
    """An attribute left out takes its ``default``; the default is stored."""
    with db_session:
        p = Person(name="A")
        assert p.age == 0
    assert rows(other_connection, "SELECT age, score FROM person") == [(0, 0.0)]


def test_callable_default_is_called_per_object(db) -> None:
    """A callable ``default`` is called once for each new object."""
    counter = itertools.count(1)

    class Ticket(db.Entity):
        code = Required(str, default=lambda: f"T{next(counter)}")

    db.generate_mapping(create_tables=True)
    with db_session:
        assert [Ticket().code, Ticket().code, Ticket(code="X").code] == ["T1", "T2", "X"]
    with db_session:
        assert sorted(t.code for t in Ticket.select()) == ["T1", "T2", "X"]


def test_column_option_names_the_db_column(db, other_connection) -> None:
    """``column='full_name'`` stores the attribute in that column; raw SQL sees the column name."""

    class Account(db.Entity):
        name = Required(str, column="full_name")

    db.generate_mapping(create_tables=True)
    with db_session:
        Account(name="Ann Lee")
    assert rows(other_connection, "SELECT full_name FROM Account") == [("Ann Lee",)]
    with db_session:
        assert db.select("SELECT full_name FROM Account") == ["Ann Lee"]
        assert Account.get(name="Ann Lee").name == "Ann Lee"
        assert Account.select(Account.name.startswith("Ann")).count() == 1


def test_raw_select_rows_are_named_tuples_of_one_class_per_column_list(db, Person) -> None:
    """``db.select`` of several columns gives named tuples; one column list keeps one row class."""
    with db_session:
        Person(name="Ann", age=30)
        first = db.select("SELECT name, age FROM person")
        again = db.select("SELECT name, age FROM person")
        odd = db.select("SELECT name AS class, age AS def FROM person")
        assert first == [("Ann", 30)] and first[0].name == "Ann" and first[0].age == 30
        assert type(first[0]) is type(again[0])
        assert type(db.select("SELECT age, name FROM person")[0]) is not type(first[0])
        assert odd == [("Ann", 30)] and odd[0]._fields == ("_0", "_1")


def test_table_option_names_the_table(db, other_connection) -> None:
    """``_table_`` is the table the entity is stored in."""

    class Account(db.Entity):
        _table_ = "app_users"
        name = Required(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        Account(name="x")
    assert "app_users" in table_names(other_connection)
    assert "Account" not in table_names(other_connection)
    assert rows(other_connection, "SELECT name FROM app_users") == [("x",)]


def test_table_name_defaults_to_entity_name(db, other_connection) -> None:
    """Without ``_table_`` the table is named after the entity."""

    class Gadget(db.Entity):
        name = Required(str)

    db.generate_mapping(create_tables=True)
    assert "gadget" in {name.lower() for name in table_names(other_connection)}


def test_max_len_rejects_longer_str(Person) -> None:
    """``max_len=100`` accepts 100 characters and rejects 101 with a ValidationError naming the attribute."""
    with db_session:
        Person(name="x" * 100)
        with pytest.raises(ValidationError) as info:
            Person(name="y" * 101)
    assert "Person.name" in str(info.value)
    assert "100" in str(info.value)


def test_lazy_attribute_not_in_initial_select(db, sql_log) -> None:
    """A ``lazy=True`` column is left out of the entity SELECT and loaded on first access."""

    class Doc(db.Entity):
        title = Required(str)
        body = Optional(str, lazy=True)

    db.generate_mapping(create_tables=True)
    with db_session:
        Doc(title="t", body="long text")
    with db_session:
        sql_log.clear()
        doc = Doc.select().first()
        assert len(selects(sql_log)) == 1
        assert '"body"' not in selects(sql_log)[0]
        assert '"title"' in selects(sql_log)[0]
        sql_log.clear()
        assert doc.body == "long text"
        assert len(selects(sql_log)) == 1
        assert '"body"' in selects(sql_log)[0]
        sql_log.clear()
        assert doc.body == "long text"
        assert selects(sql_log) == []


def test_lazy_attribute_excluded_from_to_dict(db) -> None:
    """``to_dict()`` leaves lazy attributes out unless asked for."""

    class Doc(db.Entity):
        title = Required(str)
        body = Optional(str, lazy=True)

    db.generate_mapping(create_tables=True)
    with db_session:
        Doc(title="t", body="b")
    with db_session:
        doc = Doc[1]
        assert doc.to_dict() == {"id": 1, "title": "t"}
        assert doc.to_dict(only=["body"]) == {"body": "b"}
        assert doc.to_dict(with_lazy=True) == {"id": 1, "title": "t", "body": "b"}


def test_volatile_attribute_change_outside_is_not_an_error(db, other_connection) -> None:
    """A read ``volatile`` column changed by another client is refreshed on re-read, not an UnrepeatableReadError."""

    class Counter(db.Entity):
        name = Required(str)
        hits = Required(int, default=0, volatile=True)

    db.generate_mapping(create_tables=True)
    with db_session:
        Counter(name="c")
    with db_session:
        c = Counter[1]
        assert c.hits == 0
        other_connection.execute("UPDATE Counter SET hits = 5")
        Counter.select().fetch()
        assert c.hits == 5
        c.name = "d"
    assert rows(other_connection, "SELECT name, hits FROM Counter") == [("d", 5)]


def test_unknown_attribute_option_is_a_type_error(db) -> None:
    """An unknown keyword in an attribute declaration raises TypeError naming the option."""
    with pytest.raises(TypeError, match="unknown option 'colour'"):

        class Bad(db.Entity):
            name = Required(str, colour="red")


# -- mapping ------------------------------------------------------------------------------------


def test_generate_mapping_creates_tables_and_columns(Person, other_connection) -> None:
    """``generate_mapping(create_tables=True)`` creates the table with one column per attribute."""
    assert column_names(other_connection, "person") == ["id", "name", "email", "age", "score"]


def test_generate_mapping_on_existing_table(db, db_path, other_connection) -> None:
    """``create_tables=False`` maps onto a table created with raw sqlite3, column names included."""
    other_connection.execute(
        f'CREATE TABLE "legacy people" ("person id" {auto_pk_ddl(other_connection)},'
        ' "Full ""Name""" TEXT NOT NULL, note TEXT)'
    )
    other_connection.execute('INSERT INTO "legacy people" ("Full ""Name""", note) VALUES (\'Old\', \'n\')')

    class Legacy(db.Entity):
        _table_ = "legacy people"
        id = PrimaryKey(int, auto=True, column="person id")
        name = Required(str, column='Full "Name"')
        note = Optional(str)

    db.generate_mapping(create_tables=False)
    with db_session:
        old = Legacy[1]
        assert (old.name, old.note) == ("Old", "n")
        new = Legacy(name="New")
        flush()
        assert new.id == 2
    assert rows(other_connection, 'SELECT "person id", "Full ""Name""", note FROM "legacy people"') == [
        (1, "Old", "n"),
        (2, "New", None),
    ]


def test_check_tables_reports_missing_column(db, other_connection) -> None:
    """Mapping onto a table that lacks a column raises DBSchemaError naming the entity and column."""
    other_connection.execute("CREATE TABLE Thing (id INTEGER PRIMARY KEY, name TEXT)")

    class Thing(db.Entity):
        name = Required(str)
        weight = Optional(float)

    with pytest.raises(DBSchemaError) as info:
        db.generate_mapping(create_tables=False)
    assert "Thing" in str(info.value)
    assert "weight" in str(info.value)


def test_create_tables_checks_an_existing_table(db, other_connection) -> None:
    """``create_tables=True`` over an existing table that lacks a column raises DBSchemaError (Pony checks after creating)."""
    other_connection.execute("CREATE TABLE Thing (id INTEGER PRIMARY KEY, name TEXT)")

    class Thing(db.Entity):
        name = Required(str)
        weight = Optional(float)

    with pytest.raises(DBSchemaError) as info:
        db.generate_mapping(create_tables=True)
    assert "Thing" in str(info.value)
    assert "weight" in str(info.value)


def test_check_tables_reports_missing_table(db) -> None:
    """Mapping without create_tables onto a missing table raises DBSchemaError naming it."""

    class Ghost(db.Entity):
        name = Required(str)

    with pytest.raises(DBSchemaError, match="Ghost"):
        db.generate_mapping(create_tables=False)


def test_drop_all_tables_with_all_data(Person, ann, db, other_connection) -> None:
    """``drop_all_tables(with_all_data=True)`` drops tables that hold rows."""
    db.drop_all_tables(with_all_data=True)
    assert "person" not in table_names(other_connection)


def test_drop_all_tables_drops_referring_tables_before_the_tables_they_refer_to(db, other_connection) -> None:
    """Tables holding rows whose references cascade are dropped whatever the order the entities
    were declared in: each table goes before the tables it refers to."""

    class Enrolment(db.Entity):
        student = Required("Student")
        course = Required("Course")

    class Student(db.Entity):
        enrolments = Set(Enrolment)
        mentor = Optional("Student", reverse="mentees")
        mentees = Set("Student", reverse="mentor")

    class Course(db.Entity):
        enrolments = Set(Enrolment)

    db.generate_mapping(create_tables=True)
    with db_session:
        mentor = Student()
        Enrolment(student=Student(mentor=mentor), course=Course())
    db.drop_all_tables(with_all_data=True)
    assert not {Enrolment._table_, Student._table_, Course._table_} & table_names(other_connection)


def test_drop_all_tables_refuses_non_empty_tables(Person, ann, db, other_connection) -> None:
    """Without ``with_all_data`` a table holding rows raises TableIsNotEmpty and is kept."""
    with pytest.raises(TableIsNotEmpty, match="person"):
        db.drop_all_tables()
    assert rows(other_connection, "SELECT count(*) FROM person") == [(1,)]


def test_drop_all_tables_drops_empty_tables(Person, db, other_connection) -> None:
    """Empty tables are dropped without ``with_all_data``."""
    db.drop_all_tables()
    assert "person" not in table_names(other_connection)


def test_entity_defined_after_mapping_is_an_error(Person, db) -> None:
    """Declaring an entity after generate_mapping raises Pony's ERDiagramError."""
    with pytest.raises(
        ERDiagramError, match="Cannot define entity 'Late': database mapping has already been generated"
    ):

        class Late(db.Entity):
            name = Required(str)


def test_duplicate_entity_name_is_an_error(db) -> None:
    """Declaring two entities with one name in a database raises ERDiagramError."""

    class Twin(db.Entity):
        name = Required(str)

    with pytest.raises(ERDiagramError, match="Entity Twin already exists"):

        class Twin(db.Entity):
            name = Required(str)


def test_entities_of_two_databases_are_separate(db, tmp_path) -> None:
    """The same entity name may be declared on two Database objects."""
    other = Database("sqlite", str(tmp_path / "other.sqlite"), create_db=True)
    try:
        declared = []
        for database in (db, other):

            class Thing(database.Entity):
                name = Required(str)

            declared.append(Thing)
        assert db.entities["Thing"] is declared[0]
        assert other.entities["Thing"] is declared[1]
    finally:
        other.disconnect()


def test_in_memory_database() -> None:
    """``Database('sqlite', ':memory:')`` needs no file: create, commit and read back work."""
    memory = Database("sqlite", ":memory:")

    class Memo(memory.Entity):
        text = Required(str)

    memory.generate_mapping(create_tables=True)
    with db_session:
        Memo(text="kept")
    with db_session:
        assert [m.text for m in Memo.select()] == ["kept"]


def test_bind_with_keywords(db_path) -> None:
    """``db.bind(provider='sqlite', filename=..., create_db=True)`` binds like the positional form."""
    database = Database()
    try:

        class Thing(database.Entity):
            name = Required(str)

        database.bind(provider="sqlite", filename=db_path, create_db=True)
        database.generate_mapping(create_tables=True)
        with db_session:
            Thing(name="t")
        with sqlite3.connect(db_path) as conn:
            assert conn.execute('SELECT name FROM "Thing"').fetchall() == [("t",)]
    finally:
        database.disconnect()


# -- create / lookup / get ---------------------------------------------------------------------


def test_create_stores_the_row(Person, other_connection) -> None:
    """A created object is INSERTed with every value when the session commits."""
    with db_session:
        Person(name="Ann", email="a@x", age=30, score=2.5)
    assert rows(other_connection, "SELECT id, name, email, age, score FROM person") == [
        (1, "Ann", "a@x", 30, 2.5)
    ]


def test_lookup_missing_pk_raises_object_not_found(Person) -> None:
    """``Person[333]`` for a missing row raises ObjectNotFound with message ``Person[333]``."""
    with db_session:
        with pytest.raises(ObjectNotFound) as info:
            Person[333]
    assert str(info.value) == "Person[333]"
    assert info.value.entity is Person
    assert info.value.pkval == 333


def test_str_primary_key_not_found_message(db) -> None:
    """A missing str pk raises ObjectNotFound shown with the key's repr: ``Country['XX']``."""

    class Country(db.Entity):
        code = PrimaryKey(str)

    db.generate_mapping(create_tables=True)
    with db_session, pytest.raises(ObjectNotFound) as info:
        Country["XX"]
    assert str(info.value) == "Country['XX']"


def test_explicit_pk_clash_with_db_row(db, other_connection) -> None:
    """Creating an object whose explicit pk exists in the DB (not loaded) raises TransactionIntegrityError, writes nothing."""

    class Country(db.Entity):
        code = PrimaryKey(str)
        name = Optional(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        Country(code="FR", name="France")
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            Country(code="DE")
            Country(code="FR", name="again")
            Country(code="IT")
    assert "Country['FR']" in str(info.value)
    assert rows(other_connection, "SELECT code, name FROM Country") == [("FR", "France")]


def test_loaded_unique_values_clash_in_session(Person, ann) -> None:
    """A unique value held by an object loaded from the DB clashes immediately with a new object."""
    with db_session:
        Person[ann]
        with pytest.raises(CacheIndexError, match="value 'ann@x' for key email already exists"):
            Person(name="Copy", email="ann@x")
    with db_session:
        Person.select().fetch()
        with pytest.raises(CacheIndexError, match="value 'ann@x' for key email already exists"):
            Person(name="Copy", email="ann@x")


def test_unique_values_of_objects_loaded_by_several_queries_clash_in_their_order(Person, ann) -> None:
    """Objects loaded by queries that nothing checked against yet are all in the unique indexes when a
    change is checked: a clash with any of them is found, and a value moved away before is free."""
    with db_session:
        bob = Person(name="Bob", email="bob@x")
    with db_session:
        Person.select(lambda p: p.name == "Ann")[:]
        loaded_bob = Person.select(lambda p: p.name == "Bob")[:][0]
        Person.select()[:]  # both again: each object is indexed once, under its value
        with pytest.raises(CacheIndexError, match="value 'bob@x' for key email already exists"):
            Person(name="Copy", email="bob@x")
        with pytest.raises(CacheIndexError, match="with key ann@x already exists"):
            loaded_bob.email = "ann@x"
        loaded_bob.email = "bob2@x"
        assert Person(name="Bob again", email="bob@x").email == "bob@x"
    assert bob.id != ann


def test_reloading_objects_with_unique_values_keeps_the_session_bounded(Person, ann) -> None:
    """A long session that reloads the same objects many times, never reading its unique indexes,
    keeps what waits to be indexed bounded (it folds the loads into the indexes in batches), and
    a clash with a loaded value is still found."""
    from nextorm._impl import UNLEARNED_LOADS
    from nextorm.session import active_session

    with db_session:
        for _ in range(3 * UNLEARNED_LOADS):
            Person.select(lambda p: p.name == "Ann")[:]
        cache = active_session().cache_for(Person._database_)
        assert len(cache._unlearned) < UNLEARNED_LOADS
        with pytest.raises(CacheIndexError, match="value 'ann@x' for key email already exists"):
            Person(name="Copy", email="ann@x")


def test_unique_value_moved_away_can_be_taken(Person, ann, other_connection) -> None:
    """After a loaded object changes its unique value, a new object may take the old one in the same session."""
    with db_session:
        Person[ann].email = "new@x"
        Person(name="Bo", email="ann@x")
    assert rows(other_connection, "SELECT name, email FROM person ORDER BY id") == [
        ("Ann", "new@x"),
        ("Bo", "ann@x"),
    ]


def test_lookup_key_of_wrong_type_is_rejected(Person) -> None:
    """``Person['abc']`` (an int pk) raises AttributeTypeError naming the pk attribute."""
    with db_session, pytest.raises(AttributeTypeError, match=r"Person\.id"):
        Person["abc"]


def test_get_by_composite_primary_key_keywords(Enrollment) -> None:
    """``get(course=..., year=...)`` finds a composite-pk object, or None."""
    with db_session:
        e = Enrollment(course="Math", year=1)
    with db_session:
        assert Enrollment.get(course="Math", year=1).get_pk() == ("Math", 1)
        assert Enrollment.get(course="Math", year=2) is None
        assert Enrollment.get(course="Math", year=1) is Enrollment["Math", 1]
    assert e.get_pk() == ("Math", 1)


def test_lookup_key_of_wrong_arity_is_rejected(Enrollment) -> None:
    """A composite pk looked up with one or three values raises TypeError."""
    with db_session:
        with pytest.raises(TypeError):
            Enrollment["Math"]
        with pytest.raises(TypeError):
            Enrollment["Math", 1, 2]


def test_lookup_returns_the_same_object_twice(Person, ann) -> None:
    """The identity map gives one object per row: two lookups, one object."""
    with db_session:
        assert Person[ann] is Person[ann]
        assert Person.get(name="Ann") is Person[ann]
        assert Person.select().first() is Person[ann]


def test_lookup_hit_runs_no_sql(Person, ann, sql_log) -> None:
    """``Person[pk]`` on an identity-map hit sends no statement."""
    with db_session:
        p = Person[ann]
        sql_log.clear()
        assert Person[ann] is p
        assert sql_log.statements == []


def test_lookup_of_new_object_after_flush(Person, sql_log) -> None:
    """A flushed new object is found by its pk without a SELECT."""
    with db_session:
        p = Person(name="A")
        flush()
        sql_log.clear()
        assert Person[p.id] is p
        assert selects(sql_log) == []


def test_get_returns_none_object_or_raises(Person) -> None:
    """``get()`` gives None for no match, the object for one, MultipleObjectsFoundError for several."""
    from nextorm import MultipleObjectsFoundError

    with db_session:
        a = Person(name="A", age=1)
        Person(name="B", age=2)
        Person(name="C", age=2)
        assert Person.get(name="Z") is None
        assert Person.get(name="A") is a
        assert Person.get(Person.age < 2) is a
        with pytest.raises(MultipleObjectsFoundError) as info:
            Person.get(age=2)
    assert str(info.value) == "Multiple objects were found. Use Person.select(...) to retrieve them"


def test_get_by_primary_key_keyword(Person, ann) -> None:
    """``get(id=...)`` returns the object, or None for a missing pk."""
    with db_session:
        assert Person.get(id=ann).name == "Ann"
        assert Person.get(id=999) is None


def test_exists(Person, ann) -> None:
    """``Entity.exists(...)`` is True for a match (even several) and False otherwise."""
    with db_session:
        Person(name="Ann", age=3)
        assert Person.exists(name="Ann") is True
        assert Person.exists(name="Nobody") is False
        assert Person.exists(Person.age > 100) is False


def test_created_object_is_visible_to_queries_in_session(Person) -> None:
    """Queries autoflush: a new object is found by select() before commit."""
    with db_session:
        p = Person(name="A")
        assert Person.select(name="A").fetch() == [p]


# -- set / to_dict / get_pk / flush -------------------------------------------------------------


def test_set_assigns_several_attributes(Person, ann, other_connection) -> None:
    """``p.set(name=..., age=...)`` assigns every value and persists them."""
    with db_session:
        Person[ann].set(name="Annie", age=31)
    assert rows(other_connection, "SELECT name, age FROM person") == [("Annie", 31)]


def test_set_is_atomic_on_a_bad_value(Person, ann, sql_log) -> None:
    """A rejected value in ``set()`` leaves every attribute unchanged and nothing to write."""
    with db_session:
        p = Person[ann]
        with pytest.raises(AttributeTypeError):
            p.set(name="Changed", age="old")
        with pytest.raises(ValidationError):
            p.set(name="Changed", age=None)
        with pytest.raises(UnknownAttributeError):
            p.set(name="Changed", nickname="x")
        assert (p.name, p.age) == ("Ann", 30)
        sql_log.clear()
    assert writes(sql_log) == []


def test_set_unique_clash_is_atomic(Person) -> None:
    """A unique clash in ``set()`` leaves the other attributes of the call unchanged."""
    with db_session:
        Person(name="A", email="a@x")
        b = Person(name="B", email="b@x")
        with pytest.raises(CacheIndexError):
            b.set(name="Changed", email="a@x")
        assert (b.name, b.email) == ("B", "b@x")


def test_to_dict_only_and_exclude(Person, ann) -> None:
    """``to_dict()`` gives every column; ``only``/``exclude`` filter by name."""
    with db_session:
        p = Person[ann]
        assert p.to_dict() == {"id": ann, "name": "Ann", "email": "ann@x", "age": 30, "score": 1.5}
        assert p.to_dict(only=["name", "age"]) == {"name": "Ann", "age": 30}
        assert p.to_dict(only="name age") == {"name": "Ann", "age": 30}
        assert p.to_dict(exclude=["email", "score"]) == {"id": ann, "name": "Ann", "age": 30}


def test_to_dict_unknown_name_is_an_error(Person, ann) -> None:
    """``to_dict(only=['nope'])`` raises UnknownAttributeError."""
    with db_session, pytest.raises(UnknownAttributeError, match="nope"):
        Person[ann].to_dict(only=["nope"])


def test_get_pk_flushes_a_new_object(Person) -> None:
    """``get_pk()`` of a new auto-pk object flushes it and returns the new id."""
    with db_session:
        Person(name="first")
        p = Person(name="second")
        assert p.get_pk() == 2


def test_object_flush_sends_only_that_object(Person, sql_log, other_connection) -> None:
    """``p.flush()`` INSERTs that object only; others stay pending until the session flushes."""
    with db_session:
        a = Person(name="A")
        b = Person(name="B")
        sql_log.clear()
        b.flush()
        assert len(writes(sql_log)) == 1
        assert repr(b) == "Person[1]"
        assert re.fullmatch(r"Person\[new:\d+\]", repr(a))
    assert rows(other_connection, "SELECT id, name FROM person ORDER BY id") == [(1, "B"), (2, "A")]


def test_augmented_assignment_persists(Person, ann, other_connection) -> None:
    """``p.age += 1`` is written at commit."""
    with db_session:
        Person[ann].age += 1
    assert rows(other_connection, "SELECT age FROM person") == [(31,)]
    with db_session:
        assert Person[ann].age == 31


def test_equal_value_assignment_is_not_a_change(Person, ann, sql_log) -> None:
    """Assigning the value an attribute already has sends no UPDATE."""
    with db_session:
        p = Person[ann]
        p.name = "Ann"
        p.age = 30
        p.email = "ann@x"
        p.id = ann
        sql_log.clear()
    assert writes(sql_log) == []


def test_changed_attribute_update_sends_only_that_column(Person, ann, sql_log) -> None:
    """An UPDATE sets only the changed column."""
    with db_session:
        Person[ann].age = 40
        sql_log.clear()
    updates = writes(sql_log)
    assert len(updates) == 1
    set_clause = updates[0].split(" WHERE ")[0]
    assert '"age"' in set_clause and '"name"' not in set_clause


# -- delete -------------------------------------------------------------------------------------


def test_delete_removes_the_row(Person, ann, other_connection) -> None:
    """``p.delete()`` deletes the row at commit; afterwards ``Person[pk]`` raises ObjectNotFound."""
    with db_session:
        Person[ann].delete()
        with pytest.raises(ObjectNotFound):
            Person[ann]
    assert rows(other_connection, "SELECT count(*) FROM person") == [(0,)]
    with db_session, pytest.raises(ObjectNotFound):
        Person[ann]


def test_deleted_object_is_not_returned_by_queries(Person, ann) -> None:
    """After ``delete()`` the object is gone from select() and get() in the same session."""
    with db_session:
        Person[ann].delete()
        assert Person.select().fetch() == []
        assert Person.get(name="Ann") is None
        assert Person.get(id=ann) is None
        assert Person.exists(name="Ann") is False


def test_delete_of_new_object_cancels_insert(Person, sql_log, other_connection) -> None:
    """A new object deleted before flush is never INSERTed (nor DELETEd)."""
    with db_session:
        p = Person(name="Temp", email="t@x")
        p.delete()
        Person(name="Other", email="t@x")
        sql_log.clear()
    assert len(writes(sql_log)) == 1
    assert rows(other_connection, "SELECT name FROM person") == [("Other",)]


# -- hooks -----------------------------------------------------------------------------------


@pytest.fixture
def hooked(db, sql_log):  # type: ignore[no-untyped-def]
    """Two entities whose hooks append (hook, repr, number of writes so far) to a shared list."""
    calls: list[tuple[str, str, int]] = []

    def recorder(name):  # type: ignore[no-untyped-def]
        def hook(self) -> None:  # type: ignore[no-untyped-def]
            calls.append((name, repr(self), len(writes(sql_log))))

        return hook

    class Pet(db.Entity):
        name = Required(str)
        before_insert = recorder("before_insert")
        after_insert = recorder("after_insert")
        before_update = recorder("before_update")
        after_update = recorder("after_update")
        before_delete = recorder("before_delete")
        after_delete = recorder("after_delete")

    class Kennel(db.Entity):
        name = Required(str)

    # hooks assigned after the class is declared must run too
    for hook in (
        "before_insert",
        "after_insert",
        "before_update",
        "after_update",
        "before_delete",
        "after_delete",
    ):
        setattr(Kennel, hook, recorder(hook))
    db.generate_mapping(create_tables=True)
    return Pet, Kennel, calls


def test_hooks_run_before_then_sql_then_after(hooked, sql_log) -> None:
    """All before_insert hooks run (creation order) before any INSERT, all after_insert after the last."""
    Pet, Kennel, calls = hooked
    with db_session:
        Pet(name="p1")
        Kennel(name="k1")
        Pet(name="p2")
        sql_log.clear()
        flush()
    names = [(name, r) for name, r, _ in calls]
    assert [n for n, _ in names] == ["before_insert"] * 3 + ["after_insert"] * 3
    assert [r.split("[")[0] for _, r in names[:3]] == ["Pet", "Kennel", "Pet"]
    assert all(re.fullmatch(r"\w+\[new:\d+\]", r) for _, r in names[:3])
    assert [r for _, r in names[3:]] == ["Pet[1]", "Kennel[1]", "Pet[2]"]
    assert [n for _, _, n in calls] == [0, 0, 0, 3, 3, 3]


def test_hooks_follow_first_change_order(hooked, sql_log) -> None:
    """update, insert and delete hooks run in the order objects were first changed, befores then afters."""
    Pet, Kennel, calls = hooked
    with db_session:
        Pet(name="p1")
        Pet(name="p2")
        Kennel(name="k1")
    calls.clear()
    with db_session:
        p1, p2, k1 = Pet[1], Pet[2], Kennel[1]
        k1.name = "k1b"
        Pet(name="p3")
        p2.delete()
        p1.name = "p1b"
        sql_log.clear()
        flush()
    assert [(n, r) for n, r, _ in calls][:4] == [
        ("before_update", "Kennel[1]"),
        ("before_insert", calls[1][1]),
        ("before_delete", "Pet[2]"),
        ("before_update", "Pet[1]"),
    ]
    assert [(n, r) for n, r, _ in calls][4:] == [
        ("after_update", "Kennel[1]"),
        ("after_insert", "Pet[3]"),
        ("after_delete", "Pet[2]"),
        ("after_update", "Pet[1]"),
    ]
    assert [n for _, _, n in calls] == [0] * 4 + [4] * 4


def test_hooks_assigned_after_declaration_run(hooked) -> None:
    """Hooks set on the class after it was declared are called for insert, update and delete."""
    _, Kennel, calls = hooked
    with db_session:
        Kennel(name="k")
    with db_session:
        Kennel[1].name = "k2"
    with db_session:
        Kennel[1].delete()
    assert [n for n, _, _ in calls] == [
        "before_insert",
        "after_insert",
        "before_update",
        "after_update",
        "before_delete",
        "after_delete",
    ]
    assert [r for _, r, _ in calls][1:] == ["Kennel[1]"] * 5


def test_cancelled_object_gets_no_hooks(hooked) -> None:
    """An object created and deleted before a flush triggers no hook."""
    Pet, _, calls = hooked
    with db_session:
        Pet(name="gone").delete()
    assert calls == []


def test_exception_in_before_hook_propagates_and_writes_nothing(db, other_connection) -> None:
    """An exception in before_insert propagates unchanged and the transaction writes nothing."""
    error = ZeroDivisionError("boom")

    class Good(db.Entity):
        name = Required(str)

    class Bad(db.Entity):
        name = Required(str)

        def before_insert(self) -> None:
            raise error

    db.generate_mapping(create_tables=True)
    with pytest.raises(ZeroDivisionError) as info:
        with db_session:
            Good(name="g")
            Bad(name="b")
    assert info.value is error
    assert rows(other_connection, "SELECT count(*) FROM Good") == [(0,)]
    assert rows(other_connection, "SELECT count(*) FROM Bad") == [(0,)]


def test_exception_in_after_hook_propagates_and_writes_nothing(db, other_connection) -> None:
    """An exception in after_insert (the INSERT already ran) propagates unchanged and is rolled back."""

    class Bad(db.Entity):
        name = Required(str)

    def after_insert(self) -> None:  # type: ignore[no-untyped-def]
        raise KeyError("after")

    Bad.after_insert = after_insert
    db.generate_mapping(create_tables=True)
    with pytest.raises(KeyError, match="after"):
        with db_session:
            Bad(name="b")
    assert rows(other_connection, "SELECT count(*) FROM Bad") == [(0,)]


def test_hooks_run_at_object_flush(hooked) -> None:
    """``obj.flush()`` runs that object's before and after hooks only."""
    Pet, _, calls = hooked
    with db_session:
        Pet(name="a")
        b = Pet(name="b")
        b.flush()
        assert [(n, r) for n, r, _ in calls][1:] == [("after_insert", "Pet[1]")]
        assert len(calls) == 2


def test_before_hooks_may_change_the_object(db, other_connection) -> None:
    """Values a before_insert/before_update hook assigns to its object are part of that INSERT/UPDATE."""

    class Stamped(db.Entity):
        name = Required(str)
        version = Required(int, default=0)

        def before_insert(self) -> None:
            self.version = 1

        def before_update(self) -> None:
            self.version += 1

    db.generate_mapping(create_tables=True)
    with db_session:
        Stamped(name="a")
    assert rows(other_connection, "SELECT name, version FROM Stamped") == [("a", 1)]
    with db_session:
        Stamped[1].name = "b"
    assert rows(other_connection, "SELECT name, version FROM Stamped") == [("b", 2)]


def test_object_created_in_before_hook_is_saved_in_the_same_flush(db, other_connection) -> None:
    """An object a before_insert hook creates is inserted by the same flush."""

    class Audit(db.Entity):
        text = Required(str)

    class Order(db.Entity):
        item = Required(str)

        def before_insert(self) -> None:
            Audit(text=f"order {self.item}")

    db.generate_mapping(create_tables=True)
    with db_session:
        Order(item="tea")
        flush()
        assert [a.text for a in Audit.select()] == ["order tea"]
    assert rows(other_connection, "SELECT text FROM Audit") == [("order tea",)]


def test_change_in_after_insert_hook_is_saved(db, other_connection) -> None:
    """A change an after_insert hook makes (the pk is known by then) is written by a further round."""

    class Node(db.Entity):
        name = Required(str)
        path = Optional(str)

        def after_insert(self) -> None:
            self.path = f"/{self.id}"

    db.generate_mapping(create_tables=True)
    with db_session:
        Node(name="root")
        Node(name="leaf")
    assert rows(other_connection, "SELECT id, path FROM Node ORDER BY id") == [(1, "/1"), (2, "/2")]


# -- errors -------------------------------------------------------------------------------------


def test_wrong_type_is_attribute_type_error(Person) -> None:
    """A value of the wrong type raises AttributeTypeError (a TypeError) naming entity, attribute and value."""
    with db_session:
        with pytest.raises(AttributeTypeError) as info:
            Person(name="A", age="thirty")
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, OrmError)
    assert "Person.age" in str(info.value)
    assert "thirty" in str(info.value)


def test_wrong_type_on_assignment(Person, ann) -> None:
    """Assigning a wrong-typed value raises AttributeTypeError and keeps the old value."""
    with db_session:
        p = Person[ann]
        with pytest.raises(AttributeTypeError, match=r"Person\.name.*42"):
            p.name = 42
        assert p.name == "Ann"


def test_missing_required_value(Person) -> None:
    """A required attribute left out raises ValidationError ``Attribute Person.name is required``."""
    with db_session:
        with pytest.raises(ValidationError) as info:
            Person(age=3)
    assert str(info.value) == "Attribute Person.name is required"
    assert isinstance(info.value, ValueError)


def test_empty_required_str(Person) -> None:
    """An empty string for a required str is a ValidationError like a missing value."""
    with db_session, pytest.raises(ValidationError, match=r"^Attribute Person\.name is required$"):
        Person(name="")


def test_required_set_to_none_on_object(Person, ann) -> None:
    """Assigning None to a required attribute names the object: ``Attribute Person[1].name is required``."""
    with db_session:
        p = Person[ann]
        with pytest.raises(ValidationError, match=rf"^Attribute Person\[{ann}\]\.name is required$"):
            p.name = None
        assert p.name == "Ann"


def test_int_out_of_64_bit_range(Person) -> None:
    """An int beyond 64 bits raises ValidationError naming attribute and value."""
    with db_session:
        with pytest.raises(ValidationError) as info:
            Person(name="A", age=2**63)
        Person(name="B", age=2**63 - 1)
        Person(name="C", age=-(2**63))
        with pytest.raises(ValidationError):
            Person(name="D", age=-(2**63) - 1)
    assert "Person.age" in str(info.value)
    assert str(2**63) in str(info.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float_rejected(Person, value) -> None:
    """NaN and infinities raise ValidationError naming the attribute and value."""
    with db_session:
        with pytest.raises(ValidationError) as info:
            Person(name="A", score=value)
    assert "Person.score" in str(info.value)
    assert repr(value) in str(info.value)


def test_unknown_keyword_in_constructor(Person) -> None:
    """An unknown keyword in the constructor raises UnknownAttributeError (a TypeError) naming it."""
    with db_session:
        with pytest.raises(UnknownAttributeError) as info:
            Person(name="A", nickname="Al")
    assert isinstance(info.value, TypeError)
    assert "Unknown attribute 'nickname'" in str(info.value)
    assert "Person" in str(info.value)


def test_unknown_keyword_in_get_select_set(Person, ann) -> None:
    """An unknown keyword in get(), select(), exists() and set() raises UnknownAttributeError."""
    with db_session:
        with pytest.raises(UnknownAttributeError, match="Unknown attribute 'nickname'"):
            Person.get(nickname="x")
        with pytest.raises(UnknownAttributeError, match="Unknown attribute 'nickname'"):
            Person.select(nickname="x")
        with pytest.raises(UnknownAttributeError, match="Unknown attribute 'nickname'"):
            Person.exists(nickname="x")
        with pytest.raises(UnknownAttributeError, match="Unknown attribute 'nickname'"):
            Person[ann].set(nickname="x")


def test_unknown_keyword_checked_before_values(Person) -> None:
    """An unknown keyword is reported even when another value is invalid too."""
    with db_session, pytest.raises(UnknownAttributeError):
        Person(name=42, nickname="x")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Ann",), "Person constructor accept only keyword arguments. Got: 1 positional argument"),
        (("Ann", 3), "Person constructor accept only keyword arguments. Got: 2 positional arguments"),
    ],
)
def test_positional_constructor_arguments(Person, args, message) -> None:
    """Positional constructor arguments raise Pony's TypeError message."""
    with db_session:
        with pytest.raises(TypeError) as info:
            Person(*args)
    assert str(info.value) == message


def test_assigning_primary_key_is_read_only_error(Person, ann, sql_log) -> None:
    """Assigning a different pk raises ReadOnlyAttributeError (a TypeError); an equal value is a no-op."""
    with db_session:
        p = Person[ann]
        with pytest.raises(ReadOnlyAttributeError) as info:
            p.id = ann + 1
        assert isinstance(info.value, TypeError)
        assert "Person.id" in str(info.value)
        with pytest.raises(ReadOnlyAttributeError):
            p.set(id=ann + 1)
        p.id = ann
        p.set(id=ann)
        assert p.id == ann
        sql_log.clear()
    assert writes(sql_log) == []


def test_condition_used_as_bool_is_type_error(Person) -> None:
    """Using a query condition with and/or/if raises TypeError instead of silently dropping a part."""
    with pytest.raises(TypeError):
        bool(Person.age > 3)
    with pytest.raises(TypeError):
        Person.select((Person.age > 3) and (Person.name == "x"))


def test_entity_needs_a_session(Person) -> None:
    """Creating or looking up objects outside db_session raises TransactionError."""
    from nextorm import TransactionError

    with pytest.raises(TransactionError, match="db_session is required"):
        Person(name="A")
    with pytest.raises(TransactionError, match="db_session is required"):
        Person[1]


def test_attributes_nextorm_adds_are_implicit(db: Database) -> None:
    """The default id key and the classtype discriminator have is_implicit; declared attributes do not."""

    class Animal(db.Entity):
        name = Required(str)
        owner = Optional("Keeper")

    class Dog(Animal):
        breed = Optional(str)

    class Keeper(db.Entity):
        id = PrimaryKey(int)
        animals = Set(Animal)

    db.generate_mapping(create_tables=True)
    assert Animal.id.is_implicit and Dog.id.is_implicit
    assert Animal.classtype.is_implicit and Dog.classtype.is_implicit
    assert not any(a.is_implicit for a in (Animal.name, Animal.owner, Dog.breed, Keeper.id, Keeper.animals))


# -- the constructor's fast path (init_new) and its full path refuse alike ------------------------

BAD_NEW_VALUES: list[dict[str, object]] = [
    {"name": None},
    {"name": ""},
    {"name": 7},
    {"name": "x" * 101},
    {"name": "a\x00b"},
    {"name": "\udc80"},
    {"name": "a", "age": "x"},
    {"name": "a", "age": True},
    {"name": "a", "age": 2**63},
    {"name": "a", "age": 1.5},
    {"name": "a", "score": float("inf")},
    {"name": "a", "score": "s"},
    {"name": "a", "score": None},
    {"name": "a", "email": 5},
    {"name": "a", "nickname": "b"},
    {"name": "a", "id": "k"},
]


def test_later_objects_are_refused_as_the_first_is(Person) -> None:
    """The first object of a session takes the constructor's full path, later ones the fast path
    (``init_new``): both raise the same documented exception naming entity, attribute and value."""

    def refusal(kwargs: dict[str, object], after_another: bool) -> tuple[str, str]:
        with db_session:
            if after_another:
                Person(name="first")
            with pytest.raises(OrmError) as info:
                Person(**kwargs)
            nextorm.rollback()
        return type(info.value).__name__, str(info.value)

    for kwargs in BAD_NEW_VALUES:
        first = refusal(kwargs, after_another=False)
        assert refusal(kwargs, after_another=True) == first, kwargs
        assert "Person" in first[1], first


def test_later_objects_take_converted_and_default_values(Person) -> None:
    with db_session:
        Person(name="first")
        made = [
            Person(name="  padded  ", age=3, score=2),
            Person(name="plain", age=5, score=1.5, email="p@x"),
            Person(name="ümlaut"),
            Person(name="keyed", id=77),
        ]
        values = [(p.name, p.age, p.score, p.email) for p in made]
        assert values == [("padded", 3, 2.0, None), ("plain", 5, 1.5, "p@x"), ("ümlaut", 0, 0.0, None), ("keyed", 0, 0.0, None)]
        assert type(made[0].score) is float
        assert Person[77] is made[3]
        with pytest.raises(CacheIndexError, match="77 already exists"):
            Person(name="again", id=77)
        with pytest.raises(CacheIndexError, match="p@x"):
            Person(name="same email", email="p@x")
    with db_session:
        assert sorted(p.name for p in Person.select()) == ["first", "keyed", "padded", "plain", "ümlaut"]
