"""PostgreSQL connection pooling (README "Connection pooling" and "PgBouncer"): pool_size, pool_timeout,
PoolTimeoutError, health checks at any file descriptor, disconnect, cancellation, prepared statements.

Each test binds a Database of its own to the server named by ``NEXTORM_TEST_POSTGRES`` with an
``application_name`` of its own, so that its connections can be counted in ``pg_stat_activity``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from nextorm import (
    BindingError,
    ConnectionClosedError,
    Database,
    PoolTimeoutError,
    db_session,
)
from support import note_database

pytestmark = pytest.mark.postgres

POSTGRES_DSN = os.environ.get("NEXTORM_TEST_POSTGRES", "")

#: how long a thread may wait for its partner before the test fails instead of hanging
PARTNER_TIMEOUT = 20


class Pools:
    """Databases bound to the test schema with pool options, each with an application_name to count its connections."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.databases: list[Database] = []
        self.admin = psycopg.connect(POSTGRES_DSN, autocommit=True)

    def bind(self, asyncio: bool = False, **options: Any) -> Any:
        """A new Database (AsyncDatabase when ``asyncio``) with one entity, Note, its table created."""
        database = note_database(
            POSTGRES_DSN, self.schema, f"nextorm-{uuid.uuid4().hex[:12]}", asyncio, **options
        )
        self.databases.append(database)
        return database

    def connections(self, database: Any, state: str | None = None) -> int:
        """How many server connections ``database`` has open (in ``state`` when given)."""
        name = database.provider.connect_options["application_name"]
        sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        params: list[Any] = [name]
        if state is not None:
            sql += " AND state = %s"
            params.append(state)
        return int(self.admin.execute(sql, params).fetchone()[0])

    def settle(self, database: Any, expected: Callable[[int], bool]) -> int:
        """The connection count once ``expected(count)`` holds (a closed backend takes a moment to go)."""
        deadline = time.monotonic() + 10
        while True:
            count = self.connections(database)
            if expected(count) or time.monotonic() > deadline:
                return count
            time.sleep(0.02)

    def close(self) -> None:
        for database in self.databases:
            database.disconnect()
        self.admin.close()


@pytest.fixture
def pools(pg_schema: str) -> Iterator[Pools]:
    """Binds Databases with pool options to a fresh schema; disconnects them afterwards."""
    made = Pools(pg_schema)
    yield made
    made.close()


def in_threads(*functions: Callable[[], Any]) -> list[Any]:
    """Run each function in a thread of its own; their results (or exceptions) in order."""
    results: list[Any] = [None] * len(functions)

    def run(i: int) -> None:
        try:
            results[i] = functions[i]()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(functions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PARTNER_TIMEOUT * 2)
    return results


def test_sessions_beyond_pool_size_wait_for_a_connection(pools: Pools) -> None:
    """With ``pool_size=2``, six concurrent sessions all finish on at most two server connections."""
    db = pools.bind(pool_size=2)
    inside = threading.Semaphore(0)

    @db_session
    def work(i: int) -> int:
        pid = int(db.get("SELECT pg_backend_pid()"))
        db.Note(text=f"note {i}")
        db.execute("SELECT pg_sleep(0.05)")
        inside.release()
        return pid

    pids = in_threads(*[lambda i=i: work(i) for i in range(6)])
    assert all(isinstance(pid, int) for pid in pids), pids
    assert len(set(pids)) <= 2
    assert pools.connections(db) <= 2
    with db_session:
        assert db.Note.select().count() == 6


def test_waiting_past_pool_timeout_raises_pool_timeout_error_naming_the_pool_size(pools: Pools) -> None:
    """A session finding every connection busy for ``pool_timeout`` raises PoolTimeoutError naming pool_size; later ones work."""
    db = pools.bind(pool_size=1, pool_timeout=0.3)
    holding, done = threading.Event(), threading.Event()

    @db_session
    def hold() -> None:
        db.Note(text="held")
        db.flush()
        holding.set()
        done.wait(PARTNER_TIMEOUT)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(PARTNER_TIMEOUT)
        started = time.monotonic()
        with pytest.raises(PoolTimeoutError) as info:
            with db_session:
                db.Note(text="never written")
        assert time.monotonic() - started >= 0.3
    finally:
        done.set()
        holder.join(PARTNER_TIMEOUT)
    assert isinstance(info.value, ConnectionClosedError)
    assert "pool_size=1" in str(info.value)
    assert "pool_timeout=0.3" in str(info.value)
    with db_session:
        assert sorted(n.text for n in db.Note.select()) == ["held"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("pool_size", 0), ("pool_size", "10"), ("pool_size", 2.5), ("pool_timeout", 0), ("pool_timeout", "1")],
)
def test_bad_pool_options_raise_binding_error_naming_them(option: str, value: Any) -> None:
    """``bind`` refuses a pool_size that is not a positive int and a pool_timeout that is not a positive number."""
    with pytest.raises(BindingError, match=rf"{option} .*{value!r}"):
        Database("postgres", dsn=POSTGRES_DSN, **{option: value})


