"""``QueryResult``: the list a query's ``fetch()`` and ``q[:]`` return, read-only but reorderable."""

from __future__ import annotations

import pprint
import random
import sys
from typing import IO, Any, NoReturn, SupportsIndex, TypeVar

from .display import show_objects

__all__ = ["QueryResult", "query_result"]

_T = TypeVar("_T")


def _refused(title: str) -> Any:
    def method(self: QueryResult[Any], *args: Any, **kwargs: Any) -> NoReturn:
        # Pony's wording, which its applications check; the name of the list's method is a note
        raise TypeError(f"In order to do {title}, cast QueryResult to list first")

    method.__doc__ = f"Refused with ``TypeError`` ({title} would change a query's result): use ``to_list()``."
    return method


class QueryResult(list[_T]):
    """The objects (or values) a query returned, in its order.

    A ``list`` for reading (``len``, indexing, slicing, ``in``, ``index``, ``==`` with a list,
    ``+`` giving a new list) whose items cannot be added, removed or replaced: the methods that
    would (``append``, ``extend``, ``insert``, ``pop``, ``remove``, ``clear``, item assignment
    and deletion, ``+=``, ``*``, ``*=``) raise ``TypeError``. Reordering in place is allowed:
    ``sort()`` (objects order by primary key), ``reverse()`` and ``shuffle()``. ``to_list()``
    gives a plain list the caller owns.
    """

    __slots__ = ("_entity",)

    def __init__(self, items: Any = (), entity: Any = None) -> None:
        list.__init__(self, items)
        #: the entity whose objects the result holds, None for a result of values
        self._entity = entity

    def to_list(self) -> list[_T]:
        """A new plain list of the items, free to change."""
        return list(self)

    def shuffle(self) -> None:
        """Put the items in a random order, in place."""
        items = list(self)
        random.shuffle(items)
        list.__setitem__(self, slice(None), items)  # the one change allowed: the same items reordered

    def show(self, width: int | None = None, stream: IO[str] | None = None) -> None:
        """Print the objects as a table of their attributes (values are printed as a list)."""
        if self._entity is not None:
            show_objects(self._entity, self, width, stream)
        else:
            pprint.pprint(list(self), stream=sys.stdout if stream is None else stream)

    def __repr__(self) -> str:
        return list.__repr__(self)

    def __reduce__(self) -> Any:
        # pickled and copied as a new result holding the same items (list's protocol would append)
        return (QueryResult, (list(self), self._entity))

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return self.__reduce__()

    def __copy__(self) -> QueryResult[_T]:
        return QueryResult(self, self._entity)

    append = _refused("append")
    extend = _refused("extend")
    insert = _refused("insert")
    pop = _refused("pop")
    remove = _refused("remove")
    clear = _refused("clear")
    __setitem__ = _refused("item assignment")
    __delitem__ = _refused("item deletion")
    __iadd__ = _refused("+=")
    __imul__ = _refused("*=")
    __mul__ = _refused("*")
    __rmul__ = _refused("*")


_new_list = list.__new__
_extend = list.extend


def query_result(items: Any, entity: Any) -> QueryResult[Any]:
    """``QueryResult(items, entity)`` made without a Python-level ``__init__`` call (a query's fetch)."""
    result: QueryResult[Any] = _new_list(QueryResult)
    _extend(result, items)
    result._entity = entity
    return result
