"""PostgreSQL past one process (README "Connection pooling", "PgBouncer", "Read replicas"), under load.

Every server here is the test's own, started by a fixture on free loopback ports and removed
afterwards: a server with ``max_connections=100``, PgBouncer in transaction mode in front of it,
and a primary with two streaming replicas (``pg_basebackup -R``). They need PostgreSQL's server
programs and PgBouncer installed (``.ci/run`` installs them).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from nextorm import Database, PrimaryKey, Required, db_session
from support import PgBouncer, PostgresCluster, free_port, note_database

# with the PostgreSQL tests: run where NEXTORM_TEST_POSTGRES says a server setup exists (CI), and
# deselected with them elsewhere (wheel builds in containers, machines without PostgreSQL)
pytestmark = pytest.mark.postgres

#: concurrent sessions of the load runs, and the pool each process keeps
SESSIONS = 500
POOL_SIZE = 20
#: how long a thread waits at the start line before the test fails instead of hanging
START_TIMEOUT = 60


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of the module's own with ``max_connections=100``."""
    cluster = PostgresCluster(max_connections=100)
    yield cluster
    cluster.stop()


def bind(dsn: str, asyncio: bool = False, **options: Any) -> Any:
    """A Database (AsyncDatabase when ``asyncio``) on ``dsn`` with a fresh table ``note`` and an application_name of its own."""
    schema = f"s_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    return note_database(dsn, schema, schema, asyncio, **options)


def connections(dsn: str, database: Any, state: str | None = None) -> int:
    """How many server connections ``database`` has open (in ``state`` when given), waiting for closed ones to go."""
    name = database.provider.connect_options["application_name"]
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s" + (
        " AND state = %s" if state else ""
    )
    with psycopg.connect(dsn, autocommit=True) as admin:
        return int(admin.execute(sql, [name, state] if state else [name]).fetchone()[0])


def settled(dsn: str, database: Any) -> int:
    """The connection count of ``database`` once no more backends are going away (at most 10 s)."""
    deadline = time.monotonic() + 10
    count = connections(dsn, database)
    while count and time.monotonic() < deadline:
        time.sleep(0.05)
        count = connections(dsn, database)
    return count


def run_threads(count: int, work: Any) -> tuple[int, list[BaseException]]:
    """``work(i)`` for i < count, each in a thread of its own, started together; (successes, errors)."""
    start = threading.Barrier(count, timeout=START_TIMEOUT)
    errors: list[BaseException] = []
    successes = []

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:
            errors.append(exc)
        else:
            successes.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(successes), errors


# -- the pool under load -------------------------------------------------------------------------


def test_500_concurrent_thread_sessions_on_a_100_connection_server_all_succeed(
    server: PostgresCluster,
) -> None:
    """500 threads in sessions at once, pool_size=20, max_connections=100: 500 successes, no error, nothing leaked."""
    dsn = server.dsn()
    db = bind(dsn, pool_size=POOL_SIZE, pool_timeout=60)
    peak = []

    @db_session
    def work(i: int) -> None:
        db.Note(text=f"note {i}")
        db.flush()
        db.execute("SELECT pg_sleep(0.002)")
        if i % 50 == 0:
            peak.append(connections(dsn, db))

    successes, errors = run_threads(SESSIONS, work)
    assert (successes, errors) == (SESSIONS, [])
    assert max(peak) <= POOL_SIZE
    assert connections(dsn, db) <= POOL_SIZE
    assert connections(dsn, db, "idle in transaction") == 0
    with db_session:
        assert db.Note.select().count() == SESSIONS
    db.disconnect()
    assert settled(dsn, db) == 0


