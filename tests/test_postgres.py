"""PostgreSQL: binding, the connection pool, native types, isolation, locks, error mapping, concurrency.

Every test here runs on the server named by ``NEXTORM_TEST_POSTGRES`` only (the ``postgres``
marker; conftest gives them the 'postgres' ``db_kind``), each in a fresh schema. Threads
stand in for concurrent clients.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import sleep
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors as pg_errors

from nextorm import (
    BindingError,
    ConnectionClosedError,
    Database,
    Json,
    OptimisticCheckError,
    Optional,
    PrimaryKey,
    Required,
    SerializationFailure,
    Set,
    TransactionError,
    TransactionIntegrityError,
    db_session,
    flush,
)
from nextorm.providers.postgres import _numbered

pytestmark = pytest.mark.postgres

POSTGRES_DSN = os.environ.get("NEXTORM_TEST_POSTGRES", "")

#: how long a thread may wait for its partner before the test fails instead of hanging
PARTNER_TIMEOUT = 20


@pytest.fixture
def Counter(db: Database) -> type:
    """An entity of named integer counters, mapped onto table ``counter``; counters 'a' and 'b' start at 0."""

    class Counter(db.Entity):
        _table_ = "counter"
        id = PrimaryKey(int, auto=True)
        name = Required(str, unique=True)
        value = Required(int, default=0)

    db.generate_mapping(create_tables=True)
    with db_session:
        Counter(name="a")
        Counter(name="b")
    return Counter


@pytest.fixture
def Parent(db: Database) -> type:
    """Parent (table ``parent``) with a Set of Child (table ``child``); Parent[1] exists; returns Parent."""

    class Parent(db.Entity):
        _table_ = "parent"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        children = Set("Child")

    class Child(db.Entity):
        _table_ = "child"
        id = PrimaryKey(int, auto=True)
        parent = Required(Parent)

    db.generate_mapping(create_tables=True)
    with db_session:
        Parent(name="p")
    return Parent


def values(conn: Any, sql: str, *params: Any) -> list[Any]:
    """What another client sees: the first column of every row of ``sql``."""
    return [row[0] for row in conn.execute(sql, params).fetchall()]


def counter_values(conn: Any) -> dict[str, int]:
    """Every counter's value as another client sees it."""
    return dict(conn.execute("SELECT name, value FROM counter").fetchall())


def backend_state(conn: Any, pid: int) -> str | None:
    """The ``pg_stat_activity`` state of backend ``pid`` ('idle', 'idle in transaction', ...), None when gone."""
    found = values(conn, "SELECT state FROM pg_stat_activity WHERE pid = ?", pid)
    return found[0] if found else None


def wait_until_gone(conn: Any, pid: int) -> None:
    """Wait (bounded) until backend ``pid`` has exited."""
    for _ in range(500):
        if not values(conn, "SELECT 1 FROM pg_stat_activity WHERE pid = ?", pid):
            return
        sleep(0.01)
    raise AssertionError(f"backend {pid} did not exit")


def in_threads(*targets: Callable[[], Any]) -> list[Any]:
    """Run each target in a thread of its own; returns each one's result or the exception it raised."""
    results: list[Any] = [None] * len(targets)

    def run(index: int, target: Callable[[], Any]) -> None:
        try:
            results[index] = target()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a worker thread hung"
    return results


# -- binding and the pool ----------------------------------------------------------------------


def test_bind_with_keyword_arguments_connects_to_the_named_server(pg_schema: str) -> None:
    """``bind(provider='postgres', host=, port=, user=, password=, database=)`` connects there; repr hides the password."""
    info = psycopg.conninfo.conninfo_to_dict(POSTGRES_DSN)
    database = Database()
    database.bind(
        provider="postgres",
        host=info["host"],
        port=int(info.get("port", 5432)),
        user=info["user"],
        password="s3cret-not-checked",
        database=info["dbname"],
        options=f"-c search_path={pg_schema}",
    )
    try:
        assert database.provider_name == "postgres"
        with db_session:
            row = database.get(
                "SELECT current_user, current_database(), inet_server_port(), current_schema()"
            )
        assert tuple(row) == (info["user"], info["dbname"], int(info.get("port", 5432)), pg_schema)
        assert "s3cret" not in repr(database)
    finally:
        database.disconnect()


