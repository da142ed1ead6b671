"""nextorm, compiled or pure (``NEXTORM_NO_EXTENSIONS=1`` set by the parent)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from types import ModuleType
from typing import Any, ClassVar

import nextorm
from nextorm import AsyncDatabase, acommit, db_session
from nextorm.bench.dataset import Target, make_rows
from nextorm.bench.runners import AsyncTimed, Timed, driver_versions, require_modules
from nextorm.bench.runners._ponylike import PonyLikeRunner
from nextorm.bench.workloads import Config

#: psycopg's own default: a statement run this many times on a connection is prepared
PREPARE_THRESHOLD = 5


class NextormRunner(PonyLikeRunner):
    """nextorm's Pony-style idioms; the asyncio workloads on an AsyncDatabase."""

    orm: ClassVar[ModuleType] = nextorm

    def __init__(self, target: Target, config: Config) -> None:
        super().__init__(target, config)
        self.adb: AsyncDatabase | None = None
        self.APerson: Any = None

    def versions(self) -> dict[str, str]:
        """nextorm's version and its drivers'."""
        try:
            found = {"nextorm": importlib.metadata.version("nextorm")}
        except importlib.metadata.PackageNotFoundError:
            found = {"nextorm": str(getattr(nextorm, "__version__", "unknown"))}
        return {**found, **driver_versions(self.target)}

    def info(self) -> dict[str, object]:
        """Whether the compiled session core actually loaded."""
        return {"compiled": bool(nextorm.COMPILED)}

    def bind(self, db: Any) -> None:
        """Bind to the target; on PostgreSQL with psycopg's prepared statements on, as the raw
        runner's connection has them (nextorm leaves them off by default for PgBouncer, and the
        README's advice for a server reached directly is ``prepare_threshold=5``)."""
        if self.target.is_postgres:
            db.bind(provider="postgres", dsn=self.target.location, prepare_threshold=PREPARE_THRESHOLD)
        else:
            super().bind(db)

    def select_batch(self) -> Any:
        """``Person.select(Person.id <= batch)``."""
        Person = self.Person
        return Person.select(Person.id <= self.config.batch)

    def query_expression(self) -> AbstractContextManager[Timed]:
        """``Person.select(Person.age == age).order_by(Person.id)[:10]``, M times, a session per round."""
        Person = self.Person
        return self.in_rounds(lambda age: len(Person.select(Person.age == age).order_by(Person.id)[:10]))

    def async_person(self) -> Any:
        """``Person`` on an AsyncDatabase bound to the target (aiosqlite or psycopg async), made on first use."""
        if self.adb is None:
            if not self.target.is_postgres:
                require_modules("aiosqlite", purpose="nextorm's AsyncDatabase on SQLite")
            adb = AsyncDatabase()
            self.APerson = self.declare(adb)[0]
            self.bind(adb)
            adb.generate_mapping(create_tables=False)
            self.adb = adb
        return self.APerson

    async def aclose(self) -> None:
        """Close the AsyncDatabase's idle connections, asyncio and blocking (mapping's)."""
        if self.adb is not None:
            await self.adb.adisconnect()
            self.adb.disconnect()

    @asynccontextmanager
    async def async_load(self) -> AsyncIterator[AsyncTimed]:
        """``await Person.select().afetch()`` in an open ``async with db_session``."""
        Person = self.async_person()
        async with db_session:
            yield lambda: Person.select().afetch()

    @asynccontextmanager
    async def async_update(self) -> AsyncIterator[AsyncTimed]:
        """``obj.age += 1`` on M objects loaded with ``afetch()``, then ``await acommit()``."""
        Person = self.async_person()
        async with db_session:
            objs = await Person.select(Person.id <= self.config.batch).afetch()

            async def run() -> None:
                for obj in objs:
                    obj.age += 1
                await acommit()

            yield run

    @asynccontextmanager
    async def async_insert(self) -> AsyncIterator[AsyncTimed]:
        """``Person(...)`` M times, then ``await acommit()``."""
        Person = self.async_person()
        values = make_rows(self.config.batch, start=self.config.rows)
        async with db_session:

            async def run() -> None:
                for name, email, age, score in values:
                    Person(name=name, email=email, age=age, score=score)
                await acommit()

            yield run


RUNNER = NextormRunner
