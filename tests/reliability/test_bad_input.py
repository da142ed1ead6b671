"""Bad input is refused with a documented error before anything is written, and leaves the database as it was."""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from nextorm import (
    AttributeTypeError,
    CacheIndexError,
    Database,
    DatabaseError,
    DatabaseSessionIsOver,
    Json,
    ObjectNotFound,
    OperationWithDeletedObjectError,
    OptimisticCheckError,
    Optional,
    OrmError,
    PendingRollbackError,
    PrimaryKey,
    ReadOnlyAttributeError,
    Required,
    Set,
    TransactionError,
    TransactionIntegrityError,
    UnknownAttributeError,
    ValidationError,
    commit,
    db_session,
    desc,
    flush,
    rollback,
)

#: a stored name that is an injection attempt: it must only ever be matched literally
INJECTION = "Robert'); DROP TABLE person;--"
#: a value that widens a WHERE clause if spliced into SQL text
ALWAYS_TRUE = "' OR '1'='1"
AWARE = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
NAIVE = datetime(2024, 1, 1, 12, 0)
#: the seeded rows: Person ids 1-5, Post 1 by Ann, Tag 1 linked to Ann, Tag 2 unlinked
NAMES = ["Ann", INJECTION, "100%_done", "100xxdone", 'back\\slash "q"']
WRITES = ("INSERT", "UPDATE", "DELETE", "EXECUTEMANY")


# -- the schema, the seed rows and the snapshot --------------------------------------------------

POSTGRES_DSN = os.environ.get("NEXTORM_TEST_POSTGRES", "")
#: the hooks a case may assign to an entity class; removed after every test
HOOKS = ("before_insert", "after_insert", "before_update", "after_update", "before_delete", "after_delete")


class PlainClient:
    """Another client of the test database (not nextorm): autocommit, ``?`` placeholders on both kinds."""

    def __init__(self, kind: str, path: str, schema: str | None) -> None:
        self.kind = kind
        if kind == "postgres":
            import psycopg

            self.conn: Any = psycopg.connect(
                POSTGRES_DSN, autocommit=True, options=f"-c search_path={schema}"
            )
        else:
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=5)

    def execute(self, sql: str, params: Any = ()) -> Any:
        """Run one statement; returns the cursor."""
        if self.kind == "postgres":
            sql = sql.replace("%", "%%").replace("?", "%s")
        return self.conn.execute(sql, params)


@dataclass
class Env:
    """The database under test, its entities, its kind ('sqlite' or 'postgres') and another client of it."""

    db: Database
    kind: str
    Person: Any
    Post: Any
    Tag: Any
    client: PlainClient


def declare(db: Database) -> tuple[Any, Any, Any]:
    """Person/Post/Tag: every column type, limits, a unique key, one-to-many and many-to-many."""

    class Person(db.Entity):
        _table_ = "person"
        id = PrimaryKey(int, auto=True)
        name = Required(str, max_len=40)
        email = Optional(str, unique=True)
        age = Required(int, min=0, max=150, default=0)
        counter = Optional(int)
        score = Required(float, default=0.0)
        rating = Optional(float, min=0, max=5)
        price = Optional(Decimal)
        born = Optional(datetime)
        seen = Optional(datetime, tz_aware=True)
        birthday = Optional(date)
        active = Optional(bool)
        photo = Optional(bytes, max_len=8)
        token = Optional(UUID)
        meta = Optional(Json)
        posts = Set("Post")
        tags = Set("Tag")

    class Post(db.Entity):
        _table_ = "post"
        title = Required(str)
        author = Required(Person)

    class Tag(db.Entity):
        _table_ = "tag"
        label = Required(str, unique=True)
        persons = Set(Person)

    db.generate_mapping(create_tables=True)
    return Person, Post, Tag


class Databases:
    """One mapped database per kind, made on first use and kept for the module (a fresh one per case is slow)."""

    def __init__(self, directory: Any) -> None:
        self.directory = directory
        self.envs: dict[str, Env] = {}
        self.seeded: dict[str, Any] = {}
        self.schemas: list[str] = []

    def get(self, kind: str) -> Env:
        """The database of ``kind`` holding exactly the seed rows (reset only when a test changed them)."""
        e = self.envs.get(kind)
        if e is None:
            e = self.envs[kind] = self._make(kind)
        if self.seeded.get(kind) != snapshot(e.client, e):
            reset(e)
            self.seeded[kind] = snapshot(e.client, e)
        return e

    def _make(self, kind: str) -> Env:
        if kind == "postgres":
            import psycopg

            schema = f"t_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
                admin.execute(f'CREATE SCHEMA "{schema}"')
            self.schemas.append(schema)
            db = Database("postgres", dsn=POSTGRES_DSN, options=f"-c search_path={schema}")
            client = PlainClient(kind, "", schema)
        else:
            path = str(self.directory / "test.sqlite")
            db = Database("sqlite", path, create_db=True)
            client = PlainClient(kind, path, None)
        return Env(db, kind, *declare(db), client)

    def close(self) -> None:
        """Close every connection and drop the PostgreSQL schemas."""
        for e in self.envs.values():
            e.client.conn.close()
            e.db.disconnect()
        if self.schemas:
            import psycopg

            with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
                for schema in self.schemas:
                    admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def reset(e: Env) -> None:
    """Delete every row (restarting the auto keys), then insert the seed rows with nextorm and commit."""
    tables = ["person", "post", "tag", e.Person.tags.join_table]
    if e.kind == "postgres":
        e.client.execute(f"TRUNCATE {', '.join(f'{chr(34)}{t}{chr(34)}' for t in tables)} RESTART IDENTITY")
    else:
        e.client.execute("BEGIN IMMEDIATE")
        for table in [*tables, "sqlite_sequence"]:
            e.client.execute(f'DELETE FROM "{table}"')
        e.client.execute("COMMIT")
    with db_session:
        people = [e.Person(name=name, age=20 + i, email=f"p{i}@example.com") for i, name in enumerate(NAMES)]
        people[1].email = "x'--"
        e.Post(title="Hello", author=people[0])
        e.Tag(label="t1", persons=[people[0]])
        e.Tag(label="t2")


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """The module's databases, one per kind."""
    made = Databases(tmp_path_factory.mktemp("bad_input"))
    yield made
    made.close()


@pytest.fixture
def env(databases: Databases, db_kind: str) -> Iterator[Env]:
    """The kind's database holding just the seed rows; hooks a case assigned are removed afterwards."""
    e = databases.get(db_kind)
    yield e
    for entity in (e.Person, e.Post, e.Tag):
        for hook in HOOKS:
            if hook in entity.__dict__:
                delattr(entity, hook)


@pytest.fixture
def other_client(env: Env) -> PlainClient:
    """Another client of the test database, which takes the snapshots."""
    return env.client


def snapshot(conn: Any, e: Env) -> dict[str, Any]:
    """Every table of the test database and every row in it, read by another client."""
    if e.kind == "sqlite":
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
        ]
    else:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
            )
        ]
    return {t: sorted((tuple(r) for r in conn.execute(f'SELECT * FROM "{t}"')), key=repr) for t in tables}


