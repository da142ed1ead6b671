"""The unit of work (on SQLite and PostgreSQL): identity map, dirty tracking, flush order and batching,
autoflush, optimistic checks, unrepeatable reads, failed flushes, hooks, wide entities,
commit and rollback in the middle of a session.

Conflicts are real: ``other_connection`` writes the row between the session's load
and its flush, while the session is still in autocommit mode (it holds no lock).
"""

from __future__ import annotations

import ast
import re
import sqlite3
from typing import Any

import pytest

from nextorm import (
    Database,
    DatabaseSessionIsOver,
    Json,
    OptimisticCheckError,
    Optional,
    PendingRollbackError,
    PrimaryKey,
    Required,
    TransactionError,
    TransactionIntegrityError,
    UnrepeatableReadError,
    commit,
    db_session,
    flush,
    rollback,
)
from nextorm._impl import LOADED
from nextorm.unitofwork import MAX_INSERT_ROWS, match_keys
from support import sync_id_sequence

# -- helpers -----------------------------------------------------------------------------------

_WRITE = re.compile(r'^(EXECUTEMANY \((\d+)\) )?(INSERT INTO|UPDATE|DELETE FROM) "?(\w+)"?')
_CLAUSE = re.compile(r'"(\w+)" (= (?:\?|%s)|IS NULL)')  # placeholders: ? (SQLite) or %s (PostgreSQL)


def writes(sql_log: Any) -> list[str]:
    """The INSERT/UPDATE/DELETE statements logged, summarized as ``[EXECUTEMANY (n) ]VERB table``
    (an UPDATE of several rows in one statement as ``UPDATE table (n rows)``)."""
    result = []
    for statement in sql_log.statements:
        match = _WRITE.match(statement)
        if match:
            verb = match.group(3).split()[0]
            rows = f" ({statement.count('), (')} rows)" if " FROM (VALUES " in statement else ""
            result.append(f"{match.group(1) or ''}{verb} {match.group(4)}{rows}")
    return result


def update_batch(db_kind: str, count: int, table: str) -> str:
    """How ``writes`` shows a batch of ``count`` UPDATEs: PostgreSQL updates the rows with one
    multi-row statement, SQLite with an executemany of one-row UPDATEs."""
    if db_kind == "postgres":
        return f"UPDATE {table} ({count} rows)"
    return f"EXECUTEMANY ({count}) UPDATE {table}"


def write_records(sql_log: Any, verb: str) -> list[str]:
    """The full log records (SQL and parameters) of the statements starting with ``verb``."""
    return [r for r in sql_log.records if r.split("\n")[0].startswith(verb)]


