"""Real faults under a session (issue #9): the database holds all of its writes or none, the error is documented.

Faults are injected at the driver boundary, never inside nextorm: connections wrapped so that the
Nth statement fails (before it runs, after it ran, or for good), SQLite files that are full,
read-only or locked by another connection, PostgreSQL backends killed with
``pg_terminate_backend`` from another connection, also while a statement waits in flight. After
each fault the committed state is read back on a fresh connection, the exception must be of a
class in ``nextorm.__all__``, and the next session must work. Sync sessions run on ``Database``,
async ones on ``AsyncDatabase`` (aiosqlite, psycopg async).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from nextorm import (
    CommitException,
    ConnectionClosedError,
    DatabaseError,
    PartialCommitException,
    PrimaryKey,
    Required,
    RollbackException,
    SerializationFailure,
    TransactionIntegrityError,
    aflush,
    db_session,
    flush,
)

INITIAL_ACCOUNTS = [(i, f"a{i}", 100) for i in range(1, 6)]


# -- the schema and the session every fault interrupts ------------------------------------------


def declare(database: Any) -> SimpleNamespace:
    """Map Account (explicit key) and Entry (auto key) onto ``database``."""

    class Account(database.Entity):
        _table_ = "account"
        id = PrimaryKey(int)
        owner = Required(str)
        balance = Required(int)

    class Entry(database.Entity):
        _table_ = "entry"
        id = PrimaryKey(int, auto=True)
        account = Required(int)
        amount = Required(int)

    database.generate_mapping(create_tables=True)
    return SimpleNamespace(db=database, Account=Account, Entry=Entry)


def reset(client: Any) -> None:
    """Put the initial rows back (another client, in one transaction)."""
    client.execute("BEGIN")
    client.execute("DELETE FROM entry")
    client.execute("DELETE FROM account")
    for row in INITIAL_ACCOUNTS:
        client.execute("INSERT INTO account (id, owner, balance) VALUES (?, ?, ?)", row)
    client.execute("COMMIT")


def state(storage: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The committed accounts and entries, read on a fresh connection."""
    accounts = storage.fetch("SELECT id, owner, balance FROM account ORDER BY id")
    entries = storage.fetch("SELECT account, amount FROM entry ORDER BY account, amount")
    return accounts, entries


NOTHING = (INITIAL_ACCOUNTS, [])
EVERYTHING = (
    [
        (1, "a1", 115),
        (2, "a2", 110),
        (3, "a3", 110),
        (101, "n101", 101),
        (102, "n102", 102),
        (103, "n103", 103),
    ],
    [(1, 1), (1, 2), (1, 3), (1, 4)],
)


def work(ns: SimpleNamespace) -> None:
    """Inserts (auto and explicit keys), updates and deletes in batches, over two flushes; EVERYTHING when committed."""
    accounts = {a.id: a for a in ns.Account.select()}
    for amount in (1, 2, 3, 4):
        ns.Entry(account=1, amount=amount)
    for key in (101, 102, 103):
        ns.Account(id=key, owner=f"n{key}", balance=key)
    for key in (1, 2, 3):
        accounts[key].balance += 10
    flush()
    accounts[4].delete()
    accounts[5].delete()
    accounts[1].balance += 5


async def awork(ns: SimpleNamespace) -> None:
    """``work`` with the awaitable twins."""
    accounts = {a.id: a for a in await ns.Account.select().afetch()}
    for amount in (1, 2, 3, 4):
        ns.Entry(account=1, amount=amount)
    for key in (101, 102, 103):
        ns.Account(id=key, owner=f"n{key}", balance=key)
    for key in (1, 2, 3):
        accounts[key].balance += 10
    await aflush()
    await accounts[4].adelete()
    await accounts[5].adelete()
    accounts[1].balance += 5


