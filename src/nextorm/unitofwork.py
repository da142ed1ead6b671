"""The unit of work: flush rounds, dependency order, statements per object, batching.

A session's cache hands its pending objects to ``flush_steps``; it runs the before-hooks, orders
new objects before the objects referring to them, groups consecutive objects whose statements
share a shape into one batch (executemany in a savepoint, replayed row by row when a row fails),
checks optimistic UPDATE/DELETE row counts, stores many-to-many link changes, and runs the
after-hooks. The statements come from ``nextorm.sql``; IO goes through the cache's verbs.
"""

from __future__ import annotations

import weakref
from collections import deque
from dataclasses import replace
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from ._impl import (
    CREATED,
    DELETED,
    GONE,
    LOADED,
    MODIFIED,
    EntityBase,
    column_values,
    mark_saved_all,
    match_keys,
    record_undo_all,
    register_keys,
    shape_runs,
    track,
)
from .exceptions import (
    DatabaseError,
    OptimisticCheckError,
    TransactionError,
    TransactionIntegrityError,
    UnresolvableCyclicDependency,
)
from .identity import fold_rows, key_db_values
from .sql import BATCH_SAVEPOINT, Delete, Insert, KeyMatch, Select, Update, UpdateRows, render
from .steps import Steps

__all__ = [
    "MAX_FLUSH_ROUNDS",
    "MAX_INSERT_ROWS",
    "Savepoint",
    "SessionState",
    "flush_steps",
    "is_new",
    "mark_saved",
    "match_keys",
    "savepoint_begin_steps",
    "savepoint_release_steps",
    "savepoint_rollback_steps",
]

#: most rounds of hooks creating more work in one flush
MAX_FLUSH_ROUNDS = 50


# -- flush rounds ----------------------------------------------------------------------------------


def flush_steps(cache: Any, only: list[Any] | None = None, keep_saving: bool = False) -> Steps[None]:
    """Send pending INSERT/UPDATE/DELETE in first-change order (of ``only`` these objects), batched.

    Rounds of before-hooks, statements and after-hooks; any failure rolls the session back. What
    the flush saved goes to ``cache.undo``, or with ``keep_saving`` stays in ``cache.saving`` (a
    COMMIT follows at once, and undo is needed only if it fails).
    """
    if cache.flushing:
        return
    cache.session.refuse_if_failed()
    cache.settle_saved()
    if only is None and not cache.dirty and not cache.m2m:
        return
    # before any change of state: a blocking flush of an async database stops here
    yield cache, "ready", ()
    cache.flushing = True
    cache.generation += 1
    try:
        cache.fire("before_flush")
        for _ in range(MAX_FLUSH_ROUNDS):
            batch, classes = _run_before_hooks(cache, only)
            if not batch and (not cache.m2m or only is not None):
                break
            yield cache, "begin", ()
            done = yield from _save_steps(cache, batch, classes)
            if cache.m2m and only is None:
                yield from _links_steps(cache)
            hooked = _hooked_classes({type(group[0]) for group, _ in done})
            if hooked:
                for group, status in done:
                    if type(group[0]) in hooked:
                        for obj in group:
                            obj._after_save_(status)
            if only is not None:
                break
        else:
            if cache.dirty:
                raise TransactionError("Recursion depth limit reached in obj._after_save_() call")
        cache.fire("after_flush")
    except GeneratorExit:
        raise
    except BaseException as exc:
        cache.flushing = False
        cache.unsave_failed_flush()
        stack = cache.session.savepoints
        if stack and isinstance(exc, Exception):
            # inside savepoint(): the failure is contained there, the session goes on
            yield from savepoint_rollback_steps(stack[-1])
        else:
            yield from cache.session.fail_steps(exc)
        raise
    finally:
        cache.flushing = False
    if not keep_saving:
        record_undo_all(cache.undo, cache.saving)
        cache.saving.clear()


def _run_before_hooks(cache: Any, only: list[Any] | None) -> tuple[list[Any], set[type]]:
    """Call before_* hooks in queue order (hooks may queue more); take the batch off the queue.

    Returns the batch and the classes of its objects.
    """
    dirty = cache.dirty
    classes: set[type]
    if only is not None:
        batch = [obj for obj in only if obj in dirty]
        classes = set(map(type, batch))
        hooked = _hooked_classes(classes)
        for obj in batch:
            if type(obj) in hooked:
                obj._before_save_()
        for obj in batch:
            dirty.pop(obj, None)
        return batch, classes
    done = 0
    classes = set()
    while done < len(dirty):
        pending = list(dirty)[done:]
        found = set(map(type, pending))
        classes |= found
        hooked = _hooked_classes(found)
        if hooked:
            for obj in pending:
                if type(obj) in hooked:
                    obj._before_save_()
        done += len(pending)
    batch = list(dirty)
    dirty.clear()
    return batch, classes


