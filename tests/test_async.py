"""AsyncDatabase: async sessions, task isolation, the awaitable twins and AsyncRequired (issue #7).

Every test runs on conftest's ``adb``: an AsyncDatabase (aiosqlite) on a fresh SQLite file,
or (psycopg async) on a fresh PostgreSQL schema when ``NEXTORM_TEST_POSTGRES`` is set. The
module runs once per hot path (CI sets ``NEXTORM_NO_EXTENSIONS=1`` for the second run).
Event loops are started with ``asyncio.run`` from plain test functions.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import nextorm
from nextorm import (
    AsyncDatabase,
    AsyncRequired,
    CommitException,
    Database,
    DatabaseSessionIsOver,
    MultipleObjectsFoundError,
    Optional,
    PartialCommitException,
    PrimaryKey,
    Required,
    Set,
    TransactionError,
    TransactionIntegrityError,
    acommit,
    aflush,
    arollback,
    commit,
    db_session,
    flush,
    rollback,
)

NO_SESSION = "db_session is required when working with the database"


def run(main: Coroutine[Any, Any, Any], *databases: AsyncDatabase) -> Any:
    """``asyncio.run(main)``, then close the connections ``databases`` pooled on that event loop."""

    async def wrapper() -> Any:
        try:
            return await main
        finally:
            for database in databases:
                await database.adisconnect()

    return asyncio.run(wrapper())


def declare(database: Database) -> SimpleNamespace:
    """Map Person, Author (books, profile), Book (lazy text, tags), Profile and Tag onto ``database``."""

    class Person(database.Entity):
        _table_ = "person"
        id = PrimaryKey(int, auto=True)
        name = Required(str, max_len=100)
        email = Optional(str, unique=True)
        age = Required(int, default=0)

    class Author(database.Entity):
        _table_ = "author"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        books = Set("Book")
        profile = Optional("Profile")

    class Book(database.Entity):
        _table_ = "book"
        id = PrimaryKey(int, auto=True)
        title = Required(str)
        text = Optional(str, lazy=True)
        author = Required(Author)
        tags = Set("Tag")

    class Profile(database.Entity):
        _table_ = "profile"
        id = PrimaryKey(int, auto=True)
        bio = Required(str)
        author = Required(Author)

    class Tag(database.Entity):
        _table_ = "tag"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        books = Set(Book)

    database.generate_mapping(create_tables=True)
    return SimpleNamespace(db=database, Person=Person, Author=Author, Book=Book, Profile=Profile, Tag=Tag)


async def fill(m: SimpleNamespace) -> None:
    """Persons Ann, Bob, Cid; Ursula (Earthsea with text and tag 'fantasy', Lathe, a profile); Iain (Excession)."""
    async with db_session:
        for name, age in (("Ann", 30), ("Bob", 40), ("Cid", 50)):
            m.Person(name=name, age=age, email=f"{name.lower()}@example.com")
        ursula = m.Author(name="Ursula")
        iain = m.Author(name="Iain")
        fantasy = m.Tag(name="fantasy")
        m.Book(title="Earthsea", text="A wizard of Gont", author=ursula, tags=[fantasy])
        m.Book(title="Lathe", author=ursula)
        m.Book(title="Excession", author=iain)
        m.Profile(bio="Oregon", author=ursula)


@pytest.fixture
def m(adb: AsyncDatabase) -> SimpleNamespace:
    """The entities of ``declare`` mapped onto ``adb`` and filled by ``fill``."""
    models = declare(adb)
    run(fill(models), adb)
    return models


def names(conn: Any, sql: str = "SELECT name FROM person ORDER BY id") -> list[Any]:
    """What another client sees: the first column of every row of ``sql``."""
    return [row[0] for row in conn.execute(sql).fetchall()]


def refusal(call: Callable[[], Any]) -> str:
    """What ``call()`` raised as ``ClassName: message`` ("nothing raised" when it returned).

    Tests of refused calls compare this text rather than keep the exception: the traceback of a
    wrong one holds the abandoned step generators, which must be finalized inside the test.
    """
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "nothing raised"


# -- async with db_session, @db_session on coroutines -----------------------------------------------


def test_async_with_db_session_commits_at_exit(m: SimpleNamespace, other_connection: Any) -> None:
    """``async with db_session:`` sends the INSERT at aflush() and commits it at exit."""

    async def main() -> None:
        async with db_session:
            dan = m.Person(name="Dan")
            await aflush()
            assert dan.id == 4
            assert "Dan" not in names(other_connection)
        assert names(other_connection) == ["Ann", "Bob", "Cid", "Dan"]

    run(main(), m.db)


def test_async_with_db_session_rolls_back_on_exception(m: SimpleNamespace, other_connection: Any) -> None:
    """An exception leaving ``async with db_session:`` rolls back what the session flushed."""

    async def main() -> None:
        async with db_session:
            m.Person(name="Dan")
            await aflush()
            raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        run(main(), m.db)
    assert names(other_connection) == ["Ann", "Bob", "Cid"]


def test_async_with_configured_db_session_commits_on_allowed_exception(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """``async with db_session(allowed_exceptions=[...])`` commits when an allowed exception leaves it."""

    async def main() -> None:
        async with db_session(allowed_exceptions=[KeyError]):
            m.Person(name="Dan")
            await aflush()
            raise KeyError("allowed")

    with pytest.raises(KeyError):
        run(main(), m.db)
    assert names(other_connection) == ["Ann", "Bob", "Cid", "Dan"]


def test_async_with_strict_db_session_forbids_reads_after_exit(m: SimpleNamespace) -> None:
    """``async with db_session(strict=True)`` applies its option: loaded values are unreadable after exit."""

    async def main() -> Any:
        async with db_session(strict=True):
            ann = await m.Person.aget(name="Ann")
            assert ann.age == 30
        return ann

    ann = run(main(), m.db)
    with pytest.raises(DatabaseSessionIsOver, match=re.escape("Cannot read value of Person[1].age")):
        ann.age  # noqa: B018


def test_async_with_db_session_sql_debug_logs_only_its_own_statements(
    m: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    """``async with db_session(sql_debug=True)`` logs the statements of that session and of no later one."""
    caplog.set_level(logging.INFO, logger="nextorm.sql")

    async def main() -> None:
        async with db_session(sql_debug=True, show_values=True):
            await m.Person.aget(name="Ann")
        async with db_session:
            await m.Person.aget(name="Bob")

    run(main(), m.db)
    logged = [record.getMessage() for record in caplog.records if record.name == "nextorm.sql"]
    assert len(logged) == 1 and logged[0].startswith("SELECT") and "Ann" in logged[0], logged


def test_decorated_coroutine_returns_its_value_and_commits(m: SimpleNamespace, other_connection: Any) -> None:
    """``@db_session async def`` returns the coroutine's value and commits when it finishes."""

    @db_session
    async def create(name: str) -> int:
        person = m.Person(name=name)
        await aflush()
        return person.id * 10

    assert run(create("Dan"), m.db) == 40
    assert names(other_connection) == ["Ann", "Bob", "Cid", "Dan"]