def writes(statements: list[str]) -> list[str]:
    """The statements that change data."""
    return [s for s in statements if s.lstrip().upper().startswith(WRITES)]


# -- case tables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    """Bad input: ``act`` raises an error that is an instance of every class in ``raises``.

    Its message contains every string in ``names`` (entity, attribute, value where they apply).
    ``setup`` runs outside any session first and returns a context for ``act``; ``in_session``
    says whether ``act`` runs inside a db_session (which then commits). ``by_database``: the
    database, not nextorm, detects the problem, so statements ran, but were rolled back.
    """

    act: Callable[[Env, Any], Any]
    raises: tuple[type[BaseException], ...]
    names: tuple[str, ...] = ()
    setup: Callable[[Env], Any] | None = None
    in_session: bool = True
    by_database: bool = False


@dataclass(frozen=True)
class BoundValue:
    """SQL metacharacters in a value: ``act`` returns what the value matches, taken literally."""

    act: Callable[[Env], Any]
    expected: Any


def bad(entity: str, attr: str, value: Any) -> tuple[str, ...]:
    """The message fragments naming ``entity.attr`` and ``value``."""
    return (entity, attr, repr(value))


def new_person(**values: Any) -> Callable[[Env, Any], Any]:
    """An act creating a Person named Zed with ``values``."""
    return lambda e, c: e.Person(**{"name": "Zed", **values})


def person_gets(
    attr: str, value: Any, raises: type[BaseException], label: str, shown: Any = None
) -> list[Any]:
    """Cases giving ``value`` to Person.``attr`` in the constructor, by assignment and by ``set()``.

    The message must show ``shown`` (default: ``value``), the value as the attribute converted it.
    """
    names = bad("Person", attr, value if shown is None else shown)
    return [
        pytest.param(Rejected(new_person(**{attr: value}), (raises,), names), id=f"new-{attr}-{label}"),
        pytest.param(
            Rejected(lambda e, c: setattr(e.Person[1], attr, value), (raises,), names),
            id=f"assign-{attr}-{label}",
        ),
        pytest.param(
            Rejected(lambda e, c: e.Person[1].set(**{"active": True, attr: value}), (raises,), names),
            id=f"set-{attr}-{label}",
        ),
    ]


def case(
    case_id: str, act: Callable[[Env, Any], Any], raises: Any, names: tuple[str, ...] = (), **kw: Any
) -> Any:
    """One Rejected case with its test id."""
    return pytest.param(
        Rejected(act, raises if isinstance(raises, tuple) else (raises,), names, **kw), id=case_id
    )


# -- wrong types ------------------------------------------------------------------------------------

#: A value of the wrong type for an attribute raises AttributeTypeError wherever it is given: constructor,
#: assignment, set(), keyword and expression filters, Entity[key]. Misused query-building arguments (in_()
#: of a non-collection, startswith() of a non-str, a str as a condition) raise an OrmError that is also the
#: TypeError they were before, since README promises an OrmError subclass for every mistake.
WRONG_TYPES = [
    *person_gets("age", "thirty", AttributeTypeError, "str-for-int"),
    *person_gets("counter", True, AttributeTypeError, "bool-for-int"),
    *person_gets("counter", 30.5, AttributeTypeError, "float-for-int"),
    *person_gets("counter", Decimal("30"), AttributeTypeError, "decimal-for-int"),
    *person_gets("name", 123, AttributeTypeError, "int-for-str"),
    *person_gets("name", b"\xff\xfe", AttributeTypeError, "invalid-bytes-for-str"),
    *person_gets("email", bytearray(b"a@b"), AttributeTypeError, "bytearray-for-str"),
    *person_gets("score", "1.5.0", AttributeTypeError, "str-for-float"),
    *person_gets("score", True, AttributeTypeError, "bool-for-float"),
    *person_gets("active", 1, AttributeTypeError, "int-for-bool"),
    *person_gets("active", "yes", AttributeTypeError, "str-for-bool"),
    *person_gets("price", float("nan"), ValidationError, "nan-for-decimal"),
    *person_gets("price", "1.1.1", ValidationError, "garbage-for-decimal"),
    *person_gets("born", "2024-13-45 99:00", AttributeTypeError, "str-for-datetime"),
    *person_gets("born", date(2024, 1, 1), AttributeTypeError, "date-for-datetime"),
    *person_gets("birthday", 20240101, AttributeTypeError, "int-for-date"),
    *person_gets("photo", "abc", AttributeTypeError, "str-for-bytes"),
    *person_gets("token", 123, AttributeTypeError, "int-for-uuid"),
    *person_gets("token", "not-a-uuid", ValidationError, "garbage-for-uuid"),
    *person_gets("meta", {1, 2}, ValidationError, "set-for-json"),
    *person_gets("meta", {"k": b"\xff"}, ValidationError, "bytes-in-json"),
    case(
        "new-author-str-for-reference",
        lambda e, c: e.Post(title="x", author="Ann"),
        AttributeTypeError,
        bad("Post", "author", "Ann"),
    ),
    case(
        "new-author-float-for-reference",
        lambda e, c: e.Post(title="x", author=1.0),
        AttributeTypeError,
        bad("Post", "author", 1.0),
    ),
    case(
        "new-author-wrong-entity",
        lambda e, c: e.Post(title="x", author=e.Tag[1]),
        AttributeTypeError,
        ("Post", "author", "Tag[1]"),
    ),
    case(
        "assign-author-wrong-entity",
        lambda e, c: setattr(e.Post[1], "author", e.Tag[1]),
        AttributeTypeError,
        ("Post", "author", "Tag[1]"),
    ),
    case(
        "new-collection-item-wrong-entity",
        lambda e, c: e.Person(name="Zed", tags=[e.Post[1]]),
        AttributeTypeError,
        ("Person", "tags", "Post[1]"),
    ),
    case(
        "add-collection-item-wrong-entity",
        lambda e, c: e.Person[1].tags.add(e.Post[1]),
        AttributeTypeError,
        ("Person", "tags", "Post[1]"),
    ),
    case(
        "assign-collection-int-items",
        lambda e, c: setattr(e.Person[1], "tags", [2]),
        AttributeTypeError,
        ("Person", "tags", "2"),
    ),
    case("new-required-none", new_person(name=None), ValidationError, ("Person", "name")),
    case("new-required-missing", lambda e, c: e.Person(age=3), ValidationError, ("Person", "name")),
    case("new-required-empty-str", new_person(name=""), ValidationError, ("Person", "name")),
    case(
        "new-required-reference-none",
        lambda e, c: e.Post(title="x", author=None),
        ValidationError,
        ("Post", "author"),
    ),
    case(
        "assign-required-none",
        lambda e, c: setattr(e.Person[1], "name", None),
        ValidationError,
        ("Person[1]", "name"),
    ),
    case(
        "assign-primary-key",
        lambda e, c: setattr(e.Person[1], "id", 99),
        ReadOnlyAttributeError,
        bad("Person", "id", 99),
    ),
    case(
        "set-primary-key",
        lambda e, c: e.Person[1].set(name="Zed", id=99),
        ReadOnlyAttributeError,
        bad("Person", "id", 99),
    ),
    case(
        "filter-expr-str-for-int",
        lambda e, c: e.Person.select(e.Person.age == "thirty"),
        AttributeTypeError,
        bad("Person", "age", "thirty"),
    ),
    case(
        "filter-expr-str-for-datetime",
        lambda e, c: e.Person.select(e.Person.born < "2024"),
        AttributeTypeError,
        bad("Person", "born", "2024"),
    ),
    case(
        "filter-keyword-str-for-int",
        lambda e, c: e.Person.select(age="thirty"),
        AttributeTypeError,
        bad("Person", "age", "thirty"),
    ),
    case(
        "get-keyword-str-for-int",
        lambda e, c: e.Person.get(age="thirty"),
        AttributeTypeError,
        bad("Person", "age", "thirty"),
    ),
    case(
        "exists-keyword-str-for-int",
        lambda e, c: e.Person.exists(age="thirty"),
        AttributeTypeError,
        bad("Person", "age", "thirty"),
    ),
    case(
        "refine-keyword-str-for-int",
        lambda e, c: e.Person.select().filter(age="thirty"),
        AttributeTypeError,
        bad("Person", "age", "thirty"),
    ),
    case(
        "filter-in-item-wrong-type",
        lambda e, c: e.Person.age.in_([1, "x"]),
        AttributeTypeError,
        bad("Person", "age", "x"),
    ),
    case(
        "filter-in-not-a-collection",
        lambda e, c: e.Person.age.in_(5),
        AttributeTypeError,
        bad("Person", "age", 5),
    ),
    case(
        "filter-in-str-not-a-collection",
        lambda e, c: e.Person.name.in_("Ann"),
        AttributeTypeError,
        bad("Person", "name", "Ann"),
    ),
    case(
        "filter-keyword-invalid-bytes-for-str",
        lambda e, c: e.Person.get(name=b"\xff\xfe"),
        AttributeTypeError,
        bad("Person", "name", b"\xff\xfe"),
    ),
    case(
        "filter-startswith-bytes",
        lambda e, c: e.Person.name.startswith(b"\xff"),
        AttributeTypeError,
        bad("Person", "name", b"\xff"),
    ),
    case(
        "filter-contains-int",
        lambda e, c: e.Person.name.contains(1),
        AttributeTypeError,
        bad("Person", "name", 1),
    ),
    case(
        "filter-startswith-on-int-attribute",
        lambda e, c: e.Person.age.startswith("1"),
        (OrmError, TypeError),
        bad("Person", "age", "1"),
    ),
    case(
        "filter-is-not-none",
        lambda e, c: e.Person.email.is_("x"),
        (OrmError, TypeError),
        bad("Person", "email", "x"),
    ),
    case(
        "filter-reference-wrong-entity",
        lambda e, c: e.Post.select(e.Post.author == e.Tag[1]),
        AttributeTypeError,
        ("Post", "author", "Tag[1]"),
    ),
    case(
        "filter-raw-sql-string-as-condition",
        lambda e, c: e.Person.select("name = 'x' OR 1=1"),
        (OrmError, TypeError),
        ("name = 'x' OR 1=1",),
    ),
    case(
        "lookup-str-key",
        lambda e, c: e.Person["1 OR 1=1"],
        AttributeTypeError,
        bad("Person", "id", "1 OR 1=1"),
    ),
    case("lookup-float-key", lambda e, c: e.Person[1.5], AttributeTypeError, bad("Person", "id", 1.5)),
    case("lookup-bool-key", lambda e, c: e.Person[True], AttributeTypeError, bad("Person", "id", True)),
    case("lookup-none-key", lambda e, c: e.Person[None], ValidationError, ("Person",)),
    case("lookup-missing-row", lambda e, c: e.Person[999], ObjectNotFound, ("Person[999]",)),
    case(
        "get-primary-key-str",
        lambda e, c: e.Person.get(id="1; DROP TABLE person"),
        AttributeTypeError,
        bad("Person", "id", "1; DROP TABLE person"),
    ),
]

# -- out-of-range values -----------------------------------------------------------------------------

#: Out-of-range values raise ValidationError before any SQL: ints beyond 64 bits, min/max, NaN/inf, a
#: Decimal beyond the column's precision, too-long str/bytes. A filter value is validated like an assignment
#: (a too-long or out-of-range value in a filter raises rather than silently matching nothing), and limit/
#: offset/slice/order_by arguments raise an OrmError that is also the ValueError/TypeError they were before.
OUT_OF_RANGE = [
    *person_gets("counter", 2**63, ValidationError, "int64-max-plus-1"),
    *person_gets("counter", -(2**63) - 1, ValidationError, "int64-min-minus-1"),
    *person_gets("counter", 10**30, ValidationError, "int-beyond-64-bits"),
    *person_gets("age", -1, ValidationError, "below-min"),
    *person_gets("age", 151, ValidationError, "above-max"),
    *person_gets("rating", -0.5, ValidationError, "float-below-min"),
    *person_gets("rating", 5.5, ValidationError, "float-above-max"),
    *person_gets("score", math.nan, ValidationError, "nan"),
    *person_gets("score", math.inf, ValidationError, "inf"),
    *person_gets("rating", -math.inf, ValidationError, "minus-inf"),
    *person_gets("price", Decimal("NaN"), ValidationError, "decimal-nan"),
    *person_gets("price", Decimal("-Infinity"), ValidationError, "decimal-inf"),
    *person_gets("price", Decimal("1e10"), ValidationError, "decimal-beyond-precision"),
    *person_gets("meta", {"x": math.nan}, ValidationError, "nan-in-json"),
    *person_gets("name", "x" * 41, ValidationError, "too-long-str"),
    *person_gets("name", "é" * 41, ValidationError, "too-long-multibyte-str"),
    *person_gets("photo", b"\x00" * 9, ValidationError, "too-long-bytes"),
    *person_gets("photo", bytearray(9), ValidationError, "too-long-bytearray", shown=bytes(9)),
    case(
        "filter-int64-overflow",
        lambda e, c: e.Person.select(e.Person.counter > 2**63),
        ValidationError,
        bad("Person", "counter", 2**63),
    ),
    case(
        "filter-in-int64-overflow",
        lambda e, c: e.Person.counter.in_([1, 2**64]),
        ValidationError,
        bad("Person", "counter", 2**64),
    ),
    case(
        "filter-keyword-int64-overflow",
        lambda e, c: e.Person.get(counter=-(2**70)),
        ValidationError,
        bad("Person", "counter", -(2**70)),
    ),
    case("lookup-int64-overflow", lambda e, c: e.Person[2**64], ValidationError, bad("Person", "id", 2**64)),
    case(
        "filter-nan",
        lambda e, c: e.Person.select(e.Person.score > math.nan),
        ValidationError,
        bad("Person", "score", math.nan),
    ),
    case(
        "filter-inf",
        lambda e, c: e.Person.select(score=math.inf),
        ValidationError,
        bad("Person", "score", math.inf),
    ),
    case(
        "filter-too-long-str",
        lambda e, c: e.Person.select(name="x" * 41),
        ValidationError,
        bad("Person", "name", "x" * 41),
    ),
    case("limit-negative", lambda e, c: e.Person.select().limit(-1), (OrmError, ValueError), ("limit", "-1")),
    case(
        "limit-str",
        lambda e, c: e.Person.select().limit("1; DROP TABLE person"),
        (OrmError, ValueError),
        ("limit", "1; DROP TABLE person"),
    ),
    case(
        "limit-beyond-64-bits",
        lambda e, c: e.Person.select().limit(2**64)[:],
        (OrmError, ValueError),
        ("limit", str(2**64)),
    ),
    case(
        "offset-negative",
        lambda e, c: e.Person.select().limit(5, -1),
        (OrmError, ValueError),
        ("offset", "-1"),
    ),
    case("slice-str-stop", lambda e, c: e.Person.select()[0:"5"], (OrmError, TypeError), ("'5'",)),
    case(
        "index-str",
        lambda e, c: e.Person.select()["1; DROP TABLE person"],
        (OrmError, TypeError),
        ("1; DROP TABLE person",),
    ),
    case(
        "order-by-str",
        lambda e, c: e.Person.select().order_by("name; DROP TABLE person"),
        (OrmError, TypeError),
        ("Person", "name; DROP TABLE person"),
    ),
    case(
        "order-by-other-entity-attribute",
        lambda e, c: e.Person.select().order_by(e.Post.title),
        (OrmError, TypeError),
        ("Person", "Post.title"),
    ),
    case(
        "order-by-other-entity-attribute-desc",
        lambda e, c: e.Person.select().order_by(desc(e.Post.title))[:],
        (OrmError, TypeError),
        ("Person", "Post.title"),
    ),
]

# -- naive/aware datetimes ---------------------------------------------------------------------------

#: A naive datetime for a tz_aware attribute, or an aware one for a naive attribute, raises ValidationError.
DATETIMES = [
    *person_gets("born", AWARE, ValidationError, "aware-for-naive"),
    *person_gets("seen", NAIVE, ValidationError, "naive-for-aware"),
    case(
        "filter-aware-for-naive",
        lambda e, c: e.Person.select(e.Person.born < AWARE),
        ValidationError,
        bad("Person", "born", AWARE),
    ),
    case(
        "filter-naive-for-aware",
        lambda e, c: e.Person.select(e.Person.seen == NAIVE),
        ValidationError,
        bad("Person", "seen", NAIVE),
    ),
    case(
        "filter-keyword-naive-for-aware",
        lambda e, c: e.Person.get(seen=NAIVE),
        ValidationError,
        bad("Person", "seen", NAIVE),
    ),
    case(
        "filter-in-aware-for-naive",
        lambda e, c: e.Person.born.in_([NAIVE, AWARE]),
        ValidationError,
        bad("Person", "born", AWARE),
    ),
]

# -- text that is not valid Unicode / UTF-8 -----------------------------------------------------------

#: Text every supported database can store: a lone surrogate (also inside Json, and in startswith/endswith/
#: contains arguments) or a NUL character raises ValidationError before any SQL, on SQLite as on PostgreSQL.
#: A raw-SQL parameter goes to the driver unchecked; its encoding error is a DatabaseError.
UNICODE = [
    *person_gets("name", "\ud800", ValidationError, "lone-high-surrogate"),
    *person_gets("email", "a\udcffb", ValidationError, "surrogate-escape"),
    *person_gets("meta", {"k": "\ud800"}, ValidationError, "lone-surrogate-in-json"),
    *person_gets("name", "Z\x00ed", ValidationError, "nul-char"),
    case(
        "filter-lone-surrogate",
        lambda e, c: e.Person.select(e.Person.name == "\udfff"),
        ValidationError,
        bad("Person", "name", "\udfff"),
    ),
    case(
        "filter-keyword-lone-surrogate",
        lambda e, c: e.Person.get(name="\ud800"),
        ValidationError,
        bad("Person", "name", "\ud800"),
    ),
    case(
        "filter-in-lone-surrogate",
        lambda e, c: e.Person.name.in_(["Ann", "\ud800"]),
        ValidationError,
        bad("Person", "name", "\ud800"),
    ),
    case(
        "filter-startswith-lone-surrogate",
        lambda e, c: e.Person.select(e.Person.name.startswith("\ud800"))[:],
        ValidationError,
        bad("Person", "name", "\ud800"),
    ),
    case(
        "filter-endswith-lone-surrogate",
        lambda e, c: e.Person.select(e.Person.name.endswith("a\ud800"))[:],
        ValidationError,
        bad("Person", "name", "a\ud800"),
    ),
    case(
        "filter-contains-lone-surrogate",
        lambda e, c: e.Person.select(e.Person.name.contains("\ud800"))[:],
        ValidationError,
        bad("Person", "name", "\ud800"),
    ),
    case(
        "raw-param-lone-surrogate",
        lambda e, c: e.db.select("SELECT name FROM person WHERE name = $x", {"x": "\ud800"}),
        DatabaseError,
        ("\\ud800",),
    ),
]

# -- unknown attributes -------------------------------------------------------------------------------

#: An unknown keyword raises UnknownAttributeError naming entity, keyword and value; so does a condition or
#: an order on an attribute of another entity (it would query a column of the wrong table).
UNKNOWN = [
    case(
        "new-unknown",
        lambda e, c: e.Person(name="Zed", nmae="x"),
        UnknownAttributeError,
        bad("Person", "nmae", "x"),
    ),
    case(
        "get-unknown", lambda e, c: e.Person.get(nmae="x"), UnknownAttributeError, bad("Person", "nmae", "x")
    ),
    case(
        "select-unknown",
        lambda e, c: e.Person.select(nmae="x"),
        UnknownAttributeError,
        bad("Person", "nmae", "x"),
    ),
    case(
        "exists-unknown",
        lambda e, c: e.Person.exists(nmae="x"),
        UnknownAttributeError,
        bad("Person", "nmae", "x"),
    ),
    case(
        "refine-unknown",
        lambda e, c: e.Person.select().filter(nmae="x"),
        UnknownAttributeError,
        bad("Person", "nmae", "x"),
    ),
    case(
        "get-for-update-unknown",
        lambda e, c: e.Person.get_for_update(nmae="x"),
        UnknownAttributeError,
        bad("Person", "nmae", "x"),
    ),
    case(
        "collection-select-unknown",
        lambda e, c: e.Person[1].posts.select(nmae="x"),
        UnknownAttributeError,
        bad("Post", "nmae", "x"),
    ),
    case(
        "get-unknown-sql-as-name",
        lambda e, c: e.Person.get(**{"name = 'x' OR 1=1 --": "x"}),
        UnknownAttributeError,
        ("Person", "name = 'x' OR 1=1 --"),
    ),
    case(
        "set-unknown",
        lambda e, c: e.Person[1].set(name="Zed", nmae="x"),
        UnknownAttributeError,
        bad("Person", "nmae", "x"),
    ),
    case(
        "to-dict-only-unknown",
        lambda e, c: e.Person[1].to_dict(only=["nmae"]),
        UnknownAttributeError,
        ("Person", "nmae"),
    ),
    case(
        "to-dict-exclude-unknown",
        lambda e, c: e.Person[1].to_dict(exclude="name nmae"),
        UnknownAttributeError,
        ("Person", "nmae"),
    ),
    case(
        "filter-other-entity-attribute",
        lambda e, c: e.Person.select(e.Tag.id == 1)[:],
        UnknownAttributeError,
        ("Person", "Tag.id"),
    ),
    case(
        "filter-other-entity-attribute-no-such-column",
        lambda e, c: e.Person.select(e.Post.title == "x")[:],
        UnknownAttributeError,
        ("Person", "Post.title"),
    ),
]

# -- names and parameters of raw SQL -------------------------------------------------------------------

#: Identifiers given to db.insert are quoted, so SQL in a table or column name is only a name that does not
#: exist: the database refuses it (DatabaseError), in the session's transaction, and nothing is written.
RAW_SQL = [
    case(
        "raw-missing-param",
        lambda e, c: e.db.select("SELECT name FROM person WHERE name = $y", {"x": 1}),
        OrmError,
        ("$y",),
    ),
    case(
        "raw-list-param",
        lambda e, c: e.db.select("SELECT name FROM person WHERE name = $x", {"x": [1, 2]}),
        DatabaseError,
    ),
    case(
        "insert-table-name-injection",
        lambda e, c: e.db.insert('person"; DROP TABLE person; --', name="Zed", age=1, score=0.0),
        DatabaseError,
        ('person"; DROP TABLE person; --',),
        by_database=True,
    ),
    case(
        "insert-column-name-injection",
        lambda e, c: e.db.insert("person", **{"name\") VALUES ('x'); DROP TABLE person; --": "Zed"}),
        DatabaseError,
        ("DROP TABLE person",),
        by_database=True,
    ),
    case(
        "insert-unknown-column",
        lambda e, c: e.db.insert("person", nmae="Zed", age=1, score=0.0),
        DatabaseError,
        ("nmae",),
        by_database=True,
    ),
    case(
        "insert-returning-name-injection",
        lambda e, c: e.db.insert(
            "person", returning='id"; DROP TABLE person; --', name="Zed", age=1, score=0.0
        ),
        OrmError,
        ('id"; DROP TABLE person; --',),
        by_database=True,
    ),
]

# -- unique and foreign keys ---------------------------------------------------------------------------


def clash_in_database(e: Env, c: Any) -> None:
    """Two valid new people, then one whose email an unloaded row holds: the flush fails as a whole."""
    e.Person(name="Zed")
    e.Person(name="Zoe", email="p0@x.com")
    e.Person(name="Zack", email="x'--")
    flush()


def missing_parent(e: Env, c: Any) -> None:
    """A valid new person and a post whose author row does not exist: the commit fails as a whole."""
    e.Person(name="Zed")
    e.Post(title="orphan", author=999)
    commit()


#: A clash nextorm can see in the session raises CacheIndexError before any SQL; one only the database sees
#: raises TransactionIntegrityError at flush/commit and the whole transaction is rolled back.
KEYS = [
    case(
        "unique-clash-in-session",
        lambda e, c: (e.Person[1], e.Person(name="Zed", email="p0@example.com")),
        CacheIndexError,
        bad("Person", "email", "p0@example.com"),
    ),
    case(
        "primary-key-clash-in-session",
        lambda e, c: (e.Person[1], e.Person(id=1, name="Zed")),
        CacheIndexError,
        ("Person", "1"),
    ),
    case(
        "unique-clash-in-database",
        clash_in_database,
        TransactionIntegrityError,
        bad("Person", "email", "x'--"),
        by_database=True,
    ),
    case(
        "primary-key-clash-in-database",
        lambda e, c: (e.Person(id=2, name="Zed"), flush()),
        TransactionIntegrityError,
        ("Person[2]", "id"),
        by_database=True,
    ),
    case("foreign-key-to-missing-row", missing_parent, TransactionIntegrityError, by_database=True),
]

# -- objects of other sessions -------------------------------------------------------------------------


def ended_session(e: Env) -> dict[str, Any]:
    """Person 1 (its collections not loaded), Tag 2 and Post 1 from a session that has ended."""
    with db_session:
        return {"p": e.Person[1], "t": e.Tag[2], "post": e.Post[1]}


def other_thread(e: Env) -> dict[str, Any]:
    """Person 1, Tag 2 and Post 1 of a session another thread holds open until ``close`` is called."""
    box: dict[str, Any] = {}
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db_session:
            box.update(p=e.Person[1], t=e.Tag[2], post=e.Post[1])
            ready.set()
            release.wait(10)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert ready.wait(10), "the other thread did not open its session"

    def close() -> None:
        release.set()
        thread.join(10)

    box["close"] = close
    return box


def foreign_cases(prefix: str, setup: Callable[[Env], Any], gone: type[BaseException]) -> list[Any]:
    """Cases using objects of another session (``gone``: the error for changing one of them directly)."""
    return [
        case(f"{prefix}-assign", lambda e, c: setattr(c["p"], "age", 5), gone, ("Person[1]",), setup=setup),
        case(f"{prefix}-set", lambda e, c: c["p"].set(age=5), gone, ("Person[1]",), setup=setup),
        case(f"{prefix}-delete", lambda e, c: c["p"].delete(), gone, ("Person[1]",), setup=setup),
        case(f"{prefix}-flush-object", lambda e, c: c["p"].flush(), gone, ("Person[1]",), setup=setup),
        case(
            f"{prefix}-load-collection",
            lambda e, c: list(c["p"].posts),
            gone,
            ("Person[1]", "posts"),
            setup=setup,
        ),
        case(
            f"{prefix}-add-to-its-collection",
            lambda e, c: c["p"].tags.add(c["t"]),
            gone,
            ("Person[1]", "tags"),
            setup=setup,
        ),
        case(
            f"{prefix}-as-new-reference",
            lambda e, c: e.Post(title="x", author=c["p"]),
            TransactionError,
            ("Person[1]", "Post.author"),
            setup=setup,
        ),
        case(
            f"{prefix}-assigned-to-reference",
            lambda e, c: setattr(e.Post[1], "author", c["p"]),
            TransactionError,
            ("Person[1]", "Post.author"),
            setup=setup,
        ),
        case(
            f"{prefix}-added-to-collection",
            lambda e, c: e.Tag[1].persons.add(c["p"]),
            TransactionError,
            ("Person[1]", "Tag.persons"),
            setup=setup,
        ),
        case(
            f"{prefix}-query-value",
            lambda e, c: e.Post.select(e.Post.author == c["p"])[:],
            TransactionError,
            ("Person[1]", "Post.author"),
            setup=setup,
        ),
        case(
            f"{prefix}-query-keyword",
            lambda e, c: e.Post.select(author=c["p"])[:],
            TransactionError,
            ("Person[1]", "Post.author"),
            setup=setup,
        ),
        case(
            f"{prefix}-query-in",
            lambda e, c: e.Post.select(e.Post.author.in_([c["p"]]))[:],
            TransactionError,
            ("Person[1]", "Post.author"),
            setup=setup,
        ),
    ]


def after_rollback(act: Callable[[Env, Any, Any], Any]) -> Callable[[Env, Any], Any]:
    """An act that loads Person 1 and makes a new Person, rolls back, then runs ``act(e, loaded, new)``."""

    def run(e: Env, c: Any) -> Any:
        loaded, new = e.Person[1], e.Person(name="Zed")
        rollback()
        return act(e, loaded, new)

    return run


def deleted(act: Callable[[Env, Any], Any]) -> Callable[[Env, Any], Any]:
    """An act that deletes Person 2, runs ``act(e, person)``, then rolls back (the DELETE is not kept).

    Tag 1 is loaded first, so that no identity-map miss flushes the DELETE before the bad input.
    """

    def run(e: Env, c: Any) -> Any:
        person, _ = e.Person[2], e.Tag[1]
        person.delete()
        try:
            return act(e, person)
        finally:
            rollback()

    return run


#: An object of an ended (or rolled-back) session raises DatabaseSessionIsOver when changed or loaded; one of
#: another thread's open session raises TransactionError for every use but reading loaded values, including
#: loading its collections, changing them and using it as a query value; used with another object, both
#: raise TransactionError ("mix objects"). A deleted object raises OperationWithDeletedObjectError.
CROSS_SESSION = [
    *foreign_cases("ended-session", ended_session, DatabaseSessionIsOver),
    *foreign_cases("other-thread", other_thread, TransactionError),
    case(
        "other-thread-assign-outside-session",
        lambda e, c: setattr(c["p"], "age", 5),
        TransactionError,
        ("Person[1]",),
        setup=other_thread,
        in_session=False,
    ),
    case(
        "ended-session-assign-outside-session",
        lambda e, c: setattr(c["p"], "age", 5),
        DatabaseSessionIsOver,
        ("Person[1]", "age"),
        setup=ended_session,
        in_session=False,
    ),
    case(
        "no-session-create",
        lambda e, c: e.Person(name="Zed"),
        TransactionError,
        ("db_session",),
        in_session=False,
    ),
    case(
        "no-session-query",
        lambda e, c: e.Person.select()[:],
        TransactionError,
        ("db_session",),
        in_session=False,
    ),
    case(
        "rollback-assign",
        after_rollback(lambda e, p, n: setattr(p, "age", 5)),
        DatabaseSessionIsOver,
        ("Person[1]", "age"),
    ),
    case(
        "rollback-delete", after_rollback(lambda e, p, n: p.delete()), DatabaseSessionIsOver, ("Person[1]",)
    ),
    case("rollback-set", after_rollback(lambda e, p, n: p.set(age=5)), DatabaseSessionIsOver, ("Person[1]",)),
    case(
        "rollback-as-reference",
        after_rollback(lambda e, p, n: e.Post(title="x", author=p)),
        TransactionError,
        ("Person[1]", "Post.author"),
    ),
    case(
        "rollback-query-value",
        after_rollback(lambda e, p, n: e.Post.select(author=p)[:]),
        TransactionError,
        ("Person[1]", "Post.author"),
    ),
    case(
        "rollback-added-to-collection",
        after_rollback(lambda e, p, n: e.Tag[1].persons.add(p)),
        TransactionError,
        ("Person[1]", "Tag.persons"),
    ),
    case(
        "rollback-new-object-flush",
        after_rollback(lambda e, p, n: n.flush()),
        DatabaseSessionIsOver,
        ("Person[new:",),
    ),
    case(
        "rollback-new-object-assign",
        after_rollback(lambda e, p, n: setattr(n, "age", 5)),
        DatabaseSessionIsOver,
        ("Person[new:", "age"),
    ),
    case(
        "rollback-new-object-as-reference",
        after_rollback(lambda e, p, n: e.Post(title="x", author=n)),
        TransactionError,
        ("Person[new:", "Post.author"),
    ),
    case(
        "deleted-assign",
        deleted(lambda e, p: setattr(p, "age", 5)),
        OperationWithDeletedObjectError,
        ("Person[2]",),
    ),
    case("deleted-set", deleted(lambda e, p: p.set(age=5)), OperationWithDeletedObjectError, ("Person[2]",)),
    case(
        "deleted-as-reference",
        deleted(lambda e, p: e.Post(title="x", author=p)),
        OperationWithDeletedObjectError,
        ("Person[2]", "Post.author"),
    ),
    case(
        "deleted-added-to-collection",
        deleted(lambda e, p: e.Tag[1].persons.add(p)),
        OperationWithDeletedObjectError,
        ("Person[2]", "Tag.persons"),
    ),
    case(
        "deleted-query-value",
        deleted(lambda e, p: e.Post.select(author=p)[:]),
        OperationWithDeletedObjectError,
        ("Person[2]", "Post.author"),
    ),
    case("deleted-lookup", deleted(lambda e, p: e.Person[2]), ObjectNotFound, ("Person[2]",)),
]

REJECTED = [*WRONG_TYPES, *OUT_OF_RANGE, *DATETIMES, *UNICODE, *UNKNOWN, *RAW_SQL, *KEYS, *CROSS_SESSION]


# -- SQL metacharacters taken literally ----------------------------------------------------------------


def names_of(objects: Any) -> list[str]:
    """The sorted names of Person objects."""
    return sorted(p.name for p in objects)


def compared(op: str) -> Callable[[Any], list[str]]:
    """What ``name <op> INJECTION`` matches, asked by another client with a bound parameter."""
    return lambda conn: sorted(
        r[0] for r in conn.execute(f"SELECT name FROM person WHERE name {op} ?", (INJECTION,))
    )


def raw_local_variable(e: Env) -> list[str]:
    """``$name`` reads the caller's local variable as a bound value."""
    x = INJECTION  # noqa: F841 - read by $x
    return sorted(e.db.select("SELECT name FROM person WHERE name = $x"))


