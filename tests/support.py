"""Helpers test modules import (conftest.py holds only fixtures and hooks)."""

from __future__ import annotations

import sqlite3
from typing import Any


def sync_id_sequence(conn: Any, table: str, column: str = "id") -> None:
    """Call after another client inserted rows with explicit ids into ``table``.

    On PostgreSQL an identity column's sequence does not advance for explicit ids, so the next
    auto id would clash with them: this moves it to ``max(column)``. SQLite needs nothing (no-op).
    """
    if isinstance(conn, sqlite3.Connection):
        return
    conn.execute(
        f'SELECT setval(pg_get_serial_sequence(\'"{table}"\', \'{column}\'), max("{column}")) FROM "{table}"'
    )
