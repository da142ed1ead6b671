"""Loading rows into objects: queries' results, missing columns, references, collections, prefetch.

Every function here reads the database through a session's cache and hands rows to the hot
path's ``materialize``; the model above calls it, and it calls only the SQL layer, the identity
helpers and the session's IO below.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from ._impl import (
    CREATED,
    DELETED,
    LOADED,
    EntityBase,
    learn_unique,
    load_rows,
    materialize,
    read_now,
    session_cache,
    take_members,
    track,
)
from .exceptions import OrmError, UnrepeatableReadError
from .identity import fold_rows, key_db_values, key_from_db, reference_to_db, seed
from .session import require_session
from .sql import AllEqual, Col, InRows, InValues, Join, Select, render
from .steps import NO_STEPS, Steps, perform, run_sync

__all__ = [
    "fetch",
    "fetch_steps",
    "fetch_values_steps",
    "load_attr_steps",
    "load_collection",
    "load_collections_steps",
    "load_missing",
    "load_missing_steps",
    "load_references_steps",
    "materialize_raw",
    "materialize_rows",
    "one_to_one_partner",
    "one_to_one_partner_steps",
    "prefetch_steps",
    "refresh_columns_steps",
    "refresh_steps",
    "stream_steps",
]


# -- objects of a query ------------------------------------------------------------------------


def fetch_steps(
    entity: Any, sql: str, params: Any, raw: bool = False, for_update: bool = False
) -> Steps[list[Any]]:
    """Steps that run a SELECT of ``entity`` rows (all columns, or any columns when ``raw``) and return the objects."""
    cache = require_session().cache_for(entity._database_)
    yield from cache.flush_steps()
    if for_update:
        yield cache, "begin", ()
    result = yield cache, "query", (sql, params)
    if for_update and not raw:
        # the row is locked now: what this session read before is replaced, not compared
        fresh_snapshot(entity, cache, result.rows)
    if raw:
        return materialize_raw(entity, cache, result.description, result.rows)
    return materialize_rows(entity, cache, entity._select_attrs_, entity._select_converters_, result.rows)


def fetch(entity: Any, sql: str, params: Any, awaitable: str) -> list[Any]:
    """``fetch_steps()`` with blocking IO, its one statement run at once (a direct path, no steps).

    On an async database it raises AsyncRequired naming ``awaitable``, as ``run_sync`` does.
    ``fetch_now`` is its common case, in one call: callers try it first.
    """
    cache = session_cache(entity._database_) or require_session().cache_for(entity._database_)
    rows = read_now(cache, sql, params)
    if rows is None:
        rows = _query_now(cache, sql, params, awaitable)
    return materialize_rows(entity, cache, entity._select_attrs_, entity._select_converters_, rows)


def _query_now(cache: Any, sql: str, params: Any, awaitable: str) -> list[Any]:
    """The rows of one SELECT run at once with blocking IO, after the autoflush (a direct path).

    ``read_now`` is its common case, in one call: callers try it first.
    """
    flush = cache.flush_steps()
    if flush is not NO_STEPS:
        run_sync(flush, awaitable)
    if cache.is_async:
        return perform(cache, "query", (sql, params), awaitable).rows  # type: ignore[no-any-return]
    return cache.read(sql, params)  # type: ignore[no-any-return]


def fetch_values_steps(
    database: Any, sql: str, params: Any, layout: Any, for_update: bool = False
) -> Steps[list[list[Any]]]:
    """Steps that run a SELECT of values and return one list per selected item.

    ``layout`` holds (item, start, stop) for each item: an entity class whose objects are read
    from the columns ``start:stop`` of each row, or a value (``nextorm.expressions.Value``) read
    from the column ``start`` with its ``from_db``; a reference's value is its object.
    """
    cache = require_session().cache_for(database)
    yield from cache.flush_steps()
    if for_update:
        yield cache, "begin", ()
    rows = (yield cache, "query", (sql, params)).rows
    columns: list[list[Any]] = []
    for item, start, stop in layout:
        if isinstance(item, type):
            entity: Any = item
            parts = [row[start:stop] for row in rows]
            if any(part[0] is None for part in parts):
                # an object of a LEFT JOIN that matched no row (its key is NULL): None
                found = iter(
                    materialize_rows(
                        entity,
                        cache,
                        entity._select_attrs_,
                        entity._select_converters_,
                        [part for part in parts if part[0] is not None],
                    )
                )
                columns.append([None if part[0] is None else next(found) for part in parts])
                continue
            objects = materialize_rows(
                entity, cache, entity._select_attrs_, entity._select_converters_, parts
            )
            columns.append(objects)
            continue
        convert = item.from_db
        values = [convert(row[start]) for row in rows]
        attr = getattr(item, "attr", None)
        attr = getattr(attr, "attr", attr)  # a path's column (a ColumnRef) reads its attribute
        if attr is not None and attr.is_reference:
            target = attr.py_type
            values = [None if v is None else seed(target, cache, v) for v in values]
        columns.append(values)
    return columns


def _key_of(entity: Any, row: Any) -> Any:
    """The primary key of a fetched row (its first columns), converted as materialize does."""
    converters = entity._select_converters_
    if entity._npk_ == 1:
        value = row[0]
        conv = converters[0]
        return value if conv is None or value is None else conv(value)
    return tuple(
        v if conv is None or v is None else conv(v) for conv, v in zip(converters[: entity._npk_], row)
    )


def fresh_snapshot(entity: Any, cache: Any, rows: list[Any]) -> None:
    """Rows read under a lock: objects already loaded take their values without an unrepeatable-read check."""
    imap = cache.session.maps.get(entity)
    if not imap:
        return
    for row in rows:
        obj = imap.get(_key_of(entity, row))
        if obj is not None and obj._status_ == LOADED:
            obj._rbits_ = 0


def materialize_rows(
    entity: Any, cache: Any, attrs: tuple[Any, ...], converters: tuple[Any, ...], rows: Any
) -> list[Any]:
    """The objects of ``rows`` (values of ``attrs``) in ``cache``'s identity map, unique indexes kept."""
    if entity._wide_:
        rows = fold_rows(attrs, rows)
    discriminator = entity._discriminator_attr_
    if discriminator is not None:
        position = next((i for i, attr in enumerate(attrs) if attr is discriminator), -1)
        if position >= 0:
            return _materialize_hierarchy(entity, cache, attrs, converters, rows, position)
    return load_rows(entity, cache, attrs, converters, rows)