def raw_expression(e: Env) -> list[str]:
    """``$(expr)`` evaluates the caller's expression into a bound value."""
    x = {"v": ALWAYS_TRUE}  # noqa: F841 - read by $(x['v'])
    return sorted(e.db.select("SELECT name FROM person WHERE name = $(x['v'])"))


def raw_quoted_dollar(e: Env) -> list[str]:
    """``$x`` inside a quoted SQL string is text, not a parameter."""
    x = INJECTION  # noqa: F841 - must not be read
    return sorted(e.db.select("SELECT name FROM person WHERE name = '$x'"))


def raw_insert_value(e: Env) -> Any:
    """A value inserted with ``db.insert`` is stored as is (then rolled back)."""
    e.db.insert("person", name=ALWAYS_TRUE, age=1, score=0.0, email=INJECTION)
    stored = e.db.get("SELECT name FROM person WHERE email = $v", {"v": INJECTION})
    rollback()
    return stored


#: Values are always bound parameters: quotes, comment markers, LIKE wildcards (% _) and backslashes match
#: only themselves in every operator, keyword filter and raw-SQL parameter ($name, $(expr), params dict).
LITERAL = [
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.name == INJECTION)), [INJECTION]), id="eq"
    ),
    pytest.param(
        BoundValue(
            lambda e: names_of(e.Person.select(e.Person.name != INJECTION)), sorted(set(NAMES) - {INJECTION})
        ),
        id="ne",
    ),
    *[
        pytest.param(
            BoundValue(lambda e, expr=expr: names_of(e.Person.select(expr(e.Person.name))), compared(op)),
            id=name,
        )
        for name, op, expr in [
            ("lt", "<", lambda a: a < INJECTION),
            ("le", "<=", lambda a: a <= INJECTION),
            ("gt", ">", lambda a: a > INJECTION),
            ("ge", ">=", lambda a: a >= INJECTION),
        ]
    ],
    pytest.param(
        BoundValue(
            lambda e: names_of(e.Person.select(e.Person.name.in_([INJECTION, ALWAYS_TRUE]))), [INJECTION]
        ),
        id="in",
    ),
    pytest.param(
        BoundValue(
            lambda e: names_of(e.Person.select(e.Person.name.in_([f"{ALWAYS_TRUE}{i}" for i in range(20)]))),
            [],
        ),
        id="in-many",
    ),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.name.startswith("Robert');"))), [INJECTION]),
        id="startswith",
    ),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.name.startswith("100%"))), ["100%_done"]),
        id="startswith-percent",
    ),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.name.startswith("%"))), []),
        id="startswith-only-percent",
    ),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.name.endswith(";--"))), [INJECTION]),
        id="endswith",
    ),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.name.endswith("_done"))), ["100%_done"]),
        id="endswith-underscore",
    ),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.name.contains("%_"))), ["100%_done"]),
        id="contains-wildcards",
    ),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.name.contains("'"))), [INJECTION]),
        id="contains-quote",
    ),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.name.contains('\\slash "'))), [NAMES[4]]),
        id="contains-backslash-double-quote",
    ),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.name.contains(ALWAYS_TRUE))), []),
        id="contains-always-true",
    ),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(name=INJECTION)), [INJECTION]), id="keyword-select"
    ),
    pytest.param(BoundValue(lambda e: e.Person.get(email="x'--").name, INJECTION), id="keyword-get"),
    pytest.param(BoundValue(lambda e: e.Person.exists(name=ALWAYS_TRUE), False), id="keyword-exists"),
    pytest.param(BoundValue(lambda e: e.Person.select(e.Person.name == ALWAYS_TRUE).count(), 0), id="count"),
    pytest.param(
        BoundValue(lambda e: names_of(e.Person.select(e.Person.email != ALWAYS_TRUE)), sorted(NAMES)),
        id="ne-matches-all",
    ),
    pytest.param(
        BoundValue(lambda e: e.Person[1].posts.select(title=ALWAYS_TRUE)[:], []), id="collection-select"
    ),
    pytest.param(
        BoundValue(
            lambda e: names_of(
                e.Person.select_by_sql("SELECT * FROM person WHERE name = $x", {"x": INJECTION})
            ),
            [INJECTION],
        ),
        id="select-by-sql-params",
    ),
    pytest.param(
        BoundValue(
            lambda e: e.Person.get_by_sql("SELECT * FROM person WHERE name = $x", {"x": ALWAYS_TRUE}), None
        ),
        id="get-by-sql-params",
    ),
    pytest.param(
        BoundValue(
            lambda e: e.db.select("SELECT name FROM person WHERE name = $x", {"x": INJECTION}), [INJECTION]
        ),
        id="db-select-params",
    ),
    pytest.param(
        BoundValue(lambda e: e.db.get("SELECT age FROM person WHERE name = $x", {"x": INJECTION}), 21),
        id="db-get-params",
    ),
    pytest.param(
        BoundValue(lambda e: e.db.exists("SELECT 1 FROM person WHERE name = $x", {"x": ALWAYS_TRUE}), False),
        id="db-exists-params",
    ),
    pytest.param(
        BoundValue(
            lambda e: e.db.execute("DELETE FROM person WHERE name = $x", {"x": ALWAYS_TRUE}).rowcount, 0
        ),
        id="db-execute-params",
    ),
    pytest.param(BoundValue(raw_local_variable, [INJECTION]), id="raw-dollar-local-variable"),
    pytest.param(BoundValue(raw_expression, []), id="raw-dollar-expression"),
    pytest.param(BoundValue(raw_quoted_dollar, []), id="raw-dollar-inside-quotes"),
    pytest.param(BoundValue(raw_insert_value, ALWAYS_TRUE), id="db-insert-value"),
]


