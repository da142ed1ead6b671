"""Database providers: one module per database, found through ``PROVIDERS``."""

from __future__ import annotations

import importlib
from typing import Any

from ..exceptions import BindingError
from .base import Provider

__all__ = ["PROVIDERS", "Provider", "get_provider"]

#: provider name -> (module, blocking provider class, asyncio provider class); a module is imported
#: only when a database binds to it, so a driver that is not installed costs nothing until then
PROVIDERS: dict[str, tuple[str, str, str]] = {
    "sqlite": ("sqlite", "SQLiteProvider", "AsyncSQLiteProvider"),
    "postgres": ("postgres", "PostgresProvider", "AsyncPostgresProvider"),
    "postgresql": ("postgres", "PostgresProvider", "AsyncPostgresProvider"),
}


def get_provider(name: str, *args: Any, asyncio: bool = False, **kwargs: Any) -> Provider:
    """The provider called ``name`` (its asyncio flavour when ``asyncio``), constructed with the bind arguments."""
    entry = PROVIDERS.get(name)
    if entry is None:
        raise BindingError(f"Unknown database provider {name!r} (supported: 'sqlite', 'postgres')")
    module, blocking, awaitable = entry
    provider_class = getattr(
        importlib.import_module(f"{__name__}.{module}"), awaitable if asyncio else blocking
    )
    return provider_class(*args, **kwargs)  # type: ignore[no-any-return]