def _hooked_classes(classes: set[type]) -> set[type]:
    """Those of ``classes`` whose save hooks do something (the base class's do nothing)."""
    return {cls for cls in classes if cls._has_save_hooks_()}  # type: ignore[attr-defined]


def _links_steps(cache: Any) -> Steps[None]:
    """DELETE removed and INSERT added many-to-many links, one batch per join table."""
    changes, cache.m2m = cache.m2m, {}
    dialect = cache.provider.dialect
    for attr, (added, removed) in changes.items():
        columns = attr.owner_columns + attr.target_columns
        wide = len(columns) > 2
        for links, sql in (
            (removed, Delete(attr.join_table, KeyMatch(columns)).sql(dialect)),
            (added, Insert(attr.join_table, columns, ignore_conflicts=True).sql(dialect)),
        ):
            rows = [
                (owner._pk_raw_(), item._pk_raw_())
                if not wide
                else key_db_values(type(owner), owner._pk_raw_()) + key_db_values(type(item), item._pk_raw_())
                for owner, item in links
                if (owner._status_ != GONE and item._status_ != GONE) or links is removed
            ]
            if not rows:
                continue
            try:
                if len(rows) > 1:
                    yield cache, "write_many", (sql, rows)
                else:
                    yield cache, "write", (sql, rows[0])
            except TransactionIntegrityError as exc:
                error = TransactionIntegrityError(
                    f"Links of {attr.qualname} cannot be stored in the database: {exc}"
                )
                error.original_exc = getattr(exc, "original_exc", exc)  # type: ignore[attr-defined]
                raise error from exc


def _save_steps(cache: Any, batch: list[Any], classes: set[type]) -> Steps[list[tuple[list[Any], int]]]:
    """Execute the statements of ``batch`` (of objects of ``classes``); returns the runs saved,
    (objects of one class, status before), in order."""
    deferred: list[tuple[Any, Any, Any]] = []
    if any(cls._fk_refs_ for cls in classes):  # type: ignore[attr-defined]
        batch = _dependency_order(batch, deferred)
        for obj, attr, _ in deferred:
            attr.set_raw(obj, None)  # inserted without the reference, then updated (below)
    done: list[tuple[list[Any], int]] = []
    for shape, group in shape_runs(batch, cache.session.manager.optimistic):
        status = shape[0]
        if status == CREATED:
            yield from _insert_rows_steps(shape[1], cache, shape, group)
        elif status == MODIFIED:
            yield from _update_rows_steps(shape[1], cache, shape, group)
        else:
            yield from _delete_rows_steps(shape[1], cache, shape, group)
        done.append((group, status))
    for obj, attr, target in deferred:
        # the reference was left out of the INSERT: it is now a pending change, updated next round
        attr.set_raw(obj, target._pk_raw_())
        orig = obj._orig_
        if orig is None:
            obj._orig_ = orig = {}
        orig[attr.index] = None
        obj._wbits_ |= attr.bit
        obj._status_ = MODIFIED
        cache.dirty[obj] = None
    return done


def _batch_steps(
    cache: Any,
    entity: Any,
    shape: Any,
    group: list[Any],
    sql: str,
    rows: list[Any],
    expect_rows: bool,
    statements: list[tuple[str, list[Any]]] | None = None,
) -> Steps[None]:
    """One statement per object of ``group``, batched; a failure names the one object that caused it.

    The batch is an executemany of ``sql`` over ``rows``, or ``statements`` (text, parameters)
    that together do the same. It runs inside a savepoint; when it fails (or, with
    ``expect_rows``, matches fewer rows than objects) it is rolled back to the savepoint and
    replayed one row at a time.
    """
    if len(rows) == 1:
        yield from _one_steps(cache, entity, shape, group[0], sql, rows[0], expect_rows)
        return
    dialect = cache.provider.dialect
    yield cache, "write", (dialect.savepoint_sql(BATCH_SAVEPOINT), ())
    try:
        if statements is None:
            count = yield cache, "write_many", (sql, rows)
        else:
            count = 0
            for text, params in statements:
                count += (yield cache, "write", (text, params)).rowcount
    except TransactionIntegrityError:
        count = -1
    except DatabaseError as exc:
        if statements is None or not cache.provider.statement_refused(exc):
            raise
        # the multi-row form was refused where one-row statements are not (a column of a type the
        # bound values convert to only by assignment): replayed row by row, and not used again
        _ROWS_REFUSED.add(entity)
        count = -1
    if count != -1 and (not expect_rows or count == len(rows)):
        yield cache, "write", (dialect.release_savepoint_sql(BATCH_SAVEPOINT), ())
        return
    yield cache, "write", (dialect.rollback_to_savepoint_sql(BATCH_SAVEPOINT), ())
    for obj, row in zip(group, rows):
        yield from _one_steps(cache, entity, shape, obj, sql, row, expect_rows)
    yield cache, "write", (dialect.release_savepoint_sql(BATCH_SAVEPOINT), ())