def test_bind_with_dsn_uses_the_dsn_and_extra_options(db: Database, pg_schema: str) -> None:
    """``bind('postgres', dsn=..., options=...)`` connects with the DSN and passes the extra options on."""
    info = psycopg.conninfo.conninfo_to_dict(POSTGRES_DSN)
    with db_session:
        assert db.get("SELECT current_database(), current_schema()") == (info["dbname"], pg_schema)


def test_bind_to_an_unreachable_server_raises_binding_error() -> None:
    """A server that does not answer makes ``bind`` raise BindingError naming the address."""
    database = Database()
    with pytest.raises(BindingError, match=r"127\.0\.0\.1:1\b"):
        database.bind(provider="postgres", host="127.0.0.1", port=1, user="postgres", database="test")
    assert database.provider is None


def test_consecutive_sessions_reuse_one_pooled_connection_left_idle(
    Counter: type, db: Database, other_connection: Any
) -> None:
    """Consecutive sessions reuse one pooled connection, handed back with no transaction open, even after an error."""
    pids = []
    with db_session:
        pids.append(db.get("SELECT pg_backend_pid()"))
        Counter.get(name="a").value += 1
    assert backend_state(other_connection, pids[0]) == "idle"
    with pytest.raises(ZeroDivisionError):
        with db_session:
            pids.append(db.get("SELECT pg_backend_pid()"))
            Counter.get(name="a").value += 1
            flush()
            1 / 0  # noqa: B018
    assert backend_state(other_connection, pids[0]) == "idle"
    with db_session:
        pids.append(db.get("SELECT pg_backend_pid()"))
    assert pids == [pids[0]] * 3
    assert counter_values(other_connection)["a"] == 1


def test_threads_use_connections_of_their_own(Counter: type, db: Database) -> None:
    """Two threads in sessions at the same time run on two different server backends."""
    both_in = threading.Barrier(2, timeout=PARTNER_TIMEOUT)

    @db_session
    def backend() -> int:
        pid = db.get("SELECT pg_backend_pid()")
        both_in.wait()
        return int(pid)

    first, second = in_threads(backend, backend)
    assert isinstance(first, int) and isinstance(second, int)
    assert first != second


def test_lost_connection_raises_connection_closed_error_and_next_session_reconnects(
    Counter: type, db: Database, other_connection: Any
) -> None:
    """A backend killed mid-session gives ConnectionClosedError saying the connection was lost; the next session works."""
    with pytest.raises(ConnectionClosedError) as info:
        with db_session:
            pid = db.get("SELECT pg_backend_pid()")
            Counter.get(name="a").value = 5
            flush()
            other_connection.execute("SELECT pg_terminate_backend(?)", (pid,))
            wait_until_gone(other_connection, pid)
            Counter.get(name="b")
    assert isinstance(info.value, TransactionError)
    assert "connection" in str(info.value).lower()
    assert "lost" in str(info.value).lower()
    with db_session:
        assert db.get("SELECT pg_backend_pid()") != pid
        assert Counter.get(name="a").value == 0
        Counter.get(name="b").value = 7
    assert counter_values(other_connection) == {"a": 0, "b": 7}


def test_pooled_connection_killed_between_sessions_is_replaced(
    Counter: type, db: Database, other_connection: Any
) -> None:
    """A pooled connection whose backend died while idle is replaced: the next session just works."""
    with db_session:
        pid = db.get("SELECT pg_backend_pid()")
    other_connection.execute("SELECT pg_terminate_backend(?)", (pid,))
    wait_until_gone(other_connection, pid)
    with db_session:
        assert db.get("SELECT pg_backend_pid()") != pid
        Counter.get(name="a").value = 3
    assert counter_values(other_connection)["a"] == 3


def test_retry_gets_through_a_lost_connection(Counter: type, db: Database, other_connection: Any) -> None:
    """``@db_session(retry=1)`` re-runs a function whose connection was lost mid-transaction, on a new connection."""
    pids: list[int] = []

    @db_session(retry=1)
    def bump() -> None:
        pids.append(db.get("SELECT pg_backend_pid()"))
        Counter.get(name="a").value += 1
        flush()
        if len(pids) == 1:
            other_connection.execute("SELECT pg_terminate_backend(?)", (pids[0],))
            wait_until_gone(other_connection, pids[0])
        Counter.get(name="b").value += 1

    bump()
    assert len(pids) == 2 and pids[0] != pids[1]
    assert counter_values(other_connection) == {"a": 1, "b": 1}


# -- native types ------------------------------------------------------------------------------