def run_session(storage: Any, ns: SimpleNamespace, flavour: str, body: Any = None, abody: Any = None) -> Any:
    """Run ``body(ns)`` (``await abody(ns)`` when async) in one db_session; returns the exception raised, or None."""
    body = body or work
    abody = abody or awork
    if flavour == "sync":
        try:
            with db_session:
                body(ns)
        except Exception as exc:
            return exc
        return None

    async def main() -> Any:
        try:
            async with db_session:
                await abody(ns)
        except Exception as exc:
            return exc
        return None

    return storage.run(main)


def next_session_works(storage: Any, ns: SimpleNamespace, flavour: str) -> None:
    """A following session reads and writes normally and its commit is visible to other connections."""

    def body(ns: SimpleNamespace) -> None:
        assert ns.Account.select().count() == len(state(storage)[0])
        ns.Account(id=900, owner="next", balance=1)
        ns.Entry(account=900, amount=9)

    async def abody(ns: SimpleNamespace) -> None:
        assert await ns.Account.select().acount() == len(state(storage)[0])
        ns.Account(id=900, owner="next", balance=1)
        ns.Entry(account=900, amount=9)

    error = run_session(storage, ns, flavour, body, abody)
    assert error is None, f"the session after the fault failed: {error!r}"
    assert storage.fetch("SELECT owner, balance FROM account WHERE id = 900") == [("next", 1)]
    assert storage.fetch("SELECT amount FROM entry WHERE account = 900") == [(9,)]


@pytest.fixture
def bank(storage: Any, flavour: str) -> SimpleNamespace:
    """Account and Entry on a fresh database of the test's flavour, with the initial rows committed."""
    ns = declare(storage.database(asyncio=flavour == "async", sqlite_timeout=0.2))
    ns.client = storage.client()
    reset(ns.client)
    return ns


# -- failing the Nth statement at the driver boundary -------------------------------------------


class FaultPlan:
    """Counts the statements sent through wrapped connections and makes statement ``fail_at`` fail."""

    # mode 'before': that statement is refused; 'after': it runs, then the driver raises (the client
    # lost the answer); 'dead': it and every later statement are refused (a dead link)

    def __init__(self, make_error: Callable[[], BaseException]) -> None:
        self.make_error = make_error
        self.statements: list[str] = []
        self.fail_at: int | None = None
        self.mode = "before"
        self.armed = True
        self.injected: BaseException | None = None

    def before(self, sql: str) -> None:
        """Called before a statement is sent."""
        if not self.armed:
            return
        self.statements.append(" ".join(sql.split()[:2]))
        if self.injected is not None and self.mode == "dead":
            raise self.make_error()
        if len(self.statements) - 1 == self.fail_at and self.mode != "after":
            self.injected = self.make_error()
            raise self.injected

    def fails_after(self) -> bool:
        """Whether the statement that just ran is to fail now (the caller discards its cursor first)."""
        return (
            self.armed
            and self.mode == "after"
            and len(self.statements) - 1 == self.fail_at
            and self.injected is None
        )

    def fail(self) -> None:
        """Raise the error of a statement that ran but whose answer is lost."""
        self.injected = self.make_error()
        raise self.injected


class FaultyCursor:
    """A driver cursor whose ``executemany`` goes through the plan."""

    def __init__(self, cursor: Any, plan: FaultPlan) -> None:
        self._cursor = cursor
        self._plan = plan

    def executemany(self, sql: str, rows: Any, **options: Any) -> Any:
        self._plan.before(sql)
        result = self._cursor.executemany(sql, rows, **options)
        if self._plan.fails_after():
            self._cursor.close()
            self._plan.fail()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class AsyncFaultyCursor(FaultyCursor):
    """An asyncio driver cursor whose ``executemany`` goes through the plan."""

    async def executemany(self, sql: str, rows: Any, **options: Any) -> Any:  # type: ignore[override]
        self._plan.before(sql)
        result = await self._cursor.executemany(sql, rows, **options)
        if self._plan.fails_after():
            await self._cursor.close()
            self._plan.fail()
        return result


