"""Session checkout cost: taking a pooled connection and giving it back (README "Connection pooling").

PostgreSQL: nextorm's ``acquire()``/``release()`` (psycopg_pool plus nextorm's health check) beside
psycopg_pool's bare ``getconn()``/``putconn()``, on the server named by ``NEXTORM_TEST_POSTGRES``.
Async SQLite: a pooled aiosqlite connection beside opening one per session.
Run with ``pytest benchmarks/test_pool_checkout.py --benchmark-only``; times are per ``LOOP`` checkouts.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from nextorm import AsyncDatabase, Database

LOOP = 1000  # checkouts per timed call
POSTGRES_DSN = os.environ.get("NEXTORM_TEST_POSTGRES", "")

needs_postgres = pytest.mark.skipif(
    not POSTGRES_DSN, reason="set NEXTORM_TEST_POSTGRES to measure the PostgreSQL pool"
)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    """A Database bound to the benchmark server, its pool holding one connection already."""
    db = Database("postgres", dsn=POSTGRES_DSN)
    db.provider.release(db.provider.acquire())
    yield db
    db.disconnect()


@needs_postgres
@pytest.mark.benchmark(group="session checkout: PostgreSQL pool")
def test_checkout_baseline_psycopg_pool(benchmark: Any) -> None:
    """Baseline: psycopg_pool's ``getconn()`` + ``putconn()`` with no check."""
    from psycopg_pool import ConnectionPool

    with ConnectionPool(POSTGRES_DSN, min_size=1, max_size=1, open=True, kwargs={"autocommit": True}) as pool:
        pool.putconn(pool.getconn())

        def checkouts() -> None:
            for _ in range(LOOP):
                pool.putconn(pool.getconn())

        benchmark(checkouts)


@needs_postgres
@pytest.mark.benchmark(group="session checkout: PostgreSQL pool")
def test_checkout_nextorm_postgres(benchmark: Any, postgres: Any) -> None:
    """``provider.acquire()`` + ``release()``: what every session does, health check included."""
    provider = postgres.provider

    def checkouts() -> None:
        for _ in range(LOOP):
            provider.release(provider.acquire())

    benchmark(checkouts)
    assert len(provider._lent) == 0


@pytest.fixture
def async_sqlite(tmp_path: Any) -> Any:
    """An AsyncDatabase on a fresh SQLite file."""
    return AsyncDatabase("sqlite", str(tmp_path / "bench.sqlite"), create_db=True)


@pytest.mark.benchmark(group="session checkout: async SQLite")
def test_checkout_async_sqlite_new_connection(benchmark: Any, async_sqlite: Any) -> None:
    """Baseline: a new aiosqlite connection (and its thread) per session, closed at its end."""
    provider = async_sqlite.provider

    async def checkouts() -> None:
        for _ in range(LOOP // 10):
            await provider._aclose(await provider.aconnect())

    benchmark(lambda: asyncio.run(checkouts()))


@pytest.mark.benchmark(group="session checkout: async SQLite")
def test_checkout_async_sqlite_pooled(benchmark: Any, async_sqlite: Any) -> None:
    """``aacquire()`` + ``arelease()``: the event loop's idle connection, reused."""
    provider = async_sqlite.provider

    async def checkouts() -> None:
        for _ in range(LOOP // 10):
            await provider.arelease(await provider.aacquire())
        await provider.adisconnect()

    benchmark(lambda: asyncio.run(checkouts()))