def _one_steps(
    cache: Any, entity: Any, shape: Any, obj: Any, sql: str, row: Any, expect_rows: bool
) -> Steps[None]:
    try:
        result = yield cache, "write", (sql, row)
    except TransactionIntegrityError as exc:
        raise _integrity_failure(cache, [obj], exc) from exc
    if expect_rows and result.rowcount != 1:
        message = yield from _conflict_steps(entity, cache, shape, obj)
        raise OptimisticCheckError(message)


def _integrity_failure(cache: Any, group: list[Any], exc: BaseException) -> TransactionIntegrityError:
    """The error for an INSERT/UPDATE the database rejected."""
    shown = repr(group[0]) if len(group) == 1 else f"{group[0]!r} .. {group[-1]!r} ({len(group)} objects)"
    cause = getattr(exc, "original_exc", exc)
    error = TransactionIntegrityError(
        f"Object {shown} cannot be stored in the database. {type(cause).__name__}: {cause}"
        + _describe_integrity(type(group[0]), group, cache.provider.constraint_columns(cause))
    )
    error.original_exc = cause  # type: ignore[attr-defined]
    error.objects = list(group)  # type: ignore[attr-defined]
    return error


def _dependency_order(batch: list[Any], deferred: list[tuple[Any, Any, Any]]) -> list[Any]:
    """``batch`` in first-change order, except that new objects come before the objects referring to them.

    New partners of a one-to-one whose both sides hold a column (``a.spouse = b`` makes ``b.spouse``
    ``a``) refer to each other: the second reference goes to ``deferred`` as (object, attribute,
    target), to be inserted without it and updated once the target exists. Any other cycle of new
    objects is an error.
    """
    in_batch = {id(obj) for obj in batch}
    state: dict[int, int] = {}
    ordered: list[Any] = []
    path: list[Any] = []

    def visit(obj: Any) -> None:
        mark = state.get(id(obj))
        if mark == 2:
            return
        if mark == 1:
            cycle = [*path[path.index(obj) :], obj]
            raise UnresolvableCyclicDependency("Cannot save cyclic chain: " + " -> ".join(map(repr, cycle)))
        state[id(obj)] = 1
        path.append(obj)
        if obj._status_ in (CREATED, MODIFIED):
            for attr in type(obj)._fk_refs_:
                target = attr.get_raw(obj)
                if isinstance(target, EntityBase) and target._status_ == CREATED and id(target) in in_batch:
                    if state.get(id(target)) == 1 and attr.reverse.is_column:
                        deferred.append((obj, attr, target))
                        continue
                    visit(target)
        path.pop()
        state[id(obj)] = 2
        ordered.append(obj)

    for obj in batch:
        visit(obj)
    return ordered


def mark_saved(cache: Any, group: list[Any], status: int) -> None:
    """After their statements ran: the objects of ``group`` (of one class) are in step with the database."""
    mark_saved_all(group, status, cache.saving)
    if status == DELETED:
        return
    for attr in type(group[0])._fk_refs_:
        for obj in group:
            target = attr.get_raw(obj)
            if isinstance(target, EntityBase):
                attr.set_raw(obj, target._pk_raw_())  # type: ignore[attr-defined]  # every EntityBase is an Entity


# -- statements per object ---------------------------------------------------------------------------


def _columns(attrs: Any) -> tuple[str, ...]:
    """The database columns of ``attrs`` in order (a reference to a composite key has several)."""
    return tuple(c for a in attrs for c in a.column_names)


def _values(attrs: Any, obj: Any) -> list[Any]:
    """The database values of ``attrs`` of ``obj``, one per column."""
    values: list[Any] = []
    for attr in attrs:
        value = attr.get_raw(obj)
        if attr.width == 1:
            values.append(_db(attr, value))
        elif value is None:
            values += [None] * attr.width
        else:
            values += attr.to_db(value)
    return values