# -- documented behaviour where Pony and DESIGN are silent ---------------------------------------------


def delete_twice_is_a_noop(e: Env, conn: Any, log: Any) -> None:
    """Deleting an object twice is a silent no-op (as in Pony): one DELETE is sent."""
    before = snapshot(conn, e)
    with db_session:
        person = e.Person[4]
        person.delete()
        person.delete()
    assert len([s for s in writes(log.statements) if s.startswith('DELETE FROM "person"')]) == 1
    before["person"] = [row for row in before["person"] if row[0] != 4]
    assert snapshot(conn, e) == before


def delete_after_flush_is_a_noop(e: Env, conn: Any, log: Any) -> None:
    """Deleting an object whose DELETE was already flushed is a silent no-op."""
    with db_session:
        person = e.Person[4]
        person.delete()
        flush()
        person.delete()
    assert len([s for s in writes(log.statements) if s.startswith("DELETE")]) == 1
    assert conn.execute("SELECT COUNT(*) FROM person WHERE id = 4").fetchone()[0] == 0


def delete_new_object_twice_writes_nothing(e: Env, conn: Any, log: Any) -> None:
    """A new object deleted twice before any flush is never written."""
    before = snapshot(conn, e)
    with db_session:
        person = e.Person(name="Zed")
        person.delete()
        person.delete()
    assert writes(log.statements) == []
    assert snapshot(conn, e) == before


