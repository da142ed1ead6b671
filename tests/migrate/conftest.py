"""Fixtures of the migration tests: Databases on one storage, one per version of the entities."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from nextorm import Database

POSTGRES_DSN = os.environ.get("NEXTORM_TEST_POSTGRES", "")


@pytest.fixture
def new_db(db_kind: str, db_path: str, pg_schema: str | None) -> Iterator[Callable[[], Database]]:
    """Makes Databases with no entities yet on the storage ``db`` uses: one per version of a model."""
    made: list[Database] = []

    def make() -> Database:
        if db_kind == "postgres":
            database = Database("postgres", dsn=POSTGRES_DSN, options=f"-c search_path={pg_schema}")
        else:
            database = Database("sqlite", db_path, create_db=True)
        made.append(database)
        return database

    yield make
    for database in made:
        database.disconnect()


@pytest.fixture
def migrations(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """The path of a migrations directory (not created yet)."""
    return str(tmp_path / "migrations")
