"""Session reads and writes of the README ("Get or create", "Set-based updates", "Refreshing
objects", "Streaming large results"): race-safe get_or_create, query.update, obj.refresh,
get_for_update on a loaded row, and yield_per with bounded memory.

Runs on SQLite and, when ``NEXTORM_TEST_POSTGRES`` is set, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
import tracemalloc
from types import SimpleNamespace
from typing import Any

import pytest

from nextorm import (
    AsyncDatabase,
    Set,
    Database,
    DatabaseSessionIsOver,
    Optional,
    PrimaryKey,
    QueryError,
    ReadOnlyAttributeError,
    ReadOnlySessionError,
    Required,
    UnknownAttributeError,
    UnrepeatableReadError,
    db_session,
    rollback,
    savepoint,
)


def define(db: Database) -> SimpleNamespace:
    """Person (name unique, age, city)."""

    class Person(db.Entity):
        _table_ = "person"
        id = PrimaryKey(int, auto=True)
        name = Required(str, unique=True)
        age = Required(int, default=0)
        city = Optional(str)

    return SimpleNamespace(db=db, Person=Person)


@pytest.fixture
def people(db: Database) -> SimpleNamespace:
    """Ann 20 (Oslo), Bob 30 (Oslo), Cid 40 (Rome)."""
    model = define(db)
    db.generate_mapping(create_tables=True)
    with db_session:
        model.Person(name="Ann", age=20, city="Oslo")
        model.Person(name="Bob", age=30, city="Oslo")
        model.Person(name="Cid", age=40, city="Rome")
    return model


def ages(conn: Any) -> list[tuple[str, int]]:
    """(name, age) of every stored person, as another client sees them."""
    return [tuple(r) for r in conn.execute("SELECT name, age FROM person ORDER BY id").fetchall()]


# -- get_or_create -------------------------------------------------------------------------------


def test_get_or_create_finds_or_creates(people: SimpleNamespace, other_connection: Any) -> None:
    """An existing match is returned as is; otherwise keys and defaults make a new object."""
    Person = people.Person
    with db_session:
        ann, created = Person.get_or_create(name="Ann", defaults={"age": 99})
        assert (ann.age, created) == (20, False)
        dan, created = Person.get_or_create(name="Dan", defaults={"age": 5})
        assert created and dan.id is not None and dan.age == 5
        assert Person.get_or_create(name="Dan") == (dan, False)
    assert ages(other_connection)[-1] == ("Dan", 5)


def test_get_or_create_refuses_unknown_attributes(people: SimpleNamespace) -> None:
    """Unknown keys or defaults raise UnknownAttributeError naming them; no keys raise TypeError."""
    with db_session:
        with pytest.raises(UnknownAttributeError, match="'nick'"):
            people.Person.get_or_create(nick="A")
        with pytest.raises(UnknownAttributeError, match="'height'"):
            people.Person.get_or_create(name="Eve", defaults={"height": 2})
        with pytest.raises(TypeError):
            people.Person.get_or_create()


def test_get_or_create_race_between_100_threads(people: SimpleNamespace, other_connection: Any) -> None:
    """100 sessions racing to create one key: every call succeeds, one row exists, one call created it."""
    Person = people.Person
    barrier = threading.Barrier(100)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            with db_session:
                obj, created = Person.get_or_create(name="Zoe", defaults={"age": 7})
                results.append((obj.id, created))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 100
    assert sum(created for _, created in results) == 1
    assert len({pk for pk, _ in results}) == 1
    assert [r for r in ages(other_connection) if r[0] == "Zoe"] == [("Zoe", 7)]


def test_get_or_create_keeps_the_session_usable_after_losing(people: SimpleNamespace, other_connection: Any) -> None:
    """A lost race (the row appears between the read and the INSERT) returns the stored row; earlier work stays."""
    Person = people.Person
    with db_session:
        Person.get(name="Ann").age = 21
        real_get = Person._get_steps_.__func__
        calls = []

        def get_missing_once(cls: Any, conditions: Any, values: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                other_connection.execute("INSERT INTO person (name, age) VALUES ('Eve', 3)")
                return None
                yield  # a generator like the real one
            return (yield from real_get(cls, conditions, values))

        Person._get_steps_ = classmethod(get_missing_once)
        try:
            eve, created = Person.get_or_create(name="Eve", defaults={"age": 8})
        finally:
            del Person._get_steps_
        assert (eve.age, created) == (3, False)
    assert ("Ann", 21) in ages(other_connection) and ("Eve", 3) in ages(other_connection)


def test_aget_or_create(adb: AsyncDatabase) -> None:
    """``await Entity.aget_or_create()`` in an async session."""
    model = define(adb)
    adb.generate_mapping(create_tables=True)

    async def main() -> None:
        async with db_session:
            first = await model.Person.aget_or_create(name="Ann", defaults={"age": 1})
            again = await model.Person.aget_or_create(name="Ann")
            assert first[1] and not again[1] and first[0] is again[0]

    asyncio.run(main())


# -- query.update ----------------------------------------------------------------------------------


def test_update_is_one_statement_and_returns_the_count(people: SimpleNamespace, other_connection: Any) -> None:
    """update() with an expression updates matching rows in one UPDATE and returns the row count."""
    Person = people.Person
    with db_session:
        ann = Person.get(name="Ann")
        assert ann.age == 20
        assert Person.select(Person.city == "Oslo").update(age=Person.age + 1, city="Bergen") == 2
        assert (ann.age, ann.city) == (21, "Bergen")  # objects in the session show the new values
        assert Person.select(lambda p: p.age > 100).update(age=0) == 0
    assert ages(other_connection) == [("Ann", 21), ("Bob", 31), ("Cid", 40)]


def test_update_flushes_pending_changes_first(people: SimpleNamespace, other_connection: Any) -> None:
    """A pending change is flushed before the UPDATE, which then sees it."""
    Person = people.Person
    with db_session:
        Person.get(name="Cid").city = "Oslo"
        assert Person.select(city="Oslo").update(age=Person.age * 2) == 3
    assert ages(other_connection) == [("Ann", 40), ("Bob", 60), ("Cid", 80)]


def test_update_is_undone_by_rollback_and_savepoint(people: SimpleNamespace, other_connection: Any) -> None:
    """Objects changed by update() get their values back when a savepoint or the session rolls back."""
    Person = people.Person
    with db_session:
        ann = Person.get(name="Ann")
        with pytest.raises(ValueError):
            with savepoint():
                Person.select().update(age=1)
                assert ann.age == 1
                raise ValueError
        assert ann.age == 20
        Person.select().update(age=2)
        rollback()
    assert ages(other_connection) == [("Ann", 20), ("Bob", 30), ("Cid", 40)]


def test_update_refuses_bad_values(people: SimpleNamespace) -> None:
    """Unknown attributes, the primary key, bad values, limits and readonly sessions are refused."""
    Person = people.Person
    with db_session:
        with pytest.raises(UnknownAttributeError, match="'height'"):
            Person.select().update(height=1)
        with pytest.raises(ReadOnlyAttributeError, match="Person.id"):
            Person.select().update(id=5)
        with pytest.raises(QueryError):
            Person.select().limit(1).update(age=1)
        with pytest.raises(QueryError):
            Person.select().update()
        with pytest.raises(QueryError):
            Person.select().update(age=Person.age + "x")
    with db_session(readonly=True):
        with pytest.raises(ReadOnlySessionError):
            Person.select().update(age=1)


def test_aupdate(adb: AsyncDatabase) -> None:
    """``await query.aupdate()`` in an async session."""
    model = define(adb)
    adb.generate_mapping(create_tables=True)

    async def main() -> None:
        async with db_session:
            model.Person(name="Ann", age=1)
        async with db_session:
            ann = await model.Person.aget(name="Ann")
            assert await model.Person.select().aupdate(age=model.Person.age + 10) == 1
            assert ann.age == 11

    asyncio.run(main())


# -- refresh and get_for_update ---------------------------------------------------------------------


def test_refresh_reloads_and_resets_the_snapshot(people: SimpleNamespace, other_connection: Any) -> None:
    """refresh() shows a change made elsewhere; a later read and update are not refused for it."""
    Person = people.Person
    with db_session:
        ann = Person.get(name="Ann")
        assert ann.age == 20
        other_connection.execute("UPDATE person SET age = 25 WHERE name = 'Ann'")
        ann.refresh()
        assert ann.age == 25
        assert Person.get(name="Ann") is ann  # re-reading is not an unrepeatable read
        ann.age = 26
    assert ages(other_connection)[0] == ("Ann", 26)


def test_get_for_update_of_a_loaded_row_reloads_it(people: SimpleNamespace, other_connection: Any) -> None:
    """Read, then lock: the row changed in between is reloaded instead of UnrepeatableReadError."""
    Person = people.Person
    with db_session:
        ann = Person.get(name="Ann")
        assert ann.age == 20
        other_connection.execute("UPDATE person SET age = 22 WHERE name = 'Ann'")
        with pytest.raises(UnrepeatableReadError):
            Person.get(name="Ann")
        assert Person.get_for_update(name="Ann") is ann
        assert ann.age == 22
        ann.age += 1
    assert ages(other_connection)[0] == ("Ann", 23)


def test_arefresh(adb: AsyncDatabase) -> None:
    """``await obj.arefresh()`` in an async session."""
    model = define(adb)
    adb.generate_mapping(create_tables=True)

    async def main() -> None:
        async with db_session:
            model.Person(name="Ann", age=1)
        async with db_session:
            ann = await model.Person.aget(name="Ann")
            await adb.aexecute("UPDATE person SET age = 9")
            await ann.arefresh()
            assert ann.age == 9

    asyncio.run(main())


# -- yield_per ---------------------------------------------------------------------------------------


def test_yield_per_streams_every_row_and_changes_are_flushed(people: SimpleNamespace, other_connection: Any) -> None:
    """yield_per() gives every matching object once, in order; objects it yields can be changed."""
    Person = people.Person
    with db_session:
        names = []
        for person in Person.select().order_by(Person.id).yield_per(2):
            names.append(person.name)
            person.age += 1
        assert names == ["Ann", "Bob", "Cid"]
    assert ages(other_connection) == [("Ann", 21), ("Bob", 31), ("Cid", 41)]


def test_yield_per_releases_unreferenced_objects(people: SimpleNamespace) -> None:
    """Objects of finished batches leave the session unless referenced or changed."""
    Person = people.Person
    with db_session as session:
        kept = []
        for person in Person.select().order_by(Person.id).yield_per(1):
            if person.name == "Ann":
                kept.append(person)
        imap = session.maps[Person]
        assert kept[0] in imap.values()
        assert all(p.name != "Bob" for p in imap.values())
        assert Person.get(name="Ann") is kept[0]


def test_yield_per_stopped_early_closes_the_cursor(people: SimpleNamespace) -> None:
    """Breaking out of a yield_per loop leaves the session usable."""
    Person = people.Person
    with db_session:
        for person in Person.select().yield_per(1):
            break
        assert Person.select().count() == 3
        Person.get(name="Ann").age = 1


def test_yield_per_refuses_bad_sizes(people: SimpleNamespace) -> None:
    """A batch size that is not a positive int raises QueryError."""
    with db_session:
        for size in (0, -1, 1.5, "2"):
            with pytest.raises(QueryError):
                people.Person.select().yield_per(size)  # type: ignore[arg-type]


def test_async_yield_per(adb: AsyncDatabase) -> None:
    """``async for obj in query.yield_per(n)``."""
    model = define(adb)
    adb.generate_mapping(create_tables=True)

    async def main() -> None:
        async with db_session:
            for i in range(7):
                model.Person(name=f"P{i}", age=i)
        async with db_session:
            seen = [p.age async for p in model.Person.select().order_by(model.Person.id).yield_per(3)]
            assert seen == list(range(7))

    asyncio.run(main())


@pytest.mark.sqlite_only
def test_yield_per_memory_over_a_million_rows(db: Database, db_path: str) -> None:
    """Streaming 1,000,000 narrow rows peaks (tracemalloc) far below loading a tenth of them at once."""

    class Reading(db.Entity):
        _table_ = "reading"
        id = PrimaryKey(int)
        value = Required(int)

    db.generate_mapping(create_tables=True)
    rows = 1_000_000
    conn = sqlite3.connect(db_path)
    conn.executemany("INSERT INTO reading VALUES (?, ?)", ((i, i % 7) for i in range(1, rows + 1)))
    conn.commit()
    conn.close()

    def peak(work: Any) -> tuple[Any, int]:
        gc.collect()
        tracemalloc.start()
        try:
            result = work()
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    with db_session:
        total, full_peak = peak(lambda: sum(r.value for r in Reading.select()[: rows // 10]))
    assert total == sum(i % 7 for i in range(1, rows // 10 + 1))
    with db_session:
        total, stream_peak = peak(lambda: sum(r.value for r in Reading.select().yield_per(1000)))
    assert total == sum(i % 7 for i in range(1, rows + 1))
    # a full load of all rows would peak about ten times full_peak
    assert stream_peak * 5 < full_peak, (stream_peak, full_peak)


def test_yield_per_after_session_end_raises(people: SimpleNamespace) -> None:
    """Objects streamed keep their values after the session; loading through them raises."""
    with db_session:
        last = None
        for last in people.Person.select().yield_per(2):
            pass
    assert last is not None and last.name == "Cid"
    with pytest.raises(DatabaseSessionIsOver):
        last.age = 1


def test_update_with_a_new_related_object(db: Database, other_connection: Any) -> None:
    """update(ref=new_object) flushes the new object first and stores its key."""

    class Team(db.Entity):
        _table_ = "team"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        members = Set("Member")

    class Member(db.Entity):
        _table_ = "member"
        id = PrimaryKey(int, auto=True)
        team = Optional(Team)

    db.generate_mapping(create_tables=True)
    with db_session:
        Member()
        Member()
    with db_session:
        team = Team(name="New")
        assert list(team.members) == []
        assert Member.select().update(team=team) == 2
        assert {m.team for m in Member.select()} == {team}
        assert len(team.members) == 2
    assert [r[0] for r in other_connection.execute("SELECT team FROM member").fetchall()] == [1, 1]
