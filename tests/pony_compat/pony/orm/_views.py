"""Read-only views of Pony's private names onto nextorm's own state, for Pony's test suite.

Some of Pony's tests check behaviour by reading Pony's internals: ``obj._vals_`` for what a
session holds of an object, ``Entity._indexes_`` for its keys, ``db._get_cache()`` for the
transaction, ``db._dblocal.last_sql = None`` before checking that no statement ran. Each view
below answers from what nextorm really holds (never a value made up to please a test), so those
tests check nextorm's behaviour. Pony's names whose state means something else in nextorm (the
``_status_`` state names, a collection's added/removed sets, the SQL syntax tree of a query) get
no view and their tests fail.

Every read of a view adds its name to ``touched``: the harness (``scripts/pony-tests.py``) counts
the passing tests that read one, so the report says how many pass only through these views.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from nextorm import Database, Entity, Query
from nextorm._impl import LOADED
from nextorm.identity import flat_key, nested_key, seed
from nextorm.session import active_session

#: the names of the views read since the harness last cleared it
touched: set[str] = set()

_MISSING = object()


class _View:
    """A read-only attribute named ``name``: ``of_object(obj)`` on an instance, ``of_class(cls)``
    on a class (an instance without ``of_object`` gets its class's)."""

    def __init__(
        self,
        name: str,
        of_class: Callable[[Any], Any] | None = None,
        of_object: Callable[[Any], Any] | None = None,
    ) -> None:
        self.name = name
        self.of_class = of_class
        self.of_object = of_object

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        if obj is None and self.of_class is None:
            raise AttributeError(f"type object {cls.__name__!r} has no attribute {self.name!r}")
        touched.add(self.name)
        if obj is None:
            return self.of_class(cls)  # type: ignore[misc]
        if self.of_object is None:
            return self.of_class(type(obj))  # type: ignore[misc]
        return self.of_object(obj)

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"{self.name} is a read-only view of nextorm's state")


# -- objects: the values a session holds ------------------------------------------------------


def _value(attr: Any, obj: Any, raw: Any) -> Any:
    """A held value as reading the attribute gives it: a reference holding its target's key gives
    the target's object (taken into the session unloaded when it is not there yet, as a read does)."""
    if attr.is_reference and raw is not None and not isinstance(raw, Entity):
        return seed(attr.py_type, obj._cache_, raw)
    return raw


def held_values(obj: Any) -> dict[Any, Any]:
    """``obj._vals_``: each attribute whose value the session holds (loaded or assigned), with it;
    an attribute not loaded is left out. Collections are not included."""
    values = {}
    for attr in type(obj)._attrs_:
        raw = attr.get_raw(obj, _MISSING)
        if raw is not _MISSING:
            values[attr] = _value(attr, obj, raw)
    return values


def key_value(obj: Any) -> Any:
    """``obj._pkval_``: the primary key, a tuple for a composite one, references as objects."""
    parts = [_value(attr, obj, attr.get_raw(obj)) for attr in type(obj)._pk_attrs_]
    return parts[0] if len(parts) == 1 else tuple(parts)


def raw_key(obj: Any) -> Callable[[], tuple[Any, ...]]:
    """``obj._get_raw_pkval_()``: the primary key as one value per key column."""
    return lambda: tuple(flat_key(type(obj), obj._pk_raw_()))


def find_by_raw_key(cls: Any) -> Callable[[tuple[Any, ...]], Any]:
    """``Entity._get_by_raw_pkval_(values)``: the session's object of the key given as one value
    per key column, taken unloaded into the session (as a reference to it is) if it has none."""

    def find(values: tuple[Any, ...]) -> Any:
        session = active_session()
        if session is None:
            raise TypeError(f"{cls.__name__}._get_by_raw_pkval_() needs a db_session")
        return seed(cls, session.cache_for(cls._database_), nested_key(cls, iter(values)))

    return find


# -- entity classes: keys, indexes, bits -------------------------------------------------------


def _primary_key(cls: Any) -> Any:
    attrs = cls._pk_attrs_
    return attrs[0] if len(attrs) == 1 else tuple(attrs)


def simple_keys(cls: Any) -> list[Any]:
    """``Entity._simple_keys_``: the attributes declared ``unique=True`` (not the primary key)."""
    return [attr for attr in cls._attrs_ if attr.unique and not attr.is_pk]


def composite_keys(cls: Any) -> list[tuple[Any, ...]]:
    """``Entity._composite_keys_``: the attributes of each ``composite_key()``."""
    return [tuple(key.attrs) for key in cls._composite_unique_keys_]


def keys(cls: Any) -> list[tuple[Any, ...]]:
    """``Entity._keys_``: every unique key but the primary key, as a tuple of attributes."""
    return [(attr,) for attr in simple_keys(cls)] + composite_keys(cls)


