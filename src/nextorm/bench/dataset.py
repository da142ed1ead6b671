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
#: every table the benchmark makes, in an order that can be dropped one by one
TABLES = ("child", "parent", TABLE)
#: children per parent in the relations (prefetch) workload
CHILDREN_PER_PARENT = 10

SQLITE_DDL = (
    "CREATE TABLE person (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
    "email TEXT, age INTEGER NOT NULL, score REAL NOT NULL)",
    "CREATE TABLE parent (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)",
    "CREATE TABLE child (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
    "parent INTEGER NOT NULL REFERENCES parent (id))",
    "CREATE INDEX idx_child__parent ON child (parent)",
    "CREATE INDEX idx_person__email ON person (email)",
)
POSTGRES_DDL = (
    "CREATE TABLE person (id SERIAL PRIMARY KEY, name TEXT NOT NULL, "
    "email TEXT, age INTEGER NOT NULL, score DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE parent (id SERIAL PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE child (id SERIAL PRIMARY KEY, name TEXT NOT NULL, "
    "parent INTEGER NOT NULL REFERENCES parent (id))",
    "CREATE INDEX idx_child__parent ON child (parent)",
    "CREATE INDEX idx_person__email ON person (email)",
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


def parent_count(rows: int) -> int:
    """Parents in a database of ``rows`` rows: one per ten, so there are about ``rows`` children."""
    return max(1, rows // CHILDREN_PER_PARENT)


def make_parents(count: int) -> list[tuple[str]]:
    """Parent rows, ids ``1..count`` once inserted in order."""
    return [(f"parent {i}",) for i in range(count)]


def make_children(parents: int) -> list[tuple[str, int]]:
    """Ten children per parent, interleaved across parents as rows added over time would be."""
    return [(f"child {i}", i % parents + 1) for i in range(parents * CHILDREN_PER_PARENT)]


def lookup_count(config: Any) -> int:
    """How many persons the get workload fetches by email: M, at most the rows that have one."""
    return min(config.batch, config.rows * 9 // 10)


def lookup_emails(config: Any) -> list[str]:
    """The emails the get workload looks up: of the first rows that have one (see make_rows)."""
    return [f"person{k + k // 9}@example.com" for k in range(lookup_count(config))]


#: how many distinct ages the rows have (18 to 90)
AGES = 73


def query_ages(count: int) -> list[int]:
    """The ages the query and count workloads filter on, cycling through the rows' range."""
    return [18 + i % AGES for i in range(count)]


def query_rounds(count: int) -> list[list[int]]:
    """``query_ages(count)`` in rounds in which no age repeats: an ORM runs each round in a session
    of its own, so none answers a query from a cache of the session's earlier results (Pony keeps
    one) and every query reaches the database, as raw's do."""
    ages = query_ages(count)
    return [ages[start : start + AGES] for start in range(0, count, AGES)]


def lookup_order(rows: int) -> list[int]:
    """Primary keys ``1..rows`` in a fixed shuffled order, the same for every system."""
    order = list(range(1, rows + 1))
    random.Random(_SEED).shuffle(order)
    return order


def write_sqlite(path: Path, rows: int) -> None:
    """Create a SQLite file: ``person`` with ``rows`` rows, ``parent`` and ``child`` (see parent_count)."""
    remove_sqlite(path)
    conn = sqlite3.connect(path)
    parents = parent_count(rows)
    try:
        for ddl in SQLITE_DDL:
            conn.execute(ddl)
        conn.executemany("INSERT INTO person (name, email, age, score) VALUES (?, ?, ?, ?)", make_rows(rows))
        conn.executemany("INSERT INTO parent (name) VALUES (?)", make_parents(parents))
        conn.executemany("INSERT INTO child (name, parent) VALUES (?, ?)", make_children(parents))
        conn.commit()
    finally:
        conn.close()


def check_sqlite_overwritable(path: Path) -> None:
    """Refuse to overwrite a SQLite file that holds anything but the benchmark's tables."""
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
    if names - set(TABLES):
        raise ValueError(
            f"{path} holds tables other than {', '.join(TABLES)} ({', '.join(sorted(names))}); "
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
    """Drop and recreate the benchmark's tables in a PostgreSQL database, filled as write_sqlite does."""
    import psycopg

    parents = parent_count(rows)
    contents = (
        ("COPY person (name, email, age, score) FROM STDIN", make_rows(rows)),
        ("COPY parent (name) FROM STDIN", make_parents(parents)),
        ("COPY child (name, parent) FROM STDIN", make_children(parents)),
    )
    with psycopg.connect(dsn) as conn:
        _drop_tables(conn)
        for ddl in POSTGRES_DDL:
            conn.execute(ddl)
        with conn.cursor() as cur:
            for sql, values in contents:
                with cur.copy(sql) as copy:
                    for row in values:
                        copy.write_row(row)
        for table in TABLES:
            conn.execute(f"ANALYZE {table}")


def check_postgres_reachable(target: Target) -> None:
    """ValueError, in one line, when the PostgreSQL server of ``target`` cannot be reached."""
    try:
        import psycopg
    except ImportError:
        raise ValueError("a PostgreSQL --db needs psycopg 3: pip install 'nextorm[postgres]'") from None
    try:
        psycopg.connect(target.location, connect_timeout=10).close()
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"cannot connect to {target.describe()}: {reason}") from None


def drop_postgres(dsn: str) -> None:
    """Drop the tables the benchmark made."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        _drop_tables(conn)


def _drop_tables(conn: Any) -> None:
    for table in TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


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
