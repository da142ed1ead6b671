"""Single changes and their edge cases (docs/migrations.md): dropped join tables, marked renames,
fill values, failed migrations rolled back, refused input."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from nextorm import (
    BindingError,
    Database,
    MappingError,
    Required,
    Set,
    TransactionIntegrityError,
    db_session,
)
from nextorm.migrate import differences, init, make, status, upgrade
from nextorm.migrate.environment import load_database


def declare_library(db: Database, drop: str | None = None, table: str | None = None) -> Database:
    """Books and authors in a many-to-many, shelves holding books; ``drop`` leaves one entity out."""

    class Shelf(db.Entity):
        if table:
            _table_ = table
        label = Required(str)
        if drop != "Book":
            books = Set("Book")

    if drop != "Book":

        class Book(db.Entity):
            title = Required(str)
            shelf = Required(Shelf)
            if drop != "Author":
                authors = Set("Author")

    if drop != "Author":

        class Author(db.Entity):
            name = Required(str)
            if drop != "Book":
                books = Set("Book")

    db.generate_mapping(check_tables=False)
    return db


def fill_library(db: Database) -> None:
    Shelf, Book, Author = (db.entities[n] for n in ("Shelf", "Book", "Author"))
    with db_session:
        shelf = Shelf(label="A")
        ann, bob = Author(name="Ann"), Author(name="Bob")
        for title in ("One", "Two"):
            book = Book(title=title, shelf=shelf)
            book.authors.add(ann)
            book.authors.add(bob)


@pytest.mark.parametrize("drop", ["Book", "Author"])
def test_dropping_either_side_of_a_many_to_many_drops_the_join_table(
    db: Database, new_db: Callable[[], Database], migrations: str, drop: str
) -> None:
    """The join table goes first, whichever entity is dropped; the other tables keep their rows."""
    declare_library(db)
    init(db, migrations)
    make(db, "library", migrations)
    upgrade(db, "head", migrations)
    fill_library(db)
    join_table = db.entities["Book"].authors.join_table

    smaller = declare_library(new_db(), drop=drop)
    make(smaller, f"no {drop}", migrations)
    upgrade(smaller, "head", migrations)
    assert status(smaller, migrations).up_to_date
    with db_session:
        assert smaller.entities["Shelf"].get(label="A") is not None
        if drop == "Author":
            assert sorted(b.title for b in smaller.entities["Book"].select()) == ["One", "Two"]
        else:
            assert sorted(a.name for a in smaller.entities["Author"].select()) == ["Ann", "Bob"]
        tables = {r for r in smaller.select(_tables_sql(smaller))}
    assert join_table not in tables and db.entities[drop]._table_ not in tables


def _tables_sql(db: Database) -> str:
    if db.provider_name == "sqlite":
        return "SELECT name FROM sqlite_master WHERE type = 'table'"
    return "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"


def test_a_marked_table_rename_keeps_rows_and_references(
    db: Database, new_db: Callable[[], Database], migrations: str
) -> None:
    """`make --rename old=new` renames the table instead of dropping it and creating another."""
    declare_library(db)
    init(db, migrations)
    make(db, "library", migrations)
    upgrade(db, "head", migrations)
    fill_library(db)
    old = db.entities["Shelf"]._table_
    new = "rack" if db.provider_name == "postgres" else "Rack"

    renamed = declare_library(new_db(), table=new)
    path = make(renamed, "shelves are racks", migrations, renames=[f"{old}={new}"])
    assert path is not None
    with open(path) as f:
        assert f"op.rename_table('{old}', '{new}')" in f.read()
    upgrade(renamed, "head", migrations)
    assert differences(renamed) == []
    with db_session:
        rack = renamed.entities["Shelf"].get(label="A")
        assert sorted(b.title for b in rack.books) == ["One", "Two"]
        renamed.entities["Book"](title="Three", shelf=rack)


def test_an_unmarked_rename_is_pointed_out_in_the_file(
    db: Database, new_db: Callable[[], Database], migrations: str
) -> None:
    """A dropped and an added column in one table: the file says how to mark a rename."""

    class Person(db.Entity):
        name = Required(str)

    db.generate_mapping(check_tables=False)
    init(db, migrations)
    make(db, "people", migrations)
    upgrade(db, "head", migrations)
    newer = new_db()

    class Person(newer.Entity):  # type: ignore[no-redef]  # noqa: F811
        full_name = Required(str, default="?")

    newer.generate_mapping(check_tables=False)
    path = make(newer, "full names", migrations)
    assert path is not None
    with open(path) as f:
        text = f.read()
    assert f"--rename {Person._table_}.name=full_name" in text
    assert "a dropped column loses its values" in text


def test_a_required_column_without_default_fills_rows_with_the_zero_of_its_type(
    db: Database, new_db: Callable[[], Database], migrations: str
) -> None:
    """Existing rows get '' for a new required str and 0 for an int; the file tells the reviewer."""

    class Person(db.Entity):
        name = Required(str)

    db.generate_mapping(check_tables=False)
    init(db, migrations)
    make(db, "people", migrations)
    upgrade(db, "head", migrations)
    with db_session:
        Person(name="Ann")
    newer = new_db()

    class Person(newer.Entity):  # type: ignore[no-redef]
        name = Required(str)
        city = Required(str)
        visits = Required(int)

    newer.generate_mapping(check_tables=False)
    path = make(newer, "cities", migrations)
    assert path is not None
    with open(path) as f:
        assert "the rows already in the table get ''" in f.read()
    upgrade(newer, "head", migrations)
    with db_session:
        ann = Person.get(name="Ann")
        assert (ann.city, ann.visits) == ("", 0)


def test_a_failing_migration_changes_nothing(
    db: Database, new_db: Callable[[], Database], migrations: str
) -> None:
    """A migration whose last statement fails is rolled back whole: no column, no new revision."""

    class Person(db.Entity):
        name = Required(str)

    db.generate_mapping(check_tables=False)
    init(db, migrations)
    make(db, "people", migrations)
    upgrade(db, "head", migrations)
    with db_session:
        Person(name="Ann")
        Person(name="Ann")
    before = status(db, migrations).current
    path = make(db, "unique names", migrations, empty=True)
    assert path is not None
    with open(path) as f:
        text = f.read()
    table = Person._table_
    body = '"""Bring the schema to this revision."""\n'
    assert body in text
    text = text.replace(
        body,
        body
        + f"    op.add_column({table!r}, sa.Column('note', sa.Text()))\n"
        + f"    op.create_index('uq_names', {table!r}, ['name'], unique=True)\n",
    )
    with open(path, "w") as f:
        f.write(text)
    with pytest.raises(TransactionIntegrityError, match="rolled back"):
        upgrade(db, "head", migrations)
    assert status(db, migrations).current == before
    db.check_tables()
    with db_session:
        columns = [r for r in db.select(f"SELECT * FROM {table}")]
        assert len(columns) == 2 and all(len(row) == 2 for row in columns)


def test_refused_input_names_what_is_wrong(db: Database, migrations: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A rename of nothing, a database behind its migrations, a bad --db: documented errors, no file."""

    class Person(db.Entity):
        name = Required(str)

    db.generate_mapping(check_tables=False)
    init(db, migrations)
    with pytest.raises(MappingError, match=r"Column Person\.nick is not dropped"):
        make(db, "rename of nothing", migrations, renames=["Person.nick=nickname"])
    assert os.listdir(os.path.join(migrations, "versions")) == []
    make(db, "people", migrations)
    with pytest.raises(MappingError, match="not up to date"):
        make(db, "again", migrations)

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models.py").write_text(
        "from nextorm import Database\nmemory = Database('sqlite', ':memory:')\nunbound = Database()\nnot_db = 1\n"
    )
    with pytest.raises(BindingError, match="module:attribute"):
        load_database("models")
    with pytest.raises(BindingError, match="Cannot import module 'nomodels'"):
        load_database("nomodels:db")
    with pytest.raises(BindingError, match="'models:not_db' is not a nextorm Database"):
        load_database("models:not_db")
    with pytest.raises(BindingError, match="not bound"):
        load_database("models:unbound")
    with pytest.raises(BindingError, match="in-memory"):
        differences(load_database("models:memory"))


def test_a_migration_leaving_a_dangling_reference_is_rolled_back(db: Database, migrations: str) -> None:
    """Foreign keys hold across migrations: SQLite's are checked after each step (rebuilds do not)."""
    declare_library(db)
    init(db, migrations)
    make(db, "library", migrations)
    upgrade(db, "head", migrations)
    fill_library(db)
    before = status(db, migrations).current
    path = make(db, "a book on no shelf", migrations, empty=True)
    assert path is not None
    book = db.entities["Book"]._table_
    with open(path) as f:
        text = f.read()
    body = '"""Bring the schema to this revision."""\n'
    with open(path, "w") as f:
        f.write(
            text.replace(
                body, body + f"    op.execute(\"INSERT INTO {book} (title, shelf) VALUES ('x', 999)\")\n"
            )
        )
    with pytest.raises(TransactionIntegrityError, match=book):
        upgrade(db, "head", migrations)
    assert status(db, migrations).current == before
    with db_session:
        assert sorted(b.title for b in db.entities["Book"].select()) == ["One", "Two"]