def _materialize_hierarchy(
    entity: Any, cache: Any, attrs: tuple[Any, ...], converters: tuple[Any, ...], rows: Any, position: int
) -> list[Any]:
    """The objects of rows of an entity hierarchy: each of the class its discriminator value names.

    Rows are grouped by class and each group goes through ``materialize`` with the columns of its
    class; an object known as a base class before its row was read takes its real class.
    """
    code2cls = entity._discriminator_attr_.code2cls
    convert = converters[position]
    imap = cache.identity_map(entity)
    npk = entity._npk_
    groups: dict[Any, tuple[list[int], list[Any]]] = {}
    for number, row in enumerate(rows):
        code = row[position]
        cls = code2cls.get(code if code is None or convert is None else convert(code))
        if cls is None or not issubclass(cls, entity):
            cls = entity  # a row of an unknown class is read as the class queried
        known = imap.get(row[0] if npk == 1 else tuple(row[:npk]))
        if known is not None and type(known) is not cls and issubclass(cls, type(known)):
            known.__class__ = cls
        numbers, members = groups.setdefault(cls, ([], []))
        numbers.append(number)
        members.append(row)
    result: list[Any] = [None] * sum(len(numbers) for numbers, _ in groups.values())
    for cls, (numbers, members) in groups.items():
        own = set(cls._columns_)
        keep = [i for i, attr in enumerate(attrs) if attr in own]
        objects = materialize(
            cls,
            cache,
            imap,
            [attrs[i] for i in keep],
            [converters[i] for i in keep],
            npk,
            cls._check_mask_,
            [[row[i] for i in keep] for row in members],
        )
        learn_unique(cache, objects, cls)
        for number, obj in zip(numbers, objects):
            result[number] = obj
    return result


