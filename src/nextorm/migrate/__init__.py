"""Schema migrations on Alembic: ``nextorm migrate init|make|upgrade|downgrade|status|sql``.

Needs the ``migrations`` extra (``pip install "nextorm[migrations]"``: Alembic and SQLAlchemy);
``import nextorm`` never imports this package. The functions take the ``Database`` to migrate and
the migrations directory, as the command line does.
"""

from __future__ import annotations

from .command import MigrationStatus, differences, downgrade, init, make, sql, status, upgrade
from .schema import build_metadata

__all__ = [
    "MigrationStatus",
    "build_metadata",
    "differences",
    "downgrade",
    "init",
    "make",
    "sql",
    "status",
    "upgrade",
]
