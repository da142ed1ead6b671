"""Commit outcomes told truthfully, failed sessions that stay failed, no write lost or written twice.

See the README's "Reliability" section: ``retry`` re-runs a function only when none of its writes
was committed; an interrupt during COMMIT propagates as itself; a COMMIT whose answer was lost is
``CommitOutcomeUnknown``; after a failed flush or commit the session refuses work until
``rollback()``; a rollback takes back the values it undid. Every check reads the database back
on a fresh connection.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from faults import FaultPlan, driver_error, wrap_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nextorm import (
    CommitException,
    CommitOutcomeUnknown,
    ConnectionClosedError,
    Database,
    DatabaseSessionIsOver,
    Json,
    Optional,
    PartialCommitException,
    PendingRollbackError,
    PrimaryKey,
    Required,
    SerializationFailure,
    TransactionError,
    TransactionIntegrityError,
    commit,
    db_session,
    flush,
    rollback,
)


def declare(database: Any) -> SimpleNamespace:
    """Note (auto key, unique token) and Doc (a Json value) on ``database``."""

    class Note(database.Entity):
        _table_ = "note"
        id = PrimaryKey(int, auto=True)
        token = Required(str, unique=True)
        age = Required(int, default=30)

    class Doc(database.Entity):
        _table_ = "doc"
        id = PrimaryKey(int)
        name = Required(str)
        data = Optional(Json)

    database.generate_mapping(create_tables=True)
    return SimpleNamespace(db=database, Note=Note, Doc=Doc)


@pytest.fixture
def ns(storage: Any) -> SimpleNamespace:
    """The schema on a Database of the test's storage, with a plain client of the same storage."""
    ns = declare(storage.database(sqlite_timeout=0.2))
    ns.client = storage.client()
    return ns


@pytest.fixture
def ans(storage: Any) -> SimpleNamespace:
    """The schema on an AsyncDatabase of the test's storage."""
    return declare(storage.database(asyncio=True))


def tokens(storage: Any) -> list[str]:
    """Every committed note token, duplicates included, read on a fresh connection."""
    return [row[0] for row in storage.fetch("SELECT token FROM note ORDER BY token")]