class Index:
    """One of ``Entity._indexes_``: the attributes of an index and whether it is the primary key
    or unique."""

    def __init__(self, attrs: tuple[Any, ...], is_pk: bool = False, is_unique: bool = True) -> None:
        self.attrs = attrs
        self.is_pk = is_pk
        self.is_unique = is_unique

    def __repr__(self) -> str:
        return f"Index({', '.join(attr.qualname for attr in self.attrs)})"


def indexes(cls: Any) -> list[Index]:
    """``Entity._indexes_``: the primary key, the unique keys, then ``composite_index()``es (those
    of the classes it derives from first)."""
    found = [Index(tuple(cls._pk_attrs_), is_pk=True)]
    found += [Index(key) for key in keys(cls)]
    plain = dict.fromkeys(key for base in (*cls._all_bases_, cls) for key in base._composite_indexes_)
    found += [Index(tuple(key.attrs), is_unique=False) for key in plain]
    return found


def bits(cls: Any) -> dict[Any, int]:
    """``Entity._bits_``: the bit of each attribute in ``obj._rbits_`` (nextorm's read bits)."""
    return {attr: attr.bit for attr in cls._attrs_}


# -- databases: the session's cache of one database, last_sql -----------------------------------


class SessionCacheView:
    """``db._get_cache()``: what the current session holds for one database."""

    def __init__(self, cache: Any) -> None:
        self._cache = cache

    @property
    def is_alive(self) -> bool:
        """Whether the session is still open."""
        return bool(self._cache.is_alive)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the database."""
        return bool(self._cache.in_transaction)

    @property
    def immediate(self) -> bool:
        """Whether the open transaction holds the write lock: nextorm opens a transaction only
        with it (BEGIN IMMEDIATE on SQLite), for a write or ``db_session(immediate=True)``."""
        return bool(self._cache.in_transaction and not self._cache.readonly)

    @property
    def seeds(self) -> dict[tuple[Any, ...], set[Any]]:
        """The objects the session knows by their key only (nothing else loaded), by the primary
        key attributes of their hierarchy."""
        found: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
        maps = {id(imap): imap for imap in self._cache.session.maps.values()}
        for imap in maps.values():
            for obj in imap.values():
                cls = type(obj)
                if obj._cache_ is not self._cache or obj._status_ != LOADED:
                    continue
                if any(a.is_loaded(obj) for a in cls._columns_ if not a.is_pk and not a.is_discriminator):
                    continue
                found[cls._pk_attrs_].add(obj)
        return found


def session_cache(db: Any) -> Callable[[], SessionCacheView]:
    """``db._get_cache()``: the current session's cache of ``db``."""

    def get() -> SessionCacheView:
        session = active_session()
        if session is None:
            raise TypeError("db._get_cache() needs a db_session")
        return SessionCacheView(session.cache_for(db))

    return get


class LastStatement:
    """``db._dblocal``: ``last_sql`` is ``db.last_sql``; assigning None resets it (nextorm's
    ``db.last_sql = None``)."""

    def __init__(self, db: Any) -> None:
        self._db = db

    @property
    def last_sql(self) -> str | None:
        """The last statement this thread ran on the database."""
        return self._db.last_sql  # type: ignore[no-any-return]

    @last_sql.setter
    def last_sql(self, value: None) -> None:
        self._db.last_sql = value


# -- queries ---------------------------------------------------------------------------------


class TranslatedQuery:
    """``q._translator``: what the query's SELECT does; only ``distinct`` (Pony's syntax tree of
    the SQL has no counterpart: nextorm builds its own statement objects)."""

    def __init__(self, query: Any) -> None:
        self._query = query

    @property
    def distinct(self) -> bool:
        """Whether the SELECT removes duplicate rows."""
        return bool(self._query.statement().distinct)


def _install() -> None:
    views = [
        (Entity, _View("_vals_", of_object=held_values)),
        (Entity, _View("_pkval_", of_object=key_value)),
        (Entity, _View("_pk_", of_class=_primary_key, of_object=key_value)),
        (Entity, _View("_pk_is_composite_", of_class=lambda cls: cls._npk_ > 1)),
        (Entity, _View("_get_raw_pkval_", of_object=raw_key)),
        (Entity, _View("_get_by_raw_pkval_", of_class=find_by_raw_key)),
        (Entity, _View("_simple_keys_", of_class=simple_keys)),
        (Entity, _View("_composite_keys_", of_class=composite_keys)),
        (Entity, _View("_keys_", of_class=keys)),
        (Entity, _View("_indexes_", of_class=indexes)),
        (Entity, _View("_bits_", of_class=bits)),
        (Database, _View("_get_cache", of_object=session_cache)),
        (Database, _View("_dblocal", of_object=LastStatement)),
        (Query, _View("_translator", of_object=TranslatedQuery)),
    ]
    for owner, view in views:
        setattr(owner, view.name, view)


_install()