class FaultyConnection:
    """A driver connection whose statements go through the plan; everything else is the real connection's."""

    cursor_type: type[FaultyCursor] = FaultyCursor

    def __init__(self, conn: Any, plan: FaultPlan) -> None:
        self._conn = conn
        self._plan = plan

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._plan.before(sql)
        result = self._conn.execute(sql, params)
        if self._plan.fails_after():
            result.close()
            self._plan.fail()
        return result

    def executemany(self, sql: str, rows: Any) -> Any:
        self._plan.before(sql)
        result = self._conn.executemany(sql, rows)
        if self._plan.fails_after():
            result.close()
            self._plan.fail()
        return result

    def cursor(self) -> Any:
        return self.cursor_type(self._conn.cursor(), self._plan)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class AsyncFaultyConnection(FaultyConnection):
    """An asyncio driver connection (aiosqlite, psycopg async) whose statements go through the plan."""

    cursor_type = AsyncFaultyCursor

    async def execute(self, sql: str, params: Any = ()) -> Any:  # type: ignore[override]
        self._plan.before(sql)
        result = await self._conn.execute(sql, params)
        if self._plan.fails_after():
            await result.close()
            self._plan.fail()
        return result

    async def executemany(self, sql: str, rows: Any) -> Any:  # type: ignore[override]
        self._plan.before(sql)
        result = await self._conn.executemany(sql, rows)
        if self._plan.fails_after():
            await result.close()
            self._plan.fail()
        return result


def driver_error(kind: str) -> Callable[[], BaseException]:
    """A factory of the error the driver raises for an I/O failure of the server or the file."""
    if kind == "postgres":
        import psycopg

        return lambda: psycopg.errors.DiskFull("could not extend file: No space left on device")
    return lambda: sqlite3.OperationalError("disk I/O error")


def wrap_connections(monkeypatch: pytest.MonkeyPatch, database: Any, plan: FaultPlan) -> None:
    """Make every connection sessions of ``database`` take from now on a faulty one (the pool keeps the real one)."""
    provider = database.provider
    acquire, aacquire = provider.acquire, provider.aacquire
    release, arelease, discard, adiscard = (
        provider.release,
        provider.arelease,
        provider.discard,
        provider.adiscard,
    )

    async def faulty_aacquire(readonly: bool = False) -> Any:
        return AsyncFaultyConnection(await aacquire(readonly), plan)

    monkeypatch.setattr(provider, "acquire", lambda readonly=False: FaultyConnection(acquire(readonly), plan))
    monkeypatch.setattr(provider, "aacquire", faulty_aacquire)
    monkeypatch.setattr(provider, "release", lambda conn: release(conn._conn))
    monkeypatch.setattr(provider, "discard", lambda conn: discard(conn._conn))
    monkeypatch.setattr(provider, "arelease", lambda conn: arelease(conn._conn))
    monkeypatch.setattr(provider, "adiscard", lambda conn: adiscard(conn._conn))
    provider.disconnect()


@pytest.mark.parametrize("mode", ["before", "after", "dead"])
def test_a_fault_at_any_statement_leaves_all_or_nothing(
    storage: Any,
    bank: SimpleNamespace,
    flavour: str,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    documented: Any,
    chain: Any,
) -> None:
    """Failing each statement of a session in turn (refused, answer lost, link dead): nothing or, past COMMIT, all."""
    plan = FaultPlan(driver_error(storage.kind))
    wrap_connections(monkeypatch, bank.db, plan)
    assert run_session(storage, bank, flavour) is None
    assert state(storage) == EVERYTHING
    statements = list(plan.statements)
    assert statements[-1] == "COMMIT" and statements.count("COMMIT") == 1, statements
    assert any(s.startswith("SAVEPOINT") for s in statements), statements
    for index, statement in enumerate(statements):
        reset(bank.client)
        plan.statements, plan.fail_at, plan.mode, plan.injected, plan.armed = [], index, mode, None, True
        error = run_session(storage, bank, flavour)
        where = f"fault {mode} statement {index} ({statement}) of {statements}"
        assert plan.injected is not None, where
        assert error is not None, f"{where}: the session did not fail"
        documented(error)
        assert any(e is plan.injected for e in chain(error)), f"{where}: {error!r} hides the fault"
        if statement == "COMMIT":
            assert isinstance(error, CommitException), f"{where}: {error!r}"
        else:
            assert isinstance(error, (DatabaseError, RollbackException)), f"{where}: {error!r}"
        committed = mode == "after" and statement == "COMMIT"
        assert state(storage) == (EVERYTHING if committed else NOTHING), where
        plan.armed = False
        reset(bank.client)
        next_session_works(storage, bank, flavour)


