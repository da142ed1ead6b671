"""db_session: Pony's session semantics as DESIGN.md fixes them.

Written against SQLite; tests that do not pin SQLite-only behaviour also run on
PostgreSQL when ``NEXTORM_TEST_POSTGRES`` is set (conftest's ``db_kind``). The
whole module runs once per hot path (CI sets ``NEXTORM_NO_EXTENSIONS=1`` for the
second run); nothing here is parametrized over the implementation.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import re
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

import nextorm
from nextorm import (
    Database,
    DatabaseSessionIsOver,
    EntityProxy,
    OptimisticCheckError,
    Optional,
    PrimaryKey,
    Required,
    TransactionError,
    active_session,
    commit,
    db_session,
    expunge,
    flush,
    make_proxy,
    rollback,
    set_sql_debug,
    with_transaction,
)

NO_SESSION = "db_session is required when working with the database"


def over(action: str) -> str:
    """The full DatabaseSessionIsOver message for ``action`` (e.g. ``assign new value to Person[1].name``)."""
    return f"Cannot {action}: the database session is over"


def rows(conn: Any, sql: str = "SELECT name FROM person ORDER BY id", *params: Any) -> list[Any]:
    """What another client sees: the first column of every row of ``sql``."""
    return [row[0] for row in conn.execute(sql, params).fetchall()]


def with_qmarks(sql: str) -> str:
    """``sql`` with the driver's placeholders (``%s`` on PostgreSQL) written as ``?``."""
    return sql.replace("%s", "?")


@pytest.fixture
def ann(Person: type) -> type:
    """Person[1] is committed: Ann, ann@x, 30 years; returns the Person class."""
    with db_session:
        Person(name="Ann", email="ann@x", age=30)
    return Person


@pytest.fixture
def Student(db: Database) -> type:
    """An entity with a lazy attribute (``picture``), mapped onto table ``student``; Student[1] exists."""

    class Student(db.Entity):
        _table_ = "student"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        picture = Optional(bytes, lazy=True)

    db.generate_mapping(create_tables=True)
    with db_session:
        Student(name="Sam", picture=b"\x89PNG")
    return Student


@pytest.fixture
def sql_records(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Messages logged to ``nextorm.sql`` (the logger enabled at INFO), with debug switched off around the test."""
    caplog.set_level(logging.INFO, logger="nextorm.sql")
    set_sql_debug(False, show_values=False)
    messages: list[str] = []

    class Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collector(logging.INFO)
    logger = logging.getLogger("nextorm.sql")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
    set_sql_debug(False, show_values=False)


# -- db_session forms ----------------------------------------------------------------------------


def test_context_manager_commits_at_exit(Person: type, other_connection: Any) -> None:
    """``with db_session:`` commits what the block created when it exits."""
    with db_session:
        Person(name="Ann")
        assert rows(other_connection) == []
    assert rows(other_connection) == ["Ann"]


def test_context_manager_rolls_back_on_exception(Person: type, other_connection: Any) -> None:
    """An exception leaving ``with db_session:`` rolls back, even what was flushed, and propagates."""
    with pytest.raises(ZeroDivisionError):
        with db_session:
            Person(name="Ann")
            flush()
            1 / 0  # noqa: B018
    assert rows(other_connection) == []


def test_decorator_preserves_return_value_and_commits(Person: type, other_connection: Any) -> None:
    """``@db_session`` returns the function's value, keeps its name, and commits after the call."""

    @db_session
    def register(name: str, *, age: int) -> tuple[str, int]:
        Person(name=name, age=age)
        return name.upper(), age

    assert register.__name__ == "register"
    assert register("ann", age=3) == ("ANN", 3)
    assert rows(other_connection, "SELECT name || age FROM person") == ["ann3"]


def test_decorator_rolls_back_on_exception(Person: type, other_connection: Any) -> None:
    """A decorated function that raises leaves nothing in the database and its exception propagates."""

    @db_session
    def fail() -> None:
        Person(name="Ann")
        raise KeyError("k")

    with pytest.raises(KeyError):
        fail()
    assert rows(other_connection) == []


def test_call_without_arguments_returns_db_session_itself() -> None:
    """``db_session()`` is the very same ``db_session`` object, so ``@db_session()`` works too."""
    assert db_session() is db_session


def test_empty_parentheses_decorator(Person: type, other_connection: Any) -> None:
    """``@db_session()`` decorates like ``@db_session``."""

    @db_session()
    def create() -> int:
        Person(name="Ann")
        return 7

    assert create() == 7
    assert rows(other_connection) == ["Ann"]


def test_keyword_call_returns_new_configured_manager(Person: type) -> None:
    """``db_session(**options)`` returns a distinct manager of the same type that applies its options."""
    strict = db_session(strict=True)
    assert strict is not db_session
    assert type(strict) is type(db_session)
    assert db_session(strict=True) is not strict
    with strict:
        p = Person(name="Ann")
    with pytest.raises(DatabaseSessionIsOver):
        p.name  # noqa: B018
    with strict:  # a configured manager can be entered again
        q = Person(name="Bob")
    with pytest.raises(DatabaseSessionIsOver):
        q.name  # noqa: B018


def test_async_decorator_returns_value(Person: type, other_connection: Any) -> None:
    """``@db_session async def`` returns the coroutine's value and commits when it finishes."""

    @db_session
    async def create() -> int:
        Person(name="Ann")
        await asyncio.sleep(0)
        assert Person.get(name="Ann") is not None
        return 42

    assert asyncio.run(create()) == 42
    assert rows(other_connection) == ["Ann"]


def test_async_with_commits_at_exit(Person: type, other_connection: Any) -> None:
    """``async with db_session:`` keeps one identity map across awaits and commits at exit."""

    async def main() -> None:
        async with db_session:
            p = Person(name="Ann")
            flush()
            await asyncio.sleep(0)
            assert Person[p.id] is p
            assert rows(other_connection) == []
        assert rows(other_connection) == ["Ann"]

    asyncio.run(main())


def test_async_with_rolls_back_on_exception(Person: type, other_connection: Any) -> None:
    """An exception leaving ``async with db_session:`` rolls the session back."""

    async def main() -> None:
        async with db_session:
            Person(name="Ann")
            await asyncio.sleep(0)
            raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        asyncio.run(main())
    assert rows(other_connection) == []


def test_nested_decorated_coroutines_share_outer_session(ann: type) -> None:
    """A decorated coroutine awaited by another one runs in the outer session (same objects)."""
    Person = ann

    @db_session
    async def inner() -> Any:
        await asyncio.sleep(0)
        return Person[1]

    @db_session
    async def outer() -> bool:
        p = Person[1]
        return (await inner()) is p

    assert asyncio.run(outer()) is True


# -- option validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry": "1"}, "'retry' parameter of db_session must be of integer type. Got: <class 'str'>"),
        ({"retry": 1.5}, "'retry' parameter of db_session must be of integer type. Got: <class 'float'>"),
        ({"retry": True}, "'retry' parameter of db_session must be of integer type. Got: <class 'bool'>"),
        ({"retry": -1}, "'retry' parameter of db_session must not be negative. Got: -1"),
        ({"retry": 2, "ddl": True}, "'ddl' and 'retry' parameters of db_session cannot be used together"),
        (
            {"allowed_exceptions": [TransactionError]},
            "The same exception TransactionError cannot be specified in both allowed and retry exception "
            "lists simultaneously",
        ),
        (
            {"retry_exceptions": [KeyError, ValueError], "allowed_exceptions": [ValueError]},
            "The same exception ValueError cannot be specified in both allowed and retry exception lists "
            "simultaneously",
        ),
    ],
    ids=[
        "retry-str",
        "retry-float",
        "retry-bool",
        "retry-negative",
        "ddl-and-retry",
        "default-retry-list",
        "both-lists",
    ],
)
def test_invalid_options_raise_pony_type_errors(options: dict[str, Any], message: str) -> None:
    """Bad db_session options raise TypeError with Pony's exact message when the manager is made."""
    with pytest.raises(TypeError) as info:
        db_session(**options)
    assert str(info.value) == message


