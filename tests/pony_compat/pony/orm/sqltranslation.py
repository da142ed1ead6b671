"""``pony.orm.sqltranslation``: the error class Pony's translator raises for incomparable types."""

from nextorm import IncomparableTypesError

__all__ = ["IncomparableTypesError"]