def _known_value(entity: Any, obj: Any, attr: Any) -> Any:
    """The value the database had when this session read ``attr``."""
    if obj._wbits_ & attr.bit:
        orig = obj._orig_
        if orig is not None and attr.index in orig:
            return orig[attr.index]
    return attr.get_raw(obj)


def _attrs_of(entity: Any, bits: int) -> list[Any]:
    """The attributes of ``entity`` whose bits are set in ``bits``, in column order."""
    return [a for a in entity._attrs_ if bits & a.bit]


def _key_match(entity: Any, checks: tuple[tuple[int, bool], ...]) -> KeyMatch:
    """The WHERE of an UPDATE/DELETE: the primary key and the optimistic ``checks``."""
    return KeyMatch(
        entity._pk_columns_,
        tuple(
            (column, is_null) for index, is_null in checks for column in entity._attr_at_[index].column_names
        ),
    )


def _where_rows(entity: Any, group: list[Any], checks: tuple[tuple[int, bool], ...]) -> list[Any]:
    """Per object, the WHERE values of its UPDATE/DELETE: the primary key, then the checked values."""
    if entity._wide_:
        return [tuple(_where_params(entity, obj, checks)) for obj in group]
    attrs = _where_attrs(entity, checks)
    return column_values(group, attrs, [a.to_db for a in attrs], known=True)


def _where_attrs(entity: Any, checks: tuple[tuple[int, bool], ...]) -> list[Any]:
    """The attributes whose values the WHERE of an UPDATE/DELETE binds: the key, then the checked ones."""
    return [*entity._pk_attrs_, *(entity._attr_at_[index] for index, is_null in checks if not is_null)]


def _where_params(entity: Any, obj: Any, checks: tuple[tuple[int, bool], ...]) -> list[Any]:
    if entity._wide_:
        return _wide_where_params(entity, obj, checks)
    params = [_db(a, a.get_raw(obj)) for a in entity._pk_attrs_]
    for index, is_null in checks:
        if not is_null:
            attr = entity._attr_at_[index]
            params.append(_db(attr, _known_value(entity, obj, attr)))
    return params


def _wide_where_params(entity: Any, obj: Any, checks: tuple[tuple[int, bool], ...]) -> list[Any]:
    """``_where_params`` of an entity with an attribute of several columns."""
    params = _values(entity._pk_attrs_, obj)
    for index, is_null in checks:
        if not is_null:
            attr = entity._attr_at_[index]
            value = _known_value(entity, obj, attr)
            params += [_db(attr, value)] if attr.width == 1 else attr.to_db(value)
    return params


def _insert_rows_steps(entity: Any, cache: Any, shape: tuple[Any, ...], group: list[Any]) -> Steps[None]:
    attrs = _attrs_of(entity, shape[2])
    sql = Insert(entity._table_, _columns(attrs)).sql(cache.provider.dialect)
    auto = entity._auto_pk_
    if auto is not None and not auto.is_loaded(group[0]):
        yield from _insert_auto_steps(entity, cache, group, attrs, sql, auto)
    else:
        rows: list[Any]
        if entity._wide_:
            rows = [_values(attrs, obj) for obj in group]
        else:
            rows = column_values(group, attrs, [a.to_db for a in attrs])
        yield from _batch_steps(cache, entity, shape, group, sql, rows, expect_rows=False)
    deque(map(cache.new_ids.pop, group, repeat(None)), maxlen=0)  # each one's new:N number goes
    mark_saved(cache, group, CREATED)


#: most rows one multi-row INSERT carries (longer statements parse slower than they save)
MAX_INSERT_ROWS = 500

# Entities whose stored values did not read back equal to the values sent (a column affinity
# that converts them, say): their multi-row INSERT cannot tell its new keys apart.
_UNMATCHED_ENTITIES: weakref.WeakSet[Any] = weakref.WeakSet()