def delete_row_deleted_by_another_client(e: Env, conn: Any, log: Any) -> None:
    """Deleting an object whose row another client deleted raises OptimisticCheckError; the session rolls back."""
    with pytest.raises(OptimisticCheckError, match=r"Person\[4\]"):
        with db_session:
            person = e.Person[4]
            e.Person(name="Zed")
            conn.execute("DELETE FROM person WHERE id = 4")
            before = snapshot(conn, e)
            person.delete()
    assert snapshot(conn, e) == before


def hook_flush_is_ignored(e: Env, conn: Any, log: Any) -> None:
    """flush() (module or object) from a hook while a flush runs is ignored: each row is written once."""

    def before_insert(post: Any) -> None:
        flush()
        post.flush()

    e.Post.before_insert = before_insert
    with db_session:
        e.Post(title="a", author=1)
        e.Post(title="b", author=1)
    assert sorted(r[0] for r in conn.execute("SELECT title FROM post")) == ["Hello", "a", "b"]


def hook_query_sees_rows_written_so_far(e: Env, conn: Any, log: Any) -> None:
    """A query from a hook runs without a reentrant flush: before_* hooks see none of the batch, after_* all."""
    seen: list[tuple[str, int]] = []
    e.Post.before_insert = lambda post: seen.append(("before", e.Post.select().count()))
    e.Post.after_insert = lambda post: seen.append(("after", e.Post.select().count()))
    with db_session:
        e.Post(title="a", author=1)
        e.Post(title="b", author=1)
    assert seen == [("before", 1), ("before", 1), ("after", 3), ("after", 3)]