def materialize_raw(entity: Any, cache: Any, description: Any, rows: list[Any]) -> list[Any]:
    """The objects of a raw SELECT's rows, whose columns are found by name."""
    names = tuple([d[0] for d in description])
    plans = entity._raw_plans_
    plan = plans.get(names)
    if plan is None:
        plan = _raw_plan(entity, names)
        if len(plans) >= RAW_PLANS_KEPT:
            plans.clear()
        plans[names] = plan
    attrs, converters, order = plan
    reordered = rows if order is None else [tuple([row[i] for i in order]) for row in rows]
    return materialize_rows(entity, cache, attrs, converters, reordered)


#: the column lists of raw SELECTs whose plan an entity keeps (it starts again when full)
RAW_PLANS_KEPT = 64


def _raw_plan(entity: Any, names: tuple[str, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...], Any]:
    """The attributes a raw SELECT's columns fill, their converters, and the positions to take
    from each row (None when the row is already in that order)."""
    positions: dict[str, int] = {}
    for i, column in enumerate(names):
        positions.setdefault(column, i)
    missing = [c for a in entity._pk_attrs_ for c in a.column_names if c not in positions]
    if missing:
        raise OrmError(
            f"The SQL result for {entity.__name__} lacks primary key column(s) {', '.join(missing)}"
        )
    others = [
        a for a in entity._loaded_columns_ if not a.is_pk and all(c in positions for c in a.column_names)
    ]
    attrs = tuple(entity._pk_attrs_) + tuple(sorted(others, key=lambda a: positions[a.column_names[0]]))
    order = [positions[c] for a in attrs for c in a.column_names]
    same = order == list(range(len(names)))
    return attrs, tuple(a.from_db for a in attrs), None if same else tuple(order)


def load_missing(obj: Any, attr: Any) -> None:
    """Load ``attr`` of ``obj`` (with the other unloaded non-lazy columns)."""
    run_sync(load_missing_steps(obj, attr), f"await obj.awaitable_attrs.{attr.name}")


def load_missing_steps(obj: Any, attr: Any, with_lazy: bool = False) -> Steps[None]:
    """Steps loading ``attr`` of ``obj`` with its other unloaded columns (lazy ones too when ``with_lazy``)."""
    entity = type(obj)
    wanted = [
        a
        for a in entity._columns_
        if not a.is_pk and not a.is_loaded(obj) and (a is attr or with_lazy or not a.lazy)
    ]
    attrs = tuple(entity._pk_attrs_) + tuple(wanted)
    cache = obj._cache_
    yield from cache.flush_steps()
    statement = Select(
        entity._table_,
        tuple(c for a in attrs for c in a.column_names),
        where=entity._pk_conditions_(obj._pk_raw_()),
    )
    sql, params = render(statement, cache.provider.dialect)
    rows = (yield cache, "query", (sql, params)).rows
    if not rows:
        raise UnrepeatableReadError(f"Phantom object {obj!r} disappeared")
    materialize_rows(entity, cache, attrs, tuple(a.from_db for a in attrs), rows)


# -- what reading an attribute needs -------------------------------------------------------


def load_attr_steps(obj: Any, attr: Any) -> Steps[None]:
    """Load what reading ``obj.attr`` needs: the column, the related object, or the collection."""
    cache = obj._cache_
    if not cache.is_alive:
        return
    if attr.is_collection:
        data = attr.data(obj)
        if obj._status_ != CREATED and (data is None or not data.loaded):
            yield from load_collections_steps(attr, [obj])
        return
    if attr.is_reference and not attr.is_column:
        yield from one_to_one_partner_steps(attr, obj)
        return
    if not attr.is_loaded(obj):
        if obj._status_ == CREATED:
            yield from cache.flush_steps()
        else:
            yield from load_missing_steps(obj, attr)
    if attr.is_reference:
        yield from load_references_steps(attr, [obj])


