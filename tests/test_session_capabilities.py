"""Session capabilities of the README ("Savepoints", "Session events", "Expunging objects",
"Introspecting a session"): savepoints that roll objects back with the database, events fired
in order and once, expunge, and the read-only views of a Session.

Runs on SQLite and, when ``NEXTORM_TEST_POSTGRES`` is set, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from nextorm import (
    AsyncDatabase,
    Database,
    DatabaseSessionIsOver,
    EventHandlerError,
    ObjectNotFound,
    OrmError,
    PendingChangesError,
    PrimaryKey,
    Required,
    Session,
    Set,
    TransactionError,
    TransactionIntegrityError,
    active_session,
    commit,
    db_session,
    expunge,
    expunge_all,
    flush,
    rollback,
    savepoint,
)


def define(db: Database) -> SimpleNamespace:
    """Student and Course (many-to-many ``enrolled``), Course.title unique."""

    class Student(db.Entity):
        _table_ = "student"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        age = Required(int, default=0)
        courses = Set("Course", table="enrolled")

    class Course(db.Entity):
        _table_ = "course"
        id = PrimaryKey(int, auto=True)
        title = Required(str, unique=True)
        students = Set(Student)

    return SimpleNamespace(db=db, Student=Student, Course=Course)


@pytest.fixture
def school(db: Database) -> SimpleNamespace:
    """Ann (20) in Maths, Bob (30) in nothing; courses Maths and Art."""
    school = define(db)
    db.generate_mapping(create_tables=True)
    with db_session:
        maths = school.Course(title="Maths")
        school.Course(title="Art")
        school.Student(name="Ann", age=20, courses=[maths])
        school.Student(name="Bob", age=30)
    return school


def stored(conn: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """What another connection sees: students, courses, enrolments."""
    students = [tuple(r) for r in conn.execute("SELECT id, name, age FROM student ORDER BY id").fetchall()]
    courses = [tuple(r) for r in conn.execute("SELECT id, title FROM course ORDER BY id").fetchall()]
    links = sorted(tuple(r) for r in conn.execute("SELECT * FROM enrolled").fetchall())
    return students, courses, links


# -- savepoints ------------------------------------------------------------------------------------


def test_savepoint_rolled_back_restores_objects_and_database(school: SimpleNamespace, other_connection: Any) -> None:
    """An exception in a savepoint undoes creates, changes, deletes and many-to-many changes, in memory and in the database."""
    Student, Course = school.Student, school.Course
    before = stored(other_connection)
    with db_session:
        ann, bob = Student[1], Student[2]
        maths, art = Course[1], Course[2]
        assert list(ann.courses) == [maths]
        with pytest.raises(ValueError, match="undo"):
            with savepoint():
                ann.age = 21
                new = Student(name="Cid", courses=[art])
                bob.delete()
                ann.courses.remove(maths)
                ann.courses.add(art)
                flush()
                new_id = new.id
                raise ValueError("undo")
        assert ann.age == 20
        assert bob.name == "Bob" and Student[2] is bob
        assert list(ann.courses) == [maths]
        assert list(art.students) == []
        with pytest.raises(ObjectNotFound):
            Student[new_id]
        assert sorted(s.name for s in Student.select()) == ["Ann", "Bob"]
        ann.age = 22  # the session goes on and commits
    students, courses, links = stored(other_connection)
    assert students == [(1, "Ann", 22), (2, "Bob", 30)]
    assert (courses, links) == (before[1], before[2])


def test_savepoint_released_keeps_changes(school: SimpleNamespace, other_connection: Any) -> None:
    """Leaving a savepoint normally keeps what it did; the session commits it."""
    with db_session:
        with savepoint():
            school.Student[1].age = 40
            school.Student(name="Dan")
        assert school.Student[1].age == 40
    assert [r[1:] for r in stored(other_connection)[0]] == [("Ann", 40), ("Bob", 30), ("Dan", 0)]


def test_nested_savepoints_roll_back_only_the_inner_one(school: SimpleNamespace, other_connection: Any) -> None:
    """An inner savepoint rolled back leaves the outer one's changes."""
    with db_session:
        ann = school.Student[1]
        with savepoint():
            ann.age = 41
            with pytest.raises(KeyError):
                with savepoint():
                    ann.age = 42
                    school.Student(name="Eve")
                    flush()
                    raise KeyError("inner")
            assert ann.age == 41
        assert ann.age == 41
    assert [r[1:] for r in stored(other_connection)[0]] == [("Ann", 41), ("Bob", 30)]


