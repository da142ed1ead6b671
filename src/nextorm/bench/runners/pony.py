"""Pony ORM: db_session, identity map, Person[pk], commit()."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any, ClassVar

import pony.orm

from nextorm.bench.runners import Unsupported
from nextorm.bench.runners._ponylike import PonyLikeRunner


class PonyRunner(PonyLikeRunner):
    """Pony's idioms, the ones nextorm's API is modelled on."""

    orm: ClassVar[ModuleType] = pony.orm
    distributions = ("pony",)
    notes = {
        **{name: "Pony has no asyncio API" for name in ("async-load", "async-update", "async-insert")},
        "query-expr": "Pony has no attribute-expression queries",
    }
    # Pony stores None in an Optional(str) as '' unless told the column is nullable.
    email_options = {"nullable": True}

    def bind(self, db: Any) -> None:
        """Bind; Pony's PostgreSQL provider is written for psycopg2 only."""
        if self.target.is_postgres and importlib.util.find_spec("psycopg2") is None:
            raise Unsupported("Pony's PostgreSQL provider needs psycopg2")
        super().bind(db)

    def select_batch(self) -> Any:
        """``Person.select(lambda p: p.id <= batch)``."""
        batch = self.config.batch
        return self.Person.select(lambda p: p.id <= batch)


RUNNER = PonyRunner
