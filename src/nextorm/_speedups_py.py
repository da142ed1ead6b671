"""Pure-Python twin of the compiled session hot path (``_speedups.pyx``).

This module is the specification the compiled module follows name for name.
It knows nothing about SQL, databases or error messages: everything that is
not per-operation bookkeeping is delegated to methods the ORM layer defines on
subclasses (the *hooks* named below), so both twins call exactly the same
Python code on their slow paths.

Instance state
    ``EntityBase`` carries the session cache that owns the object, its status,
    a read-bit and a write-bit mask (bit ``i`` is column ``i``), and the
    original values of modified columns (``{column index: value}``). Column
    values live in per-class ``__slots__``; an empty slot means "not loaded".

Column descriptors
    ``Column.__get__`` returns a loaded value and sets the read bit;
    ``Column.__set__`` validates, skips equal values, keeps the original value
    and puts the object in its cache's dirty queue. Hooks a subclass defines:
    ``_load_(obj)`` (value not loaded), ``_read_after_session_(obj)`` (cache no
    longer alive), ``_deleted_(obj)``, ``_check_assign_(obj, value)`` (an assignment
    to a ``readonly`` column, or one outside the owning live session, or to a
    deleted object: it raises), ``_validate_(obj,
    value)``, ``_before_change_(obj, old, new)`` (only when ``tracked`` is
    set), ``_unrepeatable_(obj, known, new)``.

Identity map
    ``lookup(cls, key)`` (also ``cls[key]`` on a class whose metaclass derives
    from ``EntityMetaBase``) answers from the current session's map only for a
    key the map could hold verbatim: an exact ``int`` or ``str``, or a
    ``tuple`` of them. Any other key (``True``, ``1.0``, an ``int`` subclass,
    an unhashable value) goes to the hook ``cls._lookup_miss_(key)``, which
    validates it first, so a key the slow path rejects is never answered by
    the fast one because it happens to compare equal to a stored key.

Session containers
    ``SessionBase`` holds the per-class identity maps (``maps``: entity class
    -> {pk: object}), the task that owns it (``owner``, None for a session of
    a thread), the db_session manager whose options it runs with, its caches
    by database, its nesting ``depth`` and the ContextVar ``token`` that
    restores the outer state; ``CacheBase`` (one per database per session) holds the
    dirty queue: an insertion-ordered dict of objects with pending INSERT,
    UPDATE or DELETE, in the order they were first changed.

Statements
    ``read_rows(provider, conn, sql, params)`` is the direct path of one SELECT:
    it sends the statement on the connection (through the provider's ``send``
    unless the provider's class says it sends with ``conn.execute``), fetches
    its rows, records ``db.last_sql`` and the run's ``QueryStat``, and hands a
    driver error to the provider's ``statement_failed``, which closes the cursor
    and returns the error to raise. ``read_now(cache, sql, params)`` runs it on a
    session cache's open connection when nothing has to happen first, and
    returns None otherwise: the ORM layer's full path then flushes, connects,
    begins or raises, as it always did.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import keyword
import operator
import sys
import sysconfig
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from time import perf_counter
from types import MemberDescriptorType
from typing import Any, TypeVar, cast
from uuid import UUID

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = [
    "BOUND_TYPES",
    "CREATED",
    "DELETED",
    "GONE",
    "LOADED",
    "MODIFIED",
    "SHAPED_OPERATORS",
    "UNLEARNED_LOADS",
    "CacheBase",
    "Column",
    "EntityBase",
    "EntityMetaBase",
    "LazyIterator",
    "QueryStat",
    "SessionBase",
    "SetData",
    "add_run",
    "attribute_dict",
    "borrowed_task",
    "checked_columns",
    "column_values",
    "current_session",
    "current_task",
    "enter_session",
    "exit_session",
    "fetch_now",
    "get_now",
    "init_new",
    "keyword_sql",
    "learn_unique",
    "load_rows",
    "loaded_bits",
    "lookup",
    "mark_saved_all",
    "match_keys",
    "materialize",
    "members_now",
    "only_mapped",
    "plain_params",
    "read_now",
    "read_rows",
    "record_undo_all",
    "register_keys",
    "select_shape",
    "select_sql_now",
    "session_cache",
    "shape_of",
    "shape_runs",
    "sql_debug_state",
    "take_members",
    "track",
    "use_condition_classes",
    "use_entity_iterator",
]

CREATED = 1  # pending INSERT
LOADED = 2  # in step with the database as far as this session knows
MODIFIED = 3  # pending UPDATE
DELETED = 4  # pending DELETE
GONE = 5  # deleted in the database, or created and deleted before insert

current_session: ContextVar[Any] = ContextVar("nextorm_session", default=None)
# the task whose session a thread works for while run_sync() runs sync code of an async session
borrowed_task: ContextVar[Any] = ContextVar("nextorm_borrowed_task", default=None)
#: (log statements, show their parameters) of this thread or task: ``set_sql_debug()`` sets it
sql_debug_state: ContextVar[tuple[bool, bool]] = ContextVar("nextorm_sql_debug", default=(False, False))

_MISSING = object()

# The key types ``lookup`` answers from the map: equal values of them are the same key, whereas
# True == 1 and 1.0 == 1 would find the object of a key the slow path rejects.
_PLAIN_KEY_TYPES = (int, str)


class SessionBase:
    """State of one outermost db_session: identity maps, owner task, caches, nesting depth."""

    __slots__ = ("__dict__", "__weakref__", "caches", "depth", "manager", "maps", "owner", "token")

    def __init__(self, manager: Any) -> None:
        self.maps: dict[type, dict[Any, Any]] = {}
        self.owner: Any = None
        self.manager = manager
        self.caches: dict[Any, Any] = {}
        self.depth = 0
        self.token: Any = None


class CacheBase:
    """Per-database state of one session: liveness, strictness, dirty queue."""

    __slots__ = ("__dict__", "__weakref__", "dirty", "is_alive", "readonly", "session", "strict")

    def __init__(self, session: Any, strict: bool = False) -> None:
        self.session = session
        self.is_alive = True
        self.strict = strict
        self.readonly = False
        self.dirty: dict[Any, None] = {}


class EntityBase:
    """Per-instance session state shared by every entity."""

    __slots__ = ("_cache_", "_orig_", "_rbits_", "_status_", "_wbits_")

    _new_plan_: Any = None  # a subclass's plan of init_new

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """A new object: ``init_new`` along the class's ``_new_plan_``, else ``_init_full_(args, kwargs)``."""
        if args or not init_new(self, self._new_plan_, kwargs):
            self._init_full_(args, kwargs)

    def _init_full_(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """The constructor where ``init_new`` does not apply; a subclass defines it (here: no arguments)."""
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}() takes no arguments")

    def _init_state_(self, cache: CacheBase, status: int) -> None:
        """Attach a new object to ``cache`` with ``status`` and no tracked bits."""
        self._cache_ = cache
        self._status_ = status
        self._rbits_ = 0
        self._wbits_ = 0
        self._orig_ = None

    def __reduce_ex__(self, protocol: Any) -> Any:
        # a copy would be a second object for one row, outside its session's bookkeeping
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")


