"""Streaming and set-based writes: ``yield_per`` against a full load and SQLAlchemy's ``yield_per``;
``query.update`` against loading, modifying and flushing the objects.

``pytest benchmarks/test_session_capabilities.py --benchmark-only --benchmark-columns=mean,rounds``.
Group "stream" reads 200,000 rows of a SQLite file; each benchmark's ``extra_info`` holds its rows
per second and its tracemalloc peak (measured in one separate run, so tracing does not slow the
timed rounds). Group "update" changes 10,000 rows of 20,000. docs/sessions.md quotes the figures.
"""

from __future__ import annotations

import sqlite3
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nextorm import Database, PrimaryKey, Required, db_session

STREAM_ROWS = 200_000
UPDATE_ROWS = 20_000
BATCH = 1000


def _fill(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE reading (id INTEGER PRIMARY KEY, sensor TEXT NOT NULL, value INTEGER NOT NULL)"
    )
    conn.executemany(
        "INSERT INTO reading VALUES (?, ?, ?)", ((i, f"s{i % 50}", i % 1000) for i in range(1, rows + 1))
    )
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with 200,000 readings (id, sensor, value)."""
    path = tmp_path_factory.mktemp("stream") / "readings.sqlite"
    _fill(path, STREAM_ROWS)
    return path


@pytest.fixture(scope="module")
def Reading(stream_file: Path) -> Iterator[Any]:
    """The nextorm entity of the readings table."""
    db = Database("sqlite", str(stream_file))

    class Reading(db.Entity):
        _table_ = "reading"
        id = PrimaryKey(int)
        sensor = Required(str)
        value = Required(int)

    db.generate_mapping(check_tables=True)
    yield Reading
    db.disconnect()


@pytest.fixture(scope="module")
def sa_session(stream_file: Path) -> Iterator[tuple[Any, Any]]:
    """A SQLAlchemy session factory and mapped class on the same file."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy import Integer, String
    from sqlalchemy.orm import DeclarativeBase, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class SAReading(Base):
        __tablename__ = "reading"
        id = mapped_column(Integer, primary_key=True)
        sensor = mapped_column(String, nullable=False)
        value = mapped_column(Integer, nullable=False)

    engine = sqlalchemy.create_engine(f"sqlite:///{stream_file}")
    yield (lambda: Session(engine)), SAReading
    engine.dispose()


def _measure(benchmark: Any, work: Callable[[], int]) -> None:
    """Time ``work`` (which returns the rows it read) and record rows/s and the tracemalloc peak."""
    tracemalloc.start()
    try:
        work()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    start = time.perf_counter()
    rows = benchmark.pedantic(work, rounds=3, iterations=1)
    benchmark.extra_info["peak_mib"] = round(peak / 2**20, 2)
    benchmark.extra_info["rows_per_s"] = round(rows * 3 / (time.perf_counter() - start))
    assert rows == STREAM_ROWS


@pytest.mark.benchmark(group="stream")
def test_nextorm_full_load(benchmark: Any, Reading: Any) -> None:
    """Every row loaded into the session at once."""

    def work() -> int:
        with db_session:
            return sum(1 for r in Reading.select() if r.value >= 0)

    _measure(benchmark, work)


@pytest.mark.benchmark(group="stream")
def test_nextorm_yield_per(benchmark: Any, Reading: Any) -> None:
    """``yield_per(1000)``: objects of finished batches leave the session."""

    def work() -> int:
        with db_session:
            return sum(1 for r in Reading.select().yield_per(BATCH) if r.value >= 0)

    _measure(benchmark, work)


@pytest.mark.benchmark(group="stream")
def test_sqlalchemy_full_load(benchmark: Any, sa_session: Any) -> None:
    """SQLAlchemy: ``session.scalars(select(...)).all()``."""
    from sqlalchemy import select

    factory, SAReading = sa_session

    def work() -> int:
        with factory() as session:
            return sum(1 for r in session.scalars(select(SAReading)).all() if r.value >= 0)

    _measure(benchmark, work)


@pytest.mark.benchmark(group="stream")
def test_sqlalchemy_yield_per(benchmark: Any, sa_session: Any) -> None:
    """SQLAlchemy: ``select(...).execution_options(yield_per=1000)``."""
    from sqlalchemy import select

    factory, SAReading = sa_session

    def work() -> int:
        with factory() as session:
            result = session.scalars(select(SAReading).execution_options(yield_per=BATCH))
            return sum(1 for r in result if r.value >= 0)

    _measure(benchmark, work)


# -- set-based writes --------------------------------------------------------------------------------


@pytest.fixture
def Item(tmp_path: Path) -> Iterator[Any]:
    """20,000 items (id, price) in a fresh SQLite file."""
    db = Database("sqlite", str(tmp_path / "items.sqlite"), create_db=True)

    class Item(db.Entity):
        id = PrimaryKey(int)
        price = Required(int)

    db.generate_mapping(create_tables=True)
    conn = sqlite3.connect(tmp_path / "items.sqlite")
    conn.executemany("INSERT INTO Item VALUES (?, ?)", ((i, i) for i in range(1, UPDATE_ROWS + 1)))
    conn.commit()
    conn.close()
    yield Item
    db.disconnect()


@pytest.mark.benchmark(group="update")
def test_query_update(benchmark: Any, Item: Any) -> None:
    """One UPDATE ... WHERE of half the rows."""

    def work() -> int:
        with db_session:
            return Item.select(Item.id <= UPDATE_ROWS // 2).update(price=Item.price + 1)

    assert benchmark.pedantic(work, rounds=3, iterations=1) == UPDATE_ROWS // 2


@pytest.mark.benchmark(group="update")
def test_load_modify_flush(benchmark: Any, Item: Any) -> None:
    """Load half the rows, change each object, flush (batched UPDATEs)."""

    def work() -> int:
        with db_session:
            items = Item.select(Item.id <= UPDATE_ROWS // 2).fetch()
            for item in items:
                item.price += 1
            return len(items)

    assert benchmark.pedantic(work, rounds=3, iterations=1) == UPDATE_ROWS // 2