@pytest.fixture
def Item(db: Database) -> type:
    """An entity with a column of every mapped type, on table ``item``."""

    class Item(db.Entity):
        _table_ = "item"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        code = Optional(str, max_len=8)
        price = Required(Decimal, 10, 3)
        ratio = Optional(float)
        active = Required(bool, default=True)
        made = Optional(datetime)
        made_tz = Optional(datetime, tz_aware=True)
        day = Optional(date)
        at = Optional(time)
        took = Optional(timedelta)
        blob = Optional(bytes)
        token = Optional(UUID)
        data = Optional(Json)

    db.generate_mapping(create_tables=True)
    return Item


def test_columns_have_native_postgres_types(Item: type, other_connection: Any, pg_schema: str) -> None:
    """CREATE TABLE uses identity, NUMERIC, TIMESTAMP, BYTEA, UUID, JSONB and the other native types."""
    rows = other_connection.execute(
        "SELECT column_name, data_type, is_identity, numeric_precision, numeric_scale, character_maximum_length "
        "FROM information_schema.columns WHERE table_schema = ? AND table_name = 'item'",
        (pg_schema,),
    ).fetchall()
    types = {name: data_type for name, data_type, *_ in rows}
    assert types == {
        "id": "bigint",
        "name": "text",
        "code": "character varying",
        "price": "numeric",
        "ratio": "double precision",
        "active": "boolean",
        "made": "timestamp without time zone",
        "made_tz": "timestamp with time zone",
        "day": "date",
        "at": "time without time zone",
        "took": "interval",
        "blob": "bytea",
        "token": "uuid",
        "data": "jsonb",
    }
    details = {name: rest for name, _, *rest in rows}
    assert details["id"][0] == "YES"
    assert [name for name, (identity, *_) in details.items() if identity == "YES"] == ["id"]
    assert details["price"][1:3] == [10, 3]
    assert details["code"][3] == 8


def test_values_are_stored_natively_and_read_back_equal(Item: type, other_connection: Any) -> None:
    """Every type is stored as the native PostgreSQL value and loads back equal in a new session."""
    values_in = dict(
        name="x",
        code="ab",
        price=Decimal("1234567.125"),
        ratio=0.25,
        active=False,
        made=datetime(2024, 2, 29, 13, 14, 15, 123456),
        made_tz=datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
        day=date(1999, 12, 31),
        at=time(23, 59, 58),
        took=timedelta(days=2, seconds=5),
        blob=b"\x00\xff\x10",
        token=UUID("12345678-1234-5678-1234-567812345678"),
        data={"k": [1, "two", None], "n": {"x": 1.5}},
    )
    with db_session:
        item = Item(**values_in)
        item.flush()
        item_id = item.id
    stored = other_connection.execute(
        "SELECT price, made, blob, token, data, jsonb_typeof(data), took FROM item WHERE id = ?", (item_id,)
    ).fetchone()
    assert stored == (
        Decimal("1234567.125"),
        datetime(2024, 2, 29, 13, 14, 15, 123456),
        b"\x00\xff\x10",
        UUID("12345678-1234-5678-1234-567812345678"),
        {"k": [1, "two", None], "n": {"x": 1.5}},
        "object",
        timedelta(days=2, seconds=5),
    )
    with db_session:
        item = Item[item_id]
        assert {name: getattr(item, name) for name in values_in} == values_in
        assert type(item.blob) is bytes


def test_new_objects_are_inserted_in_one_batch_returning_their_keys(
    Counter: type, sql_log: Any, other_connection: Any
) -> None:
    """Several new objects go in one multi-row INSERT ... RETURNING and get the keys the database
    generated, each beside the one column whose values tell the new rows apart."""
    sql_log.clear()
    with db_session:
        created = [Counter(name=name) for name in ("x", "y", "z")]
        flush()
        keys = {counter.name: counter.id for counter in created}
    inserts = [s for s in sql_log.statements if "INSERT" in s]
    assert len(inserts) == 1
    assert inserts[0].startswith(
        'INSERT INTO "counter" ("name", "value") VALUES (%s, %s), (%s, %s), (%s, %s)'
    )
    assert inserts[0].endswith('RETURNING "id", "name"')
    stored = dict(
        other_connection.execute("SELECT name, id FROM counter WHERE name IN ('x', 'y', 'z')").fetchall()
    )
    assert keys == stored
    assert len(set(keys.values())) == 3