def test_retry_false_and_zero_are_accepted() -> None:
    """``retry=False`` and ``retry=0`` pass validation (Pony only checks a non-zero retry)."""
    assert db_session(retry=False) is not db_session
    assert db_session(retry=0, ddl=True) is not db_session


def test_same_exception_check_is_membership_not_subclass() -> None:
    """A subclass of a retried exception may be allowed: the check is literal membership, like Pony's."""
    manager = db_session(allowed_exceptions=[OptimisticCheckError])
    assert manager is not db_session


def test_callable_lists_skip_the_same_exception_check() -> None:
    """When either list is a callable, no "same exception" check is made."""
    db_session(allowed_exceptions=lambda exc: True, retry_exceptions=[ValueError])
    db_session(allowed_exceptions=[ValueError], retry_exceptions=lambda exc: True)


def test_positional_with_keywords_raises_type_error() -> None:
    """A positional argument together with keywords, or two positionals, is rejected with Pony's message."""
    message = "Pass only keyword arguments to db_session or use db_session as decorator"

    def func() -> None:
        """A function to decorate."""

    with pytest.raises(TypeError, match=re.escape(message)):
        db_session(func, retry=1)
    with pytest.raises(TypeError, match=re.escape(message)):
        db_session(func, func)


def test_retry_as_context_manager_raises_type_error(Person: type) -> None:
    """``with db_session(retry=N)`` raises Pony's TypeError and opens no session."""
    message = (
        "@db_session can accept 'retry' parameter only when used as decorator and not as context manager"
    )
    with pytest.raises(TypeError) as info:
        with db_session(retry=1):
            pass
    assert str(info.value) == message
    with pytest.raises(TransactionError, match=re.escape(NO_SESSION)):
        Person[1]


def test_retry_as_async_context_manager_raises_type_error() -> None:
    """``async with db_session(retry=N)`` raises the same TypeError."""
    message = (
        "@db_session can accept 'retry' parameter only when used as decorator and not as context manager"
    )

    async def main() -> None:
        async with db_session(retry=2):
            pass

    with pytest.raises(TypeError) as info:
        asyncio.run(main())
    assert str(info.value) == message


def test_unknown_keyword_raises_type_error() -> None:
    """An unknown db_session option is a TypeError naming it."""
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        db_session(foo=1)


# -- nesting -------------------------------------------------------------------------------------


def test_nested_sessions_share_identity_map(ann: type) -> None:
    """Inner sessions use the outer identity map: ``Person[pk]`` is the same object in both."""
    Person = ann
    with db_session:
        outer = Person[1]
        with db_session:
            assert Person[1] is outer
            created = Person(name="Bob")
            flush()
        assert Person[created.id] is created


def test_nested_decorated_function_shares_identity_map(ann: type) -> None:
    """A decorated function called inside a session returns objects of the outer session."""
    Person = ann

    @db_session
    def load() -> Any:
        return Person[1]

    with db_session:
        assert load() is Person[1]


def test_only_outermost_exit_commits(Person: type, other_connection: Any) -> None:
    """Leaving an inner session commits nothing; the outermost exit commits everything."""

    @db_session
    def create(name: str) -> None:
        Person(name=name)

    with db_session:
        with db_session:
            Person(name="Inner")
        assert rows(other_connection) == []
        create("Decorated")
        assert rows(other_connection) == []
    assert rows(other_connection) == ["Inner", "Decorated"]


