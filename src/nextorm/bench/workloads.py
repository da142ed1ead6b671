"""The workload registry: what each benchmark does, how many operations it counts.

A workload names a method that every runner may implement (see
:class:`nextorm.bench.runners.Runner`). A runner without the method reports the
workload as unsupported, so adding a workload is one entry here plus one method
per system that can do it. An asynchronous workload's methods are async context
managers, measured inside an event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nextorm.bench.dataset import lookup_count, parent_count


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark run."""

    rows: int
    batch: int
    repeat: int
    warmup: int = 1


@dataclass(frozen=True)
class Workload:
    """One benchmark: the runner method it calls and how to count its operations."""

    name: str
    title: str
    method: str
    count: Callable[[Config], int]
    description: str
    kind: str = "time"  # "time": ns per operation; "memory": bytes per entity
    asynchronous: bool = False  # the runner method is an async context manager

    @property
    def unit(self) -> str:
        """``ns`` per operation for timings, ``B`` per entity for memory."""
        return "B" if self.kind == "memory" else "ns"

    def ops(self, config: Config) -> int:
        """How many operations one timed run performs."""
        return self.count(config)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "load",
            "load N rows as objects",
            "load",
            lambda c: c.rows,
            "SELECT every row into the session as objects, per row. raw: cursor.fetchall() into tuples.",
        ),
        Workload(
            "pk-lookup",
            "primary-key lookup (identity map hit)",
            "get_by_pk",
            lambda c: c.rows,
            "Fetch every loaded row again by primary key, in a fixed shuffled order; "
            "ORMs with an identity map answer from it. raw: a dict lookup by id.",
        ),
        Workload(
            "attr-read",
            "tracked attribute read",
            "read_attrs",
            lambda c: 4 * c.rows,
            "Read the four non-key columns of every loaded object, per read. raw: indexing the row tuple.",
        ),
        Workload(
            "update",
            "update M objects and commit",
            "update",
            lambda c: c.batch,
            "Increment age on M loaded objects and commit, per object; loading is not "
            "timed. raw: executemany UPDATE by id, then commit.",
        ),
        Workload(
            "insert",
            "insert M objects and commit",
            "insert",
            lambda c: c.batch,
            "Create M new objects and commit, per object. raw: executemany INSERT, then commit.",
        ),
        Workload(
            "session",
            "empty session enter/exit",
            "empty_session",
            lambda c: c.rows,
            "Enter and leave an empty unit of work (db_session, Session.begin(), "
            "atomic()), per session. raw: conn.commit(), the DB-API's end of a unit of work, "
            "which sends nothing when no transaction is open.",
        ),
        Workload(
            "prefetch",
            "load N/10 parents with 10 children each (prefetch)",
            "prefetch",
            lambda c: parent_count(c.rows),
            "Load every parent and its children with the system's eager loading (nextorm and "
            "Pony prefetch(), SQLAlchemy selectinload(), Peewee prefetch()), then read every "
            "child's name through its parent's collection, per parent; a lazy load per parent "
            "would show. raw: two SELECTs and a dict grouping children by parent id.",
        ),
        Workload(
            "query",
            "filtered select + order_by + limit, repeated",
            "query",
            lambda c: c.batch,
            "M queries of the ten first persons of one age ordered by id, each fetched into "
            "objects, per query. The ages go round the 73 the rows have; each round runs in a "
            "session of its own, so no query is answered from a cache of the session's earlier "
            "results (Pony keeps one) and every one reaches the database. raw: the same SELECT ... "
            "WHERE age = ? ORDER BY id LIMIT 10 into tuples.",
        ),
        Workload(
            "query-gen",
            "the same query written as a generator",
            "query_generator",
            lambda c: c.batch,
            "As query, written in Pony's generator syntax: select(p for p in Person if p.age == "
            "age).order_by(Person.id)[:10], per query (nextorm, Pony; the others have no such "
            "syntax). Beside query (a lambda) and query-expr it shows what each form of one query "
            "costs. raw: the same SELECT.",
        ),
        Workload(
            "query-expr",
            "the same query written with attribute expressions",
            "query_expression",
            lambda c: c.batch,
            "As query, written with attribute expressions: nextorm's Person.select(Person.age == "
            "age), SQLAlchemy's and Peewee's own query (as in query); Pony has none. raw: the same "
            "SELECT.",
        ),
        Workload(
            "count",
            "count() of a filtered query, repeated",
            "count",
            lambda c: c.batch,
            "M counts of the persons of one age, per count, in rounds of distinct ages as in "
            "query. raw: SELECT COUNT(*) ... WHERE age = ?.",
        ),
        Workload(
            "get",
            "get(email=...) by an indexed column",
            "get_by_email",
            lookup_count,
            "Fetch M persons one by one by their email (an indexed, distinct column) with the "
            "system's get-one-object call, per object; one session. raw: SELECT ... WHERE email = ? "
            "LIMIT 2 and fetchall(), as a get must see a second match to report it.",
        ),
        Workload(
            "n-plus-1",
            "N+1: every parent's children loaded lazily",
            "children_lazily",
            lambda c: parent_count(c.rows),
            "Load every parent, then read every child's name through each parent's collection "
            "without eager loading (one SELECT per parent), in a fresh session, per parent. raw: "
            "one SELECT of the parents, then one SELECT of the children per parent.",
        ),
        Workload(
            "to-dict",
            "to_dict() of N loaded objects",
            "to_dicts",
            lambda c: c.rows,
            "Turn every loaded object into a dict of its column values (to_dict(), Peewee's "
            "model_to_dict(), a comprehension over SQLAlchemy's mapper columns), per object; "
            "loading is not timed. raw: dict(zip(names, row)) per row tuple.",
        ),
        Workload(
            "async-load",
            "asyncio: load N rows as objects",
            "async_load",
            lambda c: c.rows,
            "As load, awaited in an open async session (AsyncDatabase + afetch(), SQLAlchemy "
            "AsyncSession), per row. raw: the asyncio driver's fetchall() (aiosqlite, psycopg "
            "AsyncConnection).",
            asynchronous=True,
        ),
        Workload(
            "async-update",
            "asyncio: update M objects and commit",
            "async_update",
            lambda c: c.batch,
            "As update, awaited: increment age on M loaded objects and await the commit, per "
            "object. raw: the asyncio driver's executemany UPDATE, then commit.",
            asynchronous=True,
        ),
        Workload(
            "async-insert",
            "asyncio: insert M objects and commit",
            "async_insert",
            lambda c: c.batch,
            "As insert, awaited: create M new objects and await the commit, per object. raw: "
            "the asyncio driver's executemany INSERT, then commit.",
            asynchronous=True,
        ),
        Workload(
            "memory",
            "memory per loaded entity",
            "load",
            lambda c: c.rows,
            "Python heap bytes still allocated after loading N rows as objects and "
            "keeping them alive (tracemalloc), per row; includes the session's identity "
            "map. raw: the list of tuples.",
            kind="memory",
        ),
    )
}