class Column(property):
    """Data descriptor of one column: tracked reads and writes of a slot.

    A read is this property's getter: for a value in a ``__slots__`` slot of an entity, a function
    made for the column (``_slot_read``) whose common case (a loaded value of a live session's
    object that is not deleted) reads the slot and sets the read bit without any call; every
    other read, and every read of a value stored elsewhere, is ``_read``.
    """

    __slots__ = (
        "__dict__",
        "_slot_del",
        "_slot_get",
        "_slot_set",
        "bit",
        "index",
        "plain_check",
        "readonly",
        "tracked",
    )

    # The hooks a subclass defines (see the module docstring); declared here for type checkers only.
    _load_: Callable[[Any], Any]
    _read_after_session_: Callable[[Any], Any]
    _deleted_: Callable[[Any], Any]
    _check_assign_: Callable[[Any, Any], None]
    _validate_: Callable[[Any, Any], Any]
    _before_change_: Callable[[Any, Any, Any], None]
    _unrepeatable_: Callable[[Any, Any, Any], None]

    def __init__(self) -> None:
        self._getter(self._read)
        self.index = -1
        self.bit = 0
        self.tracked = False
        self.readonly = False
        #: None, or the ``(kind, auto, a, b)`` checks a written value of the column's own type passes
        #: unchanged: such a value is stored without calling ``_validate_`` (see ``_passes``)
        self.plain_check: tuple[int, bool, Any, Any] | None = None

    def _bind_slot_(self, member: Any, index: int) -> None:
        """Store values in the slot ``member`` and track them as column ``index``."""
        self.index = index
        self.bit = 1 << index
        self._slot_get = member.__get__
        self._slot_set = member.__set__
        self._slot_del = member.__delete__
        # the getter reads ``obj.<slot>``: only where the class finds the slot itself under its name
        slotted = (
            type(member) is MemberDescriptorType
            and issubclass(member.__objclass__, EntityBase)
            and not keyword.iskeyword(member.__name__)
            and getattr(member.__objclass__, member.__name__, None) is member
        )
        self._getter(_slot_read(member.__name__, self.bit, self._read) if slotted else self._read)

    def _getter(self, read: Callable[[Any], Any]) -> None:
        """Make ``read`` this property's getter."""
        property.__init__(self, read)
        self.__dict__.pop("__doc__", None)  # put there by property(): a column has no docstring of its own

    def _read(self, obj: Any) -> Any:
        """A tracked read of ``obj``'s value, whatever the state of the object and its session."""
        cache = obj._cache_
        if not cache.is_alive:
            return self._read_after_session_(obj)
        if obj._status_ >= DELETED:
            return self._deleted_(obj)
        try:
            value = self._slot_get(obj)
        except AttributeError:
            return self._load_(obj)
        obj._rbits_ |= self.bit
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        cache = obj._cache_
        status = obj._status_
        if (
            not cache.is_alive
            or status >= DELETED
            or self.readonly
            or cache.readonly
            or _foreign(cache.session)
        ):
            self._check_assign_(obj, value)
        check = self.plain_check
        if check is None or not _passes(check, value):
            value = self._validate_(obj, value)
        try:
            old = self._slot_get(obj)
        except AttributeError:
            old = _MISSING
        else:
            if old == value:
                return
        if self.tracked:
            self._before_change_(obj, None if old is _MISSING else old, value)
        bit = self.bit
        if status != CREATED and not obj._wbits_ & bit and old is not _MISSING:
            orig = obj._orig_
            if orig is None:
                obj._orig_ = orig = {}
            orig[self.index] = old
        obj._wbits_ |= bit
        self._slot_set(obj, value)
        if status == LOADED:
            obj._status_ = MODIFIED
            cache.dirty[obj] = None

    def __delete__(self, obj: Any) -> None:
        raise AttributeError(f"Attribute {self!r} cannot be deleted")

    def get_raw(self, obj: Any, default: Any = None) -> Any:
        """The stored value, or ``default`` when not loaded; no tracking."""
        try:
            return self._slot_get(obj)
        except AttributeError:
            return default

    def set_raw(self, obj: Any, value: Any) -> None:
        """Store ``value`` without validation or tracking."""
        self._slot_set(obj, value)

    def clear_raw(self, obj: Any) -> None:
        """Mark the value as not loaded."""
        try:
            self._slot_del(obj)
        except AttributeError:
            pass

    def is_loaded(self, obj: Any) -> bool:
        """Whether the slot holds a value."""
        try:
            self._slot_get(obj)
        except AttributeError:
            return False
        return True

    def passes_plain(self, value: Any) -> bool:
        """Whether ``value`` passes ``plain_check`` unchanged (never without one)."""
        check = self.plain_check
        return check is not None and _passes(check, value)