def one_to_one_partner_steps(attr: Any, obj: Any) -> Steps[Any]:
    """For the key-less side of a one-to-one: the object whose key points at ``obj`` (cached in the slot)."""
    reverse = attr.reverse
    cache = obj._cache_
    if attr.is_loaded(obj):
        return attr.get_raw(obj)
    if not cache.is_alive:
        raise cache.closed_error(f"Cannot load attribute {obj!r}.{attr.name}")
    if obj._status_ == CREATED:
        attr.set_raw(obj, None)
        return None
    partner = yield from reverse.entity.select(reverse == obj).first_steps()
    attr.set_raw(obj, partner)
    return partner


def one_to_one_partner(attr: Any, obj: Any) -> Any:
    """Blocking ``one_to_one_partner_steps``."""
    return run_sync(one_to_one_partner_steps(attr, obj), f"await obj.awaitable_attrs.{attr.name}")


# -- references and collections of many objects at once ----------------------------------------


def _pks_of(objects: Iterable[Any]) -> list[Any]:
    return [obj._pk_raw_() for obj in objects]


def load_collections_steps(attr: Any, owners: list[Any], lazy: tuple[Any, ...] = ()) -> Steps[list[Any]]:
    """Load the collection ``attr`` of every object in ``owners`` with one query; returns the members.

    The members' lazy attributes in ``lazy`` are read with them.
    """
    owners = [o for o in owners if o._status_ != CREATED]
    for owner in owners:
        attr.ensure_data(owner)
    if not owners:
        return []
    cache = owners[0]._cache_
    if not attr.is_m2m:
        yield from cache.flush_steps()
    dialect = cache.provider.dialect
    target = attr.py_type
    attrs, converters, columns = _read_by_load(target, lazy)
    owner_entity = attr.entity
    pk_values = [reference_to_db(pk) for pk in _pks_of(owners)]
    if attr.is_m2m:
        owner_columns = attr.owner_columns
        width = len(owner_columns)
        target_pk = target._pk_columns_
        on = [(Col(c, "t"), Col(j, "j")) for c, j in zip(target_pk, attr.target_columns)]
        statement = Select(
            target._table_,
            (*(Col(c, "j") for c in owner_columns), *(Col(c, "t") for c in columns)),
            alias="t",
            joins=(Join(attr.join_table, "j", on[0][0], on[0][1], tuple(on[1:])),),
            where=(_key_in(owner_entity, tuple(Col(c, "j") for c in owner_columns), pk_values),),
        )
        rows = (yield cache, "query", render(statement, dialect)).rows
        if width == 1:
            owner_conv = owner_entity._pk_attrs_[0].from_db
            keys = [row[0] if owner_conv is None else owner_conv(row[0]) for row in rows]
        else:
            keys = [key_from_db(owner_entity, row[:width]) for row in rows]
        members = materialize_rows(target, cache, attrs, converters, [row[width:] for row in rows])
    else:
        sql, params = _members_select(attr, columns, pk_values, dialect, attrs is target._select_attrs_)
        rows = (yield cache, "query", (sql, params)).rows
        members = materialize_rows(target, cache, attrs, converters, rows)
        if len(owners) == 1:
            take_members(attr, owners[0], pk_values[0], members)
            return members
        get_raw = attr.reverse.get_raw
        keys = [reference_to_db(get_raw(m)) for m in members]
    by_pk: dict[Any, list[Any]] = {}
    for key, member in zip(keys, members):
        by_pk.setdefault(key, []).append(member)
    added, removed = _unflushed_links(cache, attr) if attr.is_m2m else ({}, {})
    for owner, pk in zip(owners, pk_values):
        data = attr.ensure_data(owner)
        found = by_pk.get(pk, ())
        if owner in added or owner in removed:
            # many-to-many links made or broken in this session and not flushed yet count as made or broken
            gone = removed.get(owner, ())
            found = [*(m for m in found if m not in gone), *added.get(owner, ())]
        data.items = dict.fromkeys(m for m in found if m._status_ < DELETED)
        data.loaded = True
    return members