def test_inner_exception_caught_inside_does_not_roll_back(Person: type, other_connection: Any) -> None:
    """An exception leaving an inner session (caught in the outer one) rolls nothing back."""

    @db_session
    def fail() -> None:
        Person(name="Decorated")
        raise KeyError("k")

    with db_session:
        Person(name="Before")
        with pytest.raises(ValueError):
            with db_session:
                Person(name="Inner")
                flush()
                raise ValueError("inner")
        with pytest.raises(KeyError):
            fail()
        assert Person.exists(name="Inner")
    assert rows(other_connection) == ["Before", "Inner", "Decorated"]


def test_nested_ddl_inside_non_ddl_raises(ann: type) -> None:
    """A ddl session nested in a non-ddl one raises Pony's TransactionError; the outer session goes on."""
    Person = ann
    with db_session:
        p = Person[1]
        with pytest.raises(TransactionError) as info:
            with db_session(ddl=True):
                pass
        assert str(info.value) == "Cannot start ddl transaction inside non-ddl transaction"
        with pytest.raises(
            TransactionError, match=r"^Cannot start ddl transaction inside non-ddl transaction$"
        ):
            with db_session(ddl=True, serializable=True):  # ddl is checked first
                pass
        assert Person[1] is p
        p.age = 31
    with db_session:
        assert Person[1].age == 31


def test_nested_serializable_inside_non_serializable_raises(ann: type) -> None:
    """A serializable session nested in a non-serializable one raises Pony's TransactionError."""
    Person = ann
    with db_session:
        with pytest.raises(TransactionError) as info:
            with db_session(serializable=True):
                pass
        assert str(info.value) == "Cannot start serializable transaction inside non-serializable transaction"
        assert Person[1].name == "Ann"


def test_nested_same_ddl_or_serializable_is_allowed(ann: type) -> None:
    """ddl inside ddl and serializable inside serializable nest without error."""
    Person = ann
    with db_session(ddl=True):
        with db_session(ddl=True):
            pass
    with db_session(serializable=True):
        p = Person[1]
        with db_session(serializable=True):
            assert Person[1] is p


def test_nested_decorated_ddl_function_raises(Person: type) -> None:
    """A ``@db_session(ddl=True)`` function called inside a session raises Pony's TransactionError and is not run."""
    calls = []

    @db_session(ddl=True)
    def make_table() -> None:
        calls.append(1)

    with db_session:
        with pytest.raises(TransactionError) as info:
            make_table()
    assert str(info.value) == (
        "@db_session-decorated make_table() function with `ddl` option cannot be called inside of another db_session"
    )
    assert calls == []


def test_nested_retry_warns_and_runs_once(ann: type) -> None:
    """A ``retry`` decorated function called inside a session warns (OrmRuntimeWarning), runs once, no retry."""
    Person = ann
    calls = []

    @db_session(retry=3)
    def load() -> Any:
        calls.append(1)
        return Person[1]

    message = (
        "@db_session decorator with `retry=3` option is ignored for load() function "
        "because it is called inside another db_session"
    )
    with db_session:
        with pytest.warns(nextorm.OrmRuntimeWarning, match=re.escape(message)) as record:
            assert load() is Person[1]
    assert calls == [1]
    assert [w.filename for w in record if issubclass(w.category, RuntimeWarning)] == [__file__]


def test_nested_retry_does_not_retry(Person: type) -> None:
    """Inside another session a ``retry`` function that raises a retryable error is called once."""
    calls = []

    @db_session(retry=3)
    def fail() -> None:
        calls.append(1)
        raise OptimisticCheckError("conflict")

    with db_session:
        with pytest.warns(RuntimeWarning), pytest.raises(OptimisticCheckError):
            fail()
    assert calls == [1]


# -- retry ---------------------------------------------------------------------------------------


def test_retry_calls_function_retry_plus_one_times(Person: type) -> None:
    """``retry=2`` calls a function that keeps failing 3 times, then re-raises the last error."""
    calls = []

    @db_session(retry=2)
    def fail() -> None:
        calls.append(1)
        raise OptimisticCheckError(f"attempt {len(calls)}")

    with pytest.raises(OptimisticCheckError) as info:
        fail()
    assert len(calls) == 3
    assert str(info.value) == "attempt 3"


def test_retry_succeeds_after_transient_errors(Person: type, other_connection: Any) -> None:
    """Retried TransactionError subclasses: the last attempt's result is returned and committed once."""
    calls = []

    @db_session(retry=3)
    def create() -> str:
        calls.append(1)
        Person(name=f"try{len(calls)}")
        if len(calls) < 3:
            raise TransactionError("transient")
        return "done"

    assert create() == "done"
    assert len(calls) == 3
    assert rows(other_connection) == ["try3"]


def test_retry_zero_calls_once(Person: type) -> None:
    """Without ``retry`` a TransactionError is not retried."""
    calls = []

    @db_session
    def fail() -> None:
        calls.append(1)
        raise TransactionError("once")

    with pytest.raises(TransactionError):
        fail()
    assert calls == [1]


def test_retry_does_not_retry_value_error_by_default(Person: type, other_connection: Any) -> None:
    """A ValueError is not in the default retry_exceptions: one call, rolled back, re-raised."""
    calls = []

    @db_session(retry=3)
    def fail() -> None:
        calls.append(1)
        Person(name="Ann")
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        fail()
    assert calls == [1]
    assert rows(other_connection) == []


def test_retry_on_optimistic_check_error_from_another_client(ann: type, other_connection: Any) -> None:
    """An UPDATE that fails its optimistic check at commit is retried; the retry sees the new row."""
    Person = ann
    seen = []

    @db_session(retry=1)
    def birthday() -> None:
        p = Person[1]
        seen.append(p.name)
        p.age += 1
        if len(seen) == 1:
            other_connection.execute("UPDATE person SET name = 'Annie' WHERE id = 1")

    birthday()
    assert seen == ["Ann", "Annie"]
    assert other_connection.execute("SELECT name, age FROM person").fetchall() == [("Annie", 31)]