# -- real failures of SQLite files ----------------------------------------------------------------


def on_new_connections(monkeypatch: pytest.MonkeyPatch, database: Any, sql: str) -> None:
    """Run ``sql`` (a PRAGMA) on every connection ``database`` opens from now on; drop the pooled ones."""
    provider = database.provider
    connect, aconnect = provider.connect, provider.aconnect

    def prepared_connect() -> Any:
        conn = connect()
        conn.execute(sql)
        return conn

    async def prepared_aconnect() -> Any:
        conn = await aconnect()
        await conn.execute(sql)
        return conn

    monkeypatch.setattr(provider, "connect", prepared_connect)
    monkeypatch.setattr(provider, "aconnect", prepared_aconnect)
    provider.disconnect()


def big_batch(ns: SimpleNamespace) -> None:
    """200 new accounts of 2 KB each in one batch, after an update: too much for a nearly full file."""
    ns.Account[1].balance += 1
    for key in range(1000, 1200):
        ns.Account(id=key, owner="x" * 2000, balance=key)


async def abig_batch(ns: SimpleNamespace) -> None:
    """``big_batch`` with the awaitable twins."""
    (await ns.Account.aget(id=1)).balance += 1
    for key in range(1000, 1200):
        ns.Account(id=key, owner="x" * 2000, balance=key)


@pytest.mark.sqlite_only
def test_a_full_disk_in_the_middle_of_a_batch_writes_nothing(
    storage: Any,
    bank: SimpleNamespace,
    flavour: str,
    monkeypatch: pytest.MonkeyPatch,
    documented: Any,
    chain: Any,
) -> None:
    """SQLite out of pages (PRAGMA max_page_count) during a batched INSERT: DatabaseError, nothing written."""
    pages = storage.fetch("PRAGMA page_count")[0][0]
    on_new_connections(monkeypatch, bank.db, f"PRAGMA max_page_count = {pages + 4}")
    error = run_session(storage, bank, flavour, big_batch, abig_batch)
    assert isinstance(error, DatabaseError), repr(error)
    documented(error)
    assert any("full" in str(e) for e in chain(error)), repr(error)
    assert state(storage) == NOTHING
    next_session_works(storage, bank, flavour)


@pytest.mark.sqlite_only
def test_a_read_only_database_refuses_the_flush_and_keeps_nothing(
    storage: Any,
    bank: SimpleNamespace,
    flavour: str,
    monkeypatch: pytest.MonkeyPatch,
    documented: Any,
    chain: Any,
) -> None:
    """A SQLite database that refuses writes (PRAGMA query_only: SQLITE_READONLY) fails the flush with DatabaseError."""
    on_new_connections(monkeypatch, bank.db, "PRAGMA query_only = ON")
    error = run_session(storage, bank, flavour)
    assert isinstance(error, DatabaseError), repr(error)
    documented(error)
    assert any("readonly" in str(e) for e in chain(error)), repr(error)
    assert state(storage) == NOTHING
    monkeypatch.undo()
    bank.db.provider.disconnect()
    next_session_works(storage, bank, flavour)


