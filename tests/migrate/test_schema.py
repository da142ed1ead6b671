"""The entities as Alembic sees them (docs/migrations.md): exactly the tables ``generate_mapping``
creates, adopted by ``init --baseline``, out-of-date databases named by ``check_tables``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from nextorm import (
    Database,
    DBSchemaError,
    Json,
    LongStr,
    Optional,
    PrimaryKey,
    Required,
    Set,
    TransactionIntegrityError,
    composite_key,
    db_session,
)
from nextorm.migrate import build_metadata, differences, downgrade, init, make, status, upgrade


def declare_everything(db: Database, version: int = 1) -> Database:
    """Every column type, keys of one and two columns, an index, references, a one-to-one, a join table."""

    class Person(db.Entity):
        name = Required(str, max_len=100)
        if version == 1:
            email = Optional(str, unique=True)
        else:
            email = Optional(str)  # the unique key CREATE TABLE left unnamed is dropped
        age = Required(int, default=0)
        score = Required(float)
        active = Required(bool)
        balance = Required(Decimal, precision=10, scale=3)
        born = Optional(date)
        seen = Optional(datetime)
        seen_tz = Optional(datetime, tz_aware=True)
        wake = Optional(time)
        nap = Optional(timedelta)
        photo = Optional(bytes)
        token = Optional(UUID)
        extra = Optional(Json)
        nick = Optional(str, index=True)
        level = Optional(int, size=16, sql_default="7")
        flag = Required(bool, default=True, sql_default=True)
        stamp = Optional(datetime, precision=3)
        body = Optional(LongStr)
        posts = Set("Post")
        tags = Set("Tag")
        if version == 1:
            passport = Optional("Passport")
        composite_key(name, born)

    class Post(db.Entity):
        title = Required(str)
        author = Required(Person)

    class Tag(db.Entity):
        label = PrimaryKey(str)
        people = Set(Person)

    class Passport(db.Entity):
        number = Required(str)
        if version == 1:
            owner = Required(Person)  # the reference CREATE TABLE made with an unnamed foreign key is dropped

    class Pair(db.Entity):
        a = Required(int)
        b = Required(int)
        PrimaryKey(a, b)

    return db


def fill(db: Database) -> None:
    """A row in every table, the join table included."""
    Person, Post, Tag, Passport, Pair = (
        db.entities[n] for n in ("Person", "Post", "Tag", "Passport", "Pair")
    )
    with db_session:
        ann = Person(
            name="Ann",
            email="ann@example.com",
            score=1.5,
            active=True,
            balance=Decimal("12.345"),
            born=date(1990, 1, 2),
            nap=timedelta(minutes=20),
            extra={"a": [1]},
        )
        Post(title="Hello", author=ann)
        Tag(label="x").people.add(ann)
        Passport(number="P-1", owner=ann)
        Pair(a=1, b=2)


def test_metadata_matches_the_tables_generate_mapping_creates(db: Database) -> None:
    """On a database made by create_tables, Alembic finds no difference to the entities' MetaData."""
    declare_everything(db).generate_mapping(create_tables=True)
    assert differences(db) == []
    metadata = build_metadata(db)
    assert set(metadata.tables) == {
        db.entities[n]._table_ for n in ("Person", "Post", "Tag", "Passport", "Pair")
    } | {db.entities["Person"].tags.join_table}


def test_metadata_of_a_hierarchy_is_its_one_shared_table(db: Database) -> None:
    """An inheritance hierarchy is one table (the root's) with every class's columns, keys and
    indexes, as generate_mapping creates it: Alembic finds no difference."""

    class Vehicle(db.Entity):
        plate = Required(str, unique=True)

    class Car(Vehicle):
        seats = Required(int)
        maker = Optional(str, index=True)
        model = Optional(str)
        composite_key(maker, model)

    class Truck(Vehicle):
        load = Optional(float)

    db.generate_mapping(create_tables=True)
    assert differences(db) == []
    tables = build_metadata(db).tables
    assert set(tables) == {Vehicle._table_}
    table = tables[Vehicle._table_]
    assert {"plate", "seats", "maker", "model", "load", "classtype"} <= set(table.columns.keys())
    assert table.columns["seats"].nullable  # empty in the rows of the other classes


def test_metadata_describes_what_differs(db: Database, new_db: Callable[[], Database]) -> None:
    """A changed entity shows up as differences naming the table and column."""
    declare_everything(db).generate_mapping(create_tables=True)
    changed = declare_everything(new_db(), version=2)
    changed.generate_mapping(check_tables=False)
    found = repr(differences(changed)).lower()
    assert "remove_column" in found and "owner" in found