def load_collection(attr: Any, owner: Any, awaitable: str) -> None:
    """``load_collections_steps(attr, [owner])`` with blocking IO: the lazy load of one collection.

    A one-to-many collection (the N+1 case) is a direct path: its one SELECT runs at once, with
    no step machinery; on an async database it raises AsyncRequired naming ``awaitable``.
    """
    if attr.is_m2m or owner._status_ == CREATED:
        run_sync(load_collections_steps(attr, [owner]), awaitable)
        return
    cache = owner._cache_
    target = attr.py_type
    pk = reference_to_db(owner._pk_raw_())
    sql, params = _members_select(attr, target._select_columns_, [pk], cache.provider.dialect, True)
    rows = read_now(cache, sql, params)
    if rows is None:
        rows = _query_now(cache, sql, params, awaitable)
    members = materialize_rows(target, cache, target._select_attrs_, target._select_converters_, rows)
    take_members(attr, owner, pk, members)


def _members_select(
    attr: Any, columns: tuple[Any, ...], pk_values: list[Any], dialect: Any, plain: bool
) -> tuple[str, Any]:
    """The SELECT of the members of one-to-many ``attr`` of the owners whose keys are ``pk_values``.

    ``plain`` when ``columns`` are the target's query columns: the text for one owner is then
    kept (a lazy load, N+1, has the same text each time, only the key differs). One owner's
    members are those whose reference column equals its key (``= ?``, not an IN list: on
    PostgreSQL an ``= ANY(array)`` a prepared statement runs with a generic plan scans more).
    """
    reverse = attr.reverse
    single = len(pk_values) == 1 and len(reverse.column_names) == 1
    known = attr.one_owner_sql if single and plain else None
    if known is not None and known[0] is dialect:
        return known[1], pk_values
    target = attr.py_type
    if single:
        where: Any = AllEqual(reverse.column_names, (pk_values[0],))
    else:
        where = _key_in(attr.entity, reverse.column_names, pk_values)
    sql, params = render(Select(target._table_, columns, where=(where,)), dialect)
    if single and plain:
        attr.one_owner_sql = (dialect, sql)
    return sql, params


def _unflushed_links(cache: Any, attr: Any) -> tuple[dict[Any, list[Any]], dict[Any, list[Any]]]:
    """The links of many-to-many ``attr`` added and removed in this session and not flushed: owner -> members."""
    primary = attr if attr.m2m_primary else attr.reverse
    changes = cache.m2m.get(primary)
    if not changes:
        return {}, {}
    result: tuple[dict[Any, list[Any]], dict[Any, list[Any]]] = ({}, {})
    for links, by_owner in zip(changes, result):
        for first, second in links:
            owner, member = (first, second) if attr.m2m_primary else (second, first)
            by_owner.setdefault(owner, []).append(member)
    return result


def _read_by_load(
    entity: Any, lazy: tuple[Any, ...]
) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    """The attributes a load of ``entity`` objects reads, their converters and columns: the
    attributes a query reads, and the lazy ones in ``lazy``."""
    extra = tuple(a for a in lazy if a not in entity._select_attrs_)
    if not extra:
        return entity._select_attrs_, entity._select_converters_, entity._select_columns_
    attrs = entity._select_attrs_ + extra
    return attrs, tuple(a.from_db for a in attrs), tuple(c for a in attrs for c in a.column_names)


def _key_in(entity: Any, columns: tuple[Any, ...], keys: list[Any]) -> Any:
    """The condition that ``columns`` (holding keys of ``entity``) hold one of ``keys``."""
    if len(columns) == 1:
        return InValues(columns[0], keys)
    return InRows(columns, [key_db_values(entity, key) for key in keys])