class Conflict(TransactionError):
    """A retryable failure raised by the tests themselves."""


def test_decorated_coroutine_retry_reruns_the_whole_coroutine(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """``@db_session(retry=2)`` re-runs a failing coroutine in a fresh session; failed attempts leave nothing."""
    attempts: list[int] = []

    @db_session(retry=2)
    async def create() -> str:
        attempts.append(len(attempts) + 1)
        person = m.Person(name=f"try{len(attempts)}")
        await aflush()
        if len(attempts) < 3:
            raise Conflict("again")
        return person.name

    assert run(create(), m.db) == "try3"
    assert attempts == [1, 2, 3]
    assert names(other_connection) == ["Ann", "Bob", "Cid", "try3"]


def test_decorated_coroutine_retry_covers_a_failure_at_commit(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """A unique clash found by the flush at commit is retried by ``retry`` like any failure in the coroutine."""
    attempts: list[str] = []

    @db_session(retry=1, retry_exceptions=[TransactionIntegrityError])
    async def create() -> None:
        email = "ann@example.com" if not attempts else "dan@example.com"
        attempts.append(email)
        m.Person(name="Dan", email=email)

    run(create(), m.db)
    assert attempts == ["ann@example.com", "dan@example.com"]
    assert names(other_connection, "SELECT email FROM person WHERE name = 'Dan'") == ["dan@example.com"]


def test_decorated_coroutine_without_retry_raises_the_failure(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """Without ``retry`` a failing decorated coroutine raises once and its session is rolled back."""
    calls: list[int] = []

    @db_session
    async def create() -> None:
        calls.append(1)
        m.Person(name="Dan")
        await aflush()
        raise Conflict("once")

    with pytest.raises(Conflict):
        run(create(), m.db)
    assert calls == [1]
    assert names(other_connection) == ["Ann", "Bob", "Cid"]


def test_nested_decorated_coroutines_share_the_outer_session(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """A decorated coroutine awaited by another one uses the outer session: same objects, one commit at the end."""

    @db_session
    async def inner() -> Any:
        m.Person(name="Dan")
        await aflush()
        return await m.Person.aget(name="Ann")

    @db_session
    async def outer() -> bool:
        ann = await m.Person.aget(name="Ann")
        same = (await inner()) is ann
        assert "Dan" not in names(other_connection)
        return same

    assert run(outer(), m.db) is True
    assert names(other_connection) == ["Ann", "Bob", "Cid", "Dan"]


def test_nested_async_with_commits_only_at_the_outermost_exit(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """An inner ``async with db_session`` joins the outer one; only the outer exit commits."""

    async def main() -> None:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            async with db_session:
                assert m.Person[ann.id] is ann
                m.Person(name="Dan")
            await aflush()
            assert "Dan" not in names(other_connection)
        assert "Dan" in names(other_connection)

    run(main(), m.db)


# -- task and thread isolation ---------------------------------------------------------------------


def test_hundred_concurrent_tasks_each_see_only_their_own_objects(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """100 tasks on one loop insert and read back their rows in sessions of their own, with no shared object."""
    # At most 20 sessions are open at once: PostgreSQL allows 100 connections by default, and
    # SQLite writers waiting for the write lock poll it in their busy handler (5 s timeout).
    gate = asyncio.Semaphore(20)

    async def worker(i: int) -> tuple[list[Any], list[Any], list[Any]]:
        async with gate, db_session:
            made = [m.Person(name=f"t{i}-{j}", age=i) for j in range(3)]
            await aflush()
            await asyncio.sleep(0)
            found = await m.Person.select(m.Person.name.startswith(f"t{i}-")).order_by(m.Person.id).afetch()
            everyone = await m.Person.select().afetch()
            return made, found, everyone

    async def main() -> list[tuple[list[Any], list[Any], list[Any]]]:
        return await asyncio.gather(*(worker(i) for i in range(100)))

    results = run(main(), m.db)
    owner_of: dict[int, int] = {}
    for i, (made, found, everyone) in enumerate(results):
        assert [p.name for p in found] == [f"t{i}-{j}" for j in range(3)]
        assert all(a is b for a, b in zip(found, made, strict=True))
        mine = [p for p in everyone if p.name.startswith(f"t{i}-")]
        assert len(mine) == 3 and all(a is b for a, b in zip(mine, made, strict=True))
        for obj in everyone:
            assert owner_of.setdefault(id(obj), i) == i, (
                f"{obj!r} is shared by tasks {owner_of[id(obj)]} and {i}"
            )
    assert len(names(other_connection)) == 3 + 300
    rows = other_connection.execute("SELECT name, age FROM person WHERE name LIKE 't%'").fetchall()
    assert all(name.startswith(f"t{age}-") for name, age in rows)


def test_task_created_inside_a_session_gets_a_session_of_its_own(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """A task created with create_task inside a session has its own identity map, transaction and commit."""

    async def child() -> Any:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            ann.age = 31
            m.Person(name="Child")
            return ann

    async def parent() -> None:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            theirs = await asyncio.create_task(child())
            assert theirs is not ann
            assert m.Person[ann.id] is ann
            assert ann.age == 30
            assert names(other_connection) == ["Ann", "Bob", "Cid", "Child"]
            child_row = await m.Person.aget(name="Child")
            assert child_row is not None and child_row.name == "Child"

    run(parent(), m.db)


def test_task_created_inside_a_session_cannot_use_the_parent_session(m: SimpleNamespace) -> None:
    """A task created inside a session, without a db_session of its own, has no session: TransactionError."""

    async def child() -> None:
        with pytest.raises(TransactionError, match=re.escape(NO_SESSION)):
            await m.Person.aget(name="Ann")
        with pytest.raises(TransactionError, match=re.escape(NO_SESSION)):
            await m.Person.select().acount()
        with pytest.raises(TransactionError, match=re.escape(NO_SESSION)):
            m.Person[1]
        with pytest.raises(TransactionError, match=re.escape(NO_SESSION)):
            m.Person(name="Stray")

    async def parent() -> None:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            assert m.Person[ann.id] is ann
            await asyncio.create_task(child())
            assert await m.Person.aexists(name="Stray") is False

    run(parent(), m.db)


def test_object_of_the_parent_session_cannot_be_changed_in_a_child_task(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """A child task cannot write an object of its parent's session: inside its own session or without one."""

    async def child(ann: Any) -> list[str]:
        refused = []
        try:
            ann.age = 99
        except TransactionError as exc:
            refused.append(str(exc))
        async with db_session:
            try:
                ann.age = 98
            except TransactionError as exc:
                refused.append(str(exc))
        return refused

    async def parent() -> None:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            refused = await asyncio.create_task(child(ann))
            assert len(refused) == 2 and all("Person[1]" in message for message in refused), refused
            assert ann.age == 30

    run(parent(), m.db)
    assert names(other_connection, "SELECT age FROM person WHERE name = 'Ann'") == [30]


def test_threads_running_their_own_event_loops_are_isolated(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """Four threads, each running a loop of five tasks, insert and read back their rows in their own sessions."""
    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []

    async def task(t: int, i: int) -> list[Any]:
        async with db_session:
            made = [m.Person(name=f"th{t}-{i}-{j}") for j in range(2)]
            await aflush()
            await asyncio.sleep(0)
            found = (
                await m.Person.select(m.Person.name.startswith(f"th{t}-{i}-")).order_by(m.Person.id).afetch()
            )
            assert all(a is b for a, b in zip(found, made, strict=True)) and len(found) == 2
            return found

    async def loop_main(t: int) -> list[Any]:
        batches = await asyncio.gather(*(task(t, i) for i in range(5)))
        return [obj for batch in batches for obj in batch]

    def thread_main(t: int) -> None:
        try:
            results[t] = run(loop_main(t), m.db)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=thread_main, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(results) == [0, 1, 2, 3]
    assert len({id(obj) for objects in results.values() for obj in objects}) == 40
    assert len(names(other_connection, "SELECT name FROM person WHERE name LIKE 'th%'")) == 40


# -- one declaration, both kinds of Database ------------------------------------------------------


def test_the_same_declarations_map_onto_database_and_async_database(db: Database, adb: AsyncDatabase) -> None:
    """One declaring function maps onto a Database and an AsyncDatabase of the same storage; they share rows."""
    sync, aio = declare(db), declare(adb)
    with db_session:
        ursula = sync.Author(name="Ursula")
        sync.Book(title="Earthsea", text="A wizard", author=ursula)

    async def main() -> tuple[str, str, list[str]]:
        async with db_session:
            book = await aio.Book.aget(title="Earthsea")
            author = await book.awaitable_attrs.author
            aio.Book(title="Lathe", author=author)
            return (
                await book.awaitable_attrs.text,
                author.name,
                [b.title for b in await author.awaitable_attrs.books],
            )

    assert run(main(), adb) == ("A wizard", "Ursula", ["Earthsea", "Lathe"])
    with db_session:
        assert sorted(b.title for b in sync.Author.get(name="Ursula").books) == ["Earthsea", "Lathe"]


def test_acreate_tables_and_acheck_tables_are_awaitable(adb: AsyncDatabase) -> None:
    """``await adb.acreate_tables()`` creates the mapped tables; ``acheck_tables()`` then finds them."""

    class Note(adb.Entity):
        _table_ = "note"
        id = PrimaryKey(int, auto=True)
        text = Required(str)

    adb.generate_mapping(create_tables=False, check_tables=False)

    async def main() -> list[str]:
        await adb.acreate_tables()
        await adb.acheck_tables()
        async with db_session:
            Note(text="hello")
        async with db_session:
            return [n.text for n in await Note.select().afetch()]

    assert run(main(), adb) == ["hello"]


# -- the awaitable twins ------------------------------------------------------------------------------


def test_aget_finds_one_object_through_the_identity_map(m: SimpleNamespace) -> None:
    """``aget`` returns the object (None when absent, MultipleObjectsFoundError when several); ``Entity[pk]`` hits."""

    async def main() -> None:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            assert (ann.name, ann.age, ann.email) == ("Ann", 30, "ann@example.com")
            assert await m.Person.aget(id=ann.id) is ann
            assert m.Person[ann.id] is ann
            assert await m.Person.aget(name="Nobody") is None
            with pytest.raises(MultipleObjectsFoundError):
                await m.Person.aget(m.Person.age > 0)
            assert await m.Person.select(m.Person.age == 40).aget() is await m.Person.aget(name="Bob")

    run(main(), m.db)


def test_query_twins_afetch_afirst_acount_aexists_and_async_for(m: SimpleNamespace) -> None:
    """The query twins return what their blocking names return on a Database."""

    async def main() -> None:
        async with db_session:
            Person = m.Person
            adults = Person.select(Person.age >= 40).order_by(Person.age)
            assert [p.name for p in await adults.afetch()] == ["Bob", "Cid"]
            assert (await adults.afirst()).name == "Bob"
            assert await adults.acount() == 2
            assert await adults.aexists() is True
            assert await Person.select(Person.age > 99).aexists() is False
            assert await Person.select(Person.age > 99).afirst() is None
            assert await Person.aexists(name="Cid") is True
            assert await Person.aexists(name="Nobody") is False
            assert [p.name async for p in Person.select().order_by(Person.id)] == ["Ann", "Bob", "Cid"]
            fetched = await adults.afetch()
            assert all(a is b for a, b in zip([p async for p in adults], fetched, strict=True))

    run(main(), m.db)


def test_aselect_by_sql_and_aget_by_sql_return_session_objects(m: SimpleNamespace) -> None:
    """Raw SELECTs through the twins give identity-mapped objects; ``$name`` reads the caller's variable."""

    async def main() -> None:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            least = 40  # noqa: F841 - read by the SQL text
            found = await m.Person.aselect_by_sql("SELECT * FROM person WHERE age >= $least ORDER BY age")
            assert [p.name for p in found] == ["Bob", "Cid"]
            assert (
                await m.Person.aget_by_sql("SELECT * FROM person WHERE name = $name", {"name": "Ann"}) is ann
            )

    run(main(), m.db)


def test_aget_for_update_locks_until_the_session_ends(
    m: SimpleNamespace, db_kind: str, db_path: str, other_connection: Any
) -> None:
    """``aget_for_update`` returns the object and holds its lock (the row, or SQLite's database) until exit."""

    def locked() -> bool:
        if db_kind == "postgres":
            import psycopg

            try:
                other_connection.execute("SELECT id FROM person WHERE name = 'Ann' FOR UPDATE NOWAIT")
            except psycopg.errors.LockNotAvailable:
                return True
            return False
        conn = sqlite3.connect(db_path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return True
        finally:
            conn.close()
        return False

    async def main() -> None:
        async with db_session:
            ann = await m.Person.aget_for_update(name="Ann")
            assert ann.name == "Ann"
            assert locked()
            ann.age = 31
        assert not locked()

    assert not locked()
    run(main(), m.db)
    assert names(other_connection, "SELECT age FROM person WHERE name = 'Ann'") == [31]


def test_aflush_sends_changes_that_acommit_makes_visible(m: SimpleNamespace, other_connection: Any) -> None:
    """``aflush`` sends pending changes inside the transaction; ``acommit`` commits and objects stay usable."""

    async def main() -> None:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            ann.age = 31
            dan = m.Person(name="Dan")
            await aflush()
            assert await m.Person.select(m.Person.age == 31).acount() == 1
            assert names(other_connection, "SELECT age FROM person WHERE name = 'Ann'") == [30]
            await acommit()
            assert names(other_connection, "SELECT age FROM person WHERE name = 'Ann'") == [31]
            assert "Dan" in names(other_connection)
            dan.age = 5
            await acommit()
            assert names(other_connection, "SELECT age FROM person WHERE name = 'Dan'") == [5]

    run(main(), m.db)


def test_arollback_discards_changes_and_detaches_objects(m: SimpleNamespace, other_connection: Any) -> None:
    """``arollback`` undoes flushed changes; the session's objects are detached, the session goes on."""

    async def main() -> None:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            ann.age = 31
            m.Person(name="Dan")
            await aflush()
            await arollback()
            assert ann.age == 30  # the flushed value went with the transaction
            with pytest.raises(DatabaseSessionIsOver):
                ann.age = 32
            again = await m.Person.aget(name="Ann")
            assert again is not ann and again.age == 30
            assert await m.Person.aget(name="Dan") is None

    run(main(), m.db)
    assert names(other_connection) == ["Ann", "Bob", "Cid"]


def test_obj_aflush_sends_only_that_object(m: SimpleNamespace, sql_log: Any) -> None:
    """``await obj.aflush()`` sends this object's INSERT and leaves the other pending ones queued."""

    async def main() -> None:
        async with db_session:
            dan = m.Person(name="Dan")
            m.Person(name="Eve")
            sql_log.clear()
            await dan.aflush()
            assert dan.id == 4
            assert len([s for s in sql_log.statements if "INSERT" in s]) == 1
            sql_log.clear()
            await aflush()
            assert len([s for s in sql_log.statements if "INSERT" in s]) == 1

    run(main(), m.db)


def test_adelete_loads_what_cascades_and_deletes(m: SimpleNamespace, other_connection: Any) -> None:
    """``await obj.adelete()`` loads the collections a delete cascades to; the rows go at commit."""

    async def main() -> None:
        async with db_session:
            iain = await m.Author.aget(name="Iain")
            await iain.adelete()
            assert await m.Book.aget(title="Excession") is None

    run(main(), m.db)
    assert names(other_connection, "SELECT name FROM author ORDER BY id") == ["Ursula"]
    assert names(other_connection, "SELECT title FROM book ORDER BY id") == ["Earthsea", "Lathe"]


def test_aload_loads_lazy_columns(m: SimpleNamespace) -> None:
    """``await obj.aload()`` loads every unloaded column, lazy ones included."""

    async def main() -> str:
        async with db_session:
            book = await m.Book.aget(title="Earthsea")
            await book.aload()
            return book.text

    assert run(main(), m.db) == "A wizard of Gont"


# -- awaitable_attrs and prefetch -------------------------------------------------------------------------


def test_awaitable_attrs_loads_a_lazy_column(m: SimpleNamespace) -> None:
    """``await obj.awaitable_attrs.text`` loads a lazy column; plain access works afterwards."""

    async def main() -> None:
        async with db_session:
            book = await m.Book.aget(title="Earthsea")
            with pytest.raises(AsyncRequired):
                book.text  # noqa: B018
            assert await book.awaitable_attrs.text == "A wizard of Gont"
            assert book.text == "A wizard of Gont"
            assert await book.awaitable_attrs.title == "Earthsea"

    run(main(), m.db)


def test_awaitable_attrs_loads_a_reference(m: SimpleNamespace) -> None:
    """``await book.awaitable_attrs.author`` gives the loaded author, the session's only object for its row."""

    async def main() -> None:
        async with db_session:
            book = await m.Book.aget(title="Earthsea")
            author = await book.awaitable_attrs.author
            assert author.name == "Ursula"
            assert book.author is author
            assert await m.Author.aget(name="Ursula") is author

    run(main(), m.db)


def test_awaitable_attrs_loads_both_sides_of_a_one_to_one(m: SimpleNamespace) -> None:
    """Both sides of a one-to-one load through awaitable_attrs: the key side and the key-less side."""

    async def main() -> None:
        async with db_session:
            ursula = await m.Author.aget(name="Ursula")
            profile = await ursula.awaitable_attrs.profile
            assert profile.bio == "Oregon"
            assert ursula.profile is profile
            assert await profile.awaitable_attrs.author is ursula
            iain = await m.Author.aget(name="Iain")
            assert await iain.awaitable_attrs.profile is None
        async with db_session:
            profile = await m.Profile.aget(bio="Oregon")
            assert (await profile.awaitable_attrs.author).name == "Ursula"

    run(main(), m.db)


def test_awaitable_attrs_loads_collections(m: SimpleNamespace) -> None:
    """One-to-many and many-to-many collections load through awaitable_attrs; then they are plain sets."""

    async def main() -> None:
        async with db_session:
            ursula = await m.Author.aget(name="Ursula")
            books = await ursula.awaitable_attrs.books
            assert sorted(b.title for b in books) == ["Earthsea", "Lathe"]
            assert len(ursula.books) == 2
            earthsea = await m.Book.aget(title="Earthsea")
            assert earthsea in ursula.books
            assert [t.name for t in await earthsea.awaitable_attrs.tags] == ["fantasy"]
            fantasy = await m.Tag.aget(name="fantasy")
            assert list(await fantasy.awaitable_attrs.books) == [earthsea]

    run(main(), m.db)


def test_awaitable_attrs_names_an_unknown_attribute(m: SimpleNamespace) -> None:
    """``obj.awaitable_attrs.nope`` raises AttributeError naming the entity and the attribute."""

    async def main() -> None:
        async with db_session:
            book = await m.Book.aget(title="Earthsea")
            with pytest.raises(AttributeError, match="Book has no attribute 'nope'"):
                book.awaitable_attrs.nope  # noqa: B018

    run(main(), m.db)


def test_prefetch_loads_relations_with_one_query_each(m: SimpleNamespace, sql_log: Any) -> None:
    """``await q.prefetch(...).afetch()`` runs one SELECT per relation; the relations then read without IO."""

    async def main() -> None:
        async with db_session:
            sql_log.clear()
            authors = await (
                m.Author.select()
                .order_by(m.Author.id)
                .prefetch(m.Author.books, m.Book.tags, m.Author.profile)
                .afetch()
            )
            assert [s.split()[0] for s in sql_log.statements] == ["SELECT"] * 4
            sql_log.clear()
            assert [sorted(b.title for b in a.books) for a in authors] == [
                ["Earthsea", "Lathe"],
                ["Excession"],
            ]
            assert [a.profile.bio if a.profile else None for a in authors] == ["Oregon", None]
            tags = {b.title: [t.name for t in b.tags] for a in authors for b in a.books}
            assert tags == {"Earthsea": ["fantasy"], "Lathe": [], "Excession": []}
            assert sql_log.statements == []

    run(main(), m.db)


def test_prefetch_of_references_with_one_query(m: SimpleNamespace, sql_log: Any) -> None:
    """``Book.select().prefetch(Book.author)`` loads every author with one SELECT."""

    async def main() -> None:
        async with db_session:
            sql_log.clear()
            books = await m.Book.select().order_by(m.Book.id).prefetch(m.Book.author).afetch()
            assert [s.split()[0] for s in sql_log.statements] == ["SELECT", "SELECT"]
            assert [b.author.name for b in books] == ["Ursula", "Ursula", "Iain"]
            assert len(sql_log.statements) == 2

    run(main(), m.db)


# -- AsyncRequired ----------------------------------------------------------------------------------------

SYNC_CALLS: list[tuple[str, Callable[[SimpleNamespace, SimpleNamespace], Any], str]] = [
    ("pk-miss", lambda m, o: m.Person[999], "await Person.aget(id=...)"),
    ("entity-get", lambda m, o: m.Person.get(name="Ann"), "await Person.aget(...)"),
    ("entity-exists", lambda m, o: m.Person.exists(name="Ann"), "await Person.aexists(...)"),
    ("get-for-update", lambda m, o: m.Person.get_for_update(name="Ann"), "await Person.aget_for_update(...)"),
    (
        "select-by-sql",
        lambda m, o: m.Person.select_by_sql("SELECT * FROM person"),
        "await Person.aselect_by_sql(...)",
    ),
    ("get-by-sql", lambda m, o: m.Person.get_by_sql("SELECT * FROM person"), "await Person.aget_by_sql(...)"),
    ("count", lambda m, o: m.Person.select().count(), "await Person.select(...).acount()"),
    ("iteration", lambda m, o: list(m.Person.select()), "await Person.select(...).afetch()"),
    ("len", lambda m, o: len(m.Person.select()), "await Person.select(...).afetch()"),
    ("fetch", lambda m, o: m.Person.select().fetch(), "await Person.select(...).afetch()"),
    ("slice", lambda m, o: m.Person.select()[:2], "await Person.select(...).afetch()"),
    ("first", lambda m, o: m.Person.select().first(), "await Person.select(...).afirst()"),
    ("query-exists", lambda m, o: m.Person.select().exists(), "await Person.select(...).aexists()"),
    ("query-get", lambda m, o: m.Person.select(name="Ann").get(), "await Person.select(...).aget()"),
    ("lazy-column", lambda m, o: o.book.text, "await obj.awaitable_attrs.text"),
    ("unloaded-reference", lambda m, o: o.excession.author.name, "await obj.awaitable_attrs.name"),
    ("collection", lambda m, o: len(o.author.books), "await obj.awaitable_attrs.books"),
    ("one-to-one", lambda m, o: o.author.profile, "await obj.awaitable_attrs.profile"),
    ("load", lambda m, o: o.book.load(), "await obj.aload()"),
    ("delete-cascading", lambda m, o: o.author.delete(), "await obj.adelete()"),
    ("commit", lambda m, o: commit(), "await acommit()"),
    ("rollback", lambda m, o: rollback(), "await arollback()"),
    ("db-select", lambda m, o: m.db.select("SELECT name FROM person"), "await db.aselect(...)"),
    ("db-execute", lambda m, o: m.db.execute("UPDATE person SET age = 1"), "await db.aexecute(...)"),
]


@pytest.mark.parametrize(("call", "awaitable"), [pytest.param(c, a, id=i) for i, c, a in SYNC_CALLS])
def test_sync_call_needing_io_raises_async_required_naming_the_awaitable(
    m: SimpleNamespace, call: Callable[..., Any], awaitable: str
) -> None:
    """A blocking call that needs IO on an AsyncDatabase raises AsyncRequired naming the twin; the session goes on."""
    expected = f"AsyncRequired: .*use {re.escape(awaitable)}$"

    async def main() -> str:
        async with db_session:
            loaded = SimpleNamespace(
                book=await m.Book.aget(title="Earthsea"),
                author=await m.Author.aget(name="Ursula"),
                excession=await m.Book.aget(title="Excession"),
            )
            refused = refusal(lambda: call(m, loaded))
            if re.match(expected, refused):
                assert (await m.Person.aget(name="Ann")).age == 30
                loaded.book.title = "Earthsea!"
        async with db_session:
            assert await m.Book.aexists(title="Earthsea!") is bool(re.match(expected, refused))
        return refused

    try:
        refused = run(main(), m.db)
    finally:
        gc.collect()  # step generators a wrong refusal abandoned are finalized within this test
    assert re.match(expected, refused), refused


PENDING_CALLS: list[tuple[str, Callable[[SimpleNamespace, Any], Any], str]] = [
    ("flush", lambda m, p: flush(), re.escape("use await aflush()")),
    ("commit", lambda m, p: commit(), re.escape("use await acommit()")),
    ("rollback", lambda m, p: rollback(), re.escape("use await arollback()")),
    ("obj-flush", lambda m, p: p.flush(), re.escape("use await obj.aflush()")),
    ("pk-miss", lambda m, p: m.Person[999], re.escape("use await Person.aget(id=...)")),
    ("entity-get", lambda m, p: m.Person.get(name="Ann"), re.escape("use await Person.aget(...)")),
    ("count", lambda m, p: m.Person.select().count(), re.escape("use await Person.select(...).acount()")),
    ("new-object-pk", lambda m, p: p.get_pk(), r"use await (aflush\(\)|obj\.aflush\(\))"),
]


@pytest.mark.parametrize(("call", "message"), [pytest.param(c, a, id=i) for i, c, a in PENDING_CALLS])
def test_sync_call_refused_with_pending_changes_keeps_them(
    m: SimpleNamespace, other_connection: Any, call: Callable[..., Any], message: str
) -> None:
    """With unsaved changes, a blocking call raises AsyncRequired, changes nothing, and exit still saves them."""

    expected = f"AsyncRequired: .*{message}"

    async def main() -> str:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            ann.age = 31
            dan = m.Person(name="Dan")
            refused = refusal(lambda: call(m, dan))
            if re.match(expected, refused):
                await aflush()
                assert await m.Person.select(name="Dan").afetch() == [dan]
            return refused

    try:
        refused = run(main(), m.db)
    finally:
        gc.collect()  # step generators a wrong refusal abandoned are finalized within this test
    assert re.match(expected, refused), refused
    assert names(other_connection) == ["Ann", "Bob", "Cid", "Dan"]
    assert names(other_connection, "SELECT age FROM person WHERE name = 'Ann'") == [31]


@pytest.mark.parametrize("method", ["flush", "commit", "rollback"])
def test_database_method_refused_names_an_awaitable_that_exists(
    m: SimpleNamespace, other_connection: Any, method: str
) -> None:
    """``adb.flush()``/``commit()``/``rollback()`` with unsaved changes name an awaitable that exists; nothing is lost."""

    async def main() -> str:
        async with db_session:
            ann = await m.Person.aget(name="Ann")
            ann.age = 31
            m.Person(name="Dan")
            refused = refusal(getattr(m.db, method))
            if refused.startswith("AsyncRequired: "):
                await aflush()
            return refused

    try:
        refused = run(main(), m.db)
    finally:
        gc.collect()  # step generators a wrong refusal abandoned are finalized within this test
    named = re.search(r"use await (db\.)?(\w+)\(", refused)
    assert refused.startswith("AsyncRequired: ") and named, refused
    owner = m.db if named.group(1) else nextorm
    assert callable(getattr(owner, named.group(2), None)), f"{refused!r} names no awaitable of {owner!r}"
    assert names(other_connection) == ["Ann", "Bob", "Cid", "Dan"]
    assert names(other_connection, "SELECT age FROM person WHERE name = 'Ann'") == [31]


def test_get_connection_in_an_async_session_leaves_it_usable(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """``adb.get_connection()`` as a session's first call refuses or returns; awaited IO works afterwards."""

    async def main() -> str:
        async with db_session:
            refused = refusal(m.db.get_connection)
            ann = await m.Person.aget(name="Ann")
            ann.age = 31
            return refused

    refused = run(main(), m.db)
    assert refused == "nothing raised" or refused.startswith("AsyncRequired: "), refused
    assert names(other_connection, "SELECT age FROM person WHERE name = 'Ann'") == [31]


def test_sync_db_session_on_an_async_database_raises_async_required(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """A ``with db_session`` block that used an AsyncDatabase raises AsyncRequired at exit and saves nothing."""
    with pytest.raises(AsyncRequired, match="async with db_session"):
        with db_session:
            m.Person(name="Dan")
    assert names(other_connection) == ["Ann", "Bob", "Cid"]


def test_identity_map_hit_needs_no_await(m: SimpleNamespace) -> None:
    """``Entity[pk]`` of an object the session holds returns it; loaded attributes and references read plainly."""

    async def main() -> None:
        async with db_session:
            books = await m.Book.select().order_by(m.Book.id).prefetch(m.Book.author).afetch()
            assert m.Book[books[0].id] is books[0]
            assert m.Author[books[0].author.id] is books[0].author
            new = m.Person(name="Dan")
            await new.aflush()
            assert m.Person[new.id] is new

    run(main(), m.db)


def test_waiting_for_a_lock_does_not_block_the_event_loop(m: SimpleNamespace, other_connection: Any) -> None:
    """While one task's session waits for a lock another task's session holds, a ticker task keeps ticking."""

    async def main() -> None:
        locked, release = asyncio.Event(), asyncio.Event()
        ticks = 0

        async def holder() -> None:
            async with db_session:
                ann = await m.Person.aget_for_update(name="Ann")
                ann.age += 1
                locked.set()
                await release.wait()

        async def waiter() -> None:
            async with db_session:
                ann = await m.Person.aget_for_update(name="Ann")
                ann.age += 10

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        holding = asyncio.create_task(holder())
        await locked.wait()
        waiting = asyncio.create_task(waiter())
        ticking = asyncio.create_task(ticker())
        while ticks < 50:
            await asyncio.sleep(0.001)
        assert not waiting.done()
        release.set()
        await asyncio.gather(holding, waiting)
        ticking.cancel()

    run(main(), m.db)
    assert names(other_connection, "SELECT age FROM person WHERE name = 'Ann'") == [41]


# -- several databases in one async session --------------------------------------------------------------


@pytest.fixture
def first(tmp_path: Any) -> Iterator[SimpleNamespace]:
    """Another AsyncDatabase (a SQLite file of its own) with the entities of ``declare``, and a client of it."""
    path = str(tmp_path / "first.sqlite")
    database = AsyncDatabase("sqlite", path, create_db=True)
    models = declare(database)
    models.conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    yield models
    models.conn.close()
    database.disconnect()


@pytest.fixture
def first_sync(tmp_path: Any) -> Iterator[SimpleNamespace]:
    """A (blocking) Database on a SQLite file of its own with the entities of ``declare``, and a client of it."""
    path = str(tmp_path / "first_sync.sqlite")
    database = Database("sqlite", path, create_db=True)
    models = declare(database)
    models.conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    yield models
    models.conn.close()
    database.disconnect()


def log_commits(side: SimpleNamespace, label: str, log: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Append ``label`` to ``log`` when ``side``'s database commits (blocking or awaited)."""
    provider = side.db.provider
    if provider.is_async:
        original = provider.acommit

        async def acommit_and_log(conn: Any) -> None:
            log.append(label)
            await original(conn)

        monkeypatch.setattr(provider, "acommit", acommit_and_log)
    else:
        blocking = provider.commit

        def commit_and_log(conn: Any) -> None:
            log.append(label)
            blocking(conn)

        monkeypatch.setattr(provider, "commit", commit_and_log)


@pytest.mark.parametrize("kind", ["async", "sync"])
@pytest.mark.parametrize("order", ["first-touched-first", "second-touched-first"])
def test_session_over_two_databases_commits_the_first_touched_first(
    request: pytest.FixtureRequest,
    adb: AsyncDatabase,
    other_connection: Any,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    order: str,
) -> None:
    """An async session over two databases (both async, or async + blocking) commits the first touched first."""
    one = request.getfixturevalue("first" if kind == "async" else "first_sync")
    two = declare(adb)
    two.conn = other_connection
    sides = {"one": one, "two": two}
    log: list[str] = []
    for label, side in sides.items():
        log_commits(side, label, log, monkeypatch)
    touched = ["one", "two"] if order == "first-touched-first" else ["two", "one"]

    async def main() -> None:
        async with db_session:
            sides[touched[0]].Person(name="first")
            sides[touched[1]].Person(name="second")
            await aflush()
            assert names(one.conn) == [] and names(two.conn) == []

    run(main(), *[s.db for s in sides.values() if isinstance(s.db, AsyncDatabase)])
    assert log == touched
    assert names(sides[touched[0]].conn) == ["first"]
    assert names(sides[touched[1]].conn) == ["second"]


def test_failed_commit_of_the_later_database_raises_partial_commit_exception(
    first: SimpleNamespace, adb: AsyncDatabase, other_connection: Any
) -> None:
    """The later database failing its deferred foreign key at COMMIT: the first stays committed, the later not."""
    later = declare(adb)
    later.conn = other_connection

    async def main() -> None:
        async with db_session:
            first.Person(name="saved")
            later.Person(name="lost")
            later.Book(title="orphan", author=await later.Author.aget(name="Ursula"))
            await aflush()
            await adb.aexecute("DELETE FROM profile")
            await adb.aexecute("DELETE FROM author WHERE name = 'Ursula'")

    run(fill(later), adb)
    with pytest.raises(PartialCommitException) as info:
        run(main(), first.db, adb)
    assert [type(exc) for exc in info.value.exceptions] == [TransactionIntegrityError]
    assert names(first.conn) == ["saved"]
    assert "lost" not in names(later.conn)
    assert names(later.conn, "SELECT name FROM author ORDER BY id") == ["Ursula", "Iain"]


def test_failed_commit_of_the_first_database_rolls_back_every_database(
    first: SimpleNamespace, adb: AsyncDatabase, other_connection: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first database failing its COMMIT raises CommitException; the later one is rolled back, not committed."""
    later = declare(adb)
    later.conn = other_connection

    async def broken_commit(conn: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(first.db.provider, "acommit", broken_commit)

    async def main() -> None:
        async with db_session:
            first.Person(name="lost")
            later.Person(name="lost too")
            await aflush()

    with pytest.raises(CommitException, match="OSError: disk full"):
        run(main(), first.db, adb)
    assert names(first.conn) == []
    assert names(later.conn) == []


# -- failures of one task -----------------------------------------------------------------------------------


def test_cancelled_task_rolls_back_its_session(m: SimpleNamespace, other_connection: Any) -> None:
    """Cancelling a task in the middle of its session rolls back what it flushed and releases its locks."""

    async def main() -> None:
        flushed = asyncio.Event()

        async def victim() -> None:
            async with db_session:
                m.Person(name="Gone")
                ann = await m.Person.aget(name="Ann")
                ann.age = 99
                await aflush()
                flushed.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(victim())
        await flushed.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db_session:
            assert await m.Person.aget(name="Gone") is None
            ann = await m.Person.aget_for_update(name="Ann")
            assert ann.age == 30
            m.Person(name="After")

    run(main(), m.db)
    assert names(other_connection) == ["Ann", "Bob", "Cid", "After"]
    assert names(other_connection, "SELECT age FROM person WHERE name = 'Ann'") == [30]


def test_cancelled_decorated_coroutine_rolls_back_its_session(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """Cancelling a task running a ``@db_session`` coroutine rolls its session back instead of committing it."""

    async def main() -> None:
        flushed = asyncio.Event()

        @db_session(retry=2)
        async def victim() -> None:
            m.Person(name="Gone")
            await aflush()
            flushed.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(victim())
        await flushed.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db_session:
            assert await m.Person.aexists(name="Gone") is False
            m.Person(name="After")

    run(main(), m.db)
    assert names(other_connection) == ["Ann", "Bob", "Cid", "After"]


def test_task_cancelled_while_waiting_for_a_lock_leaves_nothing_behind(
    m: SimpleNamespace, other_connection: Any
) -> None:
    """A task cancelled while its statement waits for a lock rolls back; later sessions lock and write freely."""

    async def main() -> None:
        locked, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with db_session:
                ann = await m.Person.aget_for_update(name="Ann")
                ann.age = 31
                locked.set()
                await release.wait()

        async def victim() -> None:
            async with db_session:
                m.Person(name="Gone")
                ann = await m.Person.aget_for_update(name="Ann")
                ann.age = 99

        holding = asyncio.create_task(holder())
        await locked.wait()
        task = asyncio.create_task(victim())
        for _ in range(20):
            await asyncio.sleep(0.001)
        assert not task.done()
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await holding
        async with db_session:
            assert await m.Person.aget(name="Gone") is None
            ann = await m.Person.aget_for_update(name="Ann")
            assert ann.age == 31
            ann.age = 32

    run(main(), m.db)
    assert names(other_connection) == ["Ann", "Bob", "Cid"]
    assert names(other_connection, "SELECT age FROM person WHERE name = 'Ann'") == [32]


def test_exception_in_one_task_does_not_disturb_the_others(m: SimpleNamespace, other_connection: Any) -> None:
    """Ten concurrent tasks, one of which fails mid-session: its work is rolled back, the others commit theirs."""

    async def worker(i: int) -> str:
        async with db_session:
            m.Person(name=f"w{i}")
            await aflush()
            await asyncio.sleep(0)
            if i == 3:
                raise ValueError("boom")
            await asyncio.sleep(0)
            return (await m.Person.aget(name=f"w{i}")).name

    async def main() -> list[Any]:
        return await asyncio.gather(*(worker(i) for i in range(10)), return_exceptions=True)

    results = run(main(), m.db)
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [f"w{i}" for i in range(10) if i != 3]
    assert sorted(names(other_connection, "SELECT name FROM person WHERE name LIKE 'w%'")) == [
        f"w{i}" for i in range(10) if i != 3
    ]


# -- pooled asyncio SQLite connections (README "Connection pooling") ----------------------------------


def aiosqlite_threads() -> int:
    """How many aiosqlite worker threads (one per open connection) are alive, by their default name."""
    return sum("_connection_worker_thread" in thread.name for thread in threading.enumerate())


def threads_settle_at(expected: int) -> int:
    """The live thread count (see ``aiosqlite_threads``) once it is down to ``expected`` (waits at most 10 s)."""
    deadline = time.monotonic() + 10  # a closed connection's thread ends just after close() returns
    while aiosqlite_threads() > expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return aiosqlite_threads()


def settled_threads(m: SimpleNamespace) -> int:
    """The live thread count after a session that closes what earlier event loops left idle, and its own."""

    async def session() -> None:
        async with db_session:
            await m.Person.select().acount()

    run(session(), m.db)
    count, previous = aiosqlite_threads(), -1
    while count != previous:  # until closed connections' threads have ended
        time.sleep(0.1)
        count, previous = aiosqlite_threads(), count
    return count


@pytest.mark.sqlite_only
def test_async_sqlite_sessions_reuse_a_bounded_set_of_pooled_connections(m: SimpleNamespace) -> None:
    """Consecutive async sessions reuse one connection; after 40 concurrent ones at most ``async_idle_limit`` stay open."""
    db = m.db
    before = settled_threads(m)

    async def main() -> tuple[set[int], int]:
        seen = set()
        for _ in range(5):
            async with db_session:
                seen.add(id(await db.aget_connection()))
                assert await m.Person.select().acount() == 3

        @db_session
        async def read() -> int:
            await asyncio.sleep(0.01)
            return int(await m.Person.select().acount())

        assert await asyncio.gather(*(read() for _ in range(40))) == [3] * 40
        # a connection closed beyond the limit ends its worker thread just after close() returns
        deadline = time.monotonic() + 10
        while aiosqlite_threads() - before > db.provider.async_idle_limit and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return seen, aiosqlite_threads() - before

    seen, kept = run(main(), db)
    assert len(seen) == 1
    assert 1 <= kept <= db.provider.async_idle_limit
    assert threads_settle_at(before) == before


@pytest.mark.sqlite_only
def test_idle_connections_of_ended_event_loops_are_closed_by_the_next_loop(m: SimpleNamespace) -> None:
    """Event loops ending without ``adisconnect()`` leave at most the last loop's idle connection open."""
    before = settled_threads(m)

    async def count() -> int:
        async with db_session:
            return int(await m.Person.select().acount())

    assert [asyncio.run(count()) for _ in range(5)] == [3] * 5
    assert threads_settle_at(before + 1) == before + 1
    assert run(count(), m.db) == 3
    assert threads_settle_at(before) == before


@pytest.mark.sqlite_only
def test_pooled_async_sqlite_connections_do_not_keep_the_interpreter_alive(db_path: str) -> None:
    """A program that ends with async SQLite connections still pooled exits by itself."""
    program = (
        "import asyncio\n"
        "from nextorm import AsyncDatabase, PrimaryKey, Required, db_session\n"
        f"db = AsyncDatabase('sqlite', {db_path!r}, create_db=True)\n"
        "class Note(db.Entity):\n"
        "    id = PrimaryKey(int, auto=True)\n"
        "    text = Required(str)\n"
        "db.generate_mapping(create_tables=True)\n"
        "async def main():\n"
        "    async with db_session:\n"
        "        Note(text='saved')\n"
        "    async with db_session:\n"
        "        return await Note.select().acount()\n"
        "print(asyncio.run(main()))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "1"), result.stderr
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT text FROM note").fetchall() == [("saved",)]