def test_one_new_object_gets_its_key_from_returning(
    Counter: type, sql_log: Any, other_connection: Any
) -> None:
    """A single new object is inserted with INSERT ... RETURNING and no other statement asks for its key."""
    sql_log.clear()
    with db_session:
        counter = Counter(name="solo")
        flush()
        key = counter.id
    assert [s for s in sql_log.statements if s not in ("BEGIN", "COMMIT")] == [
        'INSERT INTO "counter" ("name", "value") VALUES (%s, %s) RETURNING "id"'
    ]
    assert values(other_connection, "SELECT id FROM counter WHERE name = 'solo'") == [key]


def test_statements_of_many_values_store_every_value_whatever_their_placeholders(
    Counter: type, db: Database, other_connection: Any
) -> None:
    """A statement binding more values than psycopg keeps translated (a multi-row INSERT of new
    objects) stores each value in its row; one whose text holds a literal ``%%`` runs as written."""
    with db_session:
        made = [Counter(name=f"c{i}", value=i * 10) for i in range(120)]
        flush()
        keys = {obj.name: obj.id for obj in made}
        placeholders = ", ".join(["%s"] * 60)
        found = db.select(
            f"SELECT count(*) FROM counter WHERE name LIKE 'c%%' AND value IN ({placeholders})",
            [i * 10 for i in range(60)],
        )
    assert found == [60]
    stored = other_connection.execute("SELECT name, id, value FROM counter WHERE name LIKE 'c%'").fetchall()
    assert {name: (pk, value) for name, pk, value in stored} == {
        f"c{i}": (keys[f"c{i}"], i * 10) for i in range(120)
    }


@pytest.fixture
def Tally(db: Database) -> type:
    """Tally (table ``tally``): a name, an INTEGER count, an optional note and a flag; no rows yet."""

    class Tally(db.Entity):
        _table_ = "tally"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        count = Required(int, sql_type="INTEGER")
        note = Optional(str, nullable=True)
        flag = Required(bool, default=False)
        ratio = Optional(float)

    db.generate_mapping(create_tables=True)
    return Tally


def make_tallies(Tally: type, count: int) -> list[int]:
    """``count`` tallies named t0, t1, ...; every third has no note; returns their keys."""
    with db_session:
        made = [Tally(name=f"t{i}", count=i, note=None if i % 3 == 0 else f"n{i}") for i in range(count)]
        flush()
        return [t.id for t in made]


def test_changed_objects_are_updated_by_one_statement_of_many_rows(
    Tally: type, sql_log: Any, other_connection: Any
) -> None:
    """Objects changed alike go in one UPDATE ... FROM (VALUES ...) that checks each row's key and
    read values (IS NULL for a None) and stores each object's own new values."""
    keys = make_tallies(Tally, 5)
    sql_log.clear()
    with db_session:
        for tally in Tally.select().order_by(Tally.note):  # notes first, then the None ones
            tally.count += 100
            tally.name = tally.name.upper()
            tally.flag = tally.note is None
    updates = [s for s in sql_log.statements if s.startswith("UPDATE")]
    assert len(updates) == 2  # the rows read with a note, then those read with None: two shapes of check
    assert all(' FROM (VALUES ((NULL::"tally")."name"' in s for s in updates)
    assert '"tally"."note" = "nextorm_rows".' in updates[0]
    assert '"tally"."note" IS NULL' in updates[1]
    stored = other_connection.execute("SELECT id, name, count, note, flag FROM tally ORDER BY id").fetchall()
    assert stored == [
        (key, f"T{i}", i + 100, None if i % 3 == 0 else f"n{i}", i % 3 == 0) for i, key in enumerate(keys)
    ]


def test_a_batch_longer_than_one_statement_updates_every_row_once(
    Tally: type, sql_log: Any, other_connection: Any
) -> None:
    """1201 changed objects take three multi-row UPDATEs; each row gets its own value exactly once."""
    keys = make_tallies(Tally, 1201)
    sql_log.clear()
    with db_session:
        for tally in Tally.select():
            tally.note = f"x{tally.count}"
    updates = [s for s in sql_log.statements if s.startswith("UPDATE")]
    assert len(updates) == 3
    stored = other_connection.execute("SELECT id, count, note FROM tally ORDER BY id").fetchall()
    assert stored == [(key, i, f"x{i}") for i, key in enumerate(keys)]


