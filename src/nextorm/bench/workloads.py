"""The workload registry: what each benchmark does, how many operations it counts.

A workload names a method that every runner may implement (see
:class:`nextorm.bench.runners.Runner`). A runner without the method reports the
workload as unsupported, so adding a workload is one entry here plus one method
per system that can do it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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