def _slot_read(slot: str, bit: int, read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The getter of a column stored in the slot ``slot`` with read bit ``bit``: a loaded value of an
    object of a live session, not deleted, is read and tracked inline (its bit stored only when
    not set yet: a repeated read writes nothing), any other read is ``read``."""
    namespace: dict[str, Any] = {"read": read}
    exec(
        f"def get(obj):\n"
        f"    try:\n"
        f"        value = obj.{slot}\n"
        f"    except AttributeError:\n"
        f"        return read(obj)\n"
        f"    if obj._cache_.is_alive and obj._status_ < {DELETED}:\n"
        f"        if not obj._rbits_ & {bit}:\n"
        f"            obj._rbits_ |= {bit}\n"
        f"        return value\n"
        f"    return read(obj)\n",
        namespace,
    )
    return cast(Callable[[Any], Any], namespace["get"])


def _passes(check: tuple[int, bool, Any, Any], value: Any) -> bool:
    """Whether ``value`` passes the checks ``(kind, auto, a, b)`` unchanged.

    Kind 1: an exact int with ``a <= value <= b``; 2: a finite exact float; 3: a non-empty exact
    ASCII str without NUL, of at most ``a`` characters unless ``a`` is negative, with no surrounding
    whitespace when ``b``; any other kind: no value. (``auto`` is the constructor's concern.)
    """
    kind, _, a, b = check
    if kind == 1:
        return type(value) is int and a <= value <= b
    if kind == 2:
        return type(value) is float and value - value == 0.0
    if kind == 3:
        return (
            type(value) is str
            and value != ""
            and value.isascii()
            and "\x00" not in value
            and (a < 0 or len(value) <= a)
            and (not b or value.strip() is value)
        )
    return False


def _foreign(session: Any) -> bool:
    """Whether ``session`` is not the session of this thread or task (an inherited one is foreign)."""
    if session is not current_session.get():
        return True
    owner = session.owner
    return owner is not None and owner is not current_task()


def current_task() -> Any:
    """The running asyncio task; outside an event loop, ``borrowed_task`` (None unless in run_sync())."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return borrowed_task.get()
    return asyncio.current_task(loop)


def enter_session(manager: Any) -> Any:
    """Enter a db_session: one level deeper into the current one, or a new one.

    A session inherited from another task (a task created inside it) is not
    entered: a new one, ``manager.session_type(manager)``, is made, owned by
    the current task and installed in ``current_session``. Nesting under a
    session of other options calls ``manager._check_nested_(session)``.
    """
    session = current_session.get()
    if session is not None and session.owner is not None and session.owner is not current_task():
        session = None
    if session is None:
        session = manager.session_type(manager)
        session.owner = current_task()
        session.token = current_session.set(session)
    elif session.manager is not manager:
        manager._check_nested_(session)
    session.depth += 1
    return session


def exit_session(manager: Any, exc_type: Any = None, exc: Any = None, tb: Any = None) -> None:
    """Leave a db_session; the outermost exit ends it.

    A session that touched a database is ended by ``session.manager._finish_(session, exc)``
    (commit or rollback, release, restore the ContextVar); an empty one just restores the ContextVar.
    """
    session = current_session.get()
    session.depth -= 1
    if not session.depth:
        if session.caches:
            session.manager._finish_(session, exc)
        else:
            current_session.reset(session.token)


def lookup(cls: Any, key: Any) -> Any:
    """``cls[key]``: the current session's object of class ``cls`` for a plain ``key``, else ``cls._lookup_miss_(key)``."""
    kind = type(key)
    if kind is int or kind is str or (kind is tuple and all(type(part) in _PLAIN_KEY_TYPES for part in key)):
        session = current_session.get()
        if session is not None and session.owner is None:
            imap = session.maps.get(cls)
            if imap is not None:
                obj = imap.get(key)
                # a hierarchy shares one map: an object of another class is the slow path's to judge
                if obj is not None and obj._status_ < DELETED and type(obj) is cls:
                    return obj
    return cls._lookup_miss_(key)


#: the class of ``iter(entity)``'s iterators (``use_entity_iterator``)
_entity_iterator: Any = None


def use_entity_iterator(iterator_class: Any) -> None:
    """Make ``iter(entity)`` an ``iterator_class`` (a ``LazyIterator`` with slots ``_query`` and
    ``entity``: the query module's ``QueryIterator``), made without ``__init__``, with ``_query``
    None and ``entity`` the entity iterated, after the entity's mapping is checked."""
    global _entity_iterator
    _entity_iterator = iterator_class


class EntityMetaBase(type):
    """Base of the entity metaclass: ``cls[key]`` is ``lookup(cls, key)``; ``iter(cls)`` an
    iterator of its objects (``use_entity_iterator``); a class attribute that is not found is
    ``cls._missing_attr_(name)`` when the class defines that hook."""

    __getitem__ = lookup

    def __iter__(cls) -> Any:
        database = cls._database_  # type: ignore[attr-defined]
        if not database._mapped_:
            database._require_mapping_(cls)
        iterator = LazyIterator.__new__(_entity_iterator)
        iterator._query = None
        iterator.entity = cls
        return iterator

    def __getattr__(cls, name: str) -> Any:
        try:
            hook = type.__getattribute__(cls, "_missing_attr_")
        except AttributeError:
            raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}") from None
        return hook(name)


def _gc_paused(func: _F) -> _F:
    """``func`` run with the cyclic GC paused, its earlier state restored however it ends.

    The folds below build a tuple or an object per entity while every entity of the batch is alive;
    left on, the collector would sweep that growing heap again and again (a full collection each
    time the tracked heap grows by a quarter: about double the cost of loading 100k rows) without
    finding garbage, for they make none that only the collector could free.
    """

    @functools.wraps(func)
    def paused(*args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():
            return func(*args, **kwargs)
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            gc.enable()

    return cast(_F, paused)


@_gc_paused
def materialize(
    cls: Any,
    cache: CacheBase,
    imap: dict[Any, Any],
    columns: Sequence[Column],
    converters: Sequence[Any],
    npk: int,
    check_mask: int,
    rows: Iterable[Sequence[Any]],
) -> list[Any]:
    """Turn fetched rows into entities of ``cls`` through the identity map.

    ``columns[i]`` and ``converters[i]`` (a callable or None) describe
    ``row[i]``; the first ``npk`` values are the primary key. Known objects
    keep the values this session wrote; a column read before whose database
    value changed (and is in ``check_mask``) raises via
    ``column._unrepeatable_``; other loaded values are refreshed.
    """
    if npk < 1:
        raise ValueError(f"npk must be at least 1, not {npk}")
    setters = [column._slot_set for column in columns]
    result: list[Any] = []
    append = result.append
    new = EntityBase.__new__
    width = len(columns)
    plain = all(conv is None for conv in converters)
    for row in rows:
        if not plain:
            row = [v if conv is None or v is None else conv(v) for conv, v in zip(converters, row)]
        pk = row[0] if npk == 1 else tuple(row[:npk])
        obj = imap.get(pk)
        if obj is None:
            obj = new(cls)
            obj._cache_ = cache
            obj._status_ = LOADED
            obj._rbits_ = 0
            obj._wbits_ = 0
            obj._orig_ = None
            for i in range(width):
                setters[i](obj, row[i])
            imap[pk] = obj
        else:
            _merge(obj, columns, row, npk, check_mask)
        append(obj)
    return result


def _merge(obj: Any, columns: Sequence[Column], row: Sequence[Any], npk: int, check_mask: int) -> None:
    """Bring the database values of ``row`` into an object already in the map."""
    rbits = obj._rbits_
    wbits = obj._wbits_
    for i in range(npk, len(columns)):
        column = columns[i]
        new = row[i]
        bit = column.bit
        if wbits & bit:
            orig = obj._orig_
            known = _MISSING if orig is None else orig.get(column.index, _MISSING)
            if known is not _MISSING and rbits & bit & check_mask and known != new:
                column._unrepeatable_(obj, known, new)
            continue
        try:
            current = column._slot_get(obj)
        except AttributeError:
            column._slot_set(obj, new)
            continue
        if current != new:
            if rbits & bit & check_mask:
                column._unrepeatable_(obj, current, new)
            column._slot_set(obj, new)


def track(objects: Iterable[Any]) -> None:
    """Give the entities of ``objects`` that ``materialize`` left untracked back to the cyclic GC.

    Only the compiled ``materialize`` leaves entities untracked (Python cannot untrack an object):
    here every entity is tracked already.
    """
    for _obj in objects:
        pass


def only_mapped(maps: Iterable[dict[Any, Any]]) -> bool:
    """Whether every object of the identity maps ``maps`` (dicts) is held by its map alone.

    Nothing else refers to such an object: not the application, another object, or a queue of
    the session. False where reference counts do not say so (a free-threaded build, or an
    interpreter without ``sys.getrefcount``).
    """
    held = _HELD_BY_MAP
    if held is None:
        return False
    getrefcount = sys.getrefcount
    for imap in maps:
        if type(imap) is not dict:
            return False
        for obj in imap.values():
            if getrefcount(obj) > held:
                return False
    return True


def _held_by_map() -> int | None:
    """What ``sys.getrefcount`` gives in ``only_mapped``'s loop for an object that only a dict
    holds (the loop's own references included), None where the count cannot be trusted."""
    getrefcount = getattr(sys, "getrefcount", None)
    if getrefcount is None or sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None
    for obj in {0: object()}.values():  # the loop of only_mapped, for one object
        return int(getrefcount(obj))
    return None


_HELD_BY_MAP = _held_by_map()


def column_values(
    objs: Iterable[Any],
    columns: Sequence[Column],
    converters: Sequence[Any],
    known: bool = False,
    known_from: int = 0,
) -> list[tuple[Any, ...]]:
    """The parameter rows of a statement: per object, a tuple of each column's stored value.

    ``converters[i]`` (a callable or None) turns a value of ``columns[i]`` into the database's; a
    None value is not converted, and a column not loaded gives None. With ``known``, a column from
    position ``known_from`` on written since it was loaded gives its original value (the one the
    database holds).
    """
    if len(converters) != len(columns):
        raise ValueError(f"{len(columns)} columns but {len(converters)} converters")
    for column in columns:
        if not isinstance(column, Column):
            raise TypeError(f"column_values() takes Column objects, not {type(column).__name__}")
    triples = [(column, column.get_raw, conv) for column, conv in zip(columns, converters)]
    return _column_rows(objs, triples, known, known_from)


@_gc_paused
def _column_rows(
    objs: Iterable[Any], triples: list[Any], known: bool, known_from: int
) -> list[tuple[Any, ...]]:
    rows = []
    for obj in objs:
        orig = (obj._orig_ if known else None) or {}
        wbits = obj._wbits_ if orig else 0
        row = []
        for position, (column, get, conv) in enumerate(triples):
            if wbits & column.bit and position >= known_from and column.index in orig:
                value = orig[column.index]
            else:
                value = get(obj)
            if conv is not None and value is not None:
                value = conv(value)
            row.append(value)
        rows.append(tuple(row))
    return rows


def loaded_bits(obj: Any, columns: Sequence[Column]) -> int:
    """The bits (``column.bit``) of the ``columns`` whose slot in ``obj`` holds a value."""
    bits = 0
    for column in columns:
        if not isinstance(column, Column):
            raise TypeError(f"loaded_bits() takes Column objects, not {type(column).__name__}")
        if column.is_loaded(obj):
            bits |= column.bit
    return bits


def checked_columns(obj: Any, columns: Sequence[Column], check_mask: int) -> tuple[tuple[int, bool], ...]:
    """The optimistic checks of ``obj``'s UPDATE/DELETE: ``(index, known value is None)`` of each of
    ``columns`` (in column order) that this session read and whose bit is in ``check_mask``.

    The known value of a column written since it was read is its original value.
    """
    bits = obj._rbits_ & check_mask
    if not bits:
        return ()
    wbits = obj._wbits_
    orig = obj._orig_
    checks = []
    for column in columns:
        bit = column.bit
        if bits & bit:
            if wbits & bit and orig is not None and column.index in orig:
                value = orig[column.index]
            else:
                value = column.get_raw(obj)
            checks.append((column.index, value is None))
    return tuple(checks)


@_gc_paused
def mark_saved_all(objs: Iterable[Any], status: int, saving: list[Any]) -> None:
    """After their statements ran: ``objs`` are in step with the database (``status``: the one they had).

    Appends ``(obj, status, original values, write bits)`` to ``saving`` for each, then a deleted
    object becomes GONE and any other LOADED with no written columns.
    """
    for obj in objs:
        saving.append((obj, status, obj._orig_, obj._wbits_))
        if status == DELETED:
            obj._status_ = GONE
        else:
            obj._status_ = LOADED
            obj._wbits_ = 0
            obj._orig_ = None


def shape_runs(objs: Iterable[Any], optimistic: bool) -> list[tuple[tuple[Any, ...], list[Any]]]:
    """The objects with a pending statement, in runs of consecutive objects whose statements share
    a shape: ``[((status, class, bits, checks), [objects]), ...]``.

    The bits of a CREATED object are its loaded columns (of ``class._columns_``), of a MODIFIED one
    its written columns, of a DELETED one 0; with ``optimistic``, the checks of an UPDATE/DELETE are
    ``checked_columns(obj, class._attrs_, class._check_mask_)``, else (). Other objects are left out.
    """
    return _shape_runs(objs, optimistic)


@_gc_paused
def _shape_runs(objs: Iterable[Any], optimistic: bool) -> list[tuple[tuple[Any, ...], list[Any]]]:
    runs: list[tuple[tuple[Any, ...], list[Any]]] = []
    shape: Any = None
    group: list[Any] = []
    new: tuple[Any, ...]
    for obj in objs:
        status = obj._status_
        cls = type(obj)
        if status == CREATED:
            new = (CREATED, cls, loaded_bits(obj, cls._columns_), ())
        elif status == MODIFIED or status == DELETED:
            checks = checked_columns(obj, cls._attrs_, cls._check_mask_) if optimistic else ()
            new = (status, cls, obj._wbits_ if status == MODIFIED else 0, checks)
        else:
            continue
        if new != shape:
            shape = new
            group = []
            runs.append((shape, group))
        group.append(obj)
    return runs


def match_keys(rows: Sequence[tuple[Any, ...]], returned: Sequence[Sequence[Any]]) -> list[Any] | None:
    """The key of each of ``rows`` from ``returned`` (key, *values) rows matched by their values.

    Rows of equal values get their keys in ascending order; None when a returned row matches no
    row left (the database stored a value other than the one sent) or values are unhashable.
    Returned rows in the order of ``rows`` with ascending keys are matched without a table.
    """
    count = len(rows)
    if len(returned) != count:
        return None
    keys: list[Any] = []
    try:
        previous: Any = _MISSING
        for row, found in zip(rows, returned):
            key = found[0]
            if len(found) != len(row) + 1 or (previous is not _MISSING and not previous < key):
                break
            for i, value in enumerate(row):
                if found[i + 1] != value:
                    break
            else:
                keys.append(key)
                previous = key
                continue
            break
        else:
            return keys
        waiting: dict[tuple[Any, ...], list[int]] = {}
        for index in range(count - 1, -1, -1):
            waiting.setdefault(rows[index], []).append(index)
        matched: list[Any] = [None] * count
        for found in sorted(returned, key=_first):
            indexes = waiting.get(tuple(found[1:]))
            if not indexes:
                return None
            matched[indexes.pop()] = found[0]
    except TypeError:  # an unhashable value, or keys that do not sort
        return None
    return matched


def _first(row: Sequence[Any]) -> Any:
    return row[0]


def register_keys(
    objs: Sequence[Any], keys: Sequence[Any], column: Column, identity_map: dict[Any, Any]
) -> int:
    """Store ``keys[i]`` in ``column`` of ``objs[i]`` and ``identity_map[keys[i]] = objs[i]``, in order.

    Stops at the first key the map holds for another object and returns its index; -1 when all
    are registered.
    """
    if len(keys) != len(objs):
        raise ValueError(f"{len(objs)} objects but {len(keys)} keys")
    for index, (obj, key) in enumerate(zip(objs, keys)):
        if identity_map.get(key, obj) is not obj:
            return index
        column.set_raw(obj, key)
        identity_map[key] = obj
    return -1


@_gc_paused
def record_undo_all(undo: dict[Any, Any], saving: Iterable[tuple[Any, int, Any, int]]) -> None:
    """Fold the ``(obj, status, original values, write bits)`` of flushed statements into ``undo``.

    An object's first entry is kept; a later one adds its write bits and the original values of
    columns the first did not write.
    """
    for obj, status, orig, wbits in saving:
        entry = undo.get(obj)
        if entry is None:
            undo[obj] = (status, orig, wbits)
            continue
        first_status, first_orig, first_wbits = entry
        if orig:
            first_orig = first_orig or {}
            for index, value in orig.items():
                if not first_wbits >> index & 1:
                    first_orig[index] = value
        undo[obj] = (first_status, first_orig, first_wbits | wbits)


def attribute_dict(obj: Any, names: Sequence[str], attrs: Sequence[Any]) -> dict[str, Any]:
    """``{names[i]: value of attrs[i] in obj}``, each value read as ``obj.<attribute>`` reads it.

    Every attribute's own ``__get__`` runs (tracked reads, loading of a missing value, the
    checks of a finished session or a deleted object), in the order given.
    """
    entry = _readers.get(id(attrs))
    if entry is None or entry[0] is not attrs or entry[1] is not names or entry[2] is not type(obj):
        entry = _slot_reader(names, attrs, type(obj))
    read = entry[3]
    # Column.__get__ of every attribute, of an object of a live session that is not deleted, is a
    # slot read and a read bit: the dict is built from all slots at once, unless one is empty (then,
    # as a slot read changes nothing, the attributes are read one by one below)
    if read is not None and obj._cache_.is_alive and obj._status_ < DELETED:
        try:
            values = read(obj)
        except AttributeError:
            pass
        else:
            obj._rbits_ |= entry[4]
            return values
    cls = type(obj)
    return {name: type(attr).__get__(attr, obj, cls) for name, attr in zip(names, attrs)}


# ``attribute_dict``'s readers by id(attrs): (attrs, names, class, read, bits). ``read(obj)`` is the
# dict of ``names`` to the slot values of ``attrs`` in an object of that class (an AttributeError
# for an empty slot) and ``bits`` their read bits; ``read`` is None unless every attribute reads
# through ``Column.__get__`` from a ``__slots__`` slot the class finds under its name.
_readers: dict[int, tuple[Any, Any, Any, Any, int]] = {}


def _slot_reader(names: Sequence[str], attrs: Sequence[Any], cls: type) -> tuple[Any, Any, Any, Any, int]:
    """The entry of ``_readers`` for ``names``, ``attrs`` and objects of ``cls``, made now."""
    if len(names) != len(attrs):
        raise ValueError(f"{len(names)} names but {len(attrs)} attributes")
    read = None
    members: list[Any] = [getattr(getattr(attr, "_slot_get", None), "__self__", None) for attr in attrs]
    if (
        attrs
        and issubclass(cls, EntityBase)
        and all(type(name) is str for name in names)
        and all(type(attr).__get__ is Column.__get__ for attr in attrs)
        and all(
            type(member) is MemberDescriptorType
            and not keyword.iskeyword(member.__name__)
            and getattr(cls, member.__name__, None) is member
            for member in members
        )
    ):
        read = _dict_builder(names, [member.__name__ for member in members])
    if len(_readers) >= 256:  # the plans of the entity classes stay; names and attrs made per call do not
        _readers.clear()
    entry = _readers[id(attrs)] = (attrs, names, cls, read, sum(attr.bit for attr in attrs) if read else 0)
    return entry


def _dict_builder(names: Sequence[str], slots: Sequence[str]) -> Callable[[Any], dict[str, Any]]:
    """A function of ``obj`` returning ``{names[i]: obj.<slots[i]>}`` (the slots are identifiers):
    one dict display, so the interpreter reads every slot and builds the dict without a call."""
    items = ", ".join(f"{name!r}: obj.{slot}" for name, slot in zip(names, slots))
    namespace: dict[str, Any] = {}
    exec(f"def read(obj):\n    return {{{items}}}\n", namespace)
    return cast(Callable[[Any], dict[str, Any]], namespace["read"])


def keyword_sql(known: dict[Any, Any], values: dict[str, Any], dialect: Any) -> tuple[str, list[Any]] | None:
    """The text and parameters of ``get(**values)`` from ``known``, an entity's texts by shape; None
    when the text of this shape is not known for ``dialect``, or a value does not bind as given.

    A shape is the keywords in order and which values are None; its entry holds (dialect, text,
    columns, whether values bind as given, the constant parameters after the values').
    """
    entry = known.get((tuple(values), tuple(map(_is_none, values.values()))))
    if entry is None or entry[0] is not dialect or not entry[3]:
        return None
    params = plain_params(entry[2], values.values())
    if params is None:
        return None
    params.extend(entry[4])
    return entry[1], params


#: ``value is None``, as a function ``map`` calls without a Python frame
_is_none = functools.partial(operator.is_, None)


def plain_params(columns: Sequence[Column], values: Iterable[Any]) -> list[Any] | None:
    """The parameters binding ``values`` (beside ``columns``) as they are, None values left out:
    each value passes its column's ``plain_check``, which makes validating it a no-op. None where
    one does not (it is validated, and may be converted or refused)."""
    params = []
    for column, value in zip(columns, values):
        if value is None:
            continue
        check = column.plain_check
        if check is None or not _passes(check, value):
            return None
        params.append(value)
    return params


def init_new(obj: Any, plan: Any, kwargs: dict[str, Any]) -> bool:
    """Make ``obj``, a new object of a class without relationships, from the constructor's
    ``kwargs`` along its class's ``plan``; False, with nothing done, where the plan does not apply
    (None, another class's, a name that is not a column, no usable session or cache, a read-only
    cache): the caller takes the full path, which raises what it must.

    ``plan`` is ``(cls, database, columns, names, checks, npk, indexed, counter)``: per column
    (in ``cls._columns_`` order) its descriptor and keyword name, and ``(kind, auto, a, b)``, the
    checks a value of the column's own type passes unchanged (kind 1: an exact int with
    ``a <= value <= b``; 2: a finite exact float; 3: a non-empty exact ASCII str without NUL, of
    at most ``a`` characters unless ``a`` is negative, with no surrounding whitespace when ``b``);
    any other value, or kind 0, goes through the hook ``column._validate_(None, value)``. A column
    not given is None when ``auto``, else ``column._validate_(None, column.default_value())``.
    The first ``npk`` columns are the primary key; the object goes to ``cache.register_new(obj,
    pk)`` when its key is known or ``indexed`` (the class has unique keys), takes
    ``next(counter)`` in ``cache.new_ids`` and joins the dirty queue.
    """
    if plan is None or plan[0] is not type(obj):
        return False
    _, database, columns, names, checks, npk, indexed, counter = plan
    if not len(columns) == len(names) == len(checks):
        raise ValueError(f"{len(columns)} columns, {len(names)} names and {len(checks)} checks")
    values = [kwargs.get(name, _MISSING) for name in names]
    if len(kwargs) != sum(value is not _MISSING for value in values):
        return False
    session = current_session.get()
    if session is None or (session.owner is not None and session.owner is not current_task()):
        return False
    if session.failure is not None:
        return False
    cache = session.caches.get(database)
    if cache is None or cache.readonly:
        return False
    for i, (column, check) in enumerate(zip(columns, checks)):
        value = values[i]
        if value is _MISSING:
            values[i] = None if check[1] else column._validate_(None, column.default_value())
        elif not _passes(check, value):
            values[i] = column._validate_(None, value)
    obj._init_state_(cache, CREATED)
    for column, check, value in zip(columns, checks, values):
        if value is not None or not check[1]:
            column.set_raw(obj, value)
    if npk == 1:
        pk = values[0]
    else:
        pk = tuple(values[:npk])
        if None in pk:
            pk = None
    if indexed or pk is not None:
        cache.register_new(obj, pk)
    cache.new_ids[obj] = next(counter)
    cache.dirty[obj] = None
    return True


class LazyIterator:
    """An iterator over items made at its first ``next()``: a copy of what a subclass's
    ``_items_()`` returns then (so making the iterator reads nothing, and changes to the source
    while it runs do not affect it)."""

    __slots__ = ("_made",)

    _made: Iterator[Any]

    def __iter__(self) -> LazyIterator:
        return self

    def __next__(self) -> Any:
        try:
            made = self._made
        except AttributeError:
            made = self._made = iter(list(self._items_()))  # type: ignore[attr-defined]
        return next(made)


# -- statements ------------------------------------------------------------------------------


class QueryStat:
    """How often one statement ran and how long it took (in seconds), in a database's statistics.

    ``sql`` is the statement's text (None for the total of all statements of the statistics).
    ``db_count`` counts the times it was sent to the database; ``sum_time``, ``min_time``,
    ``max_time`` and ``avg_time`` are the durations, each measured around the driver's call
    (fetching the rows included).
    """

    __slots__ = ("db_count", "max_time", "min_time", "sql", "sum_time")

    def __init__(self, sql: str | None) -> None:
        self.sql = sql
        self.db_count = 0
        self.sum_time = 0.0
        self.min_time: float | None = None
        self.max_time: float | None = None

    @property
    def avg_time(self) -> float | None:
        """The mean duration (None before the statement ran)."""
        return self.sum_time / self.db_count if self.db_count else None

    def add(self, seconds: float) -> None:
        """Count one more run lasting ``seconds``."""
        self.db_count += 1
        self.sum_time += seconds
        if self.min_time is None or seconds < self.min_time:
            self.min_time = seconds
        if self.max_time is None or seconds > self.max_time:
            self.max_time = seconds

    def merge(self, other: QueryStat) -> None:
        """Add another ``QueryStat`` of the same statement to this one."""
        if not other.db_count:
            return
        self.db_count += other.db_count
        self.sum_time += other.sum_time
        if other.min_time is not None and (self.min_time is None or other.min_time < self.min_time):
            self.min_time = other.min_time
        if other.max_time is not None and (self.max_time is None or other.max_time > self.max_time):
            self.max_time = other.max_time

    def copy(self) -> QueryStat:
        """A new ``QueryStat`` with this one's figures."""
        stat = QueryStat(self.sql)
        stat.merge(self)
        return stat

    def __repr__(self) -> str:
        return f"<QueryStat {self.sql!r}: {self.db_count} run(s), {self.sum_time:.6f} s>"


def add_run(stats: dict[str | None, QueryStat], sql: str, seconds: float, limit: int) -> None:
    """Count one run of ``sql`` lasting ``seconds`` in a thread's statistics ``stats``.

    ``stats[None]`` is the total of all statements. A statement new to ``stats`` when it already
    holds more than ``limit`` of them is counted in the total only.
    """
    stats[None].add(seconds)
    stat = stats.get(sql)
    if stat is None:
        if len(stats) > limit:
            return
        stat = stats[sql] = QueryStat(sql)
    stat.add(seconds)


def read_rows(provider: Any, conn: Any, sql: str, params: Any) -> list[Any]:
    """The rows of one SELECT sent on ``conn``: the direct path of a read (``run(...).rows`` in fewer calls).

    The statement becomes this thread's ``last_sql`` and its run is counted in ``provider.stats``
    (the duration measured around sending and fetching), whether it succeeds or fails. With SQL
    debugging on, ``provider.logged_rows`` sends it and logs it.
    """
    provider._statements.sql = sql
    started = perf_counter()
    try:
        if sql_debug_state.get()[0]:
            return provider.logged_rows(conn, sql, params)  # type: ignore[no-any-return]
        return provider._rows(conn, sql, params)[1]  # type: ignore[no-any-return]
    finally:
        provider.stats.add(sql, perf_counter() - started)


def session_cache(database: Any) -> Any:
    """The cache of ``database`` in the current session, or None.

    None when there is no session of this thread or task, the session failed, or it has no cache
    of ``database`` yet: ``require_session().cache_for()`` then raises or makes the cache.
    """
    session = current_session.get()
    if session is None or _foreign(session) or session.failure is not None:
        return None
    return session.caches.get(database)


def read_now(cache: Any, sql: str, params: Any) -> list[Any] | None:
    """The rows of one SELECT run at once on ``cache``'s open connection, or None.

    None when something must happen first: a flush of pending changes, a connection to open or a
    transaction to begin, or an error to raise (the session failed or ended). None also on an
    asyncio cache, whose IO is awaited. The caller then takes the full path.
    """
    if cache.dirty or cache.m2m or cache.is_async or not cache.is_alive:
        return None
    conn = cache.conn
    if conn is None or (cache.immediate and not cache.in_transaction) or cache.session.failure is not None:
        return None
    return read_rows(cache.provider, conn, sql, params)


#: loaded objects of entities with unique keys that wait to be indexed (``learn_unique``): few
#: enough to bound the list, enough to batch the work
UNLEARNED_LOADS = 256


def learn_unique(cache: Any, objects: Iterable[Any], entity: Any) -> None:
    """Index loaded objects of ``entity`` by its unique keys in ``cache``: when the indexes are
    next read, or at once when ``UNLEARNED_LOADS`` loads wait (a long session reloading the same
    objects stays bounded)."""
    if entity._unique_keys_:
        unlearned = cache._unlearned
        unlearned.append((tuple(objects), entity))
        if len(unlearned) >= UNLEARNED_LOADS:
            cache._learn_loaded()


def load_rows(
    entity: Any, cache: Any, attrs: Sequence[Any], converters: Sequence[Any], rows: Any
) -> list[Any]:
    """The objects of ``rows`` (values of ``attrs``, one column each) as objects of ``entity`` in
    ``cache``'s identity map, their unique keys learned: ``materialize_rows`` where no wide
    attribute and no discriminator asks for more."""
    imap = cache.session.maps.get(entity)
    if imap is None:
        imap = cache.identity_map(entity)
    objects = materialize(entity, cache, imap, attrs, converters, entity._npk_, entity._check_mask_, rows)
    learn_unique(cache, objects, entity)
    return objects


def fetch_now(entity: Any, sql: str, params: Any) -> list[Any] | None:
    """The objects of ``entity`` that one SELECT of its query columns finds, read at once, or None.

    None when the read cannot run at once (``read_now``, or no cache of the entity's database in
    the current session yet) or the entity is wide or has a discriminator: the caller then takes
    the full path, which finds the same objects.
    """
    if entity._wide_ or entity._discriminator_attr_ is not None:
        return None
    cache = session_cache(entity._database_)
    if cache is None:
        return None
    rows = read_now(cache, sql, params)
    if rows is None:
        return None
    return load_rows(entity, cache, entity._select_attrs_, entity._select_converters_, rows)


def get_now(entity: Any, values: dict[str, Any]) -> list[Any] | None:
    """The objects ``entity.get(**values)`` finds, read with one call, or None.

    None when the text of the keywords' shape is not known yet or its values do not bind as given
    (``keyword_sql``), when the read cannot run at once (``read_now``), or when the entity is wide
    or has a discriminator: the caller then takes the full path, which finds the same objects.
    """
    provider = entity._database_.provider
    if provider is None:
        return None
    found = keyword_sql(entity._keyword_sql_, values, provider.dialect)
    if found is None:
        return None
    return fetch_now(entity, found[0], found[1])


# -- a collection's members ------------------------------------------------------------------------


class SetData:
    """What a session knows of one collection of one object: its members (``items``, in the
    order they became known) and whether every member is known (``loaded``)."""

    __slots__ = ("items", "loaded")

    def __init__(self) -> None:
        self.items: dict[Any, None] = {}
        self.loaded = False


def members_now(attr: Any, owner: Any) -> SetData | None:
    """The state of collection ``attr`` of ``owner`` with every member known, or None.

    The state already loaded, or, for a one-to-many collection whose SELECT was made before
    (``attr.one_owner_sql``), its members read at once (``read_now``): the objects read whose
    reference holds ``owner``'s key. None when the caller's full path must run: a many-to-many
    collection, a new owner, an owner of a session that is over or not the current one, a key
    of several columns or references, a target that is wide or has a discriminator, or a read
    that cannot run at once.
    """
    state = attr.state
    data = state.get_raw(owner)
    if data is not None and data.loaded and (not attr.volatile or owner._status_ == CREATED):
        return data  # type: ignore[no-any-return]
    cache = owner._cache_
    if attr.is_m2m or owner._status_ == CREATED or not cache.is_alive:
        return None
    session = current_session.get()
    if session is not cache.session or _foreign(session):
        return None
    known = attr.one_owner_sql
    entity = type(owner)
    target = attr.py_type
    if (
        known is None
        or known[0] is not cache.provider.dialect
        or entity._npk_ != 1
        or entity._pk_has_refs_
        or target._wide_
        or target._discriminator_attr_ is not None
    ):
        return None
    pk = entity._pk_attrs_[0].get_raw(owner)
    rows = read_now(cache, known[1], [pk])
    if rows is None:
        return None
    members = load_rows(target, cache, target._select_attrs_, target._select_converters_, rows)
    return take_members(attr, owner, pk, members)


def take_members(attr: Any, owner: Any, pk: Any, members: Iterable[Any]) -> SetData:
    """The state of collection ``attr`` of ``owner`` (key ``pk``), loaded: its members are the
    ``members`` read for it, less those deleted or whose reference the session points elsewhere."""
    state = attr.state
    ref_of = attr.reverse.get_raw
    key_type = type(pk)
    items: dict[Any, None] = {}
    for member in members:
        if member._status_ < DELETED:
            ref = ref_of(member)
            if type(ref) is not key_type and isinstance(ref, EntityBase):
                # a reference stored as its object (saved: the read came after the flush)
                ref = ref._pk_raw_()  # type: ignore[attr-defined]
            if ref == pk:
                items[member] = None
    data = state.get_raw(owner)
    if data is None:
        data = SetData()
        state.set_raw(owner, data)
    data.items = items
    data.loaded = True
    return data  # type: ignore[no-any-return]


# -- a query's SELECT text, kept per shape -----------------------------------------------------------

#: the value types whose query conditions share a kept SELECT text: each binds as itself
BOUND_TYPES = frozenset({str, int, float, bool, bytes, Decimal, datetime, date, time, timedelta, UUID})
#: the comparisons a kept SELECT text spells the same whatever the values (bar None and IN's length)
SHAPED_OPERATORS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in"})

#: the expression classes of conditions (``use_condition_classes``): Compare, BoolOp, Not
_conditions: tuple[Any, Any, Any] = (None, None, None)


def use_condition_classes(compare: Any, bool_op: Any, not_: Any) -> None:
    """The classes of a query's conditions whose shape ``shape_of`` reads: a comparison (``attr``,
    ``op``, ``value``), an and/or (``op``, ``items``) and a negation (``item``)."""
    global _conditions
    _conditions = (compare, bool_op, not_)


def shape_of(conditions: Iterable[Any], key: list[Any], params: list[Any]) -> bool:
    """Append the shape of each condition to ``key`` and its values to ``params``, in the order a
    SELECT text binds them; False when a condition is not a comparison of a column with plain
    values (``BOUND_TYPES``), or and/or/not of such.

    A comparison's shape is its column and operator, with None for a None value and the length of
    an IN list; an and/or's is its operator and count, a negation's ``"NOT"``.
    """
    compare, bool_op, not_ = _conditions
    for condition in conditions:
        kind = type(condition)
        if kind is compare:
            attr, op, value = condition.attr, condition.op, condition.value
            if not isinstance(attr, Column) or attr.width != 1 or op not in SHAPED_OPERATORS:  # type: ignore[attr-defined]
                return False
            if value is None:
                key.append((attr.column, op, None))  # type: ignore[attr-defined]
            elif op == "in":
                if not all(type(v) in BOUND_TYPES for v in value):
                    return False
                key.append((attr.column, op, len(value)))  # type: ignore[attr-defined]
                params.extend(value)
            elif type(value) in BOUND_TYPES:
                key.append((attr.column, op))  # type: ignore[attr-defined]
                params.append(value)
            else:
                return False
        elif kind is bool_op:
            key.append((condition.op, len(condition.items)))
            if not shape_of(condition.items, key, params):
                return False
        elif kind is not_:
            key.append("NOT")
            if not shape_of((condition.item,), key, params):
                return False
        else:
            return False
    return True


def select_sql_now(query: Any, dialect: Any, count: bool, limit: Any) -> tuple[str, list[Any]] | None:
    """The text and parameters of the SELECT of ``query``'s objects (of ``COUNT(*)`` when
    ``count``) with ``limit`` as its limit, when its entity keeps the text of its shape for
    ``dialect``; None otherwise (the caller renders it, and keeps it when it can).

    The shape is ``select_shape``'s, with the keys of an order the entity knows (``_orders_``).
    """
    entity = query.entity
    order = query._order
    if count or not order:
        keys: Any = ()
    else:
        known = entity._orders_.get(id(order))
        if known is None or known[0] is not order or known[2] is None:
            return None
        keys = known[2]
    shaped = select_shape(query, count, limit, keys)
    if shaped is None:
        return None
    entry = entity._select_sql_.get(shaped[0])
    if entry is None or entry[0] is not dialect:
        return None
    params = shaped[1]
    params.extend(entry[2])
    return entry[1], params


def select_shape(query: Any, count: bool, limit: Any, keys: Any) -> tuple[tuple[Any, ...], list[Any]] | None:
    """The shape of the SELECT of ``query``'s objects (of ``COUNT(*)`` when ``count``) with
    ``limit`` as its limit and ``keys`` the keys of its order, and the values it binds, in order;
    None when a condition has no shape (``shape_of``).

    The shape is whether it counts, the limit, offset, locking, DISTINCT, the order's keys and
    the shapes of the conditions, the entity's own kind filter last.
    """
    key: list[Any] = [count, limit, query._offset, query._for_update, bool(query._distinct), keys]
    params: list[Any] = []
    where = query._where
    kind_filter = query.entity._kind_filter_
    if kind_filter:
        where += kind_filter
    if not shape_of(where, key, params):
        return None
    return tuple(key), params