def declare_people(db: Database, version: int) -> Database:
    """Version 1: people with a name; version 2 adds a nickname and a many-to-many with groups."""

    class Person(db.Entity):
        name = Required(str)
        if version >= 2:
            nickname = Optional(str)
            groups = Set("Group")

    class Group(db.Entity):
        name = Required(str)
        if version >= 2:
            people = Set(Person)

    return db


def test_check_tables_names_the_missing_column_and_the_migrate_command(
    db: Database, new_db: Callable[[], Database]
) -> None:
    """An out-of-date database: generate_mapping raises DBSchemaError naming table, column, `nextorm migrate`."""
    declare_people(db, 1).generate_mapping(create_tables=True)
    newer = declare_people(new_db(), 2)
    with pytest.raises(DBSchemaError) as error:
        newer.generate_mapping(check_tables=True)
    message = str(error.value)
    assert repr(newer.entities["Person"]._table_) in message and "'nickname'" in message
    assert "nextorm migrate make" in message and "nextorm migrate upgrade" in message


def test_check_tables_names_a_missing_join_table(db: Database, new_db: Callable[[], Database]) -> None:
    """A many-to-many added to the entities but not to the database names the join table."""
    declare_people(db, 1).generate_mapping(create_tables=True)
    newer = declare_people(new_db(), 2)
    with db_session:
        newer.execute(f"ALTER TABLE {newer.entities['Person']._table_} ADD COLUMN nickname TEXT")
    with pytest.raises(DBSchemaError) as error:
        newer.generate_mapping(check_tables=True)
    join_table = newer.entities["Person"].groups.join_table
    assert f"join table {join_table!r}" in str(error.value) and "nextorm migrate" in str(error.value)


def test_baseline_adopts_a_database_made_by_create_tables(
    db: Database, new_db: Callable[[], Database], migrations: str
) -> None:
    """`init --baseline` stamps it unchanged; later migrations drop what CREATE TABLE left unnamed."""
    declare_everything(db).generate_mapping(create_tables=True)
    fill(db)
    init(db, migrations, baseline=True)
    adopted = status(db, migrations)
    assert adopted.current == adopted.heads and adopted.up_to_date

    v2 = declare_everything(new_db(), version=2)
    v2.generate_mapping(check_tables=False)
    assert make(v2, "no unique email, no passport owner", migrations) is not None
    upgrade(v2, "head", migrations)
    assert status(v2, migrations).up_to_date
    with db_session:
        ann = v2.entities["Person"].get(name="Ann")
        assert ann.email == "ann@example.com" and ann.balance == Decimal("12.345")
        assert ann.extra == {"a": [1]} and [t.label for t in ann.tags] == ["x"]
        assert v2.entities["Passport"].get(number="P-1") is not None
        v2.entities["Person"](name="Bo", email="ann@example.com", score=0, active=False, balance=1)

    with db_session:
        v2.entities["Person"].get(name="Bo").delete()
    # the passport has no owner to give back to the re-added required reference: nothing changes
    with pytest.raises(TransactionIntegrityError, match="rolled back"):
        downgrade(v2, "-1", migrations)
    assert status(v2, migrations).up_to_date
    with db_session:
        v2.entities["Passport"].get(number="P-1").delete()
    downgrade(v2, "-1", migrations)
    v1 = declare_everything(new_db())
    v1.generate_mapping(check_tables=True)
    assert differences(v1) == []
    with db_session:
        assert v1.entities["Person"].get(name="Ann").tags.count() == 1


def test_baseline_revision_builds_a_new_database(
    db: Database, new_db: Callable[[], Database], migrations: str
) -> None:
    """On an empty database the baseline is not stamped: `upgrade` creates the tables create_tables would."""
    declare_everything(db).generate_mapping(check_tables=False)
    init(db, migrations, baseline=True)
    assert status(db, migrations).pending
    upgrade(db, "head", migrations)
    assert status(db, migrations).up_to_date
    db.check_tables()
    fill(db)
    with db_session:
        assert db.entities["Person"].get(name="Ann").passport.number == "P-1"


def test_importing_nextorm_imports_neither_sqlalchemy_nor_alembic() -> None:
    """Migrations are an extra: a program that maps and queries entities never loads them."""
    code = (
        "import sys\n"
        "from nextorm import Database, Required, db_session\n"
        "db = Database('sqlite', ':memory:')\n"
        "class P(db.Entity):\n"
        "    name = Required(str)\n"
        "db.generate_mapping(create_tables=True)\n"
        "with db_session:\n"
        "    P(name='x')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
