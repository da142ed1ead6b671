"""Fixtures for the hot-path micro-benchmarks: both implementations, one hand-built model, one table."""

from __future__ import annotations

import importlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

ROWS = 100_000
NAMES = ("id", "name", "age", "score", "note")
QUERY = "SELECT id, name, age, score, note FROM person ORDER BY id"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``speedups`` over the compiled module and its pure twin, as tests/ does."""
    if "speedups" in metafunc.fixturenames:
        params = [pytest.param("_speedups_py", id="pure")]
        if os.environ.get("NEXTORM_NO_EXTENSIONS", "") in ("", "0"):
            params.insert(0, pytest.param("_speedups", id="compiled", marks=pytest.mark.c_extension))
        metafunc.parametrize("speedups", params, indirect=True)


@pytest.fixture
def speedups(request: pytest.FixtureRequest) -> ModuleType:
    """The hot-path module under measure; the compiled one is imported directly, so a missing build errors."""
    return importlib.import_module(f"nextorm.{request.param}")


@pytest.fixture(scope="session")
def fetchall() -> Iterator[Callable[[], list[tuple[Any, ...]]]]:
    """``fetchall()`` of every row of an in-memory SQLite table of 100k rows of five columns."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, score REAL, note TEXT)"
    )
    conn.executemany(
        "INSERT INTO person VALUES (?, ?, ?, ?, ?)",
        ((i, f"name{i}", i % 90, i * 0.5, None if i % 3 else f"note{i}") for i in range(1, ROWS + 1)),
    )
    yield lambda: conn.execute(QUERY).fetchall()
    conn.close()


@dataclass
class Model:
    """A five-column entity class built the way the ORM's metaclass builds one."""

    speedups: ModuleType
    entity: type
    columns: list[Any]
    session: Any
    cache: Any

    def load(self, imap: dict[Any, Any], rows: Any) -> list[Any]:
        """``materialize`` with no converters, every column checked."""
        return self.speedups.materialize(
            self.entity, self.cache, imap, self.columns, [None] * len(self.columns), 1, -1, rows
        )


class Plain:
    """The baseline object: the same five values in plain ``__slots__``."""

    __slots__ = NAMES


@pytest.fixture(scope="session")
def plain_objects() -> Callable[[list[tuple[Any, ...]]], list[Plain]]:
    """Makes plain slot objects holding the given rows."""

    def build(rows: list[tuple[Any, ...]]) -> list[Plain]:
        objs = []
        for row in rows:
            obj = Plain()
            obj.id, obj.name, obj.age, obj.score, obj.note = row
            objs.append(obj)
        return objs

    return build


@pytest.fixture
def model(speedups: ModuleType) -> Iterator[Model]:
    """The model, with hooks written in Python as the ORM writes them, its session current."""

    class Col(speedups.Column):
        def _load_(self, obj: Any) -> Any:
            raise AssertionError("not loaded")

        def _validate_(self, obj: Any, value: Any) -> Any:
            return value

        def _check_assign_(self, obj: Any, value: Any) -> None:
            raise AssertionError("refused")

        def _unrepeatable_(self, obj: Any, known: Any, new: Any) -> None:
            raise AssertionError("unrepeatable")

    class Meta(speedups.EntityMetaBase):
        """A Python metaclass over the hot path's, as the ORM's EntityMeta is."""

    entity = Meta("Person", (speedups.EntityBase,), {"__slots__": NAMES})
    columns = []
    for index, name in enumerate(NAMES):
        column = Col()
        member = entity.__dict__[name]
        setattr(entity, name, column)  # in its place before it is bound, as in the ORM's classes
        column._bind_slot_(member, index)
        columns.append(column)
    session = speedups.SessionBase(None)
    token = speedups.current_session.set(session)
    yield Model(speedups, entity, columns, session, speedups.CacheBase(session))
    speedups.current_session.reset(token)
