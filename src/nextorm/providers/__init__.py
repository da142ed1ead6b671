"""Database providers: one module per database."""

from __future__ import annotations

from typing import Any

from ..exceptions import BindingError
from .base import Provider

__all__ = ["Provider", "get_provider"]


def get_provider(name: str, *args: Any, asyncio: bool = False, **kwargs: Any) -> Provider:
    """The provider called ``name`` (its asyncio flavour when ``asyncio``), constructed with the bind arguments."""
    if name == "sqlite":
        from .sqlite import AsyncSQLiteProvider, SQLiteProvider

        return (AsyncSQLiteProvider if asyncio else SQLiteProvider)(*args, **kwargs)
    if name in ("postgres", "postgresql"):
        from .postgres import AsyncPostgresProvider, PostgresProvider

        return (AsyncPostgresProvider if asyncio else PostgresProvider)(*args, **kwargs)
    raise BindingError(f"Unknown database provider {name!r} (supported: 'sqlite', 'postgres')")