@pytest.mark.sqlite_only
def test_a_file_locked_by_another_connection_raises_serialization_failure(
    storage: Any, bank: SimpleNamespace, flavour: str, documented: Any
) -> None:
    """Another connection holding BEGIN EXCLUSIVE: reads and writes raise SerializationFailure, nothing written."""
    locker = storage.client()
    locker.execute("BEGIN EXCLUSIVE")
    error = run_session(storage, bank, flavour)
    assert isinstance(error, SerializationFailure), repr(error)
    documented(error)

    def write_only(ns: SimpleNamespace) -> None:
        ns.Account(id=500, owner="w", balance=5)

    async def awrite_only(ns: SimpleNamespace) -> None:
        ns.Account(id=500, owner="w", balance=5)

    error = run_session(storage, bank, flavour, write_only, awrite_only)
    assert isinstance(error, SerializationFailure), repr(error)
    locker.execute("COMMIT")
    assert state(storage) == NOTHING
    next_session_works(storage, bank, flavour)


@pytest.mark.sqlite_only
def test_retry_outlasts_a_locked_file(storage: Any, bank: SimpleNamespace, flavour: str) -> None:
    """db_session(retry=) re-runs a session that met a locked file until the lock is gone; it commits once."""
    locker = storage.client()
    locker.execute("BEGIN EXCLUSIVE")
    attempts: list[int] = []

    def unlock_on_third_attempt() -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 3:
            locker.execute("COMMIT")

    if flavour == "sync":

        @db_session(retry=5)
        def transfer() -> None:
            unlock_on_third_attempt()
            bank.Account[1].balance -= 30
            bank.Account[2].balance += 30

        transfer()
    else:

        @db_session(retry=5)
        async def atransfer() -> None:
            unlock_on_third_attempt()
            (await bank.Account.aget(id=1)).balance -= 30
            (await bank.Account.aget(id=2)).balance += 30

        storage.run(atransfer)
    assert attempts == [1, 2, 3]
    assert state(storage)[0][:2] == [(1, "a1", 70), (2, "a2", 130)]
    next_session_works(storage, bank, flavour)


@pytest.mark.sqlite_only
def test_a_reader_blocking_commit_raises_commit_exception_and_keeps_nothing(
    storage: Any, bank: SimpleNamespace, flavour: str, documented: Any, chain: Any
) -> None:
    """A reader holding its shared lock through COMMIT (SQLITE_BUSY at COMMIT): CommitException, nothing written."""
    reader = storage.client()
    reader.execute("BEGIN")
    assert reader.rows("SELECT count(*) FROM account") == [(5,)]
    error = run_session(storage, bank, flavour)
    assert isinstance(error, CommitException), repr(error)
    documented(error)
    assert any(isinstance(e, SerializationFailure) for e in chain(error)), repr(error)
    reader.execute("COMMIT")
    assert state(storage) == NOTHING
    next_session_works(storage, bank, flavour)


@pytest.mark.sqlite_only
def test_a_driver_error_while_reading_rows_leaves_no_lock_behind(
    storage: Any, bank: SimpleNamespace, flavour: str, documented: Any
) -> None:
    """The driver failing while it reads a result (text that is not UTF-8) leaves no lock while the error lives."""
    bank.client.execute("INSERT INTO account (id, owner, balance) VALUES (50, CAST(x'ff' AS TEXT), 50)")
    error = run_session(storage, bank, flavour)
    assert isinstance(error, DatabaseError), repr(error)
    documented(error)
    assert "UTF-8" in str(error), str(error)
    writer = sqlite3.connect(storage.path, isolation_level=None, timeout=0.2)
    try:
        writer.execute("DELETE FROM account WHERE id = 50")
    except sqlite3.OperationalError as exc:
        pytest.fail(f"the failed read left the file locked while its error is kept: {exc}")
    finally:
        writer.close()
    assert state(storage) == NOTHING
    next_session_works(storage, bank, flavour)
    assert error is not None