def _insert_auto_steps(
    entity: Any, cache: Any, group: list[Any], attrs: list[Any], sql: str, auto: Any
) -> Steps[None]:
    """INSERT objects whose key the database generates, and register them under it."""
    keys = None
    if len(group) > 1 and not _refers_within(group):
        rows: list[Any]
        if entity._wide_:
            rows = [_values(attrs, obj) for obj in group]
        else:
            rows = column_values(group, attrs, [a.to_db for a in attrs])
        if (
            attrs
            and not entity._wide_
            and entity not in _UNMATCHED_ENTITIES
            and all(map(_reads_back_as_sent, attrs))
        ):
            keys = yield from _insert_values_steps(entity, cache, attrs, auto, rows)
        elif cache.provider.batch_returning:
            keys = yield from _insert_many_steps(cache, sql, rows, auto)
    imap = cache.identity_map(entity)
    if keys is not None:
        clash = register_keys(group, keys, auto, imap)
        if clash >= 0:
            raise _key_clash(keys[clash])
        return
    for obj in group:
        # one by one: a later object of the group may refer to an earlier one's new key
        row = _values(attrs, obj) if entity._wide_ else [_db(a, a.get_raw(obj)) for a in attrs]
        try:
            pk = yield cache, "insert_key", (sql, row, auto.column)
        except TransactionIntegrityError as exc:
            raise _integrity_failure(cache, [obj], exc) from exc
        if register_keys([obj], [pk], auto, imap) >= 0:
            raise _key_clash(pk)


def _key_clash(pk: Any) -> TransactionError:
    return TransactionError(
        f"Newly auto-generated id value {pk} was already used in transaction cache for another object"
    )


#: column types whose values every supported database returns equal to the values sent
_EXACT_TYPES = (int, str, float, bool)


def _telling_column(attrs: list[Any], rows: list[tuple[Any, ...]]) -> int | None:
    """The index of a column of ints or strings (ints first) whose values in ``rows`` are all set
    and all different, or None: a new row returning its key and that value alone is matched to its
    object, and returns far less than all its values."""
    candidates = [i for i, a in enumerate(attrs) if a.py_type is int and not a.is_reference]
    candidates += [i for i, a in enumerate(attrs) if a.py_type is str and not a.is_reference]
    for index in candidates:
        values = set(map(itemgetter(index), rows))
        if len(values) == len(rows) and None not in values:
            return index
    return None


def _reads_back_as_sent(attr: Any) -> bool:
    """Whether a value of ``attr`` comes back from RETURNING equal to its bound value, so that a
    new row can be matched to its object by the values it holds (a failed match would cost the
    keys a sequence handed out to rows that were rolled back)."""
    return _bound_as_number_or_string(attr) and (attr.is_reference or attr.sql_type is None)


def _bound_as_number_or_string(attr: Any) -> bool:
    """Whether the values of ``attr`` are bound as Python ints, strings, floats or bools."""
    if attr.is_reference:
        pk_attrs: tuple[Any, ...] = getattr(attr.py_type, "_pk_attrs_", ())
        return len(pk_attrs) == 1 and pk_attrs[0].py_type in _EXACT_TYPES
    return attr.py_type in _EXACT_TYPES


def _insert_many_steps(cache: Any, sql: str, rows: list[Any], auto: Any) -> Steps[list[Any] | None]:
    """The rows' new keys from the driver's batch of one-row INSERTs; None when a row failed."""
    dialect = cache.provider.dialect
    yield cache, "write", (dialect.savepoint_sql(BATCH_SAVEPOINT), ())
    try:
        keys = yield cache, "insert_keys", (sql, rows, auto.column)
    except TransactionIntegrityError:
        # replayed one by one by the caller, which names the object that failed
        yield cache, "write", (dialect.rollback_to_savepoint_sql(BATCH_SAVEPOINT), ())
        return None
    yield cache, "write", (dialect.release_savepoint_sql(BATCH_SAVEPOINT), ())
    return list(keys)


