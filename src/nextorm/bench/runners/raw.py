"""The floor: the DB-API driver alone, rows as tuples, no objects, no tracking."""

from __future__ import annotations

import importlib.metadata
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from nextorm.bench.dataset import (
    Target,
    connect_raw,
    lookup_emails,
    lookup_order,
    make_rows,
    query_ages,
)
from nextorm.bench.runners import AsyncTimed, Runner, Timed, driver_versions, require_modules
from nextorm.bench.workloads import Config


class RawRunner(Runner):
    """sqlite3 (or psycopg 3 for PostgreSQL) with hand-written SQL; aiosqlite (or psycopg async) for asyncio."""

    notes = {
        "pk-lookup": "dict lookup",
        "attr-read": "tuple index",
        "update": "executemany",
        "insert": "executemany",
        "session": "conn.commit()",
        "prefetch": "two SELECTs, dict of lists",
        "get": "LIMIT 2, fetchall()",
        "to-dict": "dict(zip(names, row))",
        "async-update": "executemany",
        "async-insert": "executemany",
    }

    def __init__(self, target: Target, config: Config) -> None:
        super().__init__(target, config)
        self.conn = connect_raw(target)
        self.aconn: Any = None
        self.select_parents = "SELECT id, name FROM parent"
        self.select_children = "SELECT id, name, parent FROM child"
        mark = "%s" if target.is_postgres else "?"
        self.select_all = "SELECT id, name, email, age, score FROM person"
        self.select_batch = f"{self.select_all} WHERE id <= {mark}"
        self.select_age = f"{self.select_all} WHERE age = {mark} ORDER BY id LIMIT 10"
        self.count_age = f"SELECT COUNT(*) FROM person WHERE age = {mark}"
        # LIMIT 2, as a get must: a second matching row is an error, not a row to leave unread
        self.select_email = f"{self.select_all} WHERE email = {mark} LIMIT 2"
        self.select_children_of = f"{self.select_children} WHERE parent = {mark}"
        self.update_sql = f"UPDATE person SET age = {mark} WHERE id = {mark}"
        self.insert_sql = (
            f"INSERT INTO person (name, email, age, score) VALUES ({mark}, {mark}, {mark}, {mark})"
        )

    def versions(self) -> dict[str, str]:
        """The drivers' versions and, for SQLite, the library's."""
        if self.target.is_postgres:
            return {"psycopg": importlib.metadata.version("psycopg")}
        return {"sqlite": sqlite3.sqlite_version, **driver_versions(self.target)}

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    async def aclose(self) -> None:
        """Close the asyncio connection."""
        if self.aconn is not None:
            await self.aconn.close()

    async def async_connection(self) -> Any:
        """The asyncio connection (aiosqlite, or psycopg's AsyncConnection), opened on first use."""
        if self.aconn is None:
            if self.target.is_postgres:
                import psycopg

                self.aconn = await psycopg.AsyncConnection.connect(self.target.location)
            else:
                require_modules("aiosqlite", purpose="the asyncio floor on SQLite")
                import aiosqlite

                self.aconn = await aiosqlite.connect(self.target.location)
        return self.aconn

    async def _afetch(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        cursor = await self.aconn.execute(sql, params)
        rows: list[tuple[Any, ...]] = list(await cursor.fetchall())
        return rows

    def _fetch(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.conn.execute(sql, params).fetchall()
        return rows

    @contextmanager
    def load(self) -> Iterator[Timed]:
        """Fetch every row into a list of tuples."""
        yield lambda: self._fetch(self.select_all)
        self.conn.commit()

    @contextmanager
    def get_by_pk(self) -> Iterator[Timed]:
        """Look every row up in a dict keyed by id."""
        index = {row[0]: row for row in self._fetch(self.select_all)}
        order = lookup_order(self.config.rows)

        def run() -> None:
            for pk in order:
                index[pk]

        yield run
        self.conn.commit()

    @contextmanager
    def read_attrs(self) -> Iterator[Timed]:
        """Index the four value columns of every row tuple."""
        rows = self._fetch(self.select_all)

        def run() -> None:
            for row in rows:
                row[1]
                row[2]
                row[3]
                row[4]

        yield run
        self.conn.commit()

    @contextmanager
    def update(self) -> Iterator[Timed]:
        """Increment age of the first M rows with one executemany, then commit."""
        rows = self._fetch(self.select_batch, self.config.batch)
        conn = self.conn

        def run() -> None:
            conn.cursor().executemany(self.update_sql, [(row[3] + 1, row[0]) for row in rows])
            conn.commit()

        yield run

    @contextmanager
    def insert(self) -> Iterator[Timed]:
        """Insert M rows with one executemany, then commit."""
        values = make_rows(self.config.batch, start=self.config.rows)
        conn = self.conn

        def run() -> None:
            conn.cursor().executemany(self.insert_sql, values)
            conn.commit()

        yield run

    @contextmanager
    def prefetch(self) -> Iterator[Timed]:
        """Fetch the parents, then the children grouped by parent id; read every child's name."""

        def run() -> tuple[int, int]:
            parents = self._fetch(self.select_parents)
            children: dict[int, list[tuple[Any, ...]]] = {}
            for child in self._fetch(self.select_children):
                children.setdefault(child[2], []).append(child)
            count = 0
            for parent in parents:
                for child in children.get(parent[0], ()):
                    child[1]
                    count += 1
            return len(parents), count

        yield run
        self.conn.commit()

    @contextmanager
    def query(self) -> Iterator[Timed]:
        """SELECT the ten first rows of one age, M times."""
        ages = query_ages(self.config.batch)
        fetch, sql = self._fetch, self.select_age

        def run() -> int:
            return sum(len(fetch(sql, age)) for age in ages)

        yield run
        self.conn.commit()

    #: the query workload written as a generator or with expressions: the same SELECT here
    query_generator = query
    query_expression = query

    @contextmanager
    def count(self) -> Iterator[Timed]:
        """SELECT COUNT(*) of the rows of one age, M times."""
        ages = query_ages(self.config.batch)
        fetch, sql = self._fetch, self.count_age

        def run() -> int:
            return sum(fetch(sql, age)[0][0] for age in ages)

        yield run
        self.conn.commit()

    @contextmanager
    def get_by_email(self) -> Iterator[Timed]:
        """SELECT one row by email with LIMIT 2 and fetchall(), checking no second row matched, for M emails."""
        emails = lookup_emails(self.config)
        execute, sql = self.conn.execute, self.select_email

        def one(email: str) -> tuple[Any, ...] | None:
            rows = execute(sql, (email,)).fetchall()
            if len(rows) > 1:
                raise LookupError(f"several rows have email {email!r}")
            return rows[0] if rows else None

        def run() -> int:
            return len([one(email) for email in emails])

        yield run
        self.conn.commit()

    @contextmanager
    def children_lazily(self) -> Iterator[Timed]:
        """SELECT the parents, then each parent's children with a SELECT of its own; read every name."""
        fetch = self._fetch

        def run() -> tuple[int, int]:
            parents = fetch(self.select_parents)
            count = 0
            for parent in parents:
                for child in fetch(self.select_children_of, parent[0]):
                    child[1]
                    count += 1
            self.conn.commit()
            return len(parents), count

        yield run

    @contextmanager
    def to_dicts(self) -> Iterator[Timed]:
        """``dict(zip(names, row))`` of every row tuple."""
        rows = self._fetch(self.select_all)
        names = ("id", "name", "email", "age", "score")

        def run() -> list[dict[str, Any]]:
            return [dict(zip(names, row)) for row in rows]

        yield run
        self.conn.commit()

    @contextmanager
    def empty_session(self) -> Iterator[Timed]:
        """``conn.commit()``: the DB-API's end of a unit of work, a no-op with none open."""
        commit = self.conn.commit
        count = self.config.rows

        def run() -> None:
            for _ in range(count):
                commit()

        yield run

    @asynccontextmanager
    async def async_load(self) -> AsyncIterator[AsyncTimed]:
        """Fetch every row into a list of tuples, awaited."""
        conn = await self.async_connection()
        yield lambda: self._afetch(self.select_all)
        await conn.commit()

    @asynccontextmanager
    async def async_update(self) -> AsyncIterator[AsyncTimed]:
        """Increment age of the first M rows with one awaited executemany, then commit."""
        conn = await self.async_connection()
        rows = await self._afetch(self.select_batch, self.config.batch)

        async def run() -> None:
            await self._aexecutemany(self.update_sql, [(row[3] + 1, row[0]) for row in rows])
            await conn.commit()

        yield run

    @asynccontextmanager
    async def async_insert(self) -> AsyncIterator[AsyncTimed]:
        """Insert M rows with one awaited executemany, then commit."""
        conn = await self.async_connection()
        values = make_rows(self.config.batch, start=self.config.rows)

        async def run() -> None:
            await self._aexecutemany(self.insert_sql, values)
            await conn.commit()

        yield run

    async def _aexecutemany(self, sql: str, rows: list[Any]) -> None:
        if self.target.is_postgres:
            async with self.aconn.cursor() as cursor:
                await cursor.executemany(sql, rows)
        else:
            await self.aconn.executemany(sql, rows)


RUNNER = RawRunner