def load_references_steps(attr: Any, objects: list[Any], lazy: tuple[Any, ...] = ()) -> Steps[list[Any]]:
    """Load the targets of reference ``attr`` of ``objects`` that are not loaded yet, in one query.

    The targets' lazy attributes in ``lazy`` are read with them.
    """
    target = attr.py_type
    if not objects:
        return []
    cache = objects[0]._cache_
    attrs, converters, columns = _read_by_load(target, lazy)
    if not attr.is_column:
        reverse = attr.reverse
        pending = [o for o in objects if not attr.is_loaded(o) and o._status_ != CREATED]
        if not pending:
            return [attr.get_raw(o) for o in objects if attr.get_raw(o) is not None]
        yield from cache.flush_steps()
        pk_values = [reference_to_db(pk) for pk in _pks_of(pending)]
        statement = Select(
            target._table_, columns, where=(_key_in(attr.entity, reverse.column_names, pk_values),)
        )
        rows = (yield cache, "query", render(statement, cache.provider.dialect)).rows
        partners = materialize_rows(target, cache, attrs, converters, rows)
        by_owner = {reference_to_db(reverse.get_raw(p)): p for p in partners}
        for obj, pk in zip(pending, pk_values):
            attr.set_raw(obj, by_owner.get(pk))
        return partners
    wanted: dict[Any, None] = {}
    result = []
    imap = cache.identity_map(target)
    extra_wanted = attrs is not target._select_attrs_
    for obj in objects:
        value = attr.get_raw(obj)
        if value is None:
            continue
        if isinstance(value, EntityBase):
            if not extra_wanted or all(a.is_loaded(value) for a in attrs):
                result.append(value)
                continue
            value = value._pk_raw_()  # type: ignore[attr-defined]  # an Entity's
        known = imap.get(value)
        if known is not None and all(a.is_loaded(known) for a in attrs):
            result.append(known)
            continue
        wanted[value] = None
    if wanted:
        yield from cache.flush_steps()
        statement = Select(
            target._table_, columns, where=(_key_in(target, target._pk_columns_, list(wanted)),)
        )
        rows = (yield cache, "query", render(statement, cache.provider.dialect)).rows
        result += materialize_rows(target, cache, attrs, converters, rows)
    return result


def prefetch_steps(objects: list[Any], spec: tuple[Any, ...]) -> Steps[None]:
    """Load what ``spec`` names for ``objects`` and for the objects that loads in turn.

    ``spec`` holds attributes and entity classes: a relationship attribute loads its related
    objects, a column attribute (a lazy one) is read with the rows of its entity, and an entity
    class loads every reference to it. One query per attribute and level, not per object.
    """
    entities = tuple(item for item in spec if isinstance(item, type))
    relations = {
        item for item in spec if not isinstance(item, type) and (item.is_collection or item.is_reference)
    }
    columns = tuple(item for item in spec if not isinstance(item, type) and item not in relations)

    def lazy_of(entity: Any) -> tuple[Any, ...]:
        return tuple(a for a in columns if issubclass(entity, a.entity))

    level = list(dict.fromkeys(objects))
    reached = {id(obj) for obj in level}
    while level:
        by_entity: dict[Any, list[Any]] = {}
        for obj in level:
            by_entity.setdefault(type(obj), []).append(obj)
        found: list[Any] = []
        for entity, owners in by_entity.items():
            lazy = lazy_of(entity)
            if lazy:
                yield from _load_columns_steps(entity, owners, _read_by_load(entity, lazy)[0])
            for attr in entity._references_:
                if attr in relations or (entities and issubclass(attr.py_type, entities)):
                    found += yield from load_references_steps(attr, owners, lazy_of(attr.py_type))
            for attr in entity._collections_:
                if attr in relations:
                    unloaded = [o for o in owners if not _is_loaded_collection(attr, o)]
                    loaded = [o for o in owners if _is_loaded_collection(attr, o)]
                    found += yield from load_collections_steps(attr, unloaded, lazy_of(attr.py_type))
                    found += [m for o in loaded for m in attr.data(o).items]  # type: ignore[union-attr]
        level = []
        for obj in found:
            if id(obj) not in reached:
                reached.add(id(obj))
                level.append(obj)