def test_a_row_changed_by_another_client_fails_the_multi_row_update_naming_its_object(
    Tally: type, other_connection: Any
) -> None:
    """When one row of a multi-row UPDATE was changed since it was read, OptimisticCheckError names
    that object and none of the batch's rows is written."""
    keys = make_tallies(Tally, 6)
    with pytest.raises(OptimisticCheckError) as info:
        with db_session:
            tallies = Tally.select().order_by(Tally.id)[:]
            other_connection.execute("UPDATE tally SET count = 99 WHERE id = ?", [keys[4]])
            for tally in tallies:
                tally.count += 10
    assert f"Tally[{keys[4]}]" in str(info.value)
    stored = other_connection.execute("SELECT count FROM tally ORDER BY id").fetchall()
    assert [count for (count,) in stored] == [0, 1, 2, 3, 99, 5]


def test_a_unique_clash_in_a_multi_row_update_names_its_object_and_writes_nothing(
    Tally: type, other_connection: Any
) -> None:
    """A row of a multi-row UPDATE clashing with a unique index fails with TransactionIntegrityError
    naming that object; the other rows keep their values."""
    keys = make_tallies(Tally, 4)
    other_connection.execute("CREATE UNIQUE INDEX tally_note ON tally (note)")
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            for tally in Tally.select().order_by(Tally.id):
                tally.note = "same" if tally.count in (1, 2) else f"m{tally.count}"
    assert f"Tally[{keys[2]}]" in str(info.value)
    stored = other_connection.execute("SELECT note FROM tally ORDER BY id").fetchall()
    assert [note for (note,) in stored] == [None, "n1", "n2", None]


def test_a_value_out_of_the_columns_range_fails_the_multi_row_update(
    Tally: type, other_connection: Any
) -> None:
    """The VALUES rows take the table's column types: a count too big for INTEGER is refused, as a
    one-row UPDATE refuses it, and nothing is written."""
    make_tallies(Tally, 3)
    with pytest.raises(Exception, match="out of range"):
        with db_session:
            for tally in Tally.select():
                tally.count = 2**40
    stored = other_connection.execute("SELECT count FROM tally ORDER BY id").fetchall()
    assert [count for (count,) in stored] == [0, 1, 2]


def test_a_multi_row_update_refused_for_a_column_type_is_replayed_row_by_row(
    Tally: type, sql_log: Any, other_connection: Any
) -> None:
    """A column whose database type the bound values reach only by assignment (a float into TEXT)
    makes PostgreSQL refuse the multi-row UPDATE: the batch is replayed one UPDATE at a time, every
    value is stored, and later batches of that entity go out as executemany."""
    keys = make_tallies(Tally, 3)
    other_connection.execute("ALTER TABLE tally ALTER COLUMN ratio TYPE TEXT")
    sql_log.clear()
    with db_session:
        for tally in Tally.select():
            tally.ratio = tally.count + 0.5
    assert len([s for s in sql_log.statements if s.startswith("UPDATE")]) == 4  # refused, then one per row
    with db_session:
        for tally in Tally.select():
            tally.name = f"r{tally.count}"
    assert [s for s in sql_log.statements if "UPDATE" in s][-1].startswith('EXECUTEMANY (3) UPDATE "tally"')
    stored = other_connection.execute("SELECT id, name, ratio FROM tally ORDER BY id").fetchall()
    assert stored == [(key, f"r{i}", f"{i}.5") for i, key in enumerate(keys)]


def test_changes_of_columns_of_other_types_are_updated_row_by_row(
    Item: type, sql_log: Any, other_connection: Any
) -> None:
    """Objects whose changed or checked columns hold values other than ints, strings, floats and
    bools are updated by an executemany of one-row UPDATEs."""
    with db_session:
        for i in range(3):
            Item(name=f"batch{i}", price=Decimal("1.5"))
    sql_log.clear()
    with db_session:
        for item in Item.select(lambda i: i.name.startswith("batch")):
            item.price += 1
    assert [s for s in sql_log.statements if "UPDATE" in s] == [
        'EXECUTEMANY (3) UPDATE "item" SET "price" = %s WHERE "id" = %s AND "price" = %s'
    ]
    stored = other_connection.execute("SELECT price FROM item WHERE name LIKE 'batch%'").fetchall()
    assert [amount for (amount,) in stored] == [Decimal("2.5")] * 3


