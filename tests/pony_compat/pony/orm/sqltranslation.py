"""``pony.orm.sqltranslation``: the error class Pony's translator raises for incomparable types."""

from nextorm import TranslationError

__all__ = ["IncomparableTypesError"]


class IncomparableTypesError(TranslationError):
    """Two operands of a query comparison have types that cannot be compared."""