def parse_write(record: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(SET column -> value, WHERE column -> value or 'IS NULL')`` of one logged UPDATE/DELETE."""
    lines = record.split("\n")
    sql = lines[0]
    params = list(ast.literal_eval(lines[1])) if len(lines) > 1 else []
    head, _, where = sql.partition(" WHERE ")
    set_part = head.partition(" SET ")[2]
    values = iter(params)
    assigned = {name: next(values) for name, _ in _CLAUSE.findall(set_part)}
    checked = {name: ("IS NULL" if op == "IS NULL" else next(values)) for name, op in _CLAUSE.findall(where)}
    assert next(values, "end") == "end", f"unused parameters in {record!r}"
    return assigned, checked


def only_write(sql_log: Any, verb: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parsed SET and WHERE of the one statement starting with ``verb``."""
    records = write_records(sql_log, verb)
    assert len(records) == 1, records
    return parse_write(records[0])


def table_rows(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    """Rows as another client sees them (committed data only)."""
    return conn.execute(sql).fetchall()


def seed_people(conn: sqlite3.Connection, *rows: tuple[Any, ...]) -> None:
    """Insert (id, name, email, age, score) rows as another client, committed."""
    conn.executemany("INSERT INTO person (id, name, email, age, score) VALUES (?, ?, ?, ?, ?)", rows)
    sync_id_sequence(conn, "person")


# -- more entities -------------------------------------------------------------------------------


@pytest.fixture
def Item(db: Database) -> type:
    """An entity with an explicit (non-auto) int primary key, so its INSERTs can be batched."""

    class Item(db.Entity):
        _table_ = "item"
        id = PrimaryKey(int)
        name = Required(str)
        email = Optional(str, unique=True)
        qty = Required(int, default=0)

    db.generate_mapping(create_tables=True)
    return Item


@pytest.fixture
def Gauge(db: Database) -> type:
    """An entity with a ``volatile=True`` column (changed by others; never checked)."""

    class Gauge(db.Entity):
        _table_ = "gauge"
        id = PrimaryKey(int, auto=True)
        label = Required(str)
        reading = Required(int, volatile=True)

    db.generate_mapping(create_tables=True)
    return Gauge


@pytest.fixture
def Wide(db: Database) -> type:
    """An entity of 70 columns: ``id`` is column 0 and ``c1`` .. ``c69`` are columns 1 .. 69."""
    namespace: dict[str, Any] = {"_table_": "wide", "id": PrimaryKey(int, auto=True)}
    for i in range(1, 70):
        namespace[f"c{i}"] = Optional(int)
    wide = type(db.Entity)("Wide", (db.Entity,), namespace)
    db.generate_mapping(create_tables=True)
    return wide


@pytest.fixture
def wide_row(Wide: type, other_connection: sqlite3.Connection) -> int:
    """One committed Wide row whose column ``ci`` holds ``i``; returns its id."""
    columns = ", ".join(f"c{i}" for i in range(1, 70))
    other_connection.execute(
        f"INSERT INTO wide (id, {columns}) VALUES (1, {', '.join('?' * 69)})", list(range(1, 70))
    )
    sync_id_sequence(other_connection, "wide")
    return 1


@pytest.fixture
def three_people(Person: type, other_connection: sqlite3.Connection) -> type:
    """Person rows 1 'A' (age 30), 2 'B' (age 31), 3 'C' (age 32), committed by another client."""
    seed_people(other_connection, (1, "A", None, 30, 1.5), (2, "B", None, 31, 2.5), (3, "C", None, 32, 3.5))
    return Person


# -- identity map --------------------------------------------------------------------------------


def test_every_lookup_returns_the_one_object_of_a_row(three_people: type) -> None:
    """Entity[pk], get by pk, get by value, select, first and select_by_sql yield one object per row."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert Person[1] is p
        assert Person.get(id=1) is p
        assert Person.get(name="A") is p
        assert Person.select(Person.id == 1).first() is p
        assert next(iter(Person.select().order_by(Person.id))) is p
        assert Person.select_by_sql("SELECT * FROM person WHERE id = 1")[0] is p
        assert Person.select_by_sql("SELECT * FROM person WHERE name = $name", {"name": "A"})[0] is p


def test_select_first_then_pk_lookup_returns_the_selected_object(three_people: type, sql_log: Any) -> None:
    """Objects a query materialized are found by Entity[pk] without another query."""
    Person = three_people
    with db_session:
        people = Person.select().order_by(Person.id).fetch()
        sql_log.clear()
        assert [id(Person[pk]) for pk in (1, 2, 3)] == [id(p) for p in people]
        assert sql_log.statements == []


def test_created_object_is_found_by_its_new_pk_after_flush(Person: type, sql_log: Any) -> None:
    """An auto-pk object joins the identity map under the id its INSERT got."""
    with db_session:
        p = Person(name="Ann")
        flush()
        sql_log.clear()
        assert Person[p.id] is p
        assert sql_log.statements == []
        assert Person.get(name="Ann") is p


def test_a_new_session_gives_new_objects(three_people: type) -> None:
    """Each db_session has its own identity map: the same row is a different object next time."""
    Person = three_people
    with db_session:
        first = Person[1]
        assert Person[1] is first
    with db_session:
        second = Person[1]
        assert second is not first
        assert Person.select(Person.id == 1).first() is second


# -- dirty tracking ------------------------------------------------------------------------------


def test_assigning_an_equal_value_is_not_a_change(three_people: type, sql_log: Any) -> None:
    """Assigning the values an object already has sends no UPDATE and keeps it clean."""
    Person = three_people
    calls: list[Any] = []
    Person.before_update = lambda self: calls.append(self)
    with db_session:
        p = Person[1]
        sql_log.clear()
        p.name = "A"
        p.age = 30
        p.score = 1.5
        p.email = None
        p.set(name="A", age=30)
        assert p._status_ == LOADED
        flush()
    assert writes(sql_log) == []
    assert "BEGIN IMMEDIATE" not in sql_log.statements
    assert calls == []


def test_change_then_change_back_still_sends_an_update(three_people: type, sql_log: Any) -> None:
    """Chosen behaviour: a value changed and changed back before flush is written (UPDATE with the original)."""
    Person = three_people
    with db_session:
        p = Person[1]
        p.name = "Z"
        p.name = "A"
        sql_log.clear()
        flush()
    assigned, checked = only_write(sql_log, "UPDATE")
    assert assigned == {"name": "A"}
    assert checked == {"id": 1}


def test_update_sets_only_the_changed_columns(
    three_people: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """The UPDATE's SET lists exactly the columns assigned a different value."""
    Person = three_people
    with db_session:
        p = Person[1]
        p.age = 40
        p.email = "a@x"
        p.name = "A"  # equal value: not part of the update
        sql_log.clear()
    assigned, _ = only_write(sql_log, "UPDATE")
    assert assigned == {"age": 40, "email": "a@x"}
    assert table_rows(other_connection, "SELECT name, email, age FROM person WHERE id = 1") == [
        ("A", "a@x", 40)
    ]


def test_second_flush_sends_only_what_changed_since_the_first(three_people: type, sql_log: Any) -> None:
    """After a flush the object is clean again: the next UPDATE sets only the newer change."""
    Person = three_people
    with db_session:
        p = Person[1]
        p.age = 40
        flush()
        sql_log.clear()
        p.email = "a@x"
        flush()
        assert p._status_ == LOADED
    assigned, _ = only_write(sql_log, "UPDATE")
    assert assigned == {"email": "a@x"}


def test_modified_then_deleted_sends_only_a_checked_delete(three_people: type, sql_log: Any) -> None:
    """An object changed and then deleted before a flush gets one DELETE, checked with the loaded values."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert p.name == "A"
        p.name = "Z"
        p.delete()
        sql_log.clear()
        flush()
    assert writes(sql_log) == ["DELETE person"]
    assert only_write(sql_log, "DELETE")[1] == {"id": 1, "name": "A"}


def test_created_then_deleted_sends_nothing(
    Person: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """An object created and deleted before a flush never reaches the database."""
    with db_session:
        p = Person(name="ghost")
        p.delete()
        flush()
    assert writes(sql_log) == []
    assert table_rows(other_connection, "SELECT COUNT(*) FROM person") == [(0,)]


# -- flush order and batching --------------------------------------------------------------------


def test_statements_follow_the_order_objects_were_first_changed(
    three_people: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """create A, modify B, create C, delete D → INSERT A, UPDATE B, INSERT C, DELETE D."""
    Person = three_people
    with db_session:
        b, d = Person[2], Person[3]
        sql_log.clear()
        Person(name="newA")
        b.age = 50
        Person(name="newC")
        d.delete()
        flush()
        assert writes(sql_log) == ["INSERT person", "UPDATE person", "INSERT person", "DELETE person"]
        inserts = write_records(sql_log, "INSERT")
        assert "'newA'" in inserts[0] and "'newC'" in inserts[1]
    assert table_rows(other_connection, "SELECT id, name, age FROM person ORDER BY id") == [
        (1, "A", 30),
        (2, "B", 50),
        (4, "newA", 0),
        (5, "newC", 0),
    ]


def test_a_second_change_keeps_the_first_change_position(three_people: type, sql_log: Any) -> None:
    """An object's place in the flush is where it was first changed, not last."""
    Person = three_people
    with db_session:
        p1, p2 = Person[1], Person[2]
        sql_log.clear()
        p1.age = 1
        p2.name = "B2"
        p1.name = "A2"  # p1 changed again: still flushed first
        flush()
    updates = [parse_write(r) for r in write_records(sql_log, "UPDATE")]
    assert [checked["id"] for _, checked in updates] == [1, 2]
    assert updates[0][0] == {"name": "A2", "age": 1}


def test_explicit_pk_inserts_are_batched(
    Item: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """Consecutive INSERTs of one shape go out as one executemany."""
    with db_session:
        Item(id=1, name="a")
        Item(id=2, name="b")
        Item(id=3, name="c")
        flush()
    assert writes(sql_log) == ["EXECUTEMANY (3) INSERT item"]
    assert table_rows(other_connection, "SELECT id, name FROM item ORDER BY id") == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
    ]


def test_updates_of_the_same_columns_are_batched(
    three_people: type, other_connection: sqlite3.Connection, sql_log: Any, db_kind: str
) -> None:
    """Consecutive UPDATEs setting the same columns (with the same checks) go out as one executemany."""
    Person = three_people
    with db_session:
        people = Person.select().order_by(Person.id).fetch()
        sql_log.clear()
        for i, p in enumerate(people):
            p.age = 60 + i
    assert writes(sql_log) == [update_batch(db_kind, 3, "person")]
    assert table_rows(other_connection, "SELECT age FROM person ORDER BY id") == [(60,), (61,), (62,)]


def test_deletes_of_the_same_shape_are_batched(
    three_people: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """Consecutive DELETEs with the same checks go out as one executemany."""
    Person = three_people
    with db_session:
        people = Person.select().fetch()
        sql_log.clear()
        for p in people:
            p.delete()
    assert writes(sql_log) == ["EXECUTEMANY (3) DELETE person"]
    assert table_rows(other_connection, "SELECT COUNT(*) FROM person") == [(0,)]


def test_updates_of_different_columns_split_batches(
    three_people: type, other_connection: sqlite3.Connection, sql_log: Any, db_kind: str
) -> None:
    """A statement of another shape ends a batch: age, age, name → executemany of 2, then one UPDATE."""
    Person = three_people
    with db_session:
        p1, p2, p3 = Person.select().order_by(Person.id).fetch()
        sql_log.clear()
        p1.age = 71
        p2.age = 72
        p3.name = "C3"
        flush()
    assert writes(sql_log) == [update_batch(db_kind, 2, "person"), "UPDATE person"]
    assert table_rows(other_connection, "SELECT name, age FROM person ORDER BY id") == [
        ("A", 71),
        ("B", 72),
        ("C3", 32),
    ]


def test_different_checks_split_batches(three_people: type, sql_log: Any) -> None:
    """UPDATEs of the same column but with different read columns are not batched together."""
    Person = three_people
    with db_session:
        p1, p2, p3 = Person.select().order_by(Person.id).fetch()
        assert p2.name == "B"
        sql_log.clear()
        p1.age = 71
        p2.age = 72
        p3.age = 73
        flush()
    assert writes(sql_log) == ["UPDATE person", "UPDATE person", "UPDATE person"]
    assert [parse_write(r)[1] for r in write_records(sql_log, "UPDATE")] == [
        {"id": 1},
        {"id": 2, "name": "B"},
        {"id": 3},
    ]


def test_interleaved_shapes_split_insert_batches(
    Item: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """INSERT, INSERT, UPDATE, INSERT of one entity → executemany of 2, UPDATE, single INSERT."""
    other_connection.execute("INSERT INTO item (id, name, qty) VALUES (9, 'old', 0)")
    with db_session:
        old = Item[9]
        sql_log.clear()
        Item(id=1, name="a")
        Item(id=2, name="b")
        old.qty = 5
        Item(id=3, name="c")
        flush()
    assert writes(sql_log) == ["EXECUTEMANY (2) INSERT item", "UPDATE item", "INSERT item"]
    assert table_rows(other_connection, "SELECT id, qty FROM item ORDER BY id") == [
        (1, 0),
        (2, 0),
        (3, 0),
        (9, 5),
    ]


def test_auto_pk_inserts_get_ids_in_creation_order(
    Person: type, other_connection: sqlite3.Connection
) -> None:
    """Objects with an auto primary key get ascending ids in the order they were created."""
    with db_session:
        a = Person(name="A")
        b = Person(name="B")
        c = Person(name="C")
        flush()
        ids = [a.id, b.id, c.id]
    assert ids == [1, 2, 3]
    assert table_rows(other_connection, "SELECT id, name FROM person ORDER BY id") == [
        (1, "A"),
        (2, "B"),
        (3, "C"),
    ]


def test_auto_pk_inserts_go_in_multi_row_statements_and_each_object_gets_its_rows_key(
    Person: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """New objects with generated keys are sent in multi-row INSERTs of at most MAX_INSERT_ROWS rows;
    each object gets the key of the row holding its values, equal objects too (README: Performance)."""
    count = MAX_INSERT_ROWS + 7
    with db_session:
        people = [Person(name=f"p{i % 300}", age=i % 3) for i in range(count)]
        flush()
        ids = [p.id for p in people]
        assert all(Person[pk] is p for pk, p in zip(ids, people))
    assert sorted(ids) == list(range(1, count + 1))
    stored = dict(table_rows(other_connection, "SELECT id, name || '/' || age FROM person"))
    assert all(stored[p_id] == f"p{i % 300}/{i % 3}" for i, p_id in enumerate(ids))
    inserts = [s for s in sql_log.statements if s.startswith('INSERT INTO "person"')]
    assert len(inserts) == 2 and all(" RETURNING " in s for s in inserts)


def test_new_rows_return_their_key_beside_the_one_column_that_tells_them_apart(
    Person: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """Where one column of ints or strings (ints first) holds a different value in every new row,
    RETURNING carries the key and that column alone, and each object gets the key of its row."""
    with db_session:
        by_age = [Person(name="same", age=40 - i, score=1.0) for i in range(6)]
        flush()
        by_name = [Person(name=f"n{i}", age=1, email=f"{i}@x" if i else None) for i in range(6)]
        flush()
        ids = [(p.id, p.age, p.name) for p in by_age + by_name]
    returning = [re.sub('[`"]', "", s).rpartition(" RETURNING ")[2] for s in sql_log.statements if " RETURNING " in s]
    assert returning == ["id, age", "id, name"]
    stored = {row[0]: row[1:] for row in table_rows(other_connection, "SELECT id, age, name FROM person")}
    assert {pk: (age, name) for pk, age, name in ids} == stored


def test_rows_the_database_stores_otherwise_are_rolled_back_and_inserted_one_by_one(
    db: Database, db_kind: str, other_connection: Any, sql_log: Any
) -> None:
    """When a returned row holds other values than those sent (here SQLite's INTEGER affinity
    turns '001' into 1, and a PostgreSQL trigger strips the zeros), no object can be matched to
    it: the batch is rolled back to its savepoint and each object is inserted with its own key."""
    if db_kind == "sqlite":
        other_connection.execute(
            "CREATE TABLE code (id INTEGER PRIMARY KEY AUTOINCREMENT, text INTEGER NOT NULL)"
        )
    else:
        other_connection.execute("CREATE TABLE code (id SERIAL PRIMARY KEY, text TEXT NOT NULL)")
        other_connection.execute(
            "CREATE FUNCTION code_trim() RETURNS trigger AS $$ BEGIN NEW.text := ltrim(NEW.text, '0'); "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        other_connection.execute(
            "CREATE TRIGGER code_trim BEFORE INSERT ON code FOR EACH ROW EXECUTE FUNCTION code_trim()"
        )

    class Code(db.Entity):
        _table_ = "code"
        id = PrimaryKey(int, auto=True)
        text = Required(str)

    db.generate_mapping(create_tables=False)
    with db_session:
        codes = [Code(text=f"00{i}") for i in range(1, 6)]
        flush()
        ids = [c.id for c in codes]
    assert len([s for s in sql_log.statements if s.startswith("ROLLBACK TO")]) == 1
    assert len(set(ids)) == 5
    stored = dict(table_rows(other_connection, "SELECT id, text FROM code"))
    assert stored == {pk: (n if db_kind == "sqlite" else str(n)) for n, pk in enumerate(ids, 1)}


def test_columns_of_types_that_may_read_back_otherwise_are_not_matched_by_value(
    db: Database, db_kind: str, other_connection: Any, sql_log: Any
) -> None:
    """An entity with a column whose type may come back in another form (Json, a custom sql_type)
    inserts new rows without a multi-row statement, so no key is spent on a rolled-back row."""

    class Doc(db.Entity):
        _table_ = "doc"
        id = PrimaryKey(int, auto=True)
        body = Required(Json)

    db.generate_mapping(create_tables=True)
    with db_session:
        docs = [Doc(body={"n": i}) for i in range(3)]
        flush()
        ids = [d.id for d in docs]
    assert ids == [1, 2, 3]
    assert not [s for s in sql_log.statements if s.startswith("ROLLBACK TO")]


def test_unique_clash_in_a_multi_row_insert_names_the_object_and_keeps_no_row(
    Person: type, other_connection: sqlite3.Connection
) -> None:
    """A multi-row INSERT that fails is rolled back and replayed one row at a time, so the error
    names the one object whose row clashed; the failed session keeps no row."""
    seed_people(other_connection, (1, "theirs", "b@x", 30, 1.0))
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            Person(name="a", email="a@x")
            Person(name="b", email="b@x")
            Person(name="c", email="c@x")
    assert "cannot be stored in the database" in str(info.value) and "'b@x'" in str(info.value)
    assert table_rows(other_connection, "SELECT name FROM person") == [("theirs",)]


def test_match_keys_pairs_returned_rows_by_their_values_not_their_position() -> None:
    """Returned (key, *values) rows in any order go to the rows holding those values; rows of equal
    values take their keys in ascending order; a value stored differently gives no match."""
    rows = [("a", 1), ("b", 2), ("a", 1)]
    assert match_keys(rows, [(12, "a", 1), (11, "b", 2), (10, "a", 1)]) == [10, 11, 12]
    assert match_keys(rows, [(10, "a", 1), (11, "b", 2), (12, "a", 1.0)]) == [10, 11, 12]
    assert match_keys(rows, [(10, "a", 1), (11, "b", 2), (12, "a", "1")]) is None
    assert match_keys(rows, [(10, "a", 1), (11, "b", 2)]) is None
    assert match_keys([([1],), ([2],)], [(2, [2]), (1, [1])]) is None


# -- autoflush -----------------------------------------------------------------------------------

_QUERIES = {
    "select": lambda db, P, new: new in P.select().fetch(),
    "count": lambda db, P, new: P.select().count() == 2,
    "exists": lambda db, P, new: P.exists(name="new") is True,
    "get": lambda db, P, new: P.get(name="new") is new,
    "select_by_sql": lambda db, P, new: new in P.select_by_sql("SELECT * FROM person"),
    "first": lambda db, P, new: P.select(P.name == "new").first() is new,
    "db.select": lambda db, P, new: "new" in db.select("SELECT name FROM person"),
}


@pytest.mark.parametrize("query", sorted(_QUERIES))
def test_queries_autoflush_first(
    query: str, db: Database, Person: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """A pending INSERT is sent before a query runs, so the query sees the new row."""
    seed_people(other_connection, (1, "old", None, 1, 0.0))
    with db_session:
        new = Person(name="new")
        sql_log.clear()
        assert _QUERIES[query](db, Person, new)
        statements = sql_log.statements
    first_insert = next(i for i, s in enumerate(statements) if s.startswith("INSERT"))
    first_select = next(i for i, s in enumerate(statements) if s.startswith("SELECT"))
    assert first_insert < first_select


def test_identity_map_miss_autoflushes_first(
    Person: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """Entity[pk] for a row not in the session sends pending changes before its SELECT."""
    seed_people(other_connection, (1, "old", None, 1, 0.0))
    with db_session:
        Person(name="new")
        sql_log.clear()
        assert Person[1].name == "old"
        statements = sql_log.statements
    first_insert = next(i for i, s in enumerate(statements) if s.startswith("INSERT"))
    first_select = next(i for i, s in enumerate(statements) if s.startswith("SELECT"))
    assert first_insert < first_select


def test_pk_lookup_hit_sends_nothing(three_people: type, sql_log: Any) -> None:
    """Entity[pk] on an identity-map hit runs no SQL, not even an autoflush of pending changes."""
    Person = three_people
    with db_session:
        p = Person[1]
        p.age = 99
        Person(name="pending")
        sql_log.clear()
        assert Person[1] is p
        assert sql_log.statements == []
        assert p.age == 99


# -- optimistic checks: the WHERE clause ---------------------------------------------------------


def test_update_checks_pk_and_every_read_column_with_loaded_values(three_people: type, sql_log: Any) -> None:
    """UPDATE ... WHERE has the pk plus each column read, compared with the value loaded."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert p.name == "A"
        p.age += 1  # reads age (30), writes 31
        sql_log.clear()
        flush()
    assigned, checked = only_write(sql_log, "UPDATE")
    assert assigned == {"age": 31}
    assert checked == {"id": 1, "name": "A", "age": 30}


def test_none_read_value_is_checked_with_is_null(three_people: type, sql_log: Any) -> None:
    """A column read as None is checked with ``IS NULL``."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert p.email is None
        p.age = 41
        sql_log.clear()
        flush()
    _, checked = only_write(sql_log, "UPDATE")
    assert checked == {"id": 1, "email": "IS NULL"}
    assert '"email" IS NULL' in write_records(sql_log, "UPDATE")[0]


def test_float_columns_are_never_checked(three_people: type, sql_log: Any) -> None:
    """A float column that was read does not appear in the UPDATE's WHERE."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert p.score == 1.5
        p.age = 41
        sql_log.clear()
        flush()
    _, checked = only_write(sql_log, "UPDATE")
    assert checked == {"id": 1}


def test_volatile_columns_are_never_checked(
    Gauge: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """A volatile column that was read does not appear in the UPDATE's WHERE."""
    other_connection.execute("INSERT INTO gauge (id, label, reading) VALUES (1, 'g', 5)")
    sync_id_sequence(other_connection, "gauge")
    with db_session:
        g = Gauge[1]
        assert g.reading == 5
        assert g.label == "g"
        g.label = "h"
        sql_log.clear()
        flush()
    _, checked = only_write(sql_log, "UPDATE")
    assert checked == {"id": 1, "label": "g"}


def test_unread_columns_are_not_checked(three_people: type, sql_log: Any) -> None:
    """Columns the session loaded but never read are not part of the check."""
    Person = three_people
    with db_session:
        p = Person[1]
        p.age = 41
        sql_log.clear()
        flush()
    _, checked = only_write(sql_log, "UPDATE")
    assert checked == {"id": 1}


def test_written_but_unread_column_is_not_checked(three_people: type, sql_log: Any) -> None:
    """Assigning a column does not count as reading it."""
    Person = three_people
    with db_session:
        p = Person[1]
        p.name = "A2"
        p.set(age=42)
        sql_log.clear()
        flush()
    assigned, checked = only_write(sql_log, "UPDATE")
    assert assigned == {"name": "A2", "age": 42}
    assert checked == {"id": 1}


def test_delete_checks_the_read_columns_too(three_people: type, sql_log: Any) -> None:
    """DELETE ... WHERE has the pk plus each column the session read."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert p.name == "A" and p.age == 30 and p.email is None
        p.delete()
        sql_log.clear()
        flush()
    _, checked = only_write(sql_log, "DELETE")
    assert checked == {"id": 1, "name": "A", "age": 30, "email": "IS NULL"}


def test_optimistic_false_checks_only_the_pk(three_people: type, sql_log: Any) -> None:
    """Under db_session(optimistic=False) UPDATE and DELETE check only the primary key."""
    Person = three_people
    with db_session(optimistic=False):
        p1, p2 = Person[1], Person[2]
        assert p1.name == "A" and p2.name == "B"
        p1.age = 1
        p2.delete()
        sql_log.clear()
        flush()
    assert only_write(sql_log, "UPDATE")[1] == {"id": 1}
    assert only_write(sql_log, "DELETE")[1] == {"id": 2}


# -- optimistic checks: real conflicts -----------------------------------------------------------


def test_update_conflict_names_object_and_changed_columns(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """Another client changed a read column: OptimisticCheckError lists only that column, old -> new."""
    Person = three_people
    with pytest.raises(OptimisticCheckError) as info:
        with db_session:
            p = Person[1]
            assert p.name == "A" and p.age == 30
            p.email = "mine@x"
            other_connection.execute("UPDATE person SET name = 'Z' WHERE id = 1")
            flush()
    assert (
        str(info.value)
        == "Object Person[1] was updated outside of current transaction. Changes: name ('A' -> 'Z')"
    )
    assert table_rows(other_connection, "SELECT name, email FROM person WHERE id = 1") == [("Z", None)]


def test_update_conflict_on_a_column_written_here_and_read_first(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """``p.age += 1`` while another client changed age: the error shows the age this session loaded."""
    Person = three_people
    with pytest.raises(OptimisticCheckError) as info:
        with db_session:
            p = Person[1]
            p.age += 1
            other_connection.execute("UPDATE person SET age = 35 WHERE id = 1")
    assert (
        str(info.value)
        == "Object Person[1] was updated outside of current transaction. Changes: age (30 -> 35)"
    )
    assert table_rows(other_connection, "SELECT age FROM person WHERE id = 1") == [(35,)]


def test_update_conflict_when_other_client_wrote_the_same_new_value(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """The other client also set the column this session writes: the changed read column is still named."""
    Person = three_people
    with pytest.raises(OptimisticCheckError) as info:
        with db_session:
            p = Person[1]
            assert p.name == "A"
            p.age = 77
            other_connection.execute("UPDATE person SET name = 'Z', age = 77 WHERE id = 1")
    assert (
        str(info.value)
        == "Object Person[1] was updated outside of current transaction. Changes: name ('A' -> 'Z')"
    )


def test_delete_conflict_names_object_and_changed_columns(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """DELETE of a row whose read column another client changed raises OptimisticCheckError and deletes nothing."""
    Person = three_people
    with pytest.raises(OptimisticCheckError) as info:
        with db_session:
            p = Person[2]
            assert p.name == "B"
            p.delete()
            other_connection.execute("UPDATE person SET name = 'Y' WHERE id = 2")
    assert (
        str(info.value)
        == "Object Person[2] was updated outside of current transaction. Changes: name ('B' -> 'Y')"
    )
    assert table_rows(other_connection, "SELECT id, name FROM person ORDER BY id") == [
        (1, "A"),
        (2, "Y"),
        (3, "C"),
    ]


@pytest.mark.parametrize("action", ["update", "delete"])
def test_row_deleted_elsewhere_is_reported(
    action: str, three_people: type, other_connection: sqlite3.Connection
) -> None:
    """UPDATE or DELETE of a row another client deleted: "was deleted outside of current transaction"."""
    Person = three_people
    with pytest.raises(OptimisticCheckError) as info:
        with db_session:
            p = Person[1]
            assert p.name == "A"
            if action == "update":
                p.age = 1
            else:
                p.delete()
            other_connection.execute("DELETE FROM person WHERE id = 1")
    assert str(info.value) == "Object Person[1] was deleted outside of current transaction"


def test_conflict_in_a_batch_names_the_conflicting_object(
    three_people: type, other_connection: sqlite3.Connection, sql_log: Any, db_kind: str
) -> None:
    """In an executemany of 3 UPDATEs, the error names the one row another client changed; nothing is written."""
    Person = three_people
    with pytest.raises(OptimisticCheckError) as info:
        with db_session:
            people = Person.select().order_by(Person.id).fetch()
            for p in people:
                assert p.name
                p.age = 90
            other_connection.execute("UPDATE person SET name = 'X' WHERE id = 2")
            sql_log.clear()
            flush()
    assert update_batch(db_kind, 3, "person") in writes(sql_log)
    assert (
        str(info.value)
        == "Object Person[2] was updated outside of current transaction. Changes: name ('B' -> 'X')"
    )
    assert table_rows(other_connection, "SELECT name, age FROM person ORDER BY id") == [
        ("A", 30),
        ("X", 31),
        ("C", 32),
    ]


def test_conflict_in_a_delete_batch_names_the_conflicting_object(
    three_people: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """In an executemany of 3 DELETEs, the error names the row another client changed, not one deleted here."""
    Person = three_people
    with pytest.raises(OptimisticCheckError) as info:
        with db_session:
            people = Person.select().order_by(Person.id).fetch()
            for p in people:
                assert p.name
                p.delete()
            other_connection.execute("UPDATE person SET name = 'X' WHERE id = 3")
            sql_log.clear()
            flush()
    assert "EXECUTEMANY (3) DELETE person" in writes(sql_log)
    assert (
        str(info.value)
        == "Object Person[3] was updated outside of current transaction. Changes: name ('C' -> 'X')"
    )
    assert table_rows(other_connection, "SELECT id, name FROM person ORDER BY id") == [
        (1, "A"),
        (2, "B"),
        (3, "X"),
    ]


def test_conflict_rolls_back_earlier_flushes_and_next_session_works(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """After an OptimisticCheckError the database holds none of the session's writes, and a new session commits."""
    Person = three_people
    with pytest.raises(OptimisticCheckError):
        with db_session:
            p1, p2 = Person[1], Person[2]
            assert p2.name == "B"
            other_connection.execute("UPDATE person SET name = 'W' WHERE id = 2")
            Person(name="D")
            p1.age = 10
            flush()  # INSERT D and UPDATE p1 succeed inside the transaction
            p2.age = 20
    assert table_rows(other_connection, "SELECT id, name, age FROM person ORDER BY id") == [
        (1, "A", 30),
        (2, "W", 31),
        (3, "C", 32),
    ]
    with db_session:
        Person[2].age = 21
        e = Person(name="E")
    # a new id: 4 on SQLite; PostgreSQL's sequence does not give back the id the rolled-back D took
    assert e.id > 3
    assert table_rows(
        other_connection, "SELECT id, name, age FROM person WHERE id > 1 AND id <> 3 ORDER BY id"
    ) == [
        (2, "W", 21),
        (e.id, "E", 0),
    ]


def test_objects_are_detached_after_a_failed_flush(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """A failed flush rolls back at once: earlier flushes are undone, the session refuses work until
    ``rollback()``, then objects refuse writes and queries start afresh."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert p.name == "A"
        other_connection.execute("UPDATE person SET name = 'Q' WHERE id = 1")
        d = Person(name="D")
        flush()
        p.age = 1
        with pytest.raises(OptimisticCheckError) as failed:
            flush()
        assert p.name == "A"
        for refused in (lambda: setattr(p, "age", 2), lambda: Person[2], flush, commit):
            with pytest.raises(PendingRollbackError) as info:
                refused()
            assert info.value.failure is failed.value
        rollback()
        with pytest.raises(DatabaseSessionIsOver):
            p.age = 2
        with pytest.raises(DatabaseSessionIsOver):
            d.age = 2
        fresh = Person[1]
        assert fresh is not p
        assert fresh.name == "Q" and fresh.age == 30
        fresh.email = "q@x"
    assert table_rows(other_connection, "SELECT id, name, email, age FROM person ORDER BY id") == [
        (1, "Q", "q@x", 30),
        (2, "B", None, 31),
        (3, "C", None, 32),
    ]


def test_unchanged_other_columns_do_not_conflict(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """Another client changing an unread, a float or a volatile column does not make the UPDATE fail."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert p.name == "A" and p.score == 1.5
        p.age = 55
        other_connection.execute("UPDATE person SET email = 'other@x', score = 9.5 WHERE id = 1")
    assert table_rows(other_connection, "SELECT name, email, age, score FROM person WHERE id = 1") == [
        ("A", "other@x", 55, 9.5)
    ]


def test_volatile_change_elsewhere_does_not_conflict(
    Gauge: type, other_connection: sqlite3.Connection
) -> None:
    """A read volatile column changed by another client does not fail the UPDATE."""
    other_connection.execute("INSERT INTO gauge (id, label, reading) VALUES (1, 'g', 5)")
    sync_id_sequence(other_connection, "gauge")
    with db_session:
        g = Gauge[1]
        assert g.reading == 5
        g.label = "h"
        other_connection.execute("UPDATE gauge SET reading = 6 WHERE id = 1")
    assert table_rows(other_connection, "SELECT label, reading FROM gauge") == [("h", 6)]


# -- unrepeatable reads ----------------------------------------------------------------------------


@pytest.mark.parametrize("reread", ["select", "select_by_sql", "get"])
def test_rereading_a_read_column_changed_elsewhere_raises(
    reread: str, three_people: type, other_connection: sqlite3.Connection
) -> None:
    """Fetching a row again after another client changed a column this session read → UnrepeatableReadError."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert p.name == "A"
        other_connection.execute("UPDATE person SET name = 'B' WHERE id = 1")
        with pytest.raises(UnrepeatableReadError) as info:
            if reread == "select":
                Person.select().fetch()
            elif reread == "select_by_sql":
                Person.select_by_sql("SELECT * FROM person WHERE id = 1")
            else:
                Person.get(age=30)
    assert str(info.value) == (
        "Value of Person.name for Person[1] was updated outside of current transaction (was: 'A', now: 'B')"
    )


def test_unread_column_changed_elsewhere_is_refreshed(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """Re-reading a row refreshes columns this session never read, without an error."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert p.name == "A"
        other_connection.execute("UPDATE person SET age = 99, email = 'e@x' WHERE id = 1")
        assert Person.select(Person.id == 1).fetch() == [p]
        assert p.age == 99
        assert p.email == "e@x"
        assert p.name == "A"


def test_refreshed_value_is_what_a_later_check_compares(
    three_people: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """A column refreshed by a re-read and read afterwards is checked against the refreshed value."""
    Person = three_people
    with db_session:
        p = Person[1]
        assert p.name == "A"
        other_connection.execute("UPDATE person SET age = 99 WHERE id = 1")
        Person.select().fetch()
        assert p.age == 99
        p.email = "e@x"
        sql_log.clear()
    assert only_write(sql_log, "UPDATE")[1] == {"id": 1, "name": "A", "age": 99}
    assert table_rows(other_connection, "SELECT email, age FROM person WHERE id = 1") == [("e@x", 99)]


def test_volatile_column_changed_elsewhere_is_refreshed(
    Gauge: type, other_connection: sqlite3.Connection
) -> None:
    """Re-reading a row refreshes a read volatile column without an error."""
    other_connection.execute("INSERT INTO gauge (id, label, reading) VALUES (1, 'g', 5)")
    sync_id_sequence(other_connection, "gauge")
    with db_session:
        g = Gauge[1]
        assert g.reading == 5
        other_connection.execute("UPDATE gauge SET reading = 6 WHERE id = 1")
        assert Gauge.select().fetch() == [g]
        assert g.reading == 6


def test_rereading_an_unchanged_row_keeps_pending_values(three_people: type, sql_log: Any) -> None:
    """A query re-fetching a row this session modified keeps the session's values (after autoflush)."""
    Person = three_people
    with db_session:
        p = Person[1]
        p.age = 70
        assert Person.select(Person.age == 70).fetch() == [p]
        assert p.age == 70


# -- failed flush / commit leaves the database as before -----------------------------------------


def test_integrity_error_mid_batch_rolls_everything_back(
    Item: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """A unique clash inside an executemany INSERT → TransactionIntegrityError naming that object; no row is kept."""
    other_connection.execute("INSERT INTO item (id, name, email, qty) VALUES (10, 'theirs', 'b@x', 0)")
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            Item(id=1, name="a", email="a@x")
            Item(id=2, name="b", email="b@x")
            Item(id=3, name="c", email="c@x")
    assert "EXECUTEMANY (3) INSERT item" in writes(sql_log)
    assert str(info.value).startswith("Object Item[2] cannot be stored in the database.")
    assert "unique" in str(info.value).lower() and "'b@x'" in str(info.value)
    assert table_rows(other_connection, "SELECT id FROM item") == [(10,)]
    with db_session:
        Item(id=1, name="a", email="a@x")
        Item(id=2, name="b", email="b2@x")
    assert table_rows(other_connection, "SELECT id, email FROM item ORDER BY id") == [
        (1, "a@x"),
        (2, "b2@x"),
        (10, "b@x"),
    ]


def test_integrity_error_undoes_earlier_flushes_and_detaches_objects(
    Person: type, other_connection: sqlite3.Connection
) -> None:
    """Rows flushed earlier in the session are rolled back too; its objects refuse writes afterwards."""
    seed_people(other_connection, (1, "theirs", "b@x", 0, 0.0))
    with db_session:
        a = Person(name="A", email="a@x")
        flush()
        b = Person(name="B", email="b@x")
        c = Person(name="C", email="c@x")
        with pytest.raises(TransactionIntegrityError):
            commit()
        assert a.name == "A"
        rollback()
        for obj in (a, b, c):
            with pytest.raises(DatabaseSessionIsOver):
                obj.age = 5
        assert table_rows(other_connection, "SELECT id, name FROM person") == [(1, "theirs")]
        assert Person.select().count() == 1
    with db_session:
        Person(name="D", email="d@x")
    assert table_rows(other_connection, "SELECT name, email FROM person ORDER BY id") == [
        ("theirs", "b@x"),
        ("D", "d@x"),
    ]


def test_failed_session_exit_leaves_the_database_as_before(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """A commit failing at session exit (unique clash on UPDATE) leaves every row as it was."""
    Person = three_people
    other_connection.execute("UPDATE person SET email = 'taken@x' WHERE id = 3")
    with pytest.raises(TransactionIntegrityError):
        with db_session:
            p1, p2 = Person[1], Person[2]
            p1.age = 1
            Person(name="N")
            p2.email = "taken@x"  # row 3 was never loaded, so only the database sees the clash
    assert table_rows(other_connection, "SELECT id, email, age FROM person ORDER BY id") == [
        (1, None, 30),
        (2, None, 31),
        (3, "taken@x", 32),
    ]


def test_exception_in_a_hook_rolls_back_and_propagates_unwrapped(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """A hook raising during commit: the original exception escapes and earlier flushed writes are undone."""
    Person = three_people

    def before_update(self: Any) -> None:
        raise ZeroDivisionError("hook broke")

    Person.before_update = before_update
    with pytest.raises(ZeroDivisionError, match="hook broke"):
        with db_session:
            Person(name="D")
            flush()
            Person[1].age = 5
    assert table_rows(other_connection, "SELECT id, age FROM person ORDER BY id") == [
        (1, 30),
        (2, 31),
        (3, 32),
    ]


def test_a_failed_commit_takes_back_the_values_its_flush_wrote(
    three_people: type, other_connection: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the COMMIT after commit()'s flush fails, rolling back gives the flushed objects the values
    they had before it, as after a flush that came earlier; unflushed values stay."""
    Person = three_people
    provider = Person._database_.provider
    real_commit = provider.commit

    def failing_commit(conn: Any) -> None:
        raise provider.translate_error(sqlite3.OperationalError("disk I/O error"))

    with db_session:
        p1, p2, p3 = Person[1], Person[2], Person[3]
        p1.age = 40
        flush()
        p1.age = 50
        p2.age = 51
        p2.name = "B2"
        p3.delete()
        monkeypatch.setattr(provider, "commit", failing_commit)
        with pytest.raises(Exception, match="disk I/O error"):
            commit()
        monkeypatch.setattr(provider, "commit", real_commit)
        rollback()
        assert (p1.age, p2.age, p2.name, p3.age) == (30, 31, "B", 32)
    assert table_rows(other_connection, "SELECT id, name, age FROM person ORDER BY id") == [
        (1, "A", 30),
        (2, "B", 31),
        (3, "C", 32),
    ]


# -- hooks -----------------------------------------------------------------------------------------


def test_objects_created_in_after_insert_are_saved_in_the_same_commit(
    Person: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """An after_insert hook creating an object: its INSERT is sent before the one COMMIT."""

    def after_insert(self: Any) -> None:
        if not self.name.endswith("-child"):
            Person(name=f"{self.name}-child")

    Person.after_insert = after_insert
    with db_session:
        Person(name="root")
    statements = [s for s in sql_log.statements if s.startswith(("INSERT", "COMMIT"))]
    assert [s.split()[0] for s in statements] == ["INSERT", "INSERT", "COMMIT"]
    assert table_rows(other_connection, "SELECT name FROM person ORDER BY id") == [("root",), ("root-child",)]


def test_before_insert_changes_go_into_the_insert(
    Person: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """A before_insert hook's assignments are part of the INSERT itself (no extra UPDATE)."""

    def before_insert(self: Any) -> None:
        self.email = f"{self.name.lower()}@x"

    Person.before_insert = before_insert
    with db_session:
        Person(name="Ann")
    assert writes(sql_log) == ["INSERT person"]
    assert table_rows(other_connection, "SELECT name, email FROM person") == [("Ann", "ann@x")]


def test_after_insert_modification_is_flushed_in_the_same_commit(
    Person: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """An after_insert hook modifying its object (using the new id) gets an UPDATE before the COMMIT."""

    def after_insert(self: Any) -> None:
        self.email = f"{self.id}@x"

    Person.after_insert = after_insert
    with db_session:
        Person(name="Ann")
    assert writes(sql_log) == ["INSERT person", "UPDATE person"]
    assert sql_log.statements.count("COMMIT") == 1
    assert sql_log.statements.index("COMMIT") > max(
        i for i, s in enumerate(sql_log.statements) if s.startswith("UPDATE")
    )
    assert table_rows(other_connection, "SELECT id, email FROM person") == [(1, "1@x")]


def test_before_update_creating_an_object_is_saved_in_the_same_flush(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """An object created in before_update is inserted by the same flush."""
    Person = three_people

    def before_update(self: Any) -> None:
        Person(name=f"audit-{self.id}")

    Person.before_update = before_update
    with db_session:
        Person[1].age = 5
        flush()
        assert table_rows(other_connection, "SELECT COUNT(*) FROM person") == [(3,)]
    assert table_rows(other_connection, "SELECT name FROM person WHERE id > 3") == [("audit-1",)]


def test_endless_hook_chain_hits_the_recursion_limit(
    Person: type, other_connection: sqlite3.Connection
) -> None:
    """after_insert always creating another object → TransactionError after 50 rounds; nothing is saved."""
    created: list[Any] = []

    def after_insert(self: Any) -> None:
        created.append(Person(name="again"))

    Person.after_insert = after_insert
    with pytest.raises(
        TransactionError, match=r"^Recursion depth limit reached in obj\._after_save_\(\) call$"
    ):
        with db_session:
            Person(name="first")
    assert len(created) == 50
    assert table_rows(other_connection, "SELECT COUNT(*) FROM person") == [(0,)]


def test_endless_update_hook_hits_the_recursion_limit(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """after_update always modifying its object → TransactionError; the row keeps its old value."""
    Person = three_people

    def after_update(self: Any) -> None:
        self.age = self.age + 1

    Person.after_update = after_update
    with pytest.raises(TransactionError, match="Recursion depth limit reached"):
        with db_session:
            Person[1].age = 0
    assert table_rows(other_connection, "SELECT age FROM person WHERE id = 1") == [(30,)]


# -- many columns ----------------------------------------------------------------------------------


def test_wide_entity_update_sets_only_column_69(
    Wide: type, wide_row: int, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """Writing column 69 of a 70-column entity sends UPDATE SET c69 only, WHERE id only."""
    with db_session:
        w = Wide[wide_row]
        w.c69 = 690
        sql_log.clear()
        flush()
    assigned, checked = only_write(sql_log, "UPDATE")
    assert assigned == {"c69": 690}
    assert checked == {"id": 1}
    assert table_rows(other_connection, "SELECT c68, c69 FROM wide") == [(68, 690)]


def test_wide_entity_checks_read_column_66(Wide: type, wide_row: int, sql_log: Any) -> None:
    """Reading columns 66 and 3 puts both in the optimistic check of an UPDATE of column 69."""
    with db_session:
        w = Wide[wide_row]
        assert w.c66 == 66
        assert w.c3 == 3
        w.c69 = 690
        sql_log.clear()
        flush()
    assigned, checked = only_write(sql_log, "UPDATE")
    assert assigned == {"c69": 690}
    assert checked == {"id": 1, "c3": 3, "c66": 66}


def test_wide_entity_conflict_on_column_66(
    Wide: type, wide_row: int, other_connection: sqlite3.Connection
) -> None:
    """Another client changing read column 66 makes the UPDATE fail with an error naming c66."""
    with pytest.raises(OptimisticCheckError) as info:
        with db_session:
            w = Wide[wide_row]
            assert w.c66 == 66
            w.c69 = 690
            other_connection.execute("UPDATE wide SET c66 = 660 WHERE id = 1")
    assert (
        str(info.value)
        == "Object Wide[1] was updated outside of current transaction. Changes: c66 (66 -> 660)"
    )
    assert table_rows(other_connection, "SELECT c66, c69 FROM wide") == [(660, 69)]


def test_wide_entity_write_bits_are_cleared_after_flush(Wide: type, wide_row: int, sql_log: Any) -> None:
    """After a flush of column 69, a later write of column 67 updates column 67 alone."""
    with db_session:
        w = Wide[wide_row]
        w.c69 = 690
        flush()
        sql_log.clear()
        w.c67 = 670
        w.c65 = 65  # equal value: no change
        flush()
    assigned, _ = only_write(sql_log, "UPDATE")
    assert assigned == {"c67": 670}


def test_wide_entity_unrepeatable_read_on_column_66(
    Wide: type, wide_row: int, other_connection: sqlite3.Connection
) -> None:
    """Re-reading a row whose read column 66 changed raises; unread column 67 is just refreshed."""
    with db_session:
        w = Wide[wide_row]
        other_connection.execute("UPDATE wide SET c67 = 670 WHERE id = 1")
        Wide.select().fetch()
        assert w.c67 == 670
        assert w.c66 == 66
        other_connection.execute("UPDATE wide SET c66 = 660 WHERE id = 1")
        with pytest.raises(
            UnrepeatableReadError, match=r"Value of Wide\.c66 for Wide\[1\] .*\(was: 66, now: 660\)"
        ):
            Wide.select().fetch()


def test_wide_entity_batches_updates_of_high_columns(
    Wide: type, other_connection: sqlite3.Connection, sql_log: Any, db_kind: str
) -> None:
    """Updates of column 68 on several wide objects share one shape and are batched."""
    with db_session:
        objects = [Wide(c1=i) for i in range(3)]
        flush()
        sql_log.clear()
        for obj in objects:
            obj.c68 = 680
    assert writes(sql_log) == [update_batch(db_kind, 3, "wide")]
    assert table_rows(other_connection, "SELECT c68 FROM wide") == [(680,), (680,), (680,)]


# -- commit and rollback in the middle of a session ------------------------------------------------


def test_commit_mid_session_keeps_objects_usable(
    Person: type, other_connection: sqlite3.Connection, sql_log: Any
) -> None:
    """commit() makes changes visible, keeps the identity map, and later changes are saved too."""
    with db_session:
        p = Person(name="Ann")
        commit()
        assert table_rows(other_connection, "SELECT name, age FROM person") == [("Ann", 0)]
        assert Person[p.id] is p
        sql_log.clear()
        p.age = 5
        commit()
        assert only_write(sql_log, "UPDATE")[0] == {"age": 5}
        assert table_rows(other_connection, "SELECT name, age FROM person") == [("Ann", 5)]
        p.name = "Bea"
    assert table_rows(other_connection, "SELECT name, age FROM person") == [("Bea", 5)]


def test_commit_mid_session_then_conflict_is_still_detected(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """Read values survive a commit: a later conflicting change by another client is still caught."""
    Person = three_people
    with pytest.raises(OptimisticCheckError, match=r"Changes: name \('A' -> 'V'\)"):
        with db_session:
            p = Person[1]
            assert p.name == "A"
            p.age = 1
            commit()
            other_connection.execute("UPDATE person SET name = 'V' WHERE id = 1")
            p.age = 2
    assert table_rows(other_connection, "SELECT name, age FROM person WHERE id = 1") == [("V", 1)]


def test_rollback_mid_session_discards_pending_changes(
    three_people: type, other_connection: sqlite3.Connection
) -> None:
    """rollback() drops unflushed and flushed changes; old objects are detached, new lookups reload."""
    Person = three_people
    with db_session:
        p1, p2 = Person[1], Person[2]
        p1.name = "flushed"
        flush()
        p2.name = "pending"
        created = Person(name="new")
        rollback()
        assert table_rows(other_connection, "SELECT name FROM person ORDER BY id") == [("A",), ("B",), ("C",)]
        assert p2.name == "pending"  # loaded values stay readable
        with pytest.raises(DatabaseSessionIsOver):
            p1.age = 1
        with pytest.raises(DatabaseSessionIsOver):
            created.name = "x"
        fresh = Person[1]
        assert fresh is not p1
        assert fresh.name == "A"
        assert Person.select().count() == 3
        fresh.age = 44
    assert table_rows(other_connection, "SELECT name, age FROM person ORDER BY id") == [
        ("A", 44),
        ("B", 31),
        ("C", 32),
    ]