def test_numbered_placeholders_replace_each_percent_s_or_nothing() -> None:
    """PostgreSQL's ``$n`` stand for a long statement's ``%s`` in order; a statement with few values,
    a literal ``%%`` or a count that does not match keeps psycopg's translation (None)."""
    many = ", ".join(["%s"] * 51)
    assert _numbered(f"INSERT INTO t VALUES ({many})", list(range(51))) == (
        "INSERT INTO t VALUES (" + ", ".join(f"${n}" for n in range(1, 52)) + ")"
    )
    assert _numbered(f"SELECT ({many})", tuple(range(51))) is not None
    assert _numbered("SELECT %s, %s", [1, 2]) is None
    assert _numbered(f"SELECT '%%' || ({many})", list(range(51))) is None
    assert _numbered(f"SELECT ({many})", list(range(52))) is None
    assert _numbered(f"SELECT ({many})", {"a": 1}) is None


# -- transactions and locks --------------------------------------------------------------------


def test_serializable_session_runs_at_serializable_isolation(Counter: type, db: Database) -> None:
    """``db_session(serializable=True)`` runs at SERIALIZABLE; a default session at READ COMMITTED."""
    with db_session(serializable=True):
        assert db.select("SHOW transaction_isolation") == ["serializable"]
        assert Counter.get(name="a").value == 0
        assert db.select("SHOW transaction_isolation") == ["serializable"]
    with db_session:
        assert db.select("SHOW transaction_isolation") == ["read committed"]


def test_immediate_session_opens_the_transaction_at_its_first_statement(
    Counter: type, db: Database, sql_log: Any, other_connection: Any
) -> None:
    """``immediate=True`` sends BEGIN before the first query, so the backend is in a transaction after a read."""
    with db_session:
        pid = db.get("SELECT pg_backend_pid()")
        assert backend_state(other_connection, pid) == "idle"
    sql_log.clear()
    with db_session(immediate=True):
        assert db.get("SELECT pg_backend_pid()") == pid
        assert backend_state(other_connection, pid) == "idle in transaction"
        assert sql_log.statements[:2] == ["BEGIN", "SELECT pg_backend_pid()"]
    assert backend_state(other_connection, pid) == "idle"


@pytest.mark.parametrize(
    ("options", "clause"),
    [({}, " FOR UPDATE"), ({"nowait": True}, " FOR UPDATE NOWAIT")],
    ids=["wait", "nowait"],
)
def test_get_for_update_locks_the_row_until_the_session_ends(
    Counter: type, sql_log: Any, other_connection: Any, options: dict[str, bool], clause: str
) -> None:
    """``get_for_update`` emits SELECT ... FOR UPDATE [NOWAIT] and holds the row lock until the session ends."""
    lock_attempt = "SELECT value FROM counter WHERE name = 'a' FOR UPDATE NOWAIT"
    sql_log.clear()
    with db_session:
        counter = Counter.get_for_update(name="a", **options)
        assert counter.name == "a"
        selects = [s for s in sql_log.statements if s.startswith("SELECT")]
        assert len(selects) == 1 and selects[0].endswith(clause)
        with pytest.raises(pg_errors.LockNotAvailable):
            other_connection.execute(lock_attempt)
        assert values(other_connection, "SELECT value FROM counter WHERE name = 'b' FOR UPDATE NOWAIT") == [0]
    assert values(other_connection, lock_attempt) == [0]


def test_get_for_update_skip_locked_returns_none_for_a_row_locked_elsewhere(
    Counter: type, sql_log: Any, other_connection: Any
) -> None:
    """``get_for_update(skip_locked=True)`` emits SKIP LOCKED: a row another client locked gives None."""
    other_connection.execute("BEGIN")
    other_connection.execute("SELECT 1 FROM counter WHERE name = 'a' FOR UPDATE")
    try:
        sql_log.clear()
        with db_session:
            assert Counter.get_for_update(name="a", skip_locked=True) is None
            free = Counter.get_for_update(name="b", skip_locked=True)
            assert free is not None and free.name == "b"
        selects = [s for s in sql_log.statements if s.startswith("SELECT")]
        assert len(selects) == 2
        assert all(s.endswith(" FOR UPDATE SKIP LOCKED") for s in selects)
    finally:
        other_connection.execute("ROLLBACK")


def test_ddl_session_runs_ddl(Counter: type, db: Database, other_connection: Any, pg_schema: str) -> None:
    """A ``db_session(ddl=True)`` creates and alters tables; the changes are committed at its end."""
    with db_session(ddl=True):
        db.execute("CREATE TABLE extra (x integer PRIMARY KEY)")
        db.execute("ALTER TABLE counter ADD COLUMN note text")
    columns = other_connection.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND (table_name = 'extra' OR column_name = 'note') ORDER BY table_name",
        (pg_schema,),
    ).fetchall()
    assert columns == [("counter", "note"), ("extra", "x")]