def test_retry_exceptions_list_replaces_default(Person: type) -> None:
    """``retry_exceptions=[KeyError]`` retries KeyError (and subclasses) but no longer TransactionError."""
    calls = []

    class MissingKey(KeyError):
        pass

    @db_session(retry=2, retry_exceptions=[KeyError])
    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise MissingKey("first")
        return "ok"

    assert flaky() == "ok"
    assert len(calls) == 2

    calls.clear()

    @db_session(retry=2, retry_exceptions=[KeyError])
    def conflict() -> None:
        calls.append(1)
        raise OptimisticCheckError("not retried now")

    with pytest.raises(OptimisticCheckError):
        conflict()
    assert calls == [1]


def test_retry_exceptions_callable(Person: type) -> None:
    """A callable ``retry_exceptions`` gets the exception and decides whether to retry."""
    calls = []
    asked: list[BaseException] = []

    def transient(exc: BaseException) -> bool:
        asked.append(exc)
        return "again" in str(exc)

    @db_session(retry=5, retry_exceptions=transient)
    def work() -> None:
        calls.append(1)
        raise ValueError("again" if len(calls) < 3 else "final")

    with pytest.raises(ValueError, match="final"):
        work()
    assert len(calls) == 3
    assert [str(e) for e in asked] == ["again", "again", "final"]
    assert all(isinstance(e, ValueError) for e in asked)


def test_retry_covers_flush_failure_in_hook(Person: type, other_connection: Any) -> None:
    """A before_insert hook failing at the final commit is retried; the row is committed exactly once."""
    hook_calls = []
    calls = []

    def before_insert(self: Any) -> None:
        hook_calls.append(self.name)
        if len(hook_calls) == 1:
            raise ZeroDivisionError("hook failed")

    Person.before_insert = before_insert

    @db_session(retry=2, retry_exceptions=[ZeroDivisionError])
    def create() -> str:
        calls.append(1)
        Person(name="Ann")
        return "created"

    assert create() == "created"
    assert len(calls) == 2
    assert hook_calls == ["Ann", "Ann"]
    assert rows(other_connection) == ["Ann"]


def test_retry_covers_unique_clash_at_commit(Person: type, other_connection: Any) -> None:
    """A unique clash found when the final commit flushes is retried; the retry sees the other row."""
    calls = []

    @db_session(retry=2)
    def register() -> str:
        calls.append(1)
        if Person.exists(email="ann@x"):
            return "taken"
        Person(name="Ann", email="ann@x")
        if len(calls) == 1:
            other_connection.execute(
                "INSERT INTO person (name, email, age, score) VALUES ('Bob', 'ann@x', 1, 0)"
            )
        return "registered"

    assert register() == "taken"
    assert len(calls) == 2
    assert rows(other_connection) == ["Bob"]


def test_retry_rolls_back_between_attempts(ann: type, other_connection: Any) -> None:
    """A failed attempt is rolled back: the next attempt gets fresh objects and none of its data."""
    Person = ann
    attempts: list[Any] = []

    @db_session(retry=1)
    def work() -> tuple[int, bool]:
        p = Person[1]
        if not attempts:
            attempts.append(p)
            p.age = 99
            Person(name="Ghost")
            flush()
            raise OptimisticCheckError("conflict")
        assert p is not attempts[0]
        return p.age, Person.exists(name="Ghost")

    assert work() == (30, False)
    assert rows(other_connection, "SELECT name || age FROM person") == ["Ann30"]


def test_async_decorator_retries(Person: type, other_connection: Any) -> None:
    """``retry`` on a decorated coroutine re-runs it and commits only the successful attempt."""
    calls = []

    @db_session(retry=2)
    async def create() -> int:
        calls.append(1)
        Person(name=f"try{len(calls)}")
        await asyncio.sleep(0)
        if len(calls) == 1:
            raise OptimisticCheckError("conflict")
        return len(calls)

    assert asyncio.run(create()) == 2
    assert rows(other_connection) == ["try2"]


# -- allowed_exceptions --------------------------------------------------------------------------


def test_allowed_exceptions_list_commits_and_reraises(Person: type, other_connection: Any) -> None:
    """An exception in ``allowed_exceptions`` (or a subclass of one) still commits, then propagates."""
    with pytest.raises(KeyError):
        with db_session(allowed_exceptions=[LookupError]):
            Person(name="Ann")
            raise KeyError("k")
    assert rows(other_connection) == ["Ann"]


def test_allowed_exceptions_list_rolls_back_other_exceptions(Person: type, other_connection: Any) -> None:
    """An exception not in ``allowed_exceptions`` rolls back."""
    with pytest.raises(TypeError):
        with db_session(allowed_exceptions=[ValueError]):
            Person(name="Ann")
            raise TypeError("t")
    assert rows(other_connection) == []


def test_allowed_exceptions_callable(Person: type, other_connection: Any) -> None:
    """A callable ``allowed_exceptions`` gets the exception; truthy commits, falsy rolls back; both re-raise."""
    seen: list[BaseException] = []

    def allowed(exc: BaseException) -> bool:
        seen.append(exc)
        return str(exc) == "commit anyway"

    manager = db_session(allowed_exceptions=allowed)
    with pytest.raises(ValueError, match="commit anyway"):
        with manager:
            Person(name="Kept")
            raise ValueError("commit anyway")
    with pytest.raises(ValueError, match="roll back"):
        with manager:
            Person(name="Dropped")
            raise ValueError("roll back")
    assert [str(e) for e in seen] == ["commit anyway", "roll back"]
    assert rows(other_connection) == ["Kept"]


def test_allowed_exceptions_on_decorator(Person: type, other_connection: Any) -> None:
    """A decorated function raising an allowed exception commits and re-raises it."""

    @db_session(allowed_exceptions=[ValueError])
    def create() -> None:
        Person(name="Ann")
        raise ValueError("v")

    with pytest.raises(ValueError, match="v"):
        create()
    assert rows(other_connection) == ["Ann"]


# -- after the session ---------------------------------------------------------------------------