def test_failed_flush_inside_savepoint_is_contained(school: SimpleNamespace, other_connection: Any) -> None:
    """A unique violation flushed inside a savepoint rolls back to it; the session stays usable."""
    with db_session:
        school.Student[1].age = 50
        with pytest.raises(TransactionIntegrityError):
            with savepoint():
                school.Student[2].age = 51
                school.Course(title="Maths")
                flush()
        assert school.Student[2].age == 30
        assert school.Student[1].age == 50
        school.Course(title="Music")
    students, courses, _ = stored(other_connection)
    assert [r[1:] for r in students] == [("Ann", 50), ("Bob", 30)]
    assert [c[1] for c in courses] == ["Maths", "Art", "Music"]


def test_commit_inside_savepoint_is_refused(school: SimpleNamespace) -> None:
    """commit()/rollback() inside a savepoint block raise TransactionError."""
    with db_session:
        with savepoint():
            with pytest.raises(TransactionError, match="savepoint"):
                commit()
            with pytest.raises(TransactionError, match="savepoint"):
                rollback()


def test_savepoint_needs_a_session() -> None:
    """savepoint() outside a db_session raises TransactionError."""
    with pytest.raises(TransactionError, match="db_session is required"):
        with savepoint():
            pass


def test_async_savepoint(adb: AsyncDatabase, db_kind: str, other_connection: Any) -> None:
    """``async with savepoint()`` rolls back objects and rows like the sync block."""
    school = define(adb)

    async def main() -> None:
        async with db_session:
            ann = school.Student(name="Ann", age=1)
        async with db_session:
            ann = await school.Student.aget(name="Ann")
            with pytest.raises(ValueError):
                async with savepoint():
                    ann.age = 2
                    school.Student(name="Zed")
                    await ann.aflush()
                    raise ValueError
            assert ann.age == 1
        async with db_session:
            assert [s.name for s in await school.Student.select().afetch()] == ["Ann"]

    adb.generate_mapping(create_tables=True)
    asyncio.run(main())
    assert [r[1:] for r in stored(other_connection)[0]] == [("Ann", 1)]


# -- events ----------------------------------------------------------------------------------------


@pytest.fixture
def fired(school: SimpleNamespace) -> list[str]:
    """Every event of ``school.db`` appended by name, with the session checked."""
    events: list[str] = []
    for name in ("after_begin", "before_flush", "after_flush", "before_commit", "after_commit", "after_rollback"):

        def handler(session: Any, name: str = name) -> None:
            assert isinstance(session, Session) and session is active_session()
            events.append(name)

        school.db.on(name)(handler)
    return events


def test_events_on_commit_in_order_once(school: SimpleNamespace, fired: list[str]) -> None:
    """A session that writes: begin, flush, commit events in order, each once."""
    with db_session:
        school.Student[1].age = 9
    assert fired == ["before_commit", "before_flush", "after_begin", "after_flush", "after_commit"]


def test_events_on_rollback(school: SimpleNamespace, fired: list[str]) -> None:
    """An exception after a flush: the transaction's events, then after_rollback once."""
    with pytest.raises(ZeroDivisionError):
        with db_session:
            school.Student[1].age = 9
            flush()
            1 / 0
    assert fired == ["before_flush", "after_begin", "after_flush", "after_rollback"]


def test_events_on_failed_flush(school: SimpleNamespace, fired: list[str]) -> None:
    """A failed flush: no after_flush, after_rollback once (not again when the block ends)."""
    with pytest.raises(TransactionIntegrityError):
        with db_session:
            school.Course(title="Art")
    assert fired == ["before_commit", "before_flush", "after_begin", "after_rollback"]


def test_events_on_retry(school: SimpleNamespace, fired: list[str]) -> None:
    """A retried session: the first attempt's events end in after_rollback, the second commits."""
    attempts = []

    @db_session(retry=1, retry_delay=0)
    def work() -> None:
        attempts.append(1)
        school.Student[1].age += 1
        flush()
        if len(attempts) == 1:
            raise TransactionError("try again")

    work()
    once = ["before_flush", "after_begin", "after_flush"]
    assert fired == once + ["after_rollback", *once, "before_commit", "after_commit"]


def test_before_commit_exception_aborts_and_rolls_back(school: SimpleNamespace, other_connection: Any) -> None:
    """An exception in a before_commit handler: nothing is committed, the error propagates."""

    @school.db.on("before_commit")
    def refuse(session: Any) -> None:
        raise PermissionError("no commits today")

    with pytest.raises(PermissionError):
        with db_session:
            school.Student[1].age = 99
            flush()
    assert stored(other_connection)[0][0] == (1, "Ann", 20)