# -- error mapping -----------------------------------------------------------------------------


def test_unique_violation_raises_transaction_integrity_error(Counter: type, other_connection: Any) -> None:
    """A unique clash with a row of another client raises TransactionIntegrityError and writes nothing."""
    other_connection.execute("INSERT INTO counter (name, value) VALUES ('x', 1)")
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            Counter.get(name="a").value = 9
            Counter(name="x")
    assert isinstance(info.value.original_exc, pg_errors.UniqueViolation)  # type: ignore[attr-defined]
    assert "Counter" in str(info.value)
    assert counter_values(other_connection) == {"a": 0, "b": 0, "x": 1}
    with db_session:
        Counter(name="y")
    assert counter_values(other_connection)["y"] == 0


def test_foreign_key_violation_raises_transaction_integrity_error(
    Parent: type, db: Database, other_connection: Any
) -> None:
    """A child of a parent another client deleted fails: TransactionIntegrityError when checked, nothing written."""
    Child = db.entities["Child"]
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            db.execute("SET CONSTRAINTS ALL IMMEDIATE")
            parent = Parent[1]
            other_connection.execute("DELETE FROM parent WHERE id = 1")
            Child(parent=parent)
    assert isinstance(info.value.original_exc, pg_errors.ForeignKeyViolation)  # type: ignore[attr-defined]
    assert values(other_connection, "SELECT count(*) FROM child") == [0]


def test_deferred_foreign_key_violation_raises_transaction_integrity_error_at_commit(
    Parent: type, db: Database, other_connection: Any
) -> None:
    """A foreign key checked at COMMIT (nextorm's are deferred) raises TransactionIntegrityError; nothing is written."""
    Child = db.entities["Child"]
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            parent = Parent[1]
            other_connection.execute("DELETE FROM parent WHERE id = 1")
            Child(parent=parent)
            flush()
    assert isinstance(info.value.original_exc, pg_errors.ForeignKeyViolation)  # type: ignore[attr-defined]
    assert values(other_connection, "SELECT count(*) FROM child") == [0]


def _serialization_conflict(
    Counter: type, retry: int
) -> tuple[Callable[[], Any], Callable[[], Any], list[int]]:
    """Two SERIALIZABLE sessions that read counter 'a', then both increment it: the later one conflicts.

    Returns the first and second function and the second's attempt log; they meet only on the first attempt.
    """
    both_read = threading.Barrier(2, timeout=PARTNER_TIMEOUT)
    first_done = threading.Event()
    attempts: list[int] = []

    @db_session(serializable=True)
    def first() -> None:
        counter = Counter.get(name="a")
        both_read.wait()
        counter.value += 1

    def first_and_signal() -> None:
        try:
            first()
        finally:
            first_done.set()

    @db_session(serializable=True, retry=retry)
    def second() -> None:
        attempts.append(len(attempts) + 1)
        counter = Counter.get(name="a")
        if len(attempts) == 1:
            both_read.wait()
            assert first_done.wait(PARTNER_TIMEOUT)
        counter.value += 1

    return first_and_signal, second, attempts


def test_serialization_failure_raises_retryable_transaction_error(
    Counter: type, db: Database, other_connection: Any
) -> None:
    """Two SERIALIZABLE sessions updating the same row: the later one gets SerializationFailure (SQLSTATE 40001)."""
    first, second, attempts = _serialization_conflict(Counter, retry=0)
    first_result, second_result = in_threads(first, second)
    assert first_result is None
    assert isinstance(second_result, SerializationFailure)
    assert isinstance(second_result, TransactionError)
    assert second_result.original_exc.sqlstate == "40001"  # type: ignore[attr-defined]
    assert "40001" in str(second_result)
    assert attempts == [1]
    assert counter_values(other_connection)["a"] == 1


def test_retry_gets_through_a_serialization_failure(
    Counter: type, db: Database, other_connection: Any
) -> None:
    """``@db_session(retry=2)`` re-runs the session that hit a serialization failure; both increments land."""
    first, second, attempts = _serialization_conflict(Counter, retry=2)
    assert in_threads(first, second) == [None, None]
    assert attempts == [1, 2]
    assert counter_values(other_connection)["a"] == 2