def test_strict_session_values_unreadable_after_exit(ann: type) -> None:
    """With ``strict=True`` every attribute, even loaded ones and the pk, raises after the session."""
    Person = ann
    with db_session(strict=True):
        p = Person[1]
        assert p.name == "Ann"
    with pytest.raises(DatabaseSessionIsOver) as info:
        p.name  # noqa: B018
    assert str(info.value) == over("read value of Person[1].name")
    with pytest.raises(DatabaseSessionIsOver) as info:
        p.id  # noqa: B018
    assert str(info.value) == over("read value of Person[1].id")


def test_loaded_values_stay_readable_after_session(ann: type) -> None:
    """Without strict, loaded values and the pk stay readable after the session ends."""
    Person = ann
    with db_session:
        p = Person[1]
        new = Person(name="Bob", age=5)
    assert (p.id, p.name, p.email, p.age) == (1, "Ann", "ann@x", 30)
    assert (new.id, new.name, new.age) == (2, "Bob", 5)


def test_unloaded_lazy_attribute_after_session(Student: type) -> None:
    """Reading a lazy attribute never loaded in the session raises Pony's "Cannot load attribute" message."""
    with db_session:
        s = Student[1]
    assert s.name == "Sam"
    with pytest.raises(DatabaseSessionIsOver) as info:
        s.picture  # noqa: B018
    assert str(info.value) == over("load attribute Student[1].picture")


def test_lazy_attribute_loaded_in_session_stays_readable(Student: type) -> None:
    """A lazy attribute read during the session is readable after it."""
    with db_session:
        s = Student[1]
        assert s.picture == b"\x89PNG"
    assert s.picture == b"\x89PNG"


def test_attribute_not_selected_after_session(ann: type) -> None:
    """An attribute a raw query did not fetch raises "Cannot load attribute" after the session."""
    Person = ann
    with db_session:
        (p,) = Person.select_by_sql("SELECT id, name FROM person")
    assert p.name == "Ann"
    with pytest.raises(DatabaseSessionIsOver) as info:
        p.age  # noqa: B018
    assert str(info.value) == over("load attribute Person[1].age")


def test_assignment_after_session(ann: type) -> None:
    """Assigning after the session raises Pony's message and changes nothing."""
    Person = ann
    with db_session:
        p = Person[1]
    with pytest.raises(DatabaseSessionIsOver) as info:
        p.name = "Bob"
    assert str(info.value) == over("assign new value to Person[1].name")
    assert p.name == "Ann"


def test_delete_after_session(ann: type, other_connection: Any) -> None:
    """``delete()`` after the session raises Pony's message and deletes nothing."""
    Person = ann
    with db_session:
        p = Person[1]
    with pytest.raises(DatabaseSessionIsOver) as info:
        p.delete()
    assert str(info.value) == over("delete object Person[1]")
    assert rows(other_connection) == ["Ann"]


def test_set_after_session(ann: type) -> None:
    """``set()`` after the session raises Pony's "Cannot change object" message."""
    Person = ann
    with db_session:
        p = Person[1]
    with pytest.raises(DatabaseSessionIsOver) as info:
        p.set(name="Bob", age=3)
    assert str(info.value) == over("change object Person[1]")
    assert (p.name, p.age) == ("Ann", 30)


def test_object_from_ended_session_in_new_session_is_not_reused(ann: type) -> None:
    """An object of an ended session stays detached; the new session loads its own copy."""
    Person = ann
    with db_session:
        old = Person[1]
    with db_session:
        new = Person[1]
        assert new is not old
        new.age = 31
        with pytest.raises(DatabaseSessionIsOver):
            old.age = 32
    with db_session:
        assert Person[1].age == 31


# -- commit() and rollback() ---------------------------------------------------------------------


def test_commit_keeps_identity_map(ann: type, other_connection: Any) -> None:
    """``commit()`` makes changes visible, keeps the same objects writable; later changes commit at exit."""
    Person = ann
    with db_session:
        p = Person[1]
        p.age = 31
        commit()
        assert rows(other_connection, "SELECT age FROM person") == [31]
        assert Person[1] is p
        p.age = 32
        p.name = "Annie"
        assert rows(other_connection, "SELECT age FROM person") == [31]
    assert other_connection.execute("SELECT name, age FROM person").fetchall() == [("Annie", 32)]


def test_commit_of_new_object_keeps_it(Person: type, other_connection: Any) -> None:
    """A new object committed mid-session gets its pk and stays the identity-map object."""
    with db_session:
        p = Person(name="Ann")
        commit()
        assert rows(other_connection) == ["Ann"]
        assert Person[p.id] is p
        p.delete()
    assert rows(other_connection) == []


def test_rollback_detaches_objects(ann: type, other_connection: Any) -> None:
    """``rollback()`` detaches objects: values as before the transaction, writes raise, ``Person[pk]`` is a new object."""
    Person = ann
    with db_session:
        p = Person[1]
        p.name = "Changed"
        flush()
        rollback()
        assert p.age == 30
        assert p.name == "Ann"  # the flushed value was rolled back with the transaction
        with pytest.raises(DatabaseSessionIsOver) as info:
            p.age = 31
        assert str(info.value) == "Cannot assign new value to Person[1].age: the session was rolled back"
        with pytest.raises(DatabaseSessionIsOver):
            p.delete()
        fresh = Person[1]
        assert fresh is not p
        assert fresh.name == "Ann"
        fresh.age = 40
    assert other_connection.execute("SELECT name, age FROM person").fetchall() == [("Ann", 40)]


def test_rollback_discards_flushed_new_objects(Person: type, other_connection: Any) -> None:
    """A flushed new object is gone after ``rollback()`` and the rest of the session still commits."""
    with db_session:
        Person(name="Ghost")
        flush()
        rollback()
        assert not Person.exists(name="Ghost")
        Person(name="Real")
    assert rows(other_connection) == ["Real"]


# -- module-level flush/commit/rollback, use outside a session -----------------------------------


