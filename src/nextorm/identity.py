"""Object identity: one object per row in a session, keys of objects, unique keys.

The identity maps themselves live in the session's cache (the hot path's ``CacheBase``); these
helpers find or create the object for a key, give the key a reference is stored as, and describe
the unique keys whose values a session indexes.
"""

from __future__ import annotations

from typing import Any

from ._impl import LOADED, EntityBase
from .exceptions import TransactionError

__all__ = [
    "UniqueKey",
    "flat_key",
    "fold_rows",
    "key_db_values",
    "key_from_db",
    "known_object",
    "nested_key",
    "reference_to_db",
    "seed",
]


def seed(entity: Any, cache: Any, pk: Any) -> Any:
    """The object of ``entity`` with primary key ``pk`` in ``cache``'s session, created unloaded if new."""
    if cache.is_alive:
        imap = cache.identity_map(entity)
        obj = imap.get(pk)
        if obj is not None:
            if type(obj) is not entity and issubclass(entity, type(obj)):
                obj.__class__ = entity  # a reference says more of its class than was known
            return obj
    else:
        obj = cache.session.maps.get(entity._root_, {}).get(pk)
        if obj is not None and obj._cache_ is cache:
            return obj
    obj = EntityBase.__new__(entity)
    obj._init_state_(cache, LOADED)
    if entity._npk_ == 1:
        entity._pk_attrs_[0].set_raw(obj, pk)
    else:
        for attr, value in zip(entity._pk_attrs_, pk):
            attr.set_raw(obj, value)
    if cache.is_alive:
        imap[pk] = obj
    return obj


def known_object(entity: Any, cache: Any, value: Any) -> Any:
    """The object a stored reference value stands for, if the session has it; never loads."""
    if value is None or isinstance(value, EntityBase):
        return value
    return cache.session.maps.get(entity._root_, {}).get(value)


def reference_to_db(value: Any) -> Any:
    """The database value of a stored reference (the target's pk)."""
    if isinstance(value, EntityBase):
        pk = value._pk_raw_()  # type: ignore[attr-defined]  # every EntityBase is an Entity, which has it
        if pk is None:
            raise TransactionError(f"{value!r} must be saved before an object referring to it")
        return pk
    return value


def flat_key(entity: Any, pk: Any) -> tuple[Any, ...]:
    """The primary key ``pk`` of ``entity`` as one value per database column.

    A key made of references holds the keys of the objects referred to (a tuple for a composite
    one); they are spliced in, in column order.
    """
    if not entity._pk_has_refs_:
        return pk if entity._npk_ > 1 else (pk,)  # type: ignore[no-any-return]
    parts = (pk,) if entity._npk_ == 1 else pk
    flat: list[Any] = []
    for attr, value in zip(entity._pk_attrs_, parts):
        if attr.is_reference:
            flat += flat_key(attr.py_type, reference_to_db(value))
        else:
            flat.append(value)
    return tuple(flat)


def nested_key(entity: Any, values: Any) -> Any:
    """The primary key of ``entity`` made of the next values of the iterator ``values`` (see flat_key)."""
    parts = [nested_key(a.py_type, values) if a.is_reference else next(values) for a in entity._pk_attrs_]
    return parts[0] if entity._npk_ == 1 else tuple(parts)


def fold_rows(attrs: tuple[Any, ...], rows: Any) -> Any:
    """``rows`` (one value per column of ``attrs``) with one value per attribute: the columns of a
    reference to a composite key folded into the key it stores."""
    if all(a.width == 1 for a in attrs):
        return rows
    spans = []
    start = 0
    for attr in attrs:
        spans.append((start, attr.width, attr))
        start += attr.width
    return [
        [row[i] if width == 1 else attr.value_from_db(row[i : i + width]) for i, width, attr in spans]
        for row in rows
    ]


def key_db_values(entity: Any, pk: Any) -> tuple[Any, ...]:
    """The database values of the key columns of ``entity`` for the primary key ``pk``."""
    return tuple(
        v if v is None or leaf.to_db is None else leaf.to_db(v)
        for (_, leaf), v in zip(entity._pk_leaves_, flat_key(entity, pk))
    )


def key_from_db(entity: Any, values: Any) -> Any:
    """The primary key of ``entity`` for the database values of its key columns."""
    converted = [
        v if leaf.from_db is None else leaf.from_db(v) for (_, leaf), v in zip(entity._pk_leaves_, values)
    ]
    return nested_key(entity, iter(converted))


class UniqueKey:
    """A set of attributes whose values are unique together (one attribute for ``unique=True``)."""

    def __init__(self, attrs: tuple[Any, ...]) -> None:
        self.attrs = attrs
        self.name = attrs[0].name if len(attrs) == 1 else "(" + ", ".join(a.name for a in attrs) + ")"

    def value_of(self, obj: Any) -> Any:
        """The key value of ``obj``; None when any part is None or not loaded."""
        if len(self.attrs) == 1:
            return self.attrs[0].get_raw(obj)
        values = tuple(a.get_raw(obj) for a in self.attrs)
        return None if None in values else values

    def value_with(self, obj: Any, changes: dict[Any, Any]) -> Any:
        """The key value of ``obj`` if the attributes in ``changes`` took their new values."""
        values = tuple(changes[a] if a in changes else a.get_raw(obj) for a in self.attrs)
        if len(values) == 1:
            return values[0]
        return None if None in values else values