def _opposite_locks(Counter: type, retry: int) -> tuple[Callable[[], Any], Callable[[], Any], list[str]]:
    """Two sessions locking counters 'a' and 'b' in opposite orders, meeting in the middle on their first attempt."""
    both_hold_one = threading.Barrier(2, timeout=PARTNER_TIMEOUT)
    attempts: list[str] = []

    def locker(first_name: str, second_name: str) -> Callable[[], Any]:
        @db_session(retry=retry)
        def lock_both() -> None:
            attempts.append(first_name)
            Counter.get_for_update(name=first_name).value += 1
            if attempts.count(first_name) == 1:
                both_hold_one.wait()
            Counter.get_for_update(name=second_name).value += 1

        return lock_both

    return locker("a", "b"), locker("b", "a"), attempts


def test_deadlock_raises_retryable_transaction_error(
    Counter: type, db: Database, other_connection: Any
) -> None:
    """Two sessions locking two rows in opposite order: the server's victim gets SerializationFailure (40P01)."""
    first, second, _ = _opposite_locks(Counter, retry=0)
    results = in_threads(first, second)
    failures = [r for r in results if r is not None]
    assert len(failures) == 1
    assert isinstance(failures[0], SerializationFailure)
    assert failures[0].original_exc.sqlstate == "40P01"  # type: ignore[attr-defined]
    assert "deadlock" in str(failures[0])
    assert counter_values(other_connection) == {"a": 1, "b": 1}


def test_retry_gets_through_a_deadlock(Counter: type, db: Database, other_connection: Any) -> None:
    """``@db_session(retry=5)`` re-runs the deadlock victim; both sessions' increments land."""
    first, second, attempts = _opposite_locks(Counter, retry=5)
    assert in_threads(first, second) == [None, None]
    # the victim's retry may lock its first row before the winner does and deadlock again
    assert len(attempts) >= 3
    assert counter_values(other_connection) == {"a": 2, "b": 2}


# -- concurrency -------------------------------------------------------------------------------


def _lost_update(Counter: type, retry: int) -> tuple[Callable[[], Any], Callable[[], Any], list[int]]:
    """Two sessions that read counter 'a' and then set it to what they read plus one; the second writes last."""
    both_read = threading.Barrier(2, timeout=PARTNER_TIMEOUT)
    first_done = threading.Event()
    attempts: list[int] = []

    @db_session
    def first() -> None:
        counter = Counter.get(name="a")
        seen = counter.value
        both_read.wait()
        counter.value = seen + 1

    def first_and_signal() -> None:
        try:
            first()
        finally:
            first_done.set()

    @db_session(retry=retry)
    def second() -> None:
        attempts.append(len(attempts) + 1)
        counter = Counter.get(name="a")
        seen = counter.value
        if len(attempts) == 1:
            both_read.wait()
            assert first_done.wait(PARTNER_TIMEOUT)
        counter.value = seen + 1

    return first_and_signal, second, attempts


def test_concurrent_update_of_one_row_raises_optimistic_check_error(
    Counter: type, db: Database, other_connection: Any
) -> None:
    """Of two sessions in two threads updating the row both read, the later one gets OptimisticCheckError."""
    first, second, attempts = _lost_update(Counter, retry=0)
    first_result, second_result = in_threads(first, second)
    assert first_result is None
    assert isinstance(second_result, OptimisticCheckError)
    assert "Counter" in str(second_result)
    assert attempts == [1]
    assert counter_values(other_connection)["a"] == 1


def test_retry_gets_through_an_optimistic_check_error(
    Counter: type, db: Database, other_connection: Any
) -> None:
    """``@db_session(retry=3)`` re-runs the session that lost the optimistic check; no update is lost."""
    first, second, attempts = _lost_update(Counter, retry=3)
    assert in_threads(first, second) == [None, None]
    assert attempts == [1, 2]
    assert counter_values(other_connection)["a"] == 2


def test_locked_increments_from_many_threads_lose_nothing(
    Counter: type, db: Database, other_connection: Any
) -> None:
    """8 threads x 200 sessions incrementing one counter under ``get_for_update`` lose no increment."""
    threads, sessions = 8, 200

    @db_session
    def increment() -> None:
        Counter.get_for_update(name="a").value += 1

    def worker() -> int:
        for _ in range(sessions):
            increment()
        return sessions

    assert in_threads(*[worker] * threads) == [sessions] * threads
    assert counter_values(other_connection) == {"a": threads * sessions, "b": 0}