def refused_row(storage: Any) -> None:
    """Install a trigger that refuses account rows owned by 'poison' with an integrity error."""
    client = storage.client()
    if storage.kind == "postgres":
        client.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'poisoned row' USING ERRCODE = 'check_violation'; END $$"
        )
        client.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON account FOR EACH ROW "
            "WHEN (NEW.owner = 'poison') EXECUTE FUNCTION refuse()"
        )
    else:
        client.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON account WHEN NEW.owner = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        )


def test_a_row_the_database_refuses_mid_batch_names_its_object(
    storage: Any, bank: SimpleNamespace, flavour: str, documented: Any
) -> None:
    """A trigger refusing the 3rd row of a batched INSERT: TransactionIntegrityError naming it, nothing written."""
    refused_row(storage)

    def body(ns: SimpleNamespace) -> None:
        ns.Account[1].balance += 1
        for key, owner in ((201, "ok"), (202, "ok"), (203, "poison"), (204, "ok")):
            ns.Account(id=key, owner=owner, balance=key)

    async def abody(ns: SimpleNamespace) -> None:
        (await ns.Account.aget(id=1)).balance += 1
        for key, owner in ((201, "ok"), (202, "ok"), (203, "poison"), (204, "ok")):
            ns.Account(id=key, owner=owner, balance=key)

    error = run_session(storage, bank, flavour, body, abody)
    assert isinstance(error, TransactionIntegrityError), repr(error)
    documented(error)
    assert "Account[203]" in str(error) and "poisoned row" in str(error), str(error)
    assert state(storage) == NOTHING
    next_session_works(storage, bank, flavour)


# -- PostgreSQL backends killed from another connection -------------------------------------------


def kill(storage: Any, pid: int) -> None:
    """Terminate the backend ``pid`` from another connection and wait until it is gone."""
    assert storage.fetch("SELECT pg_terminate_backend(?, 10000)", (pid,)) == [(True,)]


def backend_pid(ns: SimpleNamespace) -> int:
    """The server process of the current session's connection to ``ns.db``."""
    return int(ns.db.select("SELECT pg_backend_pid()")[0])


async def abackend_pid(ns: SimpleNamespace) -> int:
    """Awaitable ``backend_pid``."""
    return int((await ns.db.aselect("SELECT pg_backend_pid()"))[0])


@pytest.mark.postgres
def test_a_killed_idle_connection_is_replaced(storage: Any, bank: SimpleNamespace, flavour: str) -> None:
    """The pooled connection of an earlier session killed while idle: the next sessions work on a new one."""
    pids: list[int] = []

    def body(ns: SimpleNamespace) -> None:
        pids.append(backend_pid(ns))
        ns.Account[1].balance += 1

    async def abody(ns: SimpleNamespace) -> None:
        pids.append(await abackend_pid(ns))
        (await ns.Account.aget(id=1)).balance += 1

    if flavour == "sync":
        assert run_session(storage, bank, flavour, body) is None
        kill(storage, pids[0])
        assert run_session(storage, bank, flavour, body) is None
    else:

        async def main() -> None:
            for _ in range(2):
                async with db_session:
                    await abody(bank)
                if len(pids) == 1:
                    kill(storage, pids[0])

        storage.run(main)
    assert pids[1] != pids[0]
    assert state(storage)[0][0] == (1, "a1", 102)
    next_session_works(storage, bank, flavour)


@pytest.mark.postgres
@pytest.mark.parametrize("when", ["before the first write", "after the flush, before COMMIT"])
def test_a_connection_killed_in_a_session_keeps_nothing(
    storage: Any, bank: SimpleNamespace, flavour: str, when: str, documented: Any, chain: Any
) -> None:
    """pg_terminate_backend between a session's statements: ConnectionClosedError (CommitException at COMMIT)."""

    def body(ns: SimpleNamespace) -> None:
        if when.startswith("before"):
            kill(storage, backend_pid(ns))
        work(ns)
        if when.startswith("after"):
            flush()
            kill(storage, backend_pid(ns))

    async def abody(ns: SimpleNamespace) -> None:
        if when.startswith("before"):
            kill(storage, await abackend_pid(ns))
        await awork(ns)
        if when.startswith("after"):
            await aflush()
            kill(storage, await abackend_pid(ns))

    error = run_session(storage, bank, flavour, body, abody)
    documented(error)
    assert isinstance(error, CommitException if when.startswith("after") else ConnectionClosedError), repr(
        error
    )
    assert any(isinstance(e, ConnectionClosedError) for e in chain(error)), repr(error)
    assert state(storage) == NOTHING
    next_session_works(storage, bank, flavour)