def test_500_concurrent_async_sessions_on_a_100_connection_server_all_succeed(
    server: PostgresCluster,
) -> None:
    """500 asyncio tasks in sessions at once, pool_size=20: 500 successes, no error, nothing leaked after adisconnect."""
    dsn = server.dsn()
    db = bind(dsn, asyncio=True, pool_size=POOL_SIZE, pool_timeout=60)

    async def main() -> tuple[list[Any], int]:
        @db_session
        async def work(i: int) -> None:
            db.Note(text=f"note {i}")
            await db.aflush()
            await db.aexecute("SELECT pg_sleep(0.002)")

        try:
            results = await asyncio.gather(*(work(i) for i in range(SESSIONS)), return_exceptions=True)
            async with db_session:
                stored = await db.Note.select().acount()
            assert connections(dsn, db) <= POOL_SIZE
            return results, stored
        finally:
            await db.adisconnect()

    results, stored = asyncio.run(main())
    errors = [r for r in results if r is not None]
    assert (len(results) - len(errors), errors, stored) == (SESSIONS, [], SESSIONS)
    assert settled(dsn, db) == 0


def test_failing_and_cancelled_sessions_under_load_leak_no_connection(server: PostgresCluster) -> None:
    """Of 500 async sessions a third fail and a third are cancelled: the rest succeed, no connection is left behind."""
    dsn = server.dsn()
    db = bind(dsn, asyncio=True, pool_size=POOL_SIZE, pool_timeout=60)

    async def main() -> tuple[int, int, int, int]:
        @db_session
        async def work(i: int) -> None:
            db.Note(text=f"note {i}")
            await db.aflush()
            await db.aexecute("SELECT pg_sleep(0.01)")
            if i % 3 == 1:
                raise ValueError(i)

        tasks = [asyncio.create_task(work(i)) for i in range(SESSIONS)]
        await asyncio.sleep(0.05)
        for i, task in enumerate(tasks):
            if i % 3 == 2:
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        try:
            async with db_session:
                stored = await db.Note.select().acount()
            assert connections(dsn, db, "idle in transaction") == 0
        finally:
            await db.adisconnect()
        done = sum(r is None for r in results)
        failed = sum(isinstance(r, ValueError) for r in results)
        cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
        return done, failed, cancelled, stored

    done, failed, cancelled, stored = asyncio.run(main())
    assert failed == len(range(1, SESSIONS, 3))
    assert done + cancelled == SESSIONS - failed
    # a task cancelled once its COMMIT was sent may have committed (README "Sessions"): never twice
    assert done >= len(range(0, SESSIONS, 3)) and done <= stored <= done + cancelled
    assert settled(dsn, db) == 0


# -- PgBouncer in transaction mode ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bouncer(server: PostgresCluster) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode (5 server connections) in front of ``server``."""
    pgbouncer = PgBouncer(server, pool_size=5)
    yield pgbouncer
    pgbouncer.stop()


def test_sessions_through_pgbouncer_in_transaction_mode_all_succeed(
    server: PostgresCluster, bouncer: PgBouncer
) -> None:
    """320 sessions from 16 threads through PgBouncer, repeating the same statements: every one succeeds."""
    database = f"bounced_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    db = Database("postgres", dsn=bouncer.dsn(database), pool_size=8)

    class Note(db.Entity):
        _table_ = "note"
        id = PrimaryKey(int, auto=True)
        text = Required(str)

    db.generate_mapping(create_tables=True)

    def work(thread: int) -> None:
        for i in range(20):
            with db_session:
                for _ in range(3):
                    Note.select(Note.text == "x").count()
                Note(text=f"{thread}-{i}")

    try:
        successes, errors = run_threads(16, work)
        assert (successes, [repr(e) for e in errors]) == (16, [])
        with db_session:
            assert Note.select().count() == 320
    finally:
        db.disconnect()


# -- read replicas ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replicated() -> Iterator[SimpleNamespace]:
    """A primary of the module's own with two streaming replicas (``pg_basebackup -R``)."""
    primary = PostgresCluster()
    replicas: list[PostgresCluster] = []
    try:
        replicas.extend(PostgresCluster(primary=primary) for _ in range(2))
        yield SimpleNamespace(primary=primary, replicas=replicas)
    finally:
        for replica in replicas:
            replica.stop()
        primary.stop()