def test_flush_assigns_auto_pk_without_committing(Person: type, other_connection: Any) -> None:
    """``flush()`` sends the INSERT (the object gets its auto pk) but does not commit."""
    with db_session:
        p = Person(name="Ann")
        assert repr(p).startswith("Person[new:")
        flush()
        assert p.id == 1
        assert repr(p) == "Person[1]"
        assert Person[1] is p
        assert rows(other_connection) == []
    assert rows(other_connection) == ["Ann"]


def test_module_functions_outside_session_do_nothing(ann: type) -> None:
    """flush(), commit() and rollback() outside a session are no-ops (Pony's behaviour)."""
    flush()
    commit()
    rollback()
    with db_session:
        assert ann[1].name == "Ann"


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda P: P(name="Ann"), id="create"),
        pytest.param(lambda P: P[1], id="getitem"),
        pytest.param(lambda P: list(P.select()), id="select-iteration"),
        pytest.param(lambda P: P.select().first(), id="first"),
        pytest.param(lambda P: P.get(name="Ann"), id="get"),
        pytest.param(lambda P: P.exists(name="Ann"), id="exists"),
    ],
)
def test_database_work_outside_session_raises(ann: type, action: Any) -> None:
    """Database work outside db_session raises TransactionError with Pony's message."""
    with pytest.raises(TransactionError) as info:
        action(ann)
    assert str(info.value) == NO_SESSION


def test_getitem_outside_session_after_a_session(ann: type) -> None:
    """A session that ended leaves nothing behind: ``Person[1]`` outside it still raises."""
    Person = ann
    with db_session:
        Person[1]
    with pytest.raises(TransactionError, match=re.escape(NO_SESSION)):
        Person[1]


# -- optimistic, immediate, sql_debug -------------------------------------------------------------


def test_optimistic_update_checks_read_columns(ann: type, sql_log: Any) -> None:
    """By default an UPDATE's WHERE checks every column the session read (the contrast for optimistic=False)."""
    Person = ann
    sql_log.clear()
    with db_session:
        p = Person[1]
        assert p.name == "Ann"
        p.age += 1
    updates = [with_qmarks(s) for s in sql_log.statements if s.startswith("UPDATE")]
    assert updates == ['UPDATE "person" SET "age" = ? WHERE "id" = ? AND "name" = ? AND "age" = ?']


def test_optimistic_false_update_checks_only_pk(ann: type, sql_log: Any, other_connection: Any) -> None:
    """With ``optimistic=False`` an UPDATE's WHERE holds only the primary key."""
    Person = ann
    sql_log.clear()
    with db_session(optimistic=False):
        p = Person[1]
        assert p.name == "Ann"
        assert p.email == "ann@x"
        p.age += 1
    updates = [with_qmarks(s) for s in sql_log.statements if s.startswith("UPDATE")]
    assert updates == ['UPDATE "person" SET "age" = ? WHERE "id" = ?']
    assert rows(other_connection, "SELECT age FROM person") == [31]


@pytest.mark.sqlite_only
def test_immediate_begins_before_first_query(ann: type, sql_log: Any) -> None:
    """``immediate=True`` starts with SQLite's BEGIN IMMEDIATE before the first SELECT."""
    Person = ann
    sql_log.clear()
    with db_session(immediate=True):
        Person[1]
    statements = sql_log.statements
    assert statements[0] == "BEGIN IMMEDIATE"
    assert statements[1].startswith("SELECT")


@pytest.mark.sqlite_only
def test_reads_run_without_transaction_by_default(ann: type, sql_log: Any) -> None:
    """A default SQLite session does not BEGIN for reads (the contrast for ``immediate=True``)."""
    Person = ann
    sql_log.clear()
    with db_session:
        Person[1]
    assert sql_log.statements[0].startswith("SELECT")
    assert not any(s.startswith("BEGIN") for s in sql_log.statements)


def test_sql_debug_session_logs_only_in_that_session(ann: type, sql_records: list[str]) -> None:
    """``db_session(sql_debug=True)`` logs to ``nextorm.sql`` during that session only."""
    Person = ann
    with db_session:
        Person[1]
    assert sql_records == []
    with db_session(sql_debug=True):
        Person[1]
    assert len(sql_records) == 1
    assert sql_records[0].startswith('SELECT "id", "name", "email", "age", "score" FROM "person"')
    assert sql_records[0].split("\n")[1].endswith(" ms")  # the timing: no parameters without show_values
    with db_session:
        Person.get(name="Ann")
    assert len(sql_records) == 1


def test_sql_debug_in_nested_session_is_popped(ann: type, sql_records: list[str]) -> None:
    """A nested ``db_session(sql_debug=True)`` logs inside itself and stops at its exit."""
    Person = ann
    with db_session:
        with db_session(sql_debug=True):
            Person[1]
        assert len(sql_records) == 1
        Person.get(name="Ann")
    assert len(sql_records) == 1


def test_sql_debug_show_values_adds_parameters(ann: type, sql_records: list[str]) -> None:
    """``show_values=True`` puts the statement's parameters on the line after the SQL."""
    Person = ann
    with db_session(sql_debug=True, show_values=True):
        Person[1]
    assert len(sql_records) == 1
    sql, params, timing = sql_records[0].split("\n")
    assert sql.startswith("SELECT") and with_qmarks(sql).endswith('"id" = ?')
    assert params == "[1]"
    assert re.fullmatch(r"-- \d+\.\d{3} ms", timing)


def test_set_sql_debug_switches_logging(ann: type, sql_records: list[str]) -> None:
    """``set_sql_debug(True[, show_values])`` logs every statement until ``set_sql_debug(False)``."""
    Person = ann
    set_sql_debug(True)
    with db_session:
        Person[1]
    assert len(sql_records) == 1 and len(sql_records[0].split("\n")) == 2  # the SQL and its timing
    set_sql_debug(True, show_values=True)
    with db_session:
        Person.get(name="Ann")
    assert len(sql_records) == 2 and "'Ann'" in sql_records[1].split("\n")[1]
    set_sql_debug(False)
    with db_session:
        Person[1]
    assert len(sql_records) == 2


