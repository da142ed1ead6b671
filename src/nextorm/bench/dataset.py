"""The common schema and data, and the fresh database every run starts from."""

from __future__ import annotations

import random
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

TABLE = "person"
COLUMNS = ("name", "email", "age", "score")

SQLITE_DDL = (
    "CREATE TABLE person (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
    "email TEXT, age INTEGER NOT NULL, score REAL NOT NULL)"
)
POSTGRES_DDL = (
    "CREATE TABLE person (id SERIAL PRIMARY KEY, name TEXT NOT NULL, "
    "email TEXT, age INTEGER NOT NULL, score DOUBLE PRECISION NOT NULL)"
)

Row = tuple[str, str | None, int, float]

_SEED = 20240601


@dataclass(frozen=True)
class Target:
    """Where a run's database lives: a SQLite file path or a PostgreSQL DSN."""

    kind: str
    location: str

    @classmethod
    def parse(cls, db: str) -> Target:
        """Read ``--db``: a ``postgres://`` or ``postgresql://`` URL, else a SQLite path."""
        if db.startswith(("postgres://", "postgresql://")):
            return cls("postgres", db)
        return cls("sqlite", str(Path(db).resolve()))

    @property
    def is_postgres(self) -> bool:
        """Whether this is a PostgreSQL database."""
        return self.kind == "postgres"

    def describe(self) -> str:
        """The location with any password removed, fit for logs and JSON."""
        if not self.is_postgres:
            return self.location
        parts = urlsplit(self.location)
        if parts.password is None:
            return self.location
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


def make_rows(count: int, start: int = 0) -> list[Row]:
    """Deterministic person rows; every tenth person has no email."""
    rng = random.Random(_SEED + start)
    return [
        (
            f"person {i}",
            None if i % 10 == 9 else f"person{i}@example.com",
            rng.randint(18, 90),
            round(rng.uniform(0.0, 100.0), 3),
        )
        for i in range(start, start + count)
    ]


def lookup_order(rows: int) -> list[int]:
    """Primary keys ``1..rows`` in a fixed shuffled order, the same for every system."""
    order = list(range(1, rows + 1))
    random.Random(_SEED).shuffle(order)
    return order


def write_sqlite(path: Path, rows: int) -> None:
    """Create a SQLite file holding the ``person`` table with ``rows`` rows."""
    remove_sqlite(path)
    conn = sqlite3.connect(path)
    try:
        conn.execute(SQLITE_DDL)
        conn.executemany("INSERT INTO person (name, email, age, score) VALUES (?, ?, ?, ?)", make_rows(rows))
        conn.commit()
    finally:
        conn.close()


def check_sqlite_overwritable(path: Path) -> None:
    """Refuse to overwrite a SQLite file that holds anything but a ``person`` table."""
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {
                name
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            }
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path} exists and is not a SQLite database: {exc}") from None
    if names - {TABLE}:
        raise ValueError(
            f"{path} holds tables other than {TABLE!r} ({', '.join(sorted(names))}); "
            "nextorm-bench recreates its database for every run, give it a scratch file"
        )


def copy_sqlite(template: Path, path: Path) -> None:
    """Replace ``path`` (and any journal beside it) with a copy of ``template``."""
    remove_sqlite(path)
    shutil.copyfile(template, path)


def remove_sqlite(path: Path) -> None:
    """Delete a SQLite file and its journal files, if present."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def write_postgres(dsn: str, rows: int) -> None:
    """Drop and recreate the ``person`` table in a PostgreSQL database, with ``rows`` rows."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS person")
        conn.execute(POSTGRES_DDL)
        with conn.cursor() as cur:
            with cur.copy("COPY person (name, email, age, score) FROM STDIN") as copy:
                for row in make_rows(rows):
                    copy.write_row(row)
        conn.execute("ANALYZE person")


def drop_postgres(dsn: str) -> None:
    """Drop the ``person`` table the benchmark made."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS person")


def postgres_url(dsn: str, driver: str) -> str:
    """The DSN with a SQLAlchemy-style driver suffix, e.g. ``postgresql+psycopg://``."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(scheme=f"postgresql+{driver}"))


def connect_raw(target: Target) -> Any:
    """A plain DB-API connection to the target (sqlite3 or psycopg 3)."""
    if target.is_postgres:
        import psycopg

        return psycopg.connect(target.location)
    return sqlite3.connect(target.location)