@pytest.fixture
def sigint() -> Any:
    """SIGINT raises KeyboardInterrupt while the test runs (Python's default handler)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# -- retry never re-runs committed work ---------------------------------------------------------


def test_retry_never_reruns_a_partial_commit(tmp_path: Any) -> None:
    """A later database failing its COMMIT: PartialCommitException, not retried whatever
    retry_exceptions says, and exactly one copy of the first database's rows."""
    first = declare(Database("sqlite", str(tmp_path / "first.db"), create_db=True))
    second = declare(Database("sqlite", str(tmp_path / "second.db"), create_db=True, timeout=0.1))
    reader = sqlite3.connect(str(tmp_path / "second.db"), isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM note").fetchall()  # its shared lock makes COMMIT fail
    calls = []

    @db_session(retry=3, retry_exceptions=[PartialCommitException, TransactionError], retry_delay=0)
    def work() -> None:
        calls.append(1)
        first.Note(token="one")
        second.Note(token="two")

    with pytest.raises(PartialCommitException) as info:
        work()
    reader.execute("COMMIT")
    assert calls == [1]
    assert info.value.committed == [first.db] and info.value.failed == [second.db]
    assert repr(first.db) in str(info.value) and repr(second.db) in str(info.value)
    with db_session:
        assert [n.token for n in first.Note.select()] == ["one"]
        assert second.Note.select().count() == 0


def test_retry_never_reruns_a_function_that_committed(ns: SimpleNamespace, storage: Any) -> None:
    """A retryable error after ``commit()`` inside the function propagates: re-running would write twice."""
    calls = []

    @db_session(retry=3, retry_delay=0)
    def work() -> None:
        calls.append(1)
        ns.Note(token=f"t{len(calls)}")
        commit()
        raise SerializationFailure("conflict after a commit")

    with pytest.raises(SerializationFailure) as info:
        work()
    assert calls == [1]
    assert any("not retried" in note for note in getattr(info.value, "__notes__", []))
    assert tokens(storage) == ["t1"]


def test_retry_reruns_until_success_with_growing_pauses(
    ns: SimpleNamespace, storage: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retries wait between half and all of ``retry_delay * retry_backoff ** n``, capped at ``retry_max_delay``."""
    import nextorm.session

    pauses: list[float] = []
    monkeypatch.setattr(nextorm.session.time, "sleep", pauses.append)
    calls = []

    @db_session(retry=3, retry_delay=0.1, retry_backoff=2, retry_max_delay=0.15)
    def work() -> str:
        calls.append(1)
        ns.Note(token=f"t{len(calls)}")
        if len(calls) < 3:
            raise SerializationFailure("try again")
        return "done"

    assert work() == "done"
    assert len(calls) == 3 and len(pauses) == 2
    assert 0.05 <= pauses[0] <= 0.1 and 0.075 <= pauses[1] <= 0.15, pauses
    assert tokens(storage) == ["t3"]


@pytest.mark.parametrize(
    "options",
    [{"retry_delay": -1}, {"retry_backoff": 0.5}, {"retry_max_delay": "1"}, {"retry_delay": True}],
)
def test_retry_pause_options_are_checked(options: dict[str, Any]) -> None:
    """Bad backoff options raise TypeError naming the option."""
    with pytest.raises(TypeError, match=next(iter(options))):
        db_session(retry=1, **options)


# -- interrupts during COMMIT -------------------------------------------------------------------


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_signal_during_commit_propagates_and_is_never_retried(
    ns: SimpleNamespace, storage: Any, monkeypatch: pytest.MonkeyPatch, sigint: Any, when: str
) -> None:
    """SIGINT as COMMIT is sent or as it returns: KeyboardInterrupt itself, one run, at most one copy."""
    provider = ns.db.provider
    real_commit = provider.commit

    def interrupted_commit(conn: Any) -> None:
        if when == "before":
            signal.raise_signal(signal.SIGINT)
        real_commit(conn)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(provider, "commit", interrupted_commit)
    calls = []

    @db_session(retry=3, retry_exceptions=lambda exc: True, retry_delay=0)
    def work() -> None:
        calls.append(1)
        ns.Note(token="once")

    with pytest.raises(KeyboardInterrupt) as info:
        work()
    monkeypatch.undo()
    assert calls == [1]
    assert any("interrupted" in note for note in info.value.__notes__)
    assert tokens(storage) == ([] if when == "before" else ["once"])
    with db_session:  # nothing was left locked or half-open
        ns.Note(token="next")
    assert "next" in tokens(storage)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_task_cancelled_during_an_awaited_commit_is_cancelled(
    ans: SimpleNamespace, storage: Any, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """``task.cancel()`` while COMMIT is awaited: the task ends cancelled, one run, at most one copy."""
    provider = ans.db.provider
    real_acommit = provider.acommit
    calls = []

    async def main() -> None:
        started = asyncio.Event()

        async def slow_acommit(conn: Any) -> None:
            started.set()
            if when == "before":
                await asyncio.sleep(30)
            await real_acommit(conn)
            await asyncio.sleep(30)  # the answer is slow to come back

        monkeypatch.setattr(provider, "acommit", slow_acommit)

        @db_session(retry=3, retry_exceptions=lambda exc: True, retry_delay=0)
        async def work() -> None:
            calls.append(1)
            ans.Note(token="once")

        task = asyncio.create_task(work())
        await asyncio.wait_for(started.wait(), 30)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        monkeypatch.undo()
        async with db_session:
            ans.Note(token="next")

    storage.run(main)
    assert calls == [1]
    assert tokens(storage) == (["next"] if when == "before" else ["next", "once"])


# -- a lost answer ------------------------------------------------------------------------------


def test_a_commit_whose_answer_is_lost_says_the_outcome_is_unknown(
    ns: SimpleNamespace, storage: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COMMIT applied, then the driver fails: CommitOutcomeUnknown, never retried, one copy."""
    plan = FaultPlan(driver_error(storage.kind, "after"))
    wrap_connections(monkeypatch, ns.db, plan)
    calls = []

    @db_session(retry=3, retry_exceptions=lambda exc: True, retry_delay=0)
    def work() -> None:
        calls.append(1)
        ns.Note(token="once")
        flush()
        plan.statements, plan.mode, plan.fail_at = [], "after", 0  # the next statement is COMMIT

    with pytest.raises(CommitOutcomeUnknown) as info:
        work()
    assert calls == [1]
    assert info.value.database is ns.db
    assert "unknown" in str(info.value) and "rolled back" not in str(info.value)
    assert tokens(storage) == ["once"]


# -- a failed session stays failed --------------------------------------------------------------


def failed_flush(ns: SimpleNamespace) -> BaseException:
    """Inside a session: a flush the database refuses (a unique token taken by another client)."""
    ns.client.execute("INSERT INTO note (token, age) VALUES ('taken', 1)")
    ns.Note(token="before")
    flush()
    ns.Note(token="taken")
    with pytest.raises(TransactionIntegrityError) as info:
        flush()
    return info.value


def test_a_failed_flush_makes_the_session_refuse_work_until_rollback(
    ns: SimpleNamespace, storage: Any
) -> None:
    """Queries, lookups, flush, commit, writes and new objects raise PendingRollbackError naming the
    failure; leaving the block rolls back and raises it: no write of the session lands."""
    ns.client.execute("INSERT INTO note (token, age) VALUES ('kept', 1)")
    with pytest.raises(PendingRollbackError) as ended:
        with db_session:
            kept = ns.Note[1]
            failure = failed_flush(ns)
            refusals: list[Callable[[], Any]] = [
                lambda: ns.Note.select().count(),
                lambda: ns.Note[1],
                lambda: ns.Note(token="after"),
                lambda: setattr(kept, "age", 5),
                flush,
                commit,
            ]
            for refused in refusals:
                with pytest.raises(PendingRollbackError) as info:
                    refused()
                assert info.value.failure is failure
                assert "taken" in str(info.value)
    assert ended.value.failure is failure
    assert "rolled back" in str(ended.value)
    assert tokens(storage) == ["kept", "taken"]


def test_rollback_after_a_failure_lets_the_session_go_on(ns: SimpleNamespace, storage: Any) -> None:
    """After ``rollback()`` the session works again; only what came after it is committed."""
    with db_session:
        failed_flush(ns)
        rollback()
        ns.Note(token="after")
    assert tokens(storage) == ["after", "taken"]


def test_a_failed_commit_makes_the_session_refuse_work(ns: SimpleNamespace, storage: Any) -> None:
    """A caught failing ``commit()`` fails the session too; leaving the block raises."""
    ns.client.execute("INSERT INTO note (token, age) VALUES ('taken', 1)")
    with pytest.raises(PendingRollbackError):
        with db_session:
            ns.Note(token="taken")
            with pytest.raises(TransactionIntegrityError):
                commit()
            with pytest.raises(PendingRollbackError):
                ns.Note(token="later")
    assert tokens(storage) == ["taken"]


# -- rolled-back values -------------------------------------------------------------------------


def test_rollback_takes_back_the_values_it_undid(ns: SimpleNamespace, storage: Any) -> None:
    """A flushed value is gone after ``rollback()``; a deleted object is back; unflushed values stay."""
    ns.client.execute("INSERT INTO note (token, age) VALUES ('a', 30)")
    ns.client.execute("INSERT INTO note (token, age) VALUES ('b', 40)")
    with db_session:
        a, b = ns.Note[1], ns.Note[2]
        a.age = 99
        b.delete()
        flush()
        a.token = "pending"  # not flushed: kept on the detached object, as Pony keeps it
        rollback()
        assert a.age == 30
        assert a.token == "pending"
        assert b.age == 40
        with pytest.raises(DatabaseSessionIsOver, match="rolled back"):
            a.age = 1
        assert ns.Note[1].age == 30 and ns.Note[2].token == "b"
    assert storage.fetch("SELECT token, age FROM note ORDER BY id") == [("a", 30), ("b", 40)]


# -- no lost update of a Json value -------------------------------------------------------------


def test_a_reloaded_json_value_is_not_written_back(ns: SimpleNamespace, storage: Any) -> None:
    """A Json value re-read by a query is written only when this session changed it."""
    ns.client.execute("INSERT INTO doc (id, name, data) VALUES (1, 'd', '{\"v\": 1}')")
    with db_session:
        doc = ns.Doc[1]
        assert doc.data == {"v": 1}
        ns.client.execute("UPDATE doc SET data = '{\"v\": 2}' WHERE id = 1")  # a third writer
        assert ns.Doc.select()[:] == [doc]  # re-read: the value is refreshed
        doc.name = "renamed"
    stored = storage.fetch("SELECT name, data FROM doc")
    assert stored[0][0] == "renamed"
    assert '"v": 2' in str(stored[0][1]) or stored[0][1] == {"v": 2}


# -- connection closed, statement logging -------------------------------------------------------


@pytest.mark.sqlite_only
def test_a_connection_closed_under_a_session_raises_connection_closed_error(
    ns: SimpleNamespace, storage: Any
) -> None:
    """The session's connection closed by hand: ConnectionClosedError, nothing written, next session works."""
    with pytest.raises(ConnectionClosedError):
        with db_session:
            ns.Note(token="lost")
            flush()
            ns.db.get_connection().close()
            ns.Note.select().count()
    assert tokens(storage) == []
    with db_session:
        ns.Note(token="next")
    assert tokens(storage) == ["next"]


@pytest.mark.parametrize("form", ["block", "decorator"])
def test_a_session_sql_debug_logs_its_writes_and_commit(
    ns: SimpleNamespace, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    """``db_session(sql_debug=True)`` logs the INSERT and COMMIT sent when the session ends."""

    def body() -> None:
        ns.Note(token="logged")

    with caplog.at_level(logging.INFO, logger="nextorm.sql"):
        if form == "block":
            with db_session(sql_debug=True):
                body()
        else:
            db_session(sql_debug=True)(body)()
    logged = [record.getMessage().split()[0] for record in caplog.records if record.name == "nextorm.sql"]
    assert "INSERT" in logged and logged[-1] == "COMMIT", logged


# -- the property: against a model, no acknowledged write lost, none written twice ----------------

SESSION = st.tuples(
    st.integers(min_value=1, max_value=3),  # notes inserted
    st.sampled_from(["none", "before", "after", "interrupt"]),  # the fault
    st.integers(min_value=0, max_value=6),  # at which statement of the session
    st.integers(min_value=0, max_value=2),  # retry
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sessions=st.lists(SESSION, min_size=1, max_size=6))
def test_random_sessions_with_faults_agree_with_the_model(
    sessions: list[tuple[int, str, int, int]], ns: SimpleNamespace, storage: Any
) -> None:
    """Random sessions, each failing at a random statement: an acknowledged session's notes are stored
    exactly once; a refused one's never; an unknown or interrupted one's at most once."""
    ns.client.execute("DELETE FROM note")
    counter = iter(range(10**6))
    expected: dict[str, tuple[int, ...]] = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for size, fault, fail_at, retry in sessions:
            make = (
                (lambda: KeyboardInterrupt()) if fault == "interrupt" else driver_error(storage.kind, fault)
            )
            plan = FaultPlan(make)
            plan.mode = "after" if fault in ("after", "interrupt") else "before"
            plan.fail_at = None if fault == "none" else fail_at
            wrap_connections(monkeypatch, ns.db, plan)
            notes = [f"n{next(counter)}" for _ in range(size)]

            @db_session(retry=retry, retry_exceptions=lambda exc: True, retry_delay=0)
            def work(notes: list[str] = notes) -> None:
                for token in notes:
                    ns.Note(token=token)
                flush()
                ns.Note.select().count()

            try:
                work()
            except (CommitOutcomeUnknown, KeyboardInterrupt):
                outcome: tuple[int, ...] = (0, 1)
            except (CommitException, ConnectionClosedError, PendingRollbackError, TransactionError):
                outcome = (0,)
            except Exception as exc:
                assert type(exc).__module__.startswith("nextorm"), repr(exc)
                outcome = (0,)
            else:
                outcome = (1,)
            for token in notes:
                expected[token] = outcome
    stored = tokens(storage)
    for token, allowed in expected.items():
        assert stored.count(token) in allowed, (token, allowed, sessions)