def hook_commit_is_refused(e: Env, conn: Any, log: Any) -> None:
    """commit() from a hook while a flush runs raises TransactionError; nothing of the session is written."""
    before = snapshot(conn, e)

    def after_insert(post: Any) -> None:
        commit()
        e.Person(name="Zack", email="x'--")  # fails in the next round of the same flush

    e.Post.after_insert = after_insert
    with pytest.raises(TransactionError) as info:
        with db_session:
            e.Person(name="Zed")
            e.Post(title="a", author=1)
    assert not isinstance(info.value, TransactionIntegrityError), info.value  # refused, not failed later
    assert snapshot(conn, e) == before


def hook_rollback_is_refused(e: Env, conn: Any, log: Any) -> None:
    """rollback() from a hook while a flush runs raises TransactionError; nothing of the session is written."""
    before = snapshot(conn, e)
    e.Post.after_insert = lambda post: rollback()
    with pytest.raises(TransactionError):
        with db_session:
            e.Person(name="Zed")
            e.Post(title="a", author=1)
            e.Post(title="b", author=1)
    assert snapshot(conn, e) == before


def hook_error_rolls_back_the_flush(e: Env, conn: Any, log: Any) -> None:
    """An exception raised by an after_insert hook propagates unchanged and nothing of the flush is kept."""
    before = snapshot(conn, e)

    def after_insert(post: Any) -> None:
        if post.title == "b":
            raise KeyError("hook failed")

    e.Post.after_insert = after_insert
    with pytest.raises(KeyError, match="hook failed"):
        with db_session:
            e.Post(title="a", author=1)
            e.Post(title="b", author=1)
    assert snapshot(conn, e) == before


