"""The floor: the DB-API driver alone, rows as tuples, no objects, no tracking."""

from __future__ import annotations

import importlib.metadata
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nextorm.bench.dataset import Target, connect_raw, lookup_order, make_rows
from nextorm.bench.runners import Runner, Timed
from nextorm.bench.workloads import Config


class RawRunner(Runner):
    """sqlite3 (or psycopg 3 for PostgreSQL) with hand-written SQL."""

    notes = {
        "pk-lookup": "dict lookup",
        "attr-read": "tuple index",
        "update": "executemany",
        "insert": "executemany",
        "session": "conn.commit()",
    }

    def __init__(self, target: Target, config: Config) -> None:
        super().__init__(target, config)
        self.conn = connect_raw(target)
        mark = "%s" if target.is_postgres else "?"
        self.select_all = "SELECT id, name, email, age, score FROM person"
        self.select_batch = f"{self.select_all} WHERE id <= {mark}"
        self.update_sql = f"UPDATE person SET age = {mark} WHERE id = {mark}"
        self.insert_sql = (
            f"INSERT INTO person (name, email, age, score) VALUES ({mark}, {mark}, {mark}, {mark})"
        )

    def versions(self) -> dict[str, str]:
        """The driver's version and, for SQLite, the library's."""
        if self.target.is_postgres:
            return {"psycopg": importlib.metadata.version("psycopg")}
        return {"sqlite": sqlite3.sqlite_version}

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

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
    def empty_session(self) -> Iterator[Timed]:
        """``conn.commit()``: the DB-API's end of a unit of work, a no-op with none open."""
        commit = self.conn.commit
        count = self.config.rows

        def run() -> None:
            for _ in range(count):
                commit()

        yield run


RUNNER = RawRunner