def _load_columns_steps(entity: Any, objects: list[Any], attrs: tuple[Any, ...]) -> Steps[None]:
    """Read ``attrs`` of those ``objects`` that miss one of them, with one query."""
    missing = [o for o in objects if o._status_ != CREATED and not all(a.is_loaded(o) for a in attrs)]
    if not missing:
        return
    cache = missing[0]._cache_
    yield from cache.flush_steps()
    attrs = tuple(entity._pk_attrs_) + tuple(a for a in attrs if not a.is_pk)
    statement = Select(
        entity._table_,
        tuple(c for a in attrs for c in a.column_names),
        where=(_key_in(entity, entity._pk_columns_, _pks_of(missing)),),
    )
    rows = (yield cache, "query", render(statement, cache.provider.dialect)).rows
    materialize_rows(entity, cache, attrs, tuple(a.from_db for a in attrs), rows)


def _is_loaded_collection(attr: Any, obj: Any) -> bool:
    data = attr.data(obj)
    return data is not None and data.loaded


# -- refreshing ------------------------------------------------------------------------------------


def refresh_steps(obj: Any) -> Steps[None]:
    """Reload every column of ``obj`` from the database and forget what this session had read."""
    entity = type(obj)
    cache = obj._cache_
    yield from cache.flush_steps()
    if obj._status_ >= DELETED:
        raise OrmError(f"Cannot refresh {obj!r}: it was deleted")
    attrs = tuple(entity._columns_)
    statement = Select(
        entity._table_, tuple(a.column for a in attrs), where=entity._pk_conditions_(obj._pk_raw_())
    )
    sql, params = render(statement, cache.provider.dialect)
    rows = (yield cache, "query", (sql, params)).rows
    if not rows:
        raise UnrepeatableReadError(f"Phantom object {obj!r} disappeared")
    for attr, value in zip(attrs, rows[0]):
        if value is not None and attr.from_db is not None:
            value = attr.from_db(value)
        attr.set_raw(obj, value)
    obj._rbits_ = 0
    learn_unique(cache, [obj], entity)
    for attr in entity._collections_:
        data = attr.data(obj)
        if data is not None and not any(owner is obj for owner, _ in _pending_links(cache, attr)):
            data.loaded = False
            data.items = {}


def _pending_links(cache: Any, attr: Any) -> list[Any]:
    changes = cache.m2m.get(attr) or cache.m2m.get(getattr(attr, "reverse", None))
    if not changes:
        return []
    return [*changes[0], *changes[1]]


#: the most objects an UPDATE's new values are read back for by key (more are unloaded instead)
REFRESH_BY_KEY_LIMIT = 1000


def refresh_columns_steps(entity: Any, cache: Any, attrs: list[Any]) -> Steps[None]:
    """After an UPDATE of many rows: objects of ``entity`` in the session show the new values of ``attrs``.

    The values are read back by key (or, for many objects, unloaded to be read on next access);
    the old ones are kept to be restored if the transaction rolls back.
    """
    for attr in attrs:
        reverse: Any = getattr(attr, "reverse", None)
        if attr.is_reference and getattr(reverse, "is_collection", False):
            # the members of these collections may have changed: read them again on next use
            for owner in cache.session.maps.get(reverse.entity, {}).values():
                data = reverse.data(owner)
                if data is not None:
                    data.loaded = False
                    data.items = {}
    imap = cache.session.maps.get(entity)
    objects = [obj for obj in (imap or {}).values() if obj._status_ == LOADED]
    if not objects:
        return
    bits = 0
    for attr in attrs:
        bits |= attr.bit
    for obj in objects:
        orig = {attr.index: attr.get_raw(obj) for attr in attrs if attr.is_loaded(obj)}
        cache.record_undo(obj, LOADED, orig, bits)
    if entity._npk_ == 1 and len(objects) <= REFRESH_BY_KEY_LIMIT:
        pk = entity._pk_attrs_[0]
        columns = (pk, *attrs)
        keys = [obj._pk_raw_() for obj in objects]
        statement = Select(
            entity._table_,
            tuple(a.column for a in columns),
            where=[InValues(pk.column, [k if pk.to_db is None else pk.to_db(k) for k in keys])],
        )
        sql, params = render(statement, cache.provider.dialect)
        rows = (yield cache, "query", (sql, params)).rows
        by_key = {}
        for row in rows:
            key = row[0] if pk.from_db is None or row[0] is None else pk.from_db(row[0])
            by_key[key] = row[1:]
        for obj in objects:
            values = by_key.get(obj._pk_raw_())
            for i, attr in enumerate(attrs):
                if values is None:
                    attr.clear_raw(obj)
                else:
                    value = values[i]
                    attr.set_raw(obj, value if value is None or attr.from_db is None else attr.from_db(value))
            obj._rbits_ &= ~bits
    else:
        for obj in objects:
            for attr in attrs:
                attr.clear_raw(obj)
            obj._rbits_ &= ~bits
    learn_unique(cache, objects, entity)


