"""One db_session over two databases: shared session, flush all, commit the first touched, then the others.

The first database is always a SQLite file; the second is conftest's ``db``: another SQLite
file, or a PostgreSQL schema when ``NEXTORM_TEST_POSTGRES`` is set. Commit failures are real:
a row left referring to a deleted one fails its deferred foreign key at COMMIT.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from nextorm import (
    CommitException,
    Database,
    DatabaseSessionIsOver,
    PartialCommitException,
    PrimaryKey,
    Required,
    Set,
    TransactionError,
    TransactionIntegrityError,
    commit,
    db_session,
    flush,
    rollback,
)


def declare(database: Database) -> SimpleNamespace:
    """Map Note (unique text), Owner and Pet (a required Owner whose deletion does not cascade, so
    the foreign key has no ON DELETE action) onto ``database``; Owner[1] exists."""

    class Note(database.Entity):
        _table_ = "note"
        id = PrimaryKey(int, auto=True)
        text = Required(str, unique=True)

    class Owner(database.Entity):
        _table_ = "owner"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        pets = Set("Pet", cascade_delete=False)

    class Pet(database.Entity):
        _table_ = "pet"
        id = PrimaryKey(int, auto=True)
        owner = Required(Owner)

    database.generate_mapping(create_tables=True)
    with db_session:
        Owner(name="o")
    return SimpleNamespace(db=database, Note=Note, Owner=Owner, Pet=Pet)


@pytest.fixture
def first_path(tmp_path: Any) -> str:
    """The file of the first database."""
    return str(tmp_path / "first.sqlite")


@pytest.fixture
def first(first_path: str) -> Iterator[SimpleNamespace]:
    """The first database: a SQLite file with Note, Owner and Pet."""
    database = Database("sqlite", first_path, create_db=True)
    yield declare(database)
    database.disconnect()


@pytest.fixture
def second(db: Database) -> SimpleNamespace:
    """The second database: conftest's ``db`` (SQLite file or PostgreSQL schema) with Note, Owner and Pet."""
    return declare(db)


@pytest.fixture
def first_conn(first: SimpleNamespace, first_path: str) -> Iterator[sqlite3.Connection]:
    """Another client of the first database."""
    conn = sqlite3.connect(first_path, isolation_level=None, timeout=5)
    yield conn
    conn.close()


@pytest.fixture
def databases(
    first: SimpleNamespace, second: SimpleNamespace, first_conn: Any, other_connection: Any
) -> dict[str, Any]:
    """Both databases by label, each with its entities and another client: ``{'first': ..., 'second': ...}``."""
    first.conn, second.conn = first_conn, other_connection
    first.label, second.label = "first", "second"
    return {"first": first, "second": second}