class Gate:
    """A trigger holding rows owned by 'gated' on an advisory lock, so their statement can be killed in flight."""

    # while another connection holds the lock, the INSERT (or the COMMIT running the deferred
    # trigger) waits in the server; kill_waiting terminates that backend, then releases the lock

    KEY = 7321

    def __init__(self, storage: Any, deferred: bool) -> None:
        self.storage = storage
        admin = storage.client()
        admin.execute(
            "CREATE FUNCTION gate_wait() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"PERFORM pg_advisory_xact_lock({self.KEY}); RETURN NEW; END $$"
        )
        if deferred:
            admin.execute(
                "CREATE CONSTRAINT TRIGGER gate AFTER INSERT ON account DEFERRABLE INITIALLY DEFERRED "
                "FOR EACH ROW WHEN (NEW.owner = 'gated') EXECUTE FUNCTION gate_wait()"
            )
        else:
            admin.execute(
                "CREATE TRIGGER gate BEFORE INSERT ON account FOR EACH ROW "
                "WHEN (NEW.owner = 'gated') EXECUTE FUNCTION gate_wait()"
            )
        self.holder = storage.client()
        self.holder.execute(f"SELECT pg_advisory_lock({self.KEY})")
        self.killed: list[int] = []
        self.thread: threading.Thread | None = None

    def kill_waiting(self, pid: int) -> None:
        """In a thread: wait (bounded) until backend ``pid`` waits on the gate, kill it, release the gate."""

        def watch() -> None:
            watcher = self.storage.client()
            try:
                for _ in range(2000):
                    rows = watcher.rows("SELECT wait_event FROM pg_stat_activity WHERE pid = ?", (pid,))
                    if rows == [("advisory",)]:
                        if watcher.rows("SELECT pg_terminate_backend(?, 10000)", (pid,)) == [(True,)]:
                            self.killed.append(pid)
                        return
                    time.sleep(0.005)
            finally:
                self.holder.execute(f"SELECT pg_advisory_unlock({self.KEY})")

        self.thread = threading.Thread(target=watch, daemon=True)
        self.thread.start()

    def join(self) -> None:
        """Wait for the watching thread."""
        assert self.thread is not None
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.mark.postgres
@pytest.mark.parametrize("during", ["a batched INSERT", "COMMIT"])
def test_a_connection_killed_while_a_statement_runs_keeps_nothing(
    storage: Any, bank: SimpleNamespace, flavour: str, during: str, documented: Any, chain: Any
) -> None:
    """The backend killed while the server runs a batched INSERT or the COMMIT: a documented error, nothing written."""
    gate = Gate(storage, deferred=during == "COMMIT")

    def gated_rows(ns: SimpleNamespace) -> None:
        for key, owner in ((301, "ok"), (302, "ok"), (303, "gated"), (304, "ok")):
            ns.Account(id=key, owner=owner, balance=key)

    def body(ns: SimpleNamespace) -> None:
        gate.kill_waiting(backend_pid(ns))
        work(ns)
        gated_rows(ns)

    async def abody(ns: SimpleNamespace) -> None:
        gate.kill_waiting(await abackend_pid(ns))
        await awork(ns)
        gated_rows(ns)

    error = run_session(storage, bank, flavour, body, abody)
    gate.join()
    assert gate.killed, "the statement never waited on the gate"
    documented(error)
    assert isinstance(error, CommitException if during == "COMMIT" else ConnectionClosedError), repr(error)
    assert any(isinstance(e, ConnectionClosedError) for e in chain(error)), repr(error)
    assert state(storage) == NOTHING
    next_session_works(storage, bank, flavour)