# -- streaming -------------------------------------------------------------------------------------


class Stream:
    """A query read ``size`` rows at a time; objects of earlier batches nobody holds leave the session."""

    __slots__ = ("cache", "cursor", "done", "held", "previous", "query", "size")

    def __init__(self, query: Any, size: int) -> None:
        self.query = query
        self.size = size
        self.cache: Any = None
        self.cursor: Any = None
        self.previous: list[Any] = []
        #: objects of the batch before, referenced when it was released (as by a loop variable)
        self.held: list[Any] = []
        self.done = False

    def next_steps(self) -> Steps[list[Any] | None]:
        """Steps of the next batch of objects, None once the rows are exhausted."""
        if self.done:
            return None
        query = self.query
        entity = query.entity
        if self.cursor is None:
            cache = self.cache = require_session().cache_for(entity._database_)
            yield from cache.flush_steps()
            if query._for_update is not None:
                yield cache, "begin", ()
            sql, params = query.sql()
            self.cursor = yield cache, "open_stream", (sql, params)
        else:
            self._release()
        cache = self.cache
        try:
            rows = yield cache, "fetch_stream", (self.cursor, self.size)
        except BaseException:
            yield from self.close_steps()
            raise
        if not rows:
            yield from self.close_steps()
            return None
        if query._for_update is not None:
            fresh_snapshot(entity, cache, rows)
        objects = materialize_rows(entity, cache, entity._select_attrs_, entity._select_converters_, rows)
        self.previous = objects
        return objects

    def close_steps(self) -> Steps[None]:
        """Release the cursor (at the end, or when the caller stops early)."""
        self.done = True
        self._release()
        cursor, self.cursor = self.cursor, None
        if cursor is not None and self.cache.conn is not None:
            yield self.cache, "close_stream", (cursor,)

    def _release(self) -> None:
        """Objects of earlier batches that only the session refers to, with nothing pending, leave it.

        An object still referenced is checked once more at the next batch (a ``for`` loop's
        variable holds the last object handed out); after that it stays in the session.
        """
        previous, self.previous = self.held + self.previous, []
        checked_twice = len(self.held)
        self.held = []
        cache = self.cache
        if not previous or not cache.is_alive:
            return
        entity = self.query.entity
        imap = cache.session.maps.get(entity)
        if imap is None:
            return
        keys = entity._unique_keys_
        unique = cache.unique
        dirty = cache.dirty
        held = self.held
        refcount = sys.getrefcount
        pk_of = entity._pk_attrs_[0].get_raw if entity._npk_ == 1 else None
        # the references of an object nobody else holds: the identity map, ``previous``, the
        # loop variable, getrefcount's argument, and the unique indexes that hold it
        for index in range(len(previous)):
            obj = previous[index]
            # LOADED: no pending change (a change makes it MODIFIED, a delete DELETED)
            if obj._status_ != LOADED or (dirty and obj in dirty):
                continue
            expected = 4
            if keys:
                for key in keys:
                    index_map = unique.get(key)
                    if index_map is not None and index_map.get(key.value_of(obj)) is obj:
                        expected += 1
            if refcount(obj) > expected:
                if index >= checked_twice:
                    held.append(obj)
                continue
            pk = obj._pk_raw_() if pk_of is None else pk_of(obj)
            if imap.get(pk) is obj:
                del imap[pk]
                track((obj,))  # out of the map, as every object leaving it (see materialize)
                if keys:
                    cache.forget_unique(obj)


def stream_steps(query: Any, size: int) -> Stream:
    """The stream of ``query``'s objects in batches of ``size``."""
    return Stream(query, size)