def test_pooled_connection_at_a_file_descriptor_above_1023_is_reused(pools: Pools) -> None:
    """A pooled connection whose socket is file descriptor 1024 or more passes the health check and is reused."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        db = pools.bind()
        pids = set()
        for _ in range(20):
            with db_session:
                pids.add(db.get("SELECT pg_backend_pid()"))
                assert db.get_connection().pgconn.socket >= 1024
        assert len(pids) == 1
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_disconnect_closes_every_pooled_connection_and_the_next_session_reconnects(pools: Pools) -> None:
    """``db.disconnect()`` closes the connections the pool holds; a later session opens a new one."""
    db = pools.bind(pool_size=3)
    both_in = threading.Barrier(3, timeout=PARTNER_TIMEOUT)

    @db_session
    def together() -> None:
        db.get("SELECT 1")
        both_in.wait()

    assert in_threads(together, together, together) == [None, None, None]
    assert pools.connections(db) == 3
    db.disconnect()
    assert pools.settle(db, lambda n: n == 0) == 0
    with db_session:
        db.Note(text="after")
    assert pools.connections(db) == 1


def test_disconnect_while_a_session_runs_closes_its_connection_when_it_ends(pools: Pools) -> None:
    """A connection in use during ``disconnect()`` finishes its session, then is closed rather than pooled."""
    db = pools.bind()
    with db_session:
        db.Note(text="kept")
        db.flush()
        db.provider.disconnect()  # from another thread in real life: the session's connection is in use
    with db_session:
        assert [n.text for n in db.Note.select()] == ["kept"]
    assert pools.settle(db, lambda n: n == 1) == 1


def test_a_database_dropped_without_disconnect_closes_its_connections(pools: Pools) -> None:
    """A Database garbage collected without ``disconnect()`` leaves no connection open on the server."""
    name = f"nextorm-{uuid.uuid4().hex[:12]}"
    count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"

    def use_and_drop() -> int:
        db = Database("postgres", dsn=POSTGRES_DSN, application_name=name)
        with db_session:
            db.get("SELECT 1")
        return int(pools.admin.execute(count, [name]).fetchone()[0])

    assert use_and_drop() == 1
    gc.collect()
    deadline = time.monotonic() + 10
    while pools.admin.execute(count, [name]).fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pools.admin.execute(count, [name]).fetchone()[0] == 0


def test_errors_leave_no_connection_in_a_transaction_or_leaked(pools: Pools) -> None:
    """Sessions ending in errors (Python and SQL) give their connections back idle; the pool never exceeds pool_size."""
    db = pools.bind(pool_size=2)

    @db_session
    def fail(i: int) -> None:
        db.Note(text=f"lost {i}")
        db.flush()
        if i % 2:
            raise ZeroDivisionError
        db.execute("SELECT no_such_column FROM note")

    results = in_threads(*[lambda i=i: fail(i) for i in range(8)])
    assert all(isinstance(r, Exception) for r in results), results
    assert pools.connections(db) <= 2
    assert pools.connections(db, "idle in transaction") == 0
    with db_session:
        assert db.Note.select().count() == 0


def test_psycopg_prepares_no_statement_by_default(pools: Pools) -> None:
    """Statements run many times are not prepared (PgBouncer in transaction mode); ``prepare_threshold`` brings it back."""
    default, preparing = pools.bind(), pools.bind(prepare_threshold=1)
    for db, expected in ((default, 0), (preparing, 1)):
        with db_session:
            for _ in range(5):
                db.Note.select(db.Note.text == "x").count()
            prepared = db.get("SELECT count(*) FROM pg_prepared_statements")
        assert (prepared > 0) == bool(expected), (db, prepared)


def test_async_sessions_share_a_bounded_pool_and_leave_none_open_after_adisconnect(pools: Pools) -> None:
    """Twenty concurrent async sessions run on at most ``pool_size`` connections; ``adisconnect`` closes them."""
    db = pools.bind(asyncio=True, pool_size=3)

    async def main() -> int:
        @db_session
        async def work(i: int) -> int:
            pid = await db.aget("SELECT pg_backend_pid()")
            db.Note(text=f"n{i}")
            await db.aexecute("SELECT pg_sleep(0.02)")
            return int(pid)

        pids = await asyncio.gather(*(work(i) for i in range(20)))
        assert len(set(pids)) <= 3
        open_now = pools.connections(db)
        await db.adisconnect()
        return open_now

    assert asyncio.run(main()) <= 3
    assert pools.settle(db, lambda n: n == 0) == 0
    assert pools.connections(db) == 0


def test_event_loops_ended_without_adisconnect_leave_no_connection_open(pools: Pools) -> None:
    """Each ``asyncio.run()`` ending without ``adisconnect()`` closes the connections its loop pooled."""
    db = pools.bind(asyncio=True)

    async def session() -> int:
        async with db_session:
            return int(await db.aget("SELECT 1"))

    for _ in range(3):
        assert asyncio.run(session()) == 1
        assert pools.settle(db, lambda n: n == 0) == 0


def test_async_pool_timeout_and_cancelled_sessions_leak_no_connection(pools: Pools) -> None:
    """An async session past ``pool_timeout`` raises PoolTimeoutError; cancelled sessions give their connection back."""
    db = pools.bind(asyncio=True, pool_size=1, pool_timeout=0.2)

    async def main() -> None:
        @db_session
        async def slow() -> None:
            db.Note(text="cancelled")
            await db.aflush()
            await db.aexecute("SELECT pg_sleep(5)")

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        with pytest.raises(PoolTimeoutError, match="pool_size=1"):
            async with db_session:
                await db.aget("SELECT 1")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        waiting = [asyncio.create_task(slow()) for _ in range(3)]
        await asyncio.sleep(0.05)
        for other in waiting:
            other.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        async with db_session:
            assert await db.Note.select().acount() == 0
        assert pools.connections(db, "idle in transaction") == 0
        assert pools.connections(db, "active") == 0
        await db.adisconnect()

    asyncio.run(main())
    assert pools.settle(db, lambda n: n == 0) == 0