def replayed(primary: PostgresCluster, *replicas: PostgresCluster) -> None:
    """Wait (at most 30 s) until each replica has replayed everything the primary has committed so far."""
    with psycopg.connect(primary.dsn(), autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    for replica in replicas:
        with psycopg.connect(replica.dsn(), autocommit=True) as conn:
            deadline = time.monotonic() + 30
            while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s", [lsn]).fetchone()[0]:
                assert time.monotonic() < deadline, f"replica on port {replica.port} lags behind"
                time.sleep(0.02)


def where(db: Any) -> tuple[int, bool]:
    """The port and recovery state (True on a replica) of the server the current session runs on."""
    return db.get("SELECT inet_server_port()"), db.get("SELECT pg_is_in_recovery()")


def test_readonly_sessions_run_on_the_replicas_in_turn_and_other_sessions_on_the_primary(
    replicated: SimpleNamespace,
) -> None:
    """``replicas=[...]``: readonly sessions alternate between the replicas and see replicated rows; others use the primary."""
    primary, (first, second) = replicated.primary, replicated.replicas
    db = bind(primary.dsn(), replicas=[first.dsn(), second.dsn()])
    with db_session:
        db.Note(text="written")
        assert where(db) == (primary.port, False)
    replayed(primary, first, second)
    ports = []
    for _ in range(4):
        with db_session(readonly=True):
            port, on_replica = where(db)
            assert on_replica
            assert [n.text for n in db.Note.select()] == ["written"]
            assert db.get("SHOW transaction_read_only") == "on"
            ports.append(port)
    assert sorted(ports) == sorted([first.port, second.port] * 2)
    assert all(a != b for a, b in itertools.pairwise(ports))
    db.disconnect()


def test_unreachable_replicas_are_left_out_and_the_primary_serves_when_none_is_left(
    replicated: SimpleNamespace,
) -> None:
    """A replica nothing answers on is skipped; with no replica reachable, readonly sessions run (read-only) on the primary."""
    primary, replica = replicated.primary, replicated.replicas[0]
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    db = bind(primary.dsn(), replicas=[dead, replica.dsn()])
    for _ in range(3):
        with db_session(readonly=True):
            assert where(db) == (replica.port, True)
    db.disconnect()
    lonely = bind(primary.dsn(), replicas=[dead])
    with db_session(readonly=True):
        assert where(lonely) == (primary.port, False)
        assert lonely.get("SHOW transaction_read_only") == "on"
    lonely.disconnect()


def test_a_replica_that_stops_is_replaced_by_the_primary_for_sync_and_async_sessions(
    replicated: SimpleNamespace,
) -> None:
    """Readonly sessions on a replica that then stops go on, on the primary, without an error."""
    primary = replicated.primary
    replica = PostgresCluster(primary=primary)
    try:
        db = bind(primary.dsn(), replicas=[replica.dsn()])
        adb = bind(primary.dsn(), asyncio=True, replicas=[replica.dsn()])

        async def aread() -> tuple[int, bool]:
            async with db_session(readonly=True):
                return await adb.aget("SELECT inet_server_port()"), await adb.aget(
                    "SELECT pg_is_in_recovery()"
                )

        async def main() -> list[tuple[int, bool]]:
            try:
                seen = [await aread()]
                await asyncio.to_thread(replica.stop)
                seen.append(await aread())
                return seen
            finally:
                await adb.adisconnect()

        with db_session(readonly=True):
            assert where(db) == (replica.port, True)
        seen = asyncio.run(main())
        assert seen == [(replica.port, True), (primary.port, False)]
        with db_session(readonly=True):
            assert where(db) == (primary.port, False)
        db.disconnect()
    finally:
        replica.stop()