# -- one session over two databases: the first or a later COMMIT fails ------------------------------


@pytest.fixture
def ledger(tmp_path: Any, flavour: str) -> Iterator[SimpleNamespace]:
    """A second database, always a SQLite file: Account and Entry with the initial rows."""
    from nextorm import AsyncDatabase, Database

    path = str(tmp_path / "ledger.sqlite")
    database = (AsyncDatabase if flavour == "async" else Database)(
        "sqlite", path, create_db=True, timeout=0.2
    )
    ns = declare(database)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    reset(conn)
    ns.path = path
    ns.conn = conn
    yield ns
    conn.close()
    database.disconnect()


def ledger_state(ledger: SimpleNamespace) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The committed rows of the ledger, read on a fresh connection."""
    conn = sqlite3.connect(ledger.path)
    try:
        return (
            conn.execute("SELECT id, owner, balance FROM account ORDER BY id").fetchall(),
            conn.execute("SELECT account, amount FROM entry ORDER BY account, amount").fetchall(),
        )
    finally:
        conn.close()


def fail_commit(storage: Any, side: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make ``side``'s COMMIT fail for real (SQLite: a reader keeps its lock; PostgreSQL: killed); returns the undo."""
    provider = side.db.provider
    if provider.name == "sqlite":
        reader = sqlite3.connect(provider.filename, isolation_level=None, timeout=10)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM account").fetchall()

        def release() -> None:
            reader.execute("COMMIT")
            reader.close()

        return release
    commit, acommit = provider.commit, provider.acommit

    def killed_commit(conn: Any) -> None:
        kill(storage, conn.info.backend_pid)
        commit(conn)

    async def killed_acommit(conn: Any) -> None:
        kill(storage, conn.info.backend_pid)
        await acommit(conn)

    monkeypatch.setattr(provider, "commit", killed_commit)
    monkeypatch.setattr(provider, "acommit", killed_acommit)
    return monkeypatch.undo


@pytest.mark.parametrize("failing", ["ledger", "storage"])
@pytest.mark.parametrize("position", ["first", "later"])
def test_a_failed_commit_in_a_two_database_session(
    storage: Any,
    bank: SimpleNamespace,
    ledger: SimpleNamespace,
    flavour: str,
    failing: str,
    position: str,
    monkeypatch: pytest.MonkeyPatch,
    documented: Any,
    chain: Any,
) -> None:
    """First COMMIT fails: CommitException, nothing anywhere; a later one: PartialCommitException, first has all."""
    sides = {"ledger": ledger, "storage": bank}
    other = "storage" if failing == "ledger" else "ledger"
    order = [sides[failing], sides[other]] if position == "first" else [sides[other], sides[failing]]
    undo = fail_commit(storage, sides[failing], monkeypatch)

    def body(_: Any) -> None:
        for ns in order:
            ns.Entry(account=1, amount=1)
        for ns in order:
            work(ns)

    async def abody(_: Any) -> None:
        for ns in order:
            ns.Entry(account=1, amount=1)
        for ns in order:
            await awork(ns)

    error = run_session(storage, bank, flavour, body, abody)
    undo()
    documented(error)
    expected = CommitException if position == "first" else PartialCommitException
    assert isinstance(error, expected), repr(error)
    assert any(isinstance(e, (SerializationFailure, ConnectionClosedError)) for e in chain(error)), repr(
        error
    )
    with_extra = (EVERYTHING[0], sorted([*EVERYTHING[1], (1, 1)]))
    states = {"ledger": ledger_state(ledger), "storage": state(storage)}
    assert states[failing] == NOTHING
    assert states[other] == (NOTHING if position == "first" else with_extra)
    reset(bank.client)
    reset(ledger.conn)
    next_session_works(storage, bank, flavour)