def _insert_values_steps(
    entity: Any, cache: Any, attrs: list[Any], auto: Any, rows: list[tuple[Any, ...]]
) -> Steps[list[Any] | None]:
    """The rows' new keys from multi-row INSERTs; None when a row failed or keys cannot be matched.

    The database does not promise to return the new rows in the order of VALUES, so each returns
    its key beside the values it stored, and is matched to the object whose values it holds.
    """
    dialect = cache.provider.dialect
    columns = tuple(a.column for a in attrs)
    per_statement = max(1, min(MAX_INSERT_ROWS, dialect.max_params // len(columns)))
    returning = (auto.column, *columns)
    matched = rows
    telling = _telling_column(attrs, rows)
    if telling is not None:
        # the rows differ in this column alone: the new rows need return only it beside their keys
        returning = (auto.column, columns[telling])
        matched = list(zip(map(itemgetter(telling), rows)))  # 1-tuples of that column's values
    yield cache, "write", (dialect.savepoint_sql(BATCH_SAVEPOINT), ())
    returned: list[Any] = []
    try:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            statement = Insert(entity._table_, columns, returning=returning, rows=len(chunk))
            params = list(chain.from_iterable(chunk))
            returned += (yield cache, "write", (statement.sql(dialect), params)).rows
    except TransactionIntegrityError:
        keys = None
    else:
        keys = match_keys(matched, returned)
        if keys is None:
            _UNMATCHED_ENTITIES.add(entity)
    if keys is None:
        # replayed one by one by the caller, which names the object that failed
        yield cache, "write", (dialect.rollback_to_savepoint_sql(BATCH_SAVEPOINT), ())
    else:
        yield cache, "write", (dialect.release_savepoint_sql(BATCH_SAVEPOINT), ())
    return keys


def _update_rows_steps(entity: Any, cache: Any, shape: tuple[Any, ...], group: list[Any]) -> Steps[None]:
    attrs = _attrs_of(entity, shape[2])
    checks = shape[3]
    sql = Update(entity._table_, _columns(attrs), _key_match(entity, checks)).sql(cache.provider.dialect)
    rows: list[Any]
    statements = None
    if entity._wide_:
        rows = [_values(attrs, obj) + _where_params(entity, obj, checks) for obj in group]
    else:
        # the new values of the written columns, then the key and the checked columns' known values
        columns = [*attrs, *_where_attrs(entity, checks)]
        rows = column_values(group, columns, [a.to_db for a in columns], known=True, known_from=len(attrs))
        per_statement = cache.provider.dialect.update_rows_per_statement
        if (
            per_statement
            and len(rows) > 1
            and entity not in _ROWS_REFUSED
            and all(map(_bound_as_number_or_string, columns))
        ):
            statements = _update_rows_statements(entity, cache, attrs, checks, rows, per_statement)
    yield from _batch_steps(cache, entity, shape, group, sql, rows, expect_rows=True, statements=statements)
    mark_saved(cache, group, MODIFIED)


# Entities whose multi-row UPDATE the database refused (a column whose type the bound values do not
# resolve to in VALUES): their batches are executemany of one-row UPDATEs from then on.
_ROWS_REFUSED: weakref.WeakSet[Any] = weakref.WeakSet()


def _update_rows_statements(
    entity: Any, cache: Any, attrs: list[Any], checks: Any, rows: list[Any], per_statement: int
) -> list[tuple[str, list[Any]]]:
    """``rows`` of a batch of UPDATEs as multi-row ``UPDATE ... FROM (VALUES ...)`` statements.

    Only for columns of ints, strings, floats and bools: the driver binds them untyped or as
    numbers, which the VALUES row of typed NULLs resolves to the columns' types (other values,
    Json or dates, may be bound as a type that does not resolve to the column's without a cast).
    """
    dialect = cache.provider.dialect
    per_statement = max(1, min(per_statement, dialect.max_params // len(rows[0])))
    statement = UpdateRows(entity._table_, _columns(attrs), _key_match(entity, checks), per_statement)
    texts: dict[int, str] = {}
    statements = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        text = texts.get(len(chunk))
        if text is None:
            text = texts[len(chunk)] = replace(statement, rows=len(chunk)).sql(dialect)
        statements.append((text, [value for row in chunk for value in row]))
    return statements


def _delete_rows_steps(entity: Any, cache: Any, shape: tuple[Any, ...], group: list[Any]) -> Steps[None]:
    sql = Delete(entity._table_, _key_match(entity, shape[3])).sql(cache.provider.dialect)
    rows = _where_rows(entity, group, shape[3])
    yield from _batch_steps(cache, entity, shape, group, sql, rows, expect_rows=True)
    imap = cache.identity_map(entity)
    for obj in group:
        pk = obj._pk_raw_()
        if imap.get(pk) is obj:
            del imap[pk]
        cache.forget_unique(obj)
    track(group)
    mark_saved(cache, group, DELETED)


def _conflict_steps(entity: Any, cache: Any, shape: Any, obj: Any) -> Steps[str]:
    """Why ``obj``'s UPDATE/DELETE matched no row: its row is gone, or checked columns changed."""
    statement = Select(entity._table_, entity._select_columns_, where=entity._pk_conditions_(obj._pk_raw_()))
    sql, params = render(statement, cache.provider.dialect)
    attrs = entity._attr_at_
    row = (yield cache, "query", (sql, params)).fetchone()
    if row is None:
        return f"Object {obj!r} was deleted outside of current transaction"
    if entity._wide_:
        row = fold_rows(entity._select_attrs_, [row])[0]
    values = {
        a.index: (v if v is None or a.from_db is None else a.from_db(v))
        for a, v in zip(entity._select_attrs_, row)
    }
    changes = [
        f"{attrs[i].name} ({_known_value(entity, obj, attrs[i])!r} -> {values.get(i)!r})"
        for i, _ in shape[3]
        if values.get(i) != _known_value(entity, obj, attrs[i])
    ]
    return f"Object {obj!r} was updated outside of current transaction" + (
        ". Changes: " + ", ".join(changes) if changes else ""
    )


def _describe_integrity(entity: Any, group: list[Any], columns: list[str]) -> str:
    """The values of the attributes whose ``columns`` a database constraint names."""
    named = [a for a in entity._columns_ if any(c in columns for c in a.column_names)]
    if not named:
        return ""
    shown = []
    for obj in group[:5]:
        shown.append(", ".join(f"{a.name}={a.get_raw(obj)!r}" for a in named))
    more = f" and {len(group) - 5} more" if len(group) > 5 else ""
    return f" (values: {'; '.join(shown)}{more})"


def _refers_within(group: list[Any]) -> bool:
    """Whether an object of ``group`` refers to a new object (whose key is not known yet)."""
    refs = type(group[0])._fk_refs_
    return bool(refs) and any(is_new(attr.get_raw(obj)) for obj in group for attr in refs)


def is_new(value: Any) -> bool:
    """Whether ``value`` is a new object (its key is not known before its INSERT)."""
    return isinstance(value, EntityBase) and value._status_ == CREATED


def _db(attr: Any, value: Any) -> Any:
    return value if value is None or attr.to_db is None else attr.to_db(value)


# -- savepoints ------------------------------------------------------------------------------------

_MISSING = object()


class SessionState:
    """What a session knows at one moment: enough to put its objects back as they were.

    Taken after a flush, when every object is in step with the database except for what it
    queued since; ``restore`` gives each object its status, tracked bits, values and collection
    members back, the caches their queues and indexes, and drops objects that came later.
    """

    __slots__ = ("caches", "maps", "objects")

    def __init__(self, session: Any, objects: bool = True) -> None:
        self.maps = _copy_maps(session.maps)
        #: the state of each object; None when only new objects are to be dropped (see ``objects``)
        self.objects: dict[Any, tuple[Any, ...]] | None = None
        if objects:
            self.objects = {}
            for imap in session.maps.values():
                for obj in imap.values():
                    self.objects[obj] = _capture(obj)
        self.caches: dict[Any, tuple[Any, ...]] = {}
        for cache in session.caches.values():
            cache.settle_saved()
            if self.objects is not None:
                for obj in (*cache.dirty, *cache.undo):
                    if obj not in self.objects:
                        self.objects[obj] = _capture(obj)
            self.caches[cache] = (
                dict(cache.dirty),
                {attr: (dict(added), dict(removed)) for attr, (added, removed) in cache.m2m.items()},
                {key: dict(index) for key, index in cache.unique.items()},
                dict(cache.new_ids),
                dict(cache.undo),
            )

    def restore(self, session: Any) -> None:
        """Put the session back as it was; objects it did not know then leave it."""
        known: Any = self.objects
        if known is None:
            known = {obj for imap in self.maps.values() for obj in imap.values()}
            for saved in self.caches.values():
                known.update(saved[0], saved[4])
        for imap in list(session.maps.values()):
            for obj in list(imap.values()):
                if obj not in known:
                    _drop(obj)
        for cache in session.caches.values():
            for obj in [*cache.dirty, *cache.undo]:
                if obj not in known:
                    _drop(obj)
        if self.objects is not None:
            for obj, state in self.objects.items():
                _put_back(obj, state)
        session.maps.clear()
        session.maps.update(_copy_maps(self.maps))
        for cache in session.caches.values():
            kept = self.caches.get(cache)
            if kept is None:
                cache.dirty.clear()
                cache.m2m = {}
                cache.unique = {}
                cache.new_ids = {}
                cache.undo = {}
                continue
            dirty, m2m, unique, new_ids, undo = kept
            cache.dirty.clear()
            cache.dirty.update(dirty)
            cache.m2m = {attr: (dict(added), dict(removed)) for attr, (added, removed) in m2m.items()}
            cache.unique = {key: dict(index) for key, index in unique.items()}
            cache.new_ids = dict(new_ids)
            cache.undo = dict(undo)


def _copy_maps(maps: dict[Any, dict[Any, Any]]) -> dict[Any, dict[Any, Any]]:
    """A copy of a session's identity maps; the classes of a hierarchy keep sharing one map."""
    copies: dict[int, dict[Any, Any]] = {}
    return {entity: copies.setdefault(id(imap), dict(imap)) for entity, imap in maps.items()}


def _capture(obj: Any) -> tuple[Any, ...]:
    """An object's status, bits, earlier values, attribute values and collection members."""
    cls = type(obj)
    values = tuple(attr.get_raw(obj, _MISSING) for attr in cls._attrs_)
    collections = []
    for attr in cls._collections_:
        data = attr.data(obj)
        collections.append(None if data is None else (dict(data.items), data.loaded))
    orig = obj._orig_
    return (
        obj._status_,
        obj._rbits_,
        obj._wbits_,
        None if orig is None else dict(orig),
        values,
        tuple(collections),
    )


def _put_back(obj: Any, state: tuple[Any, ...]) -> None:
    status, rbits, wbits, orig, values, collections = state
    cls = type(obj)
    obj._status_ = status
    obj._rbits_ = rbits
    obj._wbits_ = wbits
    obj._orig_ = None if orig is None else dict(orig)
    for attr, value in zip(cls._attrs_, values):
        if value is _MISSING:
            attr.clear_raw(obj)
        else:
            attr.set_raw(obj, value)
    for attr, saved in zip(cls._collections_, collections):
        if saved is None:
            data = attr.data(obj)
            if data is not None:
                data.items = {}
                data.loaded = False
            continue
        data = attr.ensure_data(obj)
        data.items = dict(saved[0])
        data.loaded = saved[1]


def _drop(obj: Any) -> None:
    """An object that came into the session inside a rolled-back savepoint leaves it.

    A new one is gone (its INSERT was undone); a loaded one is detached, as by ``expunge()``.
    """
    if obj._status_ == CREATED or obj._cache_.undo.get(obj, (LOADED,))[0] == CREATED:
        obj._status_ = GONE
        obj._wbits_ = 0
        return
    obj._cache_.detach(obj)


class Savepoint:
    """One open ``savepoint()`` block of a session: its name, the caches it is set on, the state to go back to."""

    __slots__ = ("caches", "name", "session", "state")

    def __init__(self, session: Any, name: str, objects: bool = True) -> None:
        self.session = session
        self.name = name
        #: the caches whose transaction holds this savepoint (a cache that begins later sets it then)
        self.caches: list[Any] = []
        self.state: SessionState | None = SessionState(session, objects)


def savepoint_begin_steps(session: Any, objects: bool = True) -> Steps[Savepoint]:
    """Flush, remember the session's state, and set a savepoint in every open transaction.

    ``objects=False`` remembers only which objects the session holds, not their values: for a
    block that only creates objects (get_or_create), whose rollback drops them, it costs far less.
    """
    session.refuse_if_failed()
    yield from session.flush_steps()
    stack = session.open_savepoints()
    point = Savepoint(session, f"nextorm_savepoint_{len(stack) + 1}", objects)
    stack.append(point)
    for cache in list(session.caches.values()):
        if cache.in_transaction:
            yield cache, "set_savepoint", (point,)
    return point


def savepoint_release_steps(point: Savepoint) -> Steps[None]:
    """Leave the block normally: flush what it queued and release the savepoint."""
    session = point.session
    if point.state is None:
        return  # already rolled back (a flush inside failed and was contained here)
    yield from session.flush_steps()
    _pop(session, point)
    for cache in point.caches:
        if cache.in_transaction and cache.conn is not None:
            yield cache, "write", (cache.provider.dialect.release_savepoint_sql(point.name), ())
    point.state = None


def savepoint_rollback_steps(point: Savepoint) -> Steps[None]:
    """Roll the database and the session's objects back to the savepoint; a failure here fails the session."""
    session = point.session
    state = point.state
    if state is None:
        return
    point.state = None
    _pop(session, point)
    if session.failure is not None:
        return  # the whole transaction was rolled back already
    try:
        for cache in point.caches:
            if cache.in_transaction and cache.conn is not None:
                dialect = cache.provider.dialect
                yield cache, "write", (dialect.rollback_to_savepoint_sql(point.name), ())
                yield cache, "write", (dialect.release_savepoint_sql(point.name), ())
    except GeneratorExit:
        raise
    except BaseException as exc:
        yield from session.fail_steps(exc)
        raise
    for cache in session.caches.values():
        cache.flushing = False
        cache.saving.clear()
        cache.generation += 1
    state.restore(session)


def _pop(session: Any, point: Savepoint) -> None:
    stack = session.open_savepoints()
    if point not in stack:
        return
    # inner savepoints end with this one
    while stack:
        if stack.pop() is point:
            break
