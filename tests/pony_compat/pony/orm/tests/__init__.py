"""The helpers Pony's test files import from their package, written for nextorm.

``db_params`` is SQLite in memory unless ``NEXTORM_PONY_TEST_DB`` names another provider's
keyword arguments as JSON (for example ``{"provider": "postgres", "dsn": "..."}``).
"""

from __future__ import annotations

import json
import os
import types
import unittest
from typing import Any

db_params: dict[str, Any] = json.loads(
    os.environ.get("NEXTORM_PONY_TEST_DB") or '{"provider": "sqlite", "filename": ":memory:"}'
)


def setup_database(db: Any) -> None:
    """Bind and map ``db`` if needed, then give it empty tables."""
    if db.provider is None:
        db.bind(**db_params)
    if not db._mapped_:
        db.generate_mapping(check_tables=False)
    db.drop_all_tables(with_all_data=True)
    db.create_tables()


def teardown_database(db: Any) -> None:
    """Drop the tables of ``db`` and close its connection."""
    if db._mapped_:
        db.drop_all_tables(with_all_data=True)
    db.disconnect()


def only_for(providers: str | list[str] | tuple[str, ...]) -> Any:
    """Skip a test case class or test method unless the tests run on one of ``providers``."""
    names = [providers] if isinstance(providers, str) else list(providers)
    wanted = db_params["provider"] in names
    reason = f"runs only on {', '.join(names)}"

    def decorator(target: Any) -> Any:
        if isinstance(target, type) and issubclass(target, unittest.TestCase):
            return target if wanted else unittest.skip(reason)(target)
        if isinstance(target, types.FunctionType):
            return target if wanted else unittest.skip(reason)(target)
        raise TypeError(f"only_for() decorates a TestCase class or a test method, got {target!r}")

    return decorator