def test_sql_debug_false_session_silences_global_debug(ann: type, sql_records: list[str]) -> None:
    """``db_session(sql_debug=False)`` turns global logging off for that session only."""
    Person = ann
    set_sql_debug(True)
    with db_session(sql_debug=False):
        Person[1]
    assert sql_records == []
    with db_session:
        Person[1]
    assert len(sql_records) == 1


# -- make_proxy / EntityProxy --------------------------------------------------------------------


def test_proxy_works_in_later_session(ann: type, other_connection: Any) -> None:
    """A proxy made in one session reads, writes (committed), get()s and exists() in a later one."""
    Person = ann
    with db_session:
        proxy = make_proxy(Person[1])
    assert isinstance(proxy, EntityProxy)
    assert repr(proxy) == "<EntityProxy(Person[1])>"
    with db_session:
        assert proxy.name == "Ann"
        proxy.age = 40
        assert proxy.get() is Person[1]
        assert Person[1].age == 40
        assert proxy.exists() is True
    assert rows(other_connection, "SELECT age FROM person") == [40]


def test_proxy_equality(ann: type) -> None:
    """Proxies equal proxies and objects of the same entity and pk, and nothing else."""
    Person = ann
    with db_session:
        Person(name="Bob")
    with db_session:
        proxy = make_proxy(Person[1])
        assert proxy == make_proxy(Person[1])
        assert not proxy != make_proxy(Person[1])
        assert proxy != make_proxy(Person[2])
        assert proxy == Person[1]
        assert proxy != Person[2]
        assert proxy != 1
    with db_session:
        assert proxy == Person[1]  # an object of a later session


def test_proxy_exists_false_when_row_deleted(ann: type, other_connection: Any) -> None:
    """``exists()`` is False once the row was deleted elsewhere."""
    Person = ann
    with db_session:
        proxy = make_proxy(Person[1])
    other_connection.execute("DELETE FROM person")
    with db_session:
        assert proxy.exists() is False


def test_proxy_of_new_object_flushes_for_pk(Person: type) -> None:
    """``make_proxy`` of a new object flushes it to learn its auto pk."""
    with db_session:
        p = Person(name="New")
        proxy = make_proxy(p)
        assert repr(p) == "Person[1]"
        assert repr(proxy) == "<EntityProxy(Person[1])>"
        assert proxy == p
    with db_session:
        assert proxy.name == "New"
        assert proxy.get().id == 1


def test_proxy_outside_session_raises(ann: type) -> None:
    """Using a proxy outside any session raises TransactionError with Pony's message."""
    Person = ann
    with db_session:
        proxy = make_proxy(Person[1])
    with pytest.raises(TransactionError) as info:
        proxy.name  # noqa: B018
    assert str(info.value) == NO_SESSION
    with pytest.raises(TransactionError, match=re.escape(NO_SESSION)):
        proxy.get()
    with pytest.raises(TransactionError, match=re.escape(NO_SESSION)):
        proxy.age = 3


# -- with_transaction ----------------------------------------------------------------------------


def test_with_transaction_is_deprecated_db_session(Person: type, other_connection: Any) -> None:
    """``with_transaction`` warns (DeprecationWarning, Pony's text) and then acts like db_session."""
    message = "@with_transaction decorator is deprecated, use @db_session decorator instead"
    with pytest.warns(DeprecationWarning, match=re.escape(message)):

        @with_transaction
        def create() -> int:
            Person(name="Ann")
            return 5

    assert create() == 5
    with pytest.warns(DeprecationWarning, match=re.escape(message)):
        manager = with_transaction(allowed_exceptions=[ValueError])
    with pytest.raises(ValueError):
        with manager:
            Person(name="Bob")
            raise ValueError
    assert rows(other_connection) == ["Ann", "Bob"]


# -- isolation per thread and per task -----------------------------------------------------------


def test_threads_have_separate_identity_maps(ann: type) -> None:
    """Two threads in sessions at the same time get different objects for the same row."""
    Person = ann
    barrier = threading.Barrier(2, timeout=10)
    seen: dict[int, tuple[Any, Any, str]] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with db_session:
                p = Person[1]
                if i == 0:
                    p.name = "Local0"  # unflushed: invisible to the other thread's session
                barrier.wait()
                seen[i] = (p, Person[1], Person[1].name)
                barrier.wait()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert seen[0][0] is seen[0][1] and seen[1][0] is seen[1][1]
    assert seen[0][0] is not seen[1][0]
    assert (seen[0][2], seen[1][2]) == ("Local0", "Ann")


def test_thread_does_not_inherit_session(ann: type) -> None:
    """A thread started inside a session has no session of its own."""
    Person = ann
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            Person[1]
        except BaseException as exc:
            errors.append(exc)

    with db_session:
        Person[1]
        t = threading.Thread(target=worker)
        t.start()
        t.join(20)
    assert len(errors) == 1
    assert isinstance(errors[0], TransactionError) and str(errors[0]) == NO_SESSION


def test_child_task_session_has_own_identity_map(ann: type) -> None:
    """A task created inside another task's session gets its own identity map in its own session."""
    Person = ann

    async def child() -> Any:
        async with db_session:
            await asyncio.sleep(0)
            return Person[1]

    async def parent() -> tuple[Any, Any, Any]:
        async with db_session:
            mine = Person[1]
            theirs = await asyncio.create_task(child())
            return mine, theirs, Person[1]

    mine, theirs, again = asyncio.run(parent())
    assert theirs is not mine
    assert again is mine