def hook_creating_objects_forever_is_stopped(e: Env, conn: Any, log: Any) -> None:
    """A hook that creates a new object on every insert is stopped with TransactionError; nothing is written."""
    before = snapshot(conn, e)
    e.Post.after_insert = lambda post: e.Post(title=post.title + "+", author=1)
    with pytest.raises(TransactionError, match="Recursion"):
        with db_session:
            e.Post(title="a", author=1)
    assert snapshot(conn, e) == before


DOCUMENTED = [
    pytest.param(fn, id=fn.__name__.replace("_", "-"))
    for fn in (
        delete_twice_is_a_noop,
        delete_after_flush_is_a_noop,
        delete_new_object_twice_writes_nothing,
        delete_row_deleted_by_another_client,
        hook_flush_is_ignored,
        hook_query_sees_rows_written_so_far,
        hook_commit_is_refused,
        hook_rollback_is_refused,
        hook_error_rolls_back_the_flush,
        hook_creating_objects_forever_is_stopped,
    )
]

#: every bad input this module tries (the README cites ``len(CASES)``)
CASES = [*REJECTED, *LITERAL, *DOCUMENTED]


def test_case_ids_are_unique() -> None:
    """Every case has its own id, so the count of cases is the count of distinct bad inputs."""
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids))


