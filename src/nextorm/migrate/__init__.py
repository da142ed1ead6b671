"""Schema migrations on Alembic: ``nextorm migrate init|make|upgrade|downgrade|status|sql``.

Needs the ``migrations`` extra (``pip install "nextorm[migrations]"``: Alembic and SQLAlchemy);
``import nextorm`` never imports this package.
"""

from __future__ import annotations

from .schema import build_metadata

__all__ = ["build_metadata"]