def test_before_flush_exception_fails_the_flush(school: SimpleNamespace, other_connection: Any) -> None:
    """An exception in before_flush aborts the flush and rolls back; inside a savepoint only to it."""
    calls = []

    @school.db.on("before_flush")
    def maybe_refuse(session: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise PermissionError("not this one")

    with db_session:
        school.Student[1].age = 1
        flush()
        with pytest.raises(PermissionError):
            with savepoint():
                school.Student[2].age = 2
                flush()
        assert school.Student[2].age == 30
    assert [r[2] for r in stored(other_connection)[0]] == [1, 30]


def test_after_commit_exception_keeps_the_commit(school: SimpleNamespace, other_connection: Any) -> None:
    """An exception in after_commit propagates, but the commit stands."""

    @school.db.on("after_commit")
    def fail(session: Any) -> None:
        raise RuntimeError("mail server down")

    with pytest.raises(RuntimeError):
        with db_session:
            school.Student[1].age = 77
    assert stored(other_connection)[0][0] == (1, "Ann", 77)


def test_after_flush_exception_fails_the_flush(school: SimpleNamespace, other_connection: Any) -> None:
    """An exception in after_flush fails the flush like a failed statement: the session rolls back."""

    @school.db.on("after_flush")
    def fail(session: Any) -> None:
        raise RuntimeError("audit failed")

    with pytest.raises(RuntimeError):
        with db_session:
            school.Student[1].age = 66
    assert stored(other_connection)[0][0] == (1, "Ann", 20)


def test_unknown_event_is_refused(school: SimpleNamespace) -> None:
    """db.on() with an unknown name or a non-callable raises EventHandlerError (an OrmError)."""
    with pytest.raises(EventHandlerError, match="before_save"):
        school.db.on("before_save")
    with pytest.raises(EventHandlerError):
        school.db.on("after_commit")(42)
    assert issubclass(EventHandlerError, OrmError)


# -- expunge and views -----------------------------------------------------------------------------


def test_expunge_gives_a_fresh_object_next_time(school: SimpleNamespace) -> None:
    """An expunged object leaves the identity map; its loaded values stay readable, writes raise."""
    with db_session:
        ann = school.Student[1]
        expunge(ann)
        again = school.Student[1]
        assert again is not ann and again.name == "Ann"
        assert ann.name == "Ann"
        with pytest.raises(DatabaseSessionIsOver, match="expunged"):
            ann.age = 3


def test_expunge_refuses_unflushed_changes(school: SimpleNamespace) -> None:
    """Expunging an object with unflushed changes raises PendingChangesError naming it; nothing is expunged."""
    with db_session:
        ann, bob = school.Student[1], school.Student[2]
        ann.age = 5
        with pytest.raises(PendingChangesError, match=r"Student\[1\]"):
            expunge(bob, ann)
        assert school.Student[2] is bob
        with pytest.raises(PendingChangesError):
            expunge_all()
        flush()
        expunge_all()
        assert school.Student[1] is not ann


def test_session_views(school: SimpleNamespace) -> None:
    """new/dirty/deleted list pending changes; a flush empties them; in_transaction follows the transaction."""
    with db_session as session:
        assert session is active_session()
        assert not session.in_transaction
        ann, bob = school.Student[1], school.Student[2]
        bob.delete()  # deleting loads what cascades need (which flushes): done first
        ann.age = 1
        cid = school.Student(name="Cid")
        assert (session.new, session.dirty, session.deleted) == ((cid,), (ann,), (bob,))
        flush()
        assert (session.new, session.dirty, session.deleted) == ((), (), ())
        assert session.in_transaction
        with pytest.raises(AttributeError):
            session.new = ()  # type: ignore[misc]
    assert active_session() is None


def test_savepoint_undoes_one_to_many_changes(db: Database, other_connection: Any) -> None:
    """Moving an object between two one-to-many collections inside a rolled-back savepoint is undone."""

    class Team(db.Entity):
        _table_ = "team"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        players = Set("Player")

    class Player(db.Entity):
        _table_ = "player"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        team = Required(Team)

    db.generate_mapping(create_tables=True)
    with db_session:
        reds, blues = Team(name="Reds"), Team(name="Blues")
        Player(name="Ann", team=reds)
    with db_session:
        reds, blues = Team[1], Team[2]
        ann = Player[1]
        assert list(reds.players) == [ann] and list(blues.players) == []
        with pytest.raises(RuntimeError):
            with savepoint():
                blues.players.add(ann)
                Player(name="Bob", team=blues)
                flush()
                raise RuntimeError
        assert ann.team is reds
        assert list(reds.players) == [ann] and list(blues.players) == []
    assert [tuple(r) for r in other_connection.execute("SELECT name, team FROM player").fetchall()] == [("Ann", 1)]