# -- the tests ------------------------------------------------------------------------------------------


@pytest.fixture
def run_context() -> Iterator[list[Any]]:
    """Contexts made by case setups; their ``close`` runs when the test ends, even when it fails."""
    contexts: list[Any] = []
    yield contexts
    for context in contexts:
        if isinstance(context, dict) and "close" in context:
            context["close"]()


@pytest.mark.parametrize("bad_input", REJECTED)
def test_rejected_before_any_write(
    bad_input: Rejected, env: Env, other_client: Any, sql_log: Any, run_context: list[Any]
) -> None:
    """The documented error, naming entity/attribute/value, comes before any write; the database is unchanged."""
    context = bad_input.setup(env) if bad_input.setup else None
    run_context.append(context)
    before = snapshot(other_client, env)
    sql_log.clear()
    error: BaseException | None = None
    statements: list[str] = []

    def attempt() -> None:
        nonlocal error
        try:
            bad_input.act(env, context)
        except Exception as exc:
            error = exc
        statements.extend(sql_log.statements)

    commit_error: BaseException | None = None
    if bad_input.in_session:
        try:
            with db_session:  # the caller carries on and commits: nothing may have been queued
                attempt()
        except Exception as exc:
            commit_error = exc
    else:
        attempt()
    if isinstance(context, dict) and "close" in context:
        context.pop("close")()  # the other thread's session ends (and commits) before the snapshot
    assert error is not None, f"no error was raised (then the commit raised {commit_error!r}); {statements}"
    if bad_input.in_session and isinstance(error, TransactionIntegrityError):
        # a flush the database refused fails the session: leaving the block rolls back and says so
        assert isinstance(commit_error, PendingRollbackError), repr(commit_error)
        assert commit_error.failure is error
    else:
        assert commit_error is None, f"the session's commit after the error raised {commit_error!r}"
    assert all(isinstance(error, cls) for cls in bad_input.raises), f"{type(error).__mro__}: {error}"
    for name in bad_input.names:
        assert name in str(error), f"{name!r} not in the message: {error}"
    if not bad_input.by_database:
        assert writes(statements) == [], f"written before the error: {statements}"
    assert snapshot(other_client, env) == before


@pytest.mark.parametrize("sql_text", LITERAL)
def test_sql_metacharacters_are_literal(
    sql_text: BoundValue, env: Env, other_client: Any, sql_log: Any
) -> None:
    """A value with SQL metacharacters matches only itself, is bound (never in the SQL text) and changes nothing."""
    before = snapshot(other_client, env)
    expected = sql_text.expected(other_client) if callable(sql_text.expected) else sql_text.expected
    sql_log.clear()
    with db_session:
        result = sql_text.act(env)
    assert result == expected
    for statement in sql_log.statements:
        assert "DROP" not in statement and "'1'='1" not in statement, statement
    assert snapshot(other_client, env) == before


@pytest.mark.parametrize("behaviour", DOCUMENTED)
def test_misuse_behaves_as_documented(
    behaviour: Callable[..., None], env: Env, other_client: Any, sql_log: Any
) -> None:
    """Deleting twice and reentrant flush/commit/rollback from hooks do what the case's docstring says."""
    sql_log.clear()
    behaviour(env, other_client, sql_log)