def test_child_task_without_session_does_not_borrow_parent_session(ann: type) -> None:
    """A task created inside a session cannot use that session: it needs its own db_session."""
    Person = ann

    async def child() -> Any:
        return Person[1]

    async def parent() -> None:
        async with db_session:
            Person[1]
            with pytest.raises(TransactionError, match=re.escape(NO_SESSION)):
                await asyncio.create_task(child())

    asyncio.run(parent())


def test_child_task_session_commits_independently(ann: type, other_connection: Any) -> None:
    """A child task's session commits at its own exit while the parent's session is still open."""
    Person = ann

    async def child() -> Any:
        async with db_session:
            return Person(name="Child")

    async def parent() -> None:
        async with db_session:
            Person[1]
            made = await asyncio.create_task(child())
            assert rows(other_connection) == ["Ann", "Child"]
            found = Person.get(name="Child")
            assert found is not None and found is not made

    asyncio.run(parent())


def test_sibling_tasks_have_separate_identity_maps(ann: type) -> None:
    """Two concurrent tasks on one loop, each in its own session, never share objects."""
    Person = ann

    async def worker() -> tuple[Any, Any]:
        async with db_session:
            first = Person[1]
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return first, Person[1]

    async def main() -> list[tuple[Any, Any]]:
        return await asyncio.gather(worker(), worker())

    (a1, a2), (b1, b2) = asyncio.run(main())
    assert a1 is a2 and b1 is b2
    assert a1 is not b1


def test_concurrent_task_sessions_do_not_see_uncommitted_writes(ann: type) -> None:
    """A task's session never reads rows another task's session flushed but did not commit."""
    Person = ann

    async def main() -> list[str]:
        flushed = asyncio.Event()
        read = asyncio.Event()

        async def writer() -> None:
            with pytest.raises(ValueError):
                async with db_session:
                    Person(name="Uncommitted")
                    flush()
                    flushed.set()
                    await read.wait()
                    raise ValueError("roll back")

        async def reader() -> list[str]:
            await flushed.wait()
            async with db_session:
                seen = [p.name for p in Person.select()]
            read.set()
            return seen

        _, seen = await asyncio.gather(writer(), reader())
        return seen

    assert asyncio.run(main()) == ["Ann"]


@pytest.mark.sqlite_only
def test_task_sessions_share_memory_database_without_deadlock() -> None:
    """Two tasks on one loop, each in a session on a ``:memory:`` database, both finish."""
    memory = Database("sqlite", ":memory:")

    class Item(memory.Entity):
        name = Required(str)

    memory.generate_mapping(create_tables=True)
    with db_session:
        Item(name="a")
    outcome: list[Any] = []

    async def worker() -> Any:
        async with db_session:
            item = Item[1]
            await asyncio.sleep(0)
            assert Item[1] is item
            return item

    async def main() -> list[Any]:
        return await asyncio.gather(worker(), worker())

    def run() -> None:
        try:
            outcome.append(asyncio.run(main()))
        except BaseException as exc:
            outcome.append(exc)

    # a daemon thread, so a deadlock fails this test instead of hanging the suite
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "two task sessions on one :memory: database deadlocked"
    (first, second) = outcome[0]
    assert first is not second and first.name == second.name == "a"


# -- the hot path in use -------------------------------------------------------------------------


def test_loaded_hot_path_matches_environment(implementation: str, ann: type) -> None:
    """The pure twin is used under NEXTORM_NO_EXTENSIONS=1, else the compiled module whenever it imports."""
    if os.environ.get("NEXTORM_NO_EXTENSIONS", "") not in ("", "0"):
        expected = "pure"
    else:
        try:
            importlib.import_module("nextorm._speedups")
        except ImportError:
            expected = "pure"
        else:
            expected = "compiled"
    assert implementation == expected
    module = "nextorm._speedups" if expected == "compiled" else "nextorm._speedups_py"
    with db_session:
        p = ann[1]
        assert isinstance(p, importlib.import_module(module).EntityBase)
    assert nextorm.COMPILED is (expected == "compiled")


def test_a_session_nothing_was_kept_from_is_freed_as_it_ends(ann: type) -> None:
    """When the application kept none of a session's objects, the session, its cache and its
    objects (unique indexes included) are freed as it ends, by reference counting: the cyclic GC
    is off here. One object kept keeps the session's maps, so that its loaded references still
    read their objects, until it is dropped."""
    Person = ann
    with db_session:
        Person(name="Bo", email="bo@x")
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        with db_session:
            assert Person.get(email="bo@x").name == "Bo"  # the unique index is built and read
            assert len(Person.select()[:]) == 2
            session = weakref.ref(active_session())
            cache = weakref.ref(active_session().cache_for(Person._database_))
        assert session() is None and cache() is None
        with db_session:
            kept = Person.select().order_by(Person.id)[:][0]
            session = weakref.ref(active_session())
        assert session() is not None and gc.is_tracked(kept)
        assert kept.name == "Ann" and Person._root_ in session().maps  # type: ignore[union-attr]
        del kept
        gc.collect()
        assert session() is None
    finally:
        if enabled:
            gc.enable()


def test_objects_leaving_a_session_go_back_to_the_gc(ann: type) -> None:
    """Objects a session loaded are tracked by the cyclic GC again once they leave it (expunged,
    deleted, rolled back, or at the session's end), so a finished session and its objects, which
    refer to each other, are freed once nothing else holds them."""
    Person = ann
    with db_session:
        for name in ("Bo", "Cy", "Di"):
            Person(name=name)
    with db_session:
        first, bo, cy, di = Person.select().order_by(Person.id)[:]
        expunge(bo)
        cy.delete()
        flush()
        assert gc.is_tracked(bo) and gc.is_tracked(cy)
        session = weakref.ref(active_session())
    assert gc.is_tracked(first) and gc.is_tracked(di) and first.name == "Ann"
    with db_session:
        loaded = Person.select()[:]
        rollback()
        assert all(gc.is_tracked(obj) for obj in loaded)
    del first, bo, cy, di, loaded
    gc.collect()
    assert session() is None
