"""``pony.orm.decompiling``: the error class for a query nextorm cannot read (its TranslationError)."""

from nextorm import TranslationError as InvalidQuery

__all__ = ["InvalidQuery"]