@pytest.fixture
def commit_log(databases: dict[str, Any], sql_log: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``sql_log``, with a ``commit <label>`` line logged before each database's COMMIT."""
    for label, side in databases.items():
        original = side.db.provider.commit

        def commit_and_log(conn: Any, original: Any = original, label: str = label) -> None:
            sql_log.records.append(f"commit {label}")
            original(conn)

        monkeypatch.setattr(side.db.provider, "commit", commit_and_log)
    sql_log.clear()
    return sql_log


def notes(side: SimpleNamespace) -> list[str]:
    """The texts of the notes another client sees in ``side``'s database."""
    return [row[0] for row in side.conn.execute("SELECT text FROM note ORDER BY id").fetchall()]


def pets(side: SimpleNamespace) -> int:
    """How many pets another client sees in ``side``'s database."""
    return int(side.conn.execute("SELECT count(*) FROM pet").fetchone()[0])


def orphan_a_pet(side: SimpleNamespace) -> None:
    """Flush a new Pet of Owner[1], then delete Owner[1] with raw SQL: the deferred foreign key fails at COMMIT."""
    side.Pet(owner=side.Owner[1])
    side.db.flush()
    side.db.execute("DELETE FROM owner WHERE id = 1")


ORDERS = pytest.mark.parametrize(
    ("touched_first", "touched_later"), [("first", "second"), ("second", "first")]
)


def test_objects_of_both_databases_share_one_session(databases: dict[str, Any]) -> None:
    """Objects of two databases live in one session: committed together, detached together by rollback()."""
    first, second = databases["first"], databases["second"]
    with db_session:
        first.Note(text="f1")
        second.Note(text="s1")
        commit()
        assert (notes(first), notes(second)) == (["f1"], ["s1"])
        kept = (first.Note.get(text="f1"), second.Note.get(text="s1"))
        first.Note(text="f2")
        second.Note(text="s2")
        flush()
        rollback()
        for note in kept:
            with pytest.raises(DatabaseSessionIsOver):
                note.text = "changed"
    assert (notes(first), notes(second)) == (["f1"], ["s1"])


@ORDERS
def test_exit_flushes_every_database_then_commits_the_first_touched_first(
    databases: dict[str, Any], commit_log: Any, touched_first: str, touched_later: str
) -> None:
    """At exit every database is flushed, then the first one touched is committed, then the other."""
    with db_session:
        databases[touched_first].Note(text="one")
        databases[touched_later].Note(text="two")
        databases[touched_first].Note(text="three")
    log = commit_log.statements
    inserts = [i for i, s in enumerate(log) if "INSERT" in s]
    commits = [i for i, s in enumerate(log) if s.startswith("commit ")]
    assert len(inserts) >= 2 and len(commits) == 2
    assert max(inserts) < min(commits)
    assert [log[i] for i in commits] == [f"commit {touched_first}", f"commit {touched_later}"]
    assert [log[i + 1] for i in commits] == ["COMMIT", "COMMIT"]
    assert notes(databases[touched_first]) == ["one", "three"]
    assert notes(databases[touched_later]) == ["two"]


@ORDERS
def test_failed_flush_rolls_back_every_database(
    databases: dict[str, Any], touched_first: str, touched_later: str
) -> None:
    """A flush failing in one database at exit rolls back the other too, even what it had already flushed."""
    failing, flushed = databases[touched_first], databases[touched_later]
    failing.conn.execute("INSERT INTO note (text) VALUES ('taken')")
    with pytest.raises(TransactionIntegrityError):
        with db_session:
            failing.Note(text="taken")
            flushed.Note(text="kept?")
            flushed.db.flush()
    assert notes(failing) == ["taken"]
    assert notes(flushed) == []
    with db_session:
        flushed.Note(text="later")
    assert notes(flushed) == ["later"]


@ORDERS
def test_failed_commit_of_a_later_database_raises_partial_commit_exception(
    databases: dict[str, Any], commit_log: Any, touched_first: str, touched_later: str
) -> None:
    """A later database failing its COMMIT raises PartialCommitException naming what committed and what did not."""
    committed, failed = databases[touched_first], databases[touched_later]
    with pytest.raises(PartialCommitException) as info:
        with db_session:
            committed.Note(text="saved")
            failed.Note(text="lost")
            orphan_a_pet(failed)
    assert isinstance(info.value, TransactionError)
    assert [type(exc) for exc in info.value.exceptions] == [TransactionIntegrityError]
    message = str(info.value)
    committed_at = message.find(repr(committed.db))
    failed_at = message.find(repr(failed.db))
    assert committed_at != -1 and failed_at != -1, message
    assert committed_at < failed_at
    assert re.search(r"commit", message[:committed_at], re.I), message
    assert re.search(r"fail", message[committed_at:failed_at], re.I), message
    assert re.search(r"foreign key", message, re.I), message
    assert [s for s in commit_log.statements if s.startswith("commit ")] == [
        f"commit {touched_first}",
        f"commit {touched_later}",
    ]
    assert notes(committed) == ["saved"]
    assert (notes(failed), pets(failed)) == ([], 0)
    with db_session:
        assert failed.Owner[1].name == "o"
        failed.Note(text="again")
    assert notes(failed) == ["again"]


@ORDERS
def test_failed_commit_of_the_first_database_raises_commit_exception_and_rolls_back_all(
    databases: dict[str, Any],
    commit_log: Any,
    monkeypatch: pytest.MonkeyPatch,
    touched_first: str,
    touched_later: str,
) -> None:
    """The first database failing its COMMIT raises CommitException; the other is rolled back, not committed."""
    failed, other = databases[touched_first], databases[touched_later]

    def broken_commit(conn: Any) -> None:
        commit_log.records.append(f"commit {touched_first}")
        raise OSError("disk full")

    monkeypatch.setattr(failed.db.provider, "commit", broken_commit)
    with pytest.raises(CommitException) as info:
        with db_session:
            failed.Note(text="lost")
            other.Note(text="lost too")
            other.db.flush()
    assert [type(exc) for exc in info.value.exceptions] == [OSError]
    assert "OSError: disk full" in str(info.value)
    assert [s for s in commit_log.statements if s.startswith("commit ")] == [f"commit {touched_first}"]
    assert (notes(failed), notes(other)) == ([], [])
    with db_session:
        other.Note(text="again")
    assert notes(other) == ["again"]


@ORDERS
def test_deferred_foreign_key_failure_of_the_first_database_rolls_back_all(
    databases: dict[str, Any], commit_log: Any, touched_first: str, touched_later: str
) -> None:
    """The first database's COMMIT failing a deferred foreign key raises TransactionIntegrityError; all is rolled back."""
    failed, other = databases[touched_first], databases[touched_later]
    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            failed.Note(text="lost")
            other.Note(text="lost too")
            other.db.flush()
            orphan_a_pet(failed)
    assert re.search(r"foreign key", str(info.value), re.I), str(info.value)
    assert [s for s in commit_log.statements if s.startswith("commit ")] == [f"commit {touched_first}"]
    assert (notes(failed), pets(failed)) == ([], 0)
    assert notes(other) == []
    with db_session:
        failed.Note(text="again")
        other.Note(text="again")
    assert (notes(failed), notes(other)) == (["again"], ["again"])


@ORDERS
def test_partial_commit_exception_names_a_non_database_error_by_its_class(
    databases: dict[str, Any], monkeypatch: pytest.MonkeyPatch, touched_first: str, touched_later: str
) -> None:
    """A later commit failing with any exception gives PartialCommitException with ``Class: message``; it is rolled back."""
    committed, failed = databases[touched_first], databases[touched_later]

    def broken_commit(conn: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(failed.db.provider, "commit", broken_commit)
    with pytest.raises(PartialCommitException) as info:
        with db_session:
            committed.Note(text="saved")
            failed.Note(text="lost")
    assert [type(exc) for exc in info.value.exceptions] == [OSError]
    message = str(info.value)
    assert "OSError: disk full" in message
    assert -1 < message.find(repr(committed.db)) < message.find(repr(failed.db)), message
    assert (notes(committed), notes(failed)) == (["saved"], [])
