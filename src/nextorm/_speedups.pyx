"""Compiled session hot path: the C twin of ``_speedups_py``.

``_speedups_py`` is the specification; this module implements the same names
with the same behaviour and calls the same hooks in the same order. What
differs is where state lives:

- ``EntityBase`` keeps its session state in C fields: the read and write bits
  of columns 0..63 are ``unsigned long long`` masks, the bits of columns 64 and
  up live in a rarely allocated ``[read, write]`` list of Python ints.
- ``Column`` reads and writes the ``__slots__`` slot it is bound to directly,
  at the offset recorded in the slot's member descriptor; ``NULL`` is "not
  loaded", exactly what the member descriptor reports as an empty slot.
- ``current_session`` is read with ``PyContextVar_Get``.
- ``EntityMetaBase`` is an extension type deriving from ``type``, so
  ``Entity[pk]`` on its (Python) subclasses' classes calls ``lookup`` from the
  ``mp_subscript`` slot, without a Python-level method lookup and call.

Anything off the common shape (a column bound to a descriptor that is not a
``__slots__`` slot of an ``EntityBase`` subclass, an object of another class,
a cache or session that is not a ``CacheBase``/``SessionBase``) takes a
generic path written like the pure twin, so both twins agree everywhere.
"""

import asyncio
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from time import perf_counter
from uuid import UUID

cimport cython
from cpython.contextvars cimport PyContextVar_Get, PyContextVar_Reset
from cpython.dict cimport PyDict_GetItemRef, PyDict_SetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact, PyLong_FromUnsignedLongLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE, newfunc
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_CheckExact, PyTuple_GET_SIZE, PyTuple_GetSlice, PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_CheckExact, PyUnicode_GET_LENGTH


cdef extern from "Python.h":
    bint PyType_IsSubtype(PyTypeObject* a, PyTypeObject* b)
    # the same C calls on borrowed pointers: no reference is taken for the argument
    PyObject* _dict_borrow "PyDict_GetItemWithError"(PyObject* mapping, PyObject* key)
    PyTypeObject* _type_of "Py_TYPE"(PyObject* obj)
    void _decref "Py_DECREF"(PyObject* obj)
    int PyGC_Enable()
    int PyGC_Disable()
    int _gc_is_tracked "PyObject_GC_IsTracked"(PyObject* obj)
    void _gc_track "PyObject_GC_Track"(PyObject* obj)
    void _gc_untrack "PyObject_GC_UnTrack"(PyObject* obj)
    PyTypeObject PyMemberDescr_Type

    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
        int flags

    ctypedef struct PyDescrObject:
        PyTypeObject* d_type

    ctypedef struct PyMemberDescrObject:
        PyDescrObject d_common
        PyMemberDef* d_member


# a type's ``tp_descr_get`` slot (what ``obj.attr`` calls for a descriptor found on the type)
# and ``type``'s own ``tp_getattro`` (the attribute lookup of a class)
ctypedef object (*_descrgetfunc)(object, object, object)
ctypedef object (*_getattrofunc)(object, object)

cdef extern from "Python.h":
    ctypedef struct _DescrSlots "PyTypeObject":
        _descrgetfunc tp_descr_get
        _getattrofunc tp_getattro

    _DescrSlots _type_slots "PyType_Type"


cdef extern from "Python.h":
    bint _unicode_is_ascii "PyUnicode_IS_ASCII"(object text)
    const char* _unicode_ascii_data "PyUnicode_DATA"(object text)
    bint _is_space "Py_UNICODE_ISSPACE"(Py_UCS4 ch)

cdef extern from "Python.h":
    object PyObject_GenericGetDict(object obj, void* context)

cdef extern from "string.h":
    const void* memchr(const void* s, int c, size_t n)

cdef extern from "math.h":
    bint isfinite(double x)

cdef extern from *:
    int _lowest_bit "__builtin_ctzll"(unsigned long long x) nogil


cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define NEXTORM_EXACT_REFCOUNTS 0
    #else
    #define NEXTORM_EXACT_REFCOUNTS 1
    #endif
    """
    # whether an object's reference count is the number of references to it (not so in a
    # free-threaded build, which splits it between threads)
    int NEXTORM_EXACT_REFCOUNTS
    int PyDict_Next(object mapping, Py_ssize_t* pos, PyObject** key, PyObject** value)
    Py_ssize_t _refcount "Py_REFCNT"(PyObject* obj)


cdef extern from "structmember.h":
    enum:
        T_OBJECT_EX
        READONLY


__all__ = [
    "BOUND_TYPES",
    "CREATED",
    "LOADED",
    "MODIFIED",
    "DELETED",
    "GONE",
    "SHAPED_OPERATORS",
    "borrowed_task",
    "current_session",
    "EntityBase",
    "EntityMetaBase",
    "Column",
    "SessionBase",
    "SetData",
    "UNLEARNED_LOADS",
    "CacheBase",
    "LazyIterator",
    "QueryStat",
    "add_run",
    "read_now",
    "read_rows",
    "session_cache",
    "sql_debug_state",
    "current_task",
    "enter_session",
    "exit_session",
    "fetch_now",
    "get_now",
    "init_new",
    "keyword_sql",
    "learn_unique",
    "load_rows",
    "lookup",
    "materialize",
    "members_now",
    "only_mapped",
    "plain_params",
    "track",
    "column_values",
    "attribute_dict",
    "loaded_bits",
    "checked_columns",
    "mark_saved_all",
    "shape_runs",
    "take_members",
    "match_keys",
    "register_keys",
    "record_undo_all",
    "select_shape",
    "select_sql_now",
    "shape_of",
    "use_condition_classes",
    "use_entity_iterator",
]

cdef enum:
    _CREATED = 1
    _LOADED = 2
    _MODIFIED = 3
    _DELETED = 4
    _GONE = 5

CREATED = _CREATED  # pending INSERT
LOADED = _LOADED  # in step with the database as far as this session knows
MODIFIED = _MODIFIED  # pending UPDATE
DELETED = _DELETED  # pending DELETE
GONE = _GONE  # deleted in the database, or created and deleted before insert

cdef object _session_var = ContextVar("nextorm_session", default=None)
current_session = _session_var
# the task whose session a thread works for while run_sync() runs sync code of an async session
cdef object _borrowed_var = ContextVar("nextorm_borrowed_task", default=None)
borrowed_task = _borrowed_var
# (log statements, show their parameters) of this thread or task: ``set_sql_debug()`` sets it
cdef object _sql_debug_var = ContextVar("nextorm_sql_debug", default=(False, False))
sql_debug_state = _sql_debug_var
cdef object _perf_counter = perf_counter

cdef object _MISSING = object()
cdef tuple _NO_ARGS = ()
cdef object _LOW_MASK = (1 << 64) - 1  # bits of columns 0..63 as a Python int


@cython.auto_pickle(False)
cdef class SessionBase:
    """State of one outermost db_session: identity maps, owner task, caches, nesting depth."""

    cdef public dict maps
    cdef public object owner
    cdef public object manager
    cdef public dict caches
    cdef public Py_ssize_t depth
    cdef public object token
    cdef dict __dict__
    cdef object __weakref__

    def __init__(self, manager) -> None:
        self.maps = {}
        self.owner = None
        self.manager = manager
        self.caches = {}
        self.depth = 0
        self.token = None


@cython.auto_pickle(False)
cdef class CacheBase:
    """Per-database state of one session: liveness, strictness, dirty queue."""

    cdef public object session
    cdef public bint is_alive
    cdef public bint strict
    cdef public bint readonly
    cdef public dict dirty
    cdef dict __dict__
    cdef object __weakref__

    def __init__(self, session, strict=False) -> None:
        self.session = session
        self.is_alive = True
        self.strict = strict
        self.readonly = False
        self.dirty = {}


@cython.auto_pickle(False)
cdef class EntityBase:
    """Per-instance session state shared by every entity."""

    cdef public object _cache_
    cdef public int _status_
    cdef unsigned long long _rlow  # read bits of columns 0..63
    cdef unsigned long long _wlow  # write bits of columns 0..63
    cdef list _high  # None, or [read bits >> 64, write bits >> 64] for wide entities
    cdef public object _orig_

    _new_plan_ = None  # a subclass's plan of init_new

    def __init__(self, *args, **kwargs):
        """A new object: ``init_new`` along the class's ``_new_plan_``, else ``_init_full_(args, kwargs)``."""
        if args or not _init_new(self, self._new_plan_, kwargs):
            self._init_full_(args, kwargs)

    def _init_full_(self, args, kwargs) -> None:
        """The constructor where ``init_new`` does not apply; a subclass defines it (here: no arguments)."""
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}() takes no arguments")

    def _init_state_(self, cache, int status) -> None:
        """Attach a new object to ``cache`` with ``status`` and no tracked bits."""
        _init_state(self, cache, status)

    def __reduce_ex__(self, protocol):
        # a copy would be a second object for one row, outside its session's bookkeeping
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    @property
    def _rbits_(self):
        return _join_bits(self._rlow, self._high, 0)

    @_rbits_.setter
    def _rbits_(self, value):
        self._rlow = _low_bits(value)
        _store_high(self, 0, value >> 64)

    @property
    def _wbits_(self):
        return _join_bits(self._wlow, self._high, 1)

    @_wbits_.setter
    def _wbits_(self, value):
        self._wlow = _low_bits(value)
        _store_high(self, 1, value >> 64)


@cython.auto_pickle(False)
cdef class Column:
    """Data descriptor of one column: tracked reads and writes of a slot."""

    cdef readonly Py_ssize_t index
    cdef readonly object bit
    cdef public bint tracked
    cdef public bint readonly
    cdef unsigned long long _low  # ``bit`` for columns 0..63, else 0
    cdef object _high  # ``bit >> 64`` for columns 64 and up
    cdef object _member  # what _bind_slot_ received; None until bound
    cdef Py_ssize_t _offset  # the slot's offset in the object; 0 unless a plain entity slot
    cdef PyTypeObject* _owner  # the class whose __slots__ made the slot (kept alive by _member)
    cdef object _plain_check  # what ``plain_check`` was given
    cdef int _plain_kind  # its kind, and its bounds in C:
    cdef long long _plain_low  # kind 1: the lowest and highest int
    cdef long long _plain_high
    cdef Py_ssize_t _plain_len  # kind 3: the longest str, -1 for any length
    cdef bint _plain_strip  # kind 3: no surrounding whitespace
    cdef dict __dict__

    def __init__(self) -> None:
        self.index = -1
        self.bit = 0
        self.tracked = False
        self.readonly = False
        self._plain_check = None
        self._plain_kind = 0

    @property
    def plain_check(self):
        """None, or the ``(kind, auto, a, b)`` checks a written value of the column's own type passes
        unchanged, stored without calling ``_validate_`` (see the pure twin)."""
        return self._plain_check

    @plain_check.setter
    def plain_check(self, check):
        cdef int kind = 0
        cdef long long low = 0, high = 0
        cdef Py_ssize_t length = -1
        cdef bint strip = False
        if check is not None:
            kind, _, a, b = check
            if kind == 1:
                low, high = a, b
            elif kind == 3:
                length, strip = a, b
            elif kind != 2:
                kind = 0
        self._plain_check = check
        self._plain_kind = kind
        self._plain_low = low
        self._plain_high = high
        self._plain_len = length
        self._plain_strip = strip

    def _bind_slot_(self, member, index) -> None:
        """Store values in the slot ``member`` and track them as column ``index``."""
        cdef PyMemberDef* definition
        cdef PyTypeObject* owner
        self.index = index
        self.bit = 1 << index
        self._low = self.bit if self.index < 64 else 0
        self._high = self.bit >> 64
        self._offset = 0
        self._owner = NULL
        self._member = member
        if Py_TYPE(member) is &PyMemberDescr_Type:
            definition = (<PyMemberDescrObject*>member).d_member
            owner = (<PyMemberDescrObject*>member).d_common.d_type
            if (
                definition.type == T_OBJECT_EX
                and not definition.flags & READONLY
                and PyType_IsSubtype(owner, <PyTypeObject*>EntityBase)
            ):
                self._offset = definition.offset
                self._owner = owner

    def __get__(self, obj, cls):
        if obj is None:
            return self
        cdef PyObject** slot = _slot(self, obj)
        if slot is NULL:
            return _get_generic(self, obj)
        cdef EntityBase entity = <EntityBase>obj
        if not _is_alive(entity._cache_):
            return self._read_after_session_(obj)
        if entity._status_ >= _DELETED:
            return self._deleted_(obj)
        value = _read(obj, slot)
        if value is _MISSING:
            return self._load_(obj)
        if self._low:
            entity._rlow |= self._low
        else:
            _add_high(entity, 0, self._high)
        return value

    def __set__(self, obj, value):
        cdef PyObject** slot = _slot(self, obj)
        if slot is NULL:
            _set_generic(self, obj, value)
            return
        cdef EntityBase entity = <EntityBase>obj
        cache = entity._cache_
        cdef int status = entity._status_
        if _must_check_assign(self, cache, status):
            self._check_assign_(obj, value)
        if not self._plain_kind or not _passes_plain(self, value):
            value = self._validate_(obj, value)
        old = _read(obj, slot)
        cdef bint loaded = old is not _MISSING
        if loaded and old == value:
            return
        if self.tracked:
            self._before_change_(obj, old if loaded else None, value)
        cdef bint written
        if self._low:
            written = entity._wlow & self._low
        else:
            written = entity._high is not None and entity._high[1] & self._high
        if status != _CREATED and not written and loaded:
            _save_original(entity, self.index, old)
        if self._low:
            entity._wlow |= self._low
        else:
            _add_high(entity, 1, self._high)
        _store(obj, slot, value)
        if status == _LOADED:
            entity._status_ = _MODIFIED
            _mark_dirty(cache, obj)

    def __delete__(self, obj):
        raise AttributeError(f"Attribute {self!r} cannot be deleted")

    def get_raw(self, obj, default=None):
        """The stored value, or ``default`` when not loaded; no tracking."""
        value = _raw_get(self, obj)
        return default if value is _MISSING else value

    def set_raw(self, obj, value) -> None:
        """Store ``value`` without validation or tracking."""
        _raw_set(self, obj, value)

    def clear_raw(self, obj) -> None:
        """Mark the value as not loaded."""
        cdef PyObject** slot = _slot(self, obj)
        cdef PyObject* old
        if slot is not NULL:
            with cython.critical_section(obj):
                old = slot[0]
                slot[0] = NULL
            Py_XDECREF(old)
        elif self._member is not None:
            try:
                self._member.__delete__(obj)
            except AttributeError:
                pass

    def is_loaded(self, obj) -> bool:
        """Whether the slot holds a value."""
        return _raw_get(self, obj) is not _MISSING

    def passes_plain(self, value) -> bool:
        """Whether ``value`` passes ``plain_check`` unchanged (never without one)."""
        return _passes_plain(self, value)


cdef object _get_running_loop = asyncio._get_running_loop
cdef object _current_task_of = asyncio.current_task


def current_task():
    """The running asyncio task; outside an event loop, ``borrowed_task`` (None unless in run_sync())."""
    loop = _get_running_loop()
    if loop is None:
        return _borrowed_var.get()
    return _current_task_of(loop)


def enter_session(manager):
    """Enter a db_session: one level deeper into the current one, or a new one.

    A session inherited from another task (a task created inside it) is not
    entered: a new one, ``manager.session_type(manager)``, is made, owned by
    the current task and installed in ``current_session``. Nesting under a
    session of other options calls ``manager._check_nested_(session)``.
    """
    session = _current()
    if session is not None and session.owner is not None and session.owner is not current_task():
        session = None
    if session is None:
        session = manager.session_type(manager)
        session.owner = current_task()
        session.token = current_session.set(session)
    elif session.manager is not manager:
        manager._check_nested_(session)
    if isinstance(session, SessionBase):
        (<SessionBase>session).depth += 1
    else:
        session.depth += 1
    return session


def exit_session(manager, exc_type=None, exc=None, tb=None):
    """Leave a db_session; the outermost exit ends it.

    A session that touched a database is ended by ``session.manager._finish_(session, exc)``
    (commit or rollback, release, restore the ContextVar); an empty one just restores the ContextVar.
    """
    session = _current()
    if not isinstance(session, SessionBase):
        session.depth -= 1
        if not session.depth:
            if session.caches:
                session.manager._finish_(session, exc)
            else:
                _session_var.reset(session.token)
        return
    cdef SessionBase known = <SessionBase>session
    known.depth -= 1
    if not known.depth:
        if known.caches:
            known.manager._finish_(session, exc)
        else:
            PyContextVar_Reset(_session_var, known.token)


def lookup(cls, key):
    """``cls[key]``: the current session's object of class ``cls`` for a plain ``key``, else ``cls._lookup_miss_(key)``."""
    return _lookup(cls, key)


cdef object _entity_iterator = None  # the class of iter(entity)'s iterators (use_entity_iterator)


def use_entity_iterator(iterator_class):
    """Make ``iter(entity)`` an ``iterator_class`` (a ``LazyIterator`` with slots ``_query`` and
    ``entity``: the query module's ``QueryIterator``), made without ``__init__``, with ``_query``
    None and ``entity`` the entity iterated, after the entity's mapping is checked."""
    global _entity_iterator
    _entity_iterator = iterator_class


cdef inline object _class_attr(object cls, object name):
    """``cls.<name>``: of a class, type's own lookup without the metaclass's ``__getattribute__``
    (the entity attributes read in C always exist, so the missing-name hook has nothing to add)."""
    if isinstance(cls, type):
        return _type_slots.tp_getattro(cls, name)
    return getattr(cls, name)


@cython.auto_pickle(False)
cdef class EntityMetaBase(type):
    """Base of the entity metaclass: ``cls[key]`` is ``lookup(cls, key)``; ``iter(cls)`` an
    iterator of its objects (``use_entity_iterator``); a class attribute that is not found is
    ``cls._missing_attr_(name)`` when the class defines that hook."""

    def __getitem__(cls, key):
        return _lookup(cls, key)

    def __iter__(cls):
        database = _class_attr(cls, "_database_")
        if not database._mapped_:
            database._require_mapping_(cls)
        iterator = LazyIterator.__new__(_entity_iterator)
        iterator._query = None
        iterator.entity = cls
        return iterator

    def __getattribute__(cls, name):
        # type's own lookup, in C; only a missing name reaches the class's hook. A metaclass
        # ``__getattr__`` in Python would put every class attribute read behind a Python-level
        # ``__getattribute__`` call (several times slower), so the hook has a name of its own.
        try:
            return _type_slots.tp_getattro(cls, name)
        except AttributeError:
            hook = _missing_attr_hook(cls)
            if hook is None:
                raise
        return hook(name)


cdef object _missing_attr_hook(object cls):
    """``cls._missing_attr_``, or None when the class has none."""
    try:
        return _type_slots.tp_getattro(cls, "_missing_attr_")
    except AttributeError:
        return None


cdef object _lookup(object cls, object key):
    """``lookup``; only a key of the plain types is looked up in the map (see ``_is_plain_key``).

    A hit takes no reference it does not return: the session, its maps and the object are read
    as borrowed pointers (the context variable, the session and the maps keep them alive while
    no Python code runs). Every reference count change costs more from Python 3.12 on (immortal
    objects), and a hit is otherwise only a few dict probes.
    """
    cdef PyObject* session = NULL
    cdef PyObject* imap
    cdef PyObject* obj
    if not _is_plain_key(key):
        return cls._lookup_miss_(key)
    PyContextVar_Get(_session_var, NULL, &session)
    if session is NULL:
        return cls._lookup_miss_(key)
    _decref(session)  # the context variable still holds it
    if session is <PyObject*>None:
        return cls._lookup_miss_(key)
    if not PyType_IsSubtype(_type_of(session), <PyTypeObject*>SessionBase):
        return _lookup_any(cls, key, <object>session)
    if (<SessionBase>session).owner is not None or (<SessionBase>session).maps is None:
        return _lookup_any(cls, key, <object>session)
    imap = _borrow_item(<PyObject*>(<SessionBase>session).maps, <PyObject*>cls)
    if imap is NULL:
        return cls._lookup_miss_(key)
    if _type_of(imap) is not <PyTypeObject*>dict:
        return _lookup_any(cls, key, <object>session)
    obj = _borrow_item(imap, <PyObject*>key)
    # a hierarchy shares one map: an object of another class is the slow path's to judge
    if obj is not NULL and <PyObject*>_type_of(obj) is <PyObject*>cls:
        if PyType_IsSubtype(_type_of(obj), <PyTypeObject*>EntityBase):
            if (<EntityBase>obj)._status_ < _DELETED:
                return <object>obj
        elif (<object>obj)._status_ < _DELETED:
            return <object>obj
    return cls._lookup_miss_(key)


cdef object _lookup_any(object cls, object key, object session):
    """``_lookup`` for a session or map that is not the compiled base type (a stand-in in tests)."""
    if isinstance(session, SessionBase):
        if (<SessionBase>session).owner is not None:
            return cls._lookup_miss_(key)
        maps = (<SessionBase>session).maps
        if maps is None:
            raise AttributeError("'NoneType' object has no attribute 'get'")
        imap = maps.get(cls)
    else:
        if session.owner is not None:
            return cls._lookup_miss_(key)
        imap = session.maps.get(cls)
    if imap is None:
        return cls._lookup_miss_(key)
    obj = imap.get(key)
    if obj is not None and <PyObject*>Py_TYPE(obj) is <PyObject*>cls and obj._status_ < _DELETED:
        return obj
    return cls._lookup_miss_(key)


cdef inline PyObject* _borrow_item(PyObject* mapping, PyObject* key) except? NULL:
    """``mapping[key]`` of an exact dict as a borrowed pointer, NULL when absent (an error, such
    as an unhashable key, is set as well and propagates through ``except? NULL``)."""
    return _dict_borrow(mapping, key)


def materialize(cls, cache, dict imap not None, columns, converters, Py_ssize_t npk, check_mask, rows):
    """Turn fetched rows into entities of ``cls`` through the identity map.

    ``columns[i]`` and ``converters[i]`` (a callable or None) describe
    ``row[i]``; the first ``npk`` (at least 1) values are the primary key.
    Known objects keep the values this session wrote; a column read before
    whose database value changed (and is in ``check_mask``) raises via
    ``column._unrepeatable_``; other loaded values are refreshed.

    A new entity is left untracked by the cyclic GC while ``imap`` holds it
    (the session's identity map): ``track`` gives it back to the GC when it
    leaves the map or the session ends.
    """
    return _materialize(cls, cache, imap, columns, converters, npk, check_mask, rows)


cdef list _materialize(
    object cls, object cache, dict imap, object columns, object converters, Py_ssize_t npk,
    object check_mask, object rows,
):
    """``materialize``, called from C."""
    cdef tuple cols = tuple(columns)
    cdef tuple convs = tuple(converters)
    cdef Py_ssize_t width = PyTuple_GET_SIZE(cols)
    cdef Py_ssize_t i
    cdef bint plain = True
    cdef bint creatable = isinstance(cls, type) and issubclass(cls, EntityBase)
    cdef bint direct = creatable  # and every column is a plain slot of cls
    cdef Column column
    cdef unsigned long long check_low = _low_bits(check_mask)
    check_high = check_mask >> 64
    if npk < 1:
        raise ValueError(f"npk must be at least 1, not {npk}")
    for item in cols:
        if not isinstance(item, Column) or (<Column>item)._member is None:
            raise AttributeError(f"{type(item).__name__!r} object has no attribute '_slot_set'")
        column = <Column>item
        direct = direct and column._offset != 0 and PyType_IsSubtype(<PyTypeObject*>cls, column._owner)
    for conv in convs:
        if conv is not None:
            plain = False
            break

    # Slot offsets, checked against cls above, are taken now: hooks and converters run in the loop.
    cdef Py_ssize_t* offsets = NULL
    if direct:
        offsets = <Py_ssize_t*>PyMem_Malloc(max(width, 1) * sizeof(Py_ssize_t))
        if offsets is NULL:
            raise MemoryError()
        for i in range(width):
            offsets[i] = (<Column>cols[i])._offset
    # The cyclic GC is not paused here (the pure twin pauses it): new entities are left untracked,
    # so the collections that run while a large result is built find almost nothing to walk.
    try:
        return _materialize_rows(
            cls, cache, imap, cols, convs, npk, check_low, check_high, rows, creatable, offsets, plain
        )
    finally:
        PyMem_Free(offsets)


def track(objects):
    """Give the entities of ``objects`` that ``materialize`` left untracked back to the cyclic GC."""
    for obj in objects:
        if isinstance(obj, EntityBase) and not _gc_is_tracked(<PyObject*>obj):
            _gc_track(<PyObject*>obj)


def only_mapped(maps):
    """Whether every object of the identity maps ``maps`` (dicts) is held by its map alone.

    Nothing else refers to such an object: not the application, another object, or a queue of
    the session. False where reference counts do not say so (a free-threaded build).
    """
    cdef Py_ssize_t pos
    cdef PyObject* key
    cdef PyObject* value
    if not NEXTORM_EXACT_REFCOUNTS:
        return False
    for imap in maps:
        if type(imap) is not dict:
            return False
        pos = 0
        while PyDict_Next(imap, &pos, &key, &value):
            if _refcount(value) != 1:
                return False
    return True


def column_values(objs, columns, converters, known=False, Py_ssize_t known_from=0):
    """The parameter rows of a statement: per object, a tuple of each column's stored value.

    ``converters[i]`` (a callable or None) turns a value of ``columns[i]`` into the database's; a
    None value is not converted, and a column not loaded gives None. With ``known``, a column from
    position ``known_from`` on written since it was loaded gives its original value (the one the
    database holds).
    """
    cdef tuple cols = tuple(columns)
    cdef tuple convs = tuple(converters)
    cdef Py_ssize_t width = len(cols)
    cdef Py_ssize_t i
    cdef bint use_known = known
    if len(convs) != width:
        raise ValueError(f"{width} columns but {len(convs)} converters")
    for i in range(width):
        if not isinstance(cols[i], Column):
            raise TypeError(f"column_values() takes Column objects, not {type(cols[i]).__name__}")
    # One tuple per object while every saved object is alive: the cyclic GC, left on, would sweep
    # that heap again and again finding nothing (as in materialize); only converters run meanwhile.
    cdef bint gc_was_enabled = PyGC_Disable()
    try:
        return _column_rows(objs, cols, convs, width, use_known, known_from)
    finally:
        if gc_was_enabled:
            PyGC_Enable()


@cython.boundscheck(False)  # every index is below the length of a tuple built or checked here
@cython.wraparound(False)  # and never negative
cdef list _column_rows(
    object objs, tuple cols, tuple convs, Py_ssize_t width, bint use_known, Py_ssize_t known_from
):
    cdef Py_ssize_t i
    cdef list rows = []
    cdef tuple row
    cdef Column column
    cdef EntityBase entity
    cdef bint plain = True
    cdef bint written, has_orig
    for i in range(width):
        if convs[i] is not None:
            plain = False
    for obj in objs:
        entity = <EntityBase>obj if isinstance(obj, EntityBase) else None
        if not use_known:
            orig = None
        elif entity is not None:
            orig = entity._orig_
        else:
            orig = obj._orig_
        has_orig = orig is not None and bool(orig)
        row = PyTuple_New(width)
        for i in range(width):
            column = <Column>cols[i]
            value = _MISSING
            if has_orig and i >= known_from:
                if entity is None or not column._low:
                    written = _was_written(obj, column)
                else:
                    written = entity._wlow & column._low
                if written:
                    if type(orig) is dict:
                        value = _dict_get(<dict>orig, column.index, _MISSING)
                    else:
                        value = (<dict?>orig).get(column.index, _MISSING)
            if value is _MISSING:
                value = _raw_get(column, obj)
                if value is _MISSING:
                    value = None
            if not plain and value is not None:
                conv = convs[i]
                if conv is not None:
                    value = conv(value)
            Py_INCREF(value)
            PyTuple_SET_ITEM(row, i, value)
        rows.append(row)
    return rows


@cython.boundscheck(False)  # every index is below the length of tuples checked to be equal
@cython.wraparound(False)
def attribute_dict(obj, names, attrs):
    """``{names[i]: value of attrs[i] in obj}``, each value read as ``obj.<attribute>`` reads it.

    Every attribute's own ``__get__`` runs (tracked reads, loading of a missing value, the
    checks of a finished session or a deleted object), in the order given.
    """
    cdef tuple keys = tuple(names)
    cdef tuple descriptors = tuple(attrs)
    cdef Py_ssize_t width = len(keys)
    cdef Py_ssize_t i
    cdef _descrgetfunc get
    cdef dict result = {}
    if len(descriptors) != width:
        raise ValueError(f"{width} names but {len(descriptors)} attributes")
    cls = type(obj)
    for i in range(width):
        attr = descriptors[i]
        get = (<_DescrSlots*>Py_TYPE(attr)).tp_descr_get
        if get is NULL:
            value = type(attr).__get__(attr, obj, cls)  # raises as the pure twin's call does
        else:
            value = get(attr, obj, cls)
        result[keys[i]] = value
    return result


def loaded_bits(obj, columns):
    """The bits (``column.bit``) of the ``columns`` whose slot in ``obj`` holds a value."""
    return _loaded_bits(obj, columns)


cdef object _loaded_bits(object obj, object columns):
    cdef unsigned long long low = 0
    bits = 0
    for column in columns:
        if not isinstance(column, Column):
            raise TypeError(f"loaded_bits() takes Column objects, not {type(column).__name__}")
        if _raw_get(<Column>column, obj) is not _MISSING:
            if (<Column>column)._low:
                low |= (<Column>column)._low
            else:
                bits |= (<Column>column).bit
    return bits | PyLong_FromUnsignedLongLong(low) if bits else PyLong_FromUnsignedLongLong(low)


def checked_columns(obj, columns, check_mask):
    """The optimistic checks of ``obj``'s UPDATE/DELETE: ``(index, known value is None)`` of each of
    ``columns`` (in column order) that this session read and whose bit is in ``check_mask``.

    The known value of a column written since it was read is its original value.
    """
    return _checked_columns(obj, columns, check_mask)


cdef tuple _checked_columns(object obj, object columns, object check_mask):
    bits = obj._rbits_ & check_mask
    if not bits:
        return ()
    orig = obj._orig_
    cdef list checks = []
    for column in columns:
        if not isinstance(column, Column):
            raise TypeError(f"checked_columns() takes Column objects, not {type(column).__name__}")
        if bits & (<Column>column).bit:
            value = _MISSING
            if orig is not None and _was_written(obj, <Column>column):
                value = orig.get((<Column>column).index, _MISSING)
            if value is _MISSING:
                value = _raw_get(<Column>column, obj)
            checks.append(((<Column>column).index, value is None or value is _MISSING))
    return tuple(checks)


def shape_runs(objs, optimistic):
    """The objects with a pending statement, in runs of consecutive objects whose statements share
    a shape: ``[((status, class, bits, checks), [objects]), ...]``.

    The bits of a CREATED object are its loaded columns (of ``class._columns_``), of a MODIFIED one
    its written columns, of a DELETED one 0; with ``optimistic``, the checks of an UPDATE/DELETE are
    ``checked_columns(obj, class._attrs_, class._check_mask_)``, else (). Other objects are left out.
    """
    # a run's objects are appended while every flushed object is alive: paused as in column_values
    cdef bint gc_was_enabled = PyGC_Disable()
    try:
        return _shape_runs(objs, optimistic)
    finally:
        if gc_was_enabled:
            PyGC_Enable()


cdef list _shape_runs(objs, bint check):
    """The loop of ``shape_runs``: a shape tuple is built only where a run starts.

    An UPDATE/DELETE of an entity with no column past 63 is compared with its run in C: its
    checks are told by the read bits of the checked columns and which of them are known as None.
    """
    cdef list runs = []
    cdef list group = None
    cdef int status
    cdef int run_status = -1
    cdef object cls = None
    cdef object run_cls = None
    cdef object run_bits = None
    cdef object run_checks = None
    cdef object columns = None
    cdef object attrs = None
    cdef object check_mask = None
    cdef unsigned long long check_low = 0
    cdef EntityBase entity
    cdef bint fast
    cdef bint columns_only = False  # cls._attrs_ is a tuple of Columns in index order
    cdef bint run_fast = False
    cdef unsigned long long wlow, cbits, nbits
    cdef unsigned long long run_wlow = 0, run_cbits = 0, run_nbits = 0
    for obj in objs:
        status = (<EntityBase>obj)._status_ if isinstance(obj, EntityBase) else obj._status_
        if status != _CREATED and status != _MODIFIED and status != _DELETED:
            continue
        if <PyObject*>Py_TYPE(obj) is not <PyObject*>cls:
            cls = type(obj)
            columns = cls._columns_
            attrs = cls._attrs_
            check_mask = cls._check_mask_
            check_low = _low_bits(check_mask)
            # a tuple of Columns where column i has index i: a checked column is found by its bit
            columns_only = type(attrs) is tuple and all(
                isinstance(item, Column) and (<Column>item).index == i for i, item in enumerate(attrs)
            )
        fast = (
            columns_only
            and status != _CREATED
            and isinstance(obj, EntityBase)
            and (<EntityBase>obj)._high is None
        )
        if fast:
            entity = <EntityBase>obj
            wlow = entity._wlow if status == _MODIFIED else 0
            cbits = entity._rlow & check_low if check else 0
            nbits = _null_checks(entity, <tuple>attrs, cbits) if cbits else 0
            if (
                group is not None
                and run_fast
                and status == run_status
                and cls is run_cls
                and wlow == run_wlow
                and cbits == run_cbits
                and nbits == run_nbits
            ):
                group.append(obj)
                continue
        if status == _CREATED:
            bits = _loaded_bits(obj, columns)
            checks = ()
        else:
            bits = obj._wbits_ if status == _MODIFIED else 0
            checks = _checked_columns(obj, attrs, check_mask) if check else ()
        if (
            group is None
            or status != run_status
            or cls is not run_cls
            or bits != run_bits
            or checks != run_checks
        ):
            run_status, run_cls, run_bits, run_checks = status, cls, bits, checks
            group = []
            runs.append(((status, cls, bits, checks), group))
        # the run's key in C: the next objects of its shape compare without building one
        run_fast = fast
        if fast:
            run_wlow, run_cbits, run_nbits = wlow, cbits, nbits
        group.append(obj)
    return runs


cdef unsigned long long _null_checks(EntityBase entity, tuple attrs, unsigned long long cbits) except? 0xFFFFFFFFFFFFFFFF:
    """Of the checked columns ``cbits`` of ``entity`` (none past 63), those whose known value is None.

    ``attrs[i]`` is the Column of index i (checked where ``_shape_runs`` took them).
    """
    cdef unsigned long long nbits = 0
    cdef unsigned long long rest = cbits
    cdef Column column
    cdef int i
    orig = entity._orig_
    while rest:
        i = _lowest_bit(rest)
        rest &= rest - 1
        if i >= PyTuple_GET_SIZE(attrs):
            break
        column = <Column>attrs[i]
        value = _MISSING
        if orig is not None and entity._wlow & column._low:
            if type(orig) is dict:
                value = _dict_get(<dict>orig, column.index, _MISSING)
            else:
                value = orig.get(column.index, _MISSING)
        if value is _MISSING:
            value = _raw_get(column, entity)
        if value is None or value is _MISSING:
            nbits |= column._low
    return nbits


def match_keys(rows, returned):
    """The key of each of ``rows`` from ``returned`` (key, *values) rows matched by their values.

    Rows of equal values get their keys in ascending order; None when a returned row matches no
    row left (the database stored a value other than the one sent) or values are unhashable.
    Returned rows in the order of ``rows`` with ascending keys are matched without a table.
    """
    cdef Py_ssize_t count = len(rows)
    cdef Py_ssize_t index, i, width
    cdef list keys
    cdef bint in_order = True
    if len(returned) != count:
        return None
    keys = []
    try:
        previous = _MISSING
        for index in range(count):
            row = rows[index]
            found = returned[index]
            width = len(row)
            key = found[0]
            if len(found) != width + 1 or (previous is not _MISSING and not previous < key):
                in_order = False
                break
            for i in range(width):
                if found[i + 1] != row[i]:
                    in_order = False
                    break
            if not in_order:
                break
            keys.append(key)
            previous = key
        if in_order:
            return keys
        waiting = {}
        for index in range(count - 1, -1, -1):
            waiting.setdefault(rows[index], []).append(index)
        matched = [None] * count
        for found in sorted(returned, key=_first):
            indexes = waiting.get(tuple(found[1:]))
            if not indexes:
                return None
            matched[indexes.pop()] = found[0]
    except TypeError:  # an unhashable value, or keys that do not sort
        return None
    return matched


def _first(row):
    return row[0]


def register_keys(objs, keys, Column column not None, dict identity_map not None):
    """Store ``keys[i]`` in ``column`` of ``objs[i]`` and ``identity_map[keys[i]] = objs[i]``, in order.

    Stops at the first key the map holds for another object and returns its index; -1 when all
    are registered.
    """
    cdef Py_ssize_t count = len(objs)
    cdef Py_ssize_t index
    if len(keys) != count:
        raise ValueError(f"{count} objects but {len(keys)} keys")
    for index in range(count):
        obj = objs[index]
        key = keys[index]
        if identity_map.get(key, obj) is not obj:
            return index
        _raw_set(column, obj, key)
        identity_map[key] = obj
    return -1


def record_undo_all(dict undo not None, saving):
    """Fold the ``(obj, status, original values, write bits)`` of flushed statements into ``undo``.

    An object's first entry is kept; a later one adds its write bits and the original values of
    columns the first did not write.
    """
    # a tuple per object while every flushed object is alive: paused as in column_values
    cdef bint gc_was_enabled = PyGC_Disable()
    try:
        _record_undo(undo, saving)
    finally:
        if gc_was_enabled:
            PyGC_Enable()


cdef _record_undo(dict undo, saving):
    """The loop of ``record_undo_all``."""
    cdef tuple item
    for entry in saving:
        if type(entry) is tuple and PyTuple_GET_SIZE(entry) == 4:
            item = <tuple>entry
        else:
            obj, status, orig, wbits = entry  # raises as the pure twin's unpacking does
            item = (obj, status, orig, wbits)
        obj = item[0]
        first = _dict_get(undo, obj, None)
        if first is None:
            undo[obj] = PyTuple_GetSlice(item, 1, 4)
            continue
        status, orig, wbits = item[1], item[2], item[3]
        first_status, first_orig, first_wbits = first
        if orig:
            first_orig = first_orig or {}
            for index, value in orig.items():
                if not first_wbits >> index & 1:
                    first_orig[index] = value
        undo[obj] = (first_status, first_orig, first_wbits | wbits)


def mark_saved_all(objs, int status, list saving):
    """After their statements ran: ``objs`` are in step with the database (``status``: the one they had).

    Appends ``(obj, status, original values, write bits)`` to ``saving`` for each, then a deleted
    object becomes GONE and any other LOADED with no written columns.
    """
    # a tuple per object while every flushed object is alive: paused as in column_values
    cdef bint gc_was_enabled = PyGC_Disable()
    try:
        _mark_saved(objs, status, saving)
    finally:
        if gc_was_enabled:
            PyGC_Enable()


cdef _mark_saved(objs, int status, list saving):
    """The loop of ``mark_saved_all``."""
    cdef EntityBase entity
    cdef object status_value = status
    for obj in objs:
        entity = <EntityBase?>obj
        saving.append((obj, status_value, entity._orig_, _join_bits(entity._wlow, entity._high, 1)))
        if status == _DELETED:
            entity._status_ = _GONE
        else:
            entity._status_ = _LOADED
            entity._wlow = 0
            if entity._high is not None:
                _store_high(entity, 1, 0)
            entity._orig_ = None


cdef bint _was_written(object obj, Column column) except -1:
    """Whether ``obj``'s write bits hold ``column``'s."""
    cdef EntityBase entity
    if not isinstance(obj, EntityBase):
        return bool(obj._wbits_ & column.bit)
    entity = <EntityBase>obj
    if column._low:
        return (entity._wlow & column._low) != 0
    return entity._high is not None and bool(entity._high[1] & column._high)


cdef list _materialize_rows(
    object cls,
    object cache,
    dict imap,
    tuple cols,
    tuple convs,
    Py_ssize_t npk,
    unsigned long long check_low,
    object check_high,
    object rows,
    bint creatable,
    Py_ssize_t* offsets,
    bint plain,
):
    """The loop of ``materialize``; ``offsets`` (or NULL for the generic path) locate each column's slot."""
    cdef Py_ssize_t i, size
    cdef Py_ssize_t width = PyTuple_GET_SIZE(cols)
    cdef newfunc new = (<PyTypeObject*>EntityBase).tp_new
    cdef list result = []
    cdef tuple values
    cdef EntityBase entity
    cdef char* base
    for row in rows:
        values = <tuple>row if type(row) is tuple else tuple(row)
        if not plain:
            values = _convert(convs, values)
        size = PyTuple_GET_SIZE(values)
        if npk == 1:
            if size == 0:
                raise IndexError("tuple index out of range")
            pk = values[0]
        else:
            pk = PyTuple_GetSlice(values, 0, npk)
        obj = _dict_get(imap, pk, None)
        if obj is not None:
            _merge(obj, cols, values, npk, check_low, check_high)
        else:
            if size < width:
                raise IndexError("tuple index out of range")
            # EntityBase.__new__(cls) without the method call; it raises when cls is not an entity class
            obj = new(cls, <PyObject*>_NO_ARGS, NULL) if creatable else EntityBase.__new__(cls)
            entity = <EntityBase>obj
            entity._cache_ = cache
            entity._status_ = _LOADED
            if offsets is not NULL:
                base = <char*><PyObject*>obj
                for i in range(width):
                    _fill(<PyObject**>(base + offsets[i]), values[i])
            else:
                for i in range(width):
                    _raw_set(<Column>cols[i], obj, values[i])
            imap[pk] = obj
            # The map keeps it alive for the whole session, so no collection could free it; left
            # tracked, every collection while the session lasts would walk it for nothing.
            _gc_untrack(<PyObject*>obj)
        result.append(obj)
    return result


# -- the session variable and dict access ----------------------------------------------------------

cdef inline bint _foreign(object session) except -1:
    """Whether ``session`` is not the session of this thread or task (the pure twin's ``_foreign``)."""
    if session is not _current():
        return True
    owner = (<SessionBase>session).owner if isinstance(session, SessionBase) else session.owner
    return owner is not None and owner is not current_task()


cdef inline object _current():
    """The current session (``current_session.get()``)."""
    cdef PyObject* value = NULL
    PyContextVar_Get(_session_var, NULL, &value)
    if value is NULL:
        return None
    session = <object>value
    Py_XDECREF(value)
    return session


cdef inline bint _is_plain_key(object key) noexcept:
    """Whether ``key`` is an exact ``int`` or ``str``, or a ``tuple`` of them (the pure ``_PLAIN_KEY_TYPES``)."""
    if PyLong_CheckExact(key) or PyUnicode_CheckExact(key):
        return True
    if not PyTuple_CheckExact(key):
        return False
    for part in <tuple>key:
        if not PyLong_CheckExact(part) and not PyUnicode_CheckExact(part):
            return False
    return True


cdef inline object _dict_get(dict mapping, object key, object default):
    """``mapping.get(key, default)`` on a dict, without a method call."""
    cdef PyObject* value = NULL
    if PyDict_GetItemRef(mapping, key, &value) == 0:
        return default
    result = <object>value
    Py_XDECREF(value)
    return result


# -- read and write bits ---------------------------------------------------------------------------

cdef inline unsigned long long _low_bits(object value) except? 0xFFFFFFFFFFFFFFFF:
    return value & _LOW_MASK


cdef inline object _join_bits(unsigned long long low, list high, int which):
    if high is None or not high[which]:
        return PyLong_FromUnsignedLongLong(low)
    return (high[which] << 64) | low


cdef int _store_high(EntityBase entity, int which, object bits) except -1:
    """Set the read (0) or write (1) bits of columns 64 and up."""
    if entity._high is None:
        if not bits:
            return 0
        entity._high = [0, 0]
    entity._high[which] = bits
    if not entity._high[0] and not entity._high[1]:
        entity._high = None
    return 0


cdef int _add_high(EntityBase entity, int which, object bit) except -1:
    """Add ``bit`` (a column 64-and-up bit, shifted down by 64) to the read (0) or write (1) bits."""
    if entity._high is None:
        entity._high = [0, 0]
    entity._high[which] = entity._high[which] | bit
    return 0


# -- slots -----------------------------------------------------------------------------------------

cdef inline PyObject** _slot(Column column, object obj) noexcept:
    """The address of ``column``'s slot in ``obj``, or NULL when the generic path must be used."""
    cdef PyTypeObject* tp = Py_TYPE(obj)
    if column._offset == 0 or column._member is None:  # unbound, or cleared by the garbage collector
        return NULL
    if tp is not column._owner and not PyType_IsSubtype(tp, column._owner):
        return NULL
    return <PyObject**>((<char*><PyObject*>obj) + column._offset)


# Slot reads and writes of objects others may see hold the object's critical section, as the
# member descriptor does on free-threaded builds; on builds with a GIL it compiles to nothing.

cdef inline object _read(object obj, PyObject** slot):
    """The value in ``obj``'s ``slot``, or _MISSING when the slot is empty."""
    with cython.critical_section(obj):
        value = _MISSING if slot[0] is NULL else <object>slot[0]
    return value


cdef inline void _store(object obj, PyObject** slot, object value) noexcept:
    """Put ``value`` in ``obj``'s ``slot``; the old value is released last (its finalizer may run code)."""
    cdef PyObject* old
    Py_INCREF(value)
    with cython.critical_section(obj):
        old = slot[0]
        slot[0] = <PyObject*>value
    Py_XDECREF(old)


cdef inline void _fill(PyObject** slot, object value) noexcept:
    """``_store`` for an object nobody else can see yet."""
    cdef PyObject* old = slot[0]
    Py_INCREF(value)
    slot[0] = <PyObject*>value
    Py_XDECREF(old)


cdef object _raw_get(Column column, object obj):
    """The slot's value, or _MISSING when it is empty (or the column is not bound)."""
    cdef PyObject** slot = _slot(column, obj)
    if slot is not NULL:
        return _read(obj, slot)
    if column._member is None:
        return _MISSING
    try:
        return column._member.__get__(obj)
    except AttributeError:
        return _MISSING


cdef int _raw_set(Column column, object obj, object value) except -1:
    cdef PyObject** slot = _slot(column, obj)
    if slot is not NULL:
        _store(obj, slot, value)
    elif column._member is None:
        raise AttributeError(f"{type(column).__name__!r} object has no attribute '_slot_set'")
    else:
        column._member.__set__(obj, value)
    return 0


cdef bint _passes_plain(Column column, object value) except -1:
    """Whether ``value`` passes ``column.plain_check`` unchanged (the pure twin's ``_passes``)."""
    return _value_passes(
        column._plain_kind, column._plain_low, column._plain_high, column._plain_len, column._plain_strip, value
    )


cdef bint _value_passes(
    long kind, long long low, long long high, Py_ssize_t limit, bint strip, object value
) except -1:
    """Whether ``value`` passes a plain check unchanged. Kind 1: an exact int with ``low <= value
    <= high``; 2: a finite exact float; 3: a non-empty exact ASCII str without NUL, of at most
    ``limit`` characters unless ``limit`` is negative, with no surrounding whitespace when
    ``strip``; any other kind: no value."""
    cdef int overflow = 0
    cdef long long number
    cdef Py_ssize_t size
    cdef const char* data
    if kind == 1:
        if not PyLong_CheckExact(value):
            return False
        number = PyLong_AsLongLongAndOverflow(value, &overflow)
        return not overflow and low <= number <= high
    if kind == 2:
        return PyFloat_CheckExact(value) and isfinite(PyFloat_AS_DOUBLE(value))
    if kind == 3:
        if not PyUnicode_CheckExact(value) or not _unicode_is_ascii(value):
            return False
        size = PyUnicode_GET_LENGTH(value)
        if size == 0 or (limit >= 0 and size > limit):
            return False
        data = _unicode_ascii_data(value)
        if memchr(data, 0, size) is not NULL:
            return False
        return not strip or not (_is_space(<unsigned char>data[0]) or _is_space(<unsigned char>data[size - 1]))
    return False


# -- column state checks and the generic paths -----------------------------------------------------

cdef inline bint _is_alive(object cache) except -1:
    if isinstance(cache, CacheBase):
        return (<CacheBase>cache).is_alive
    return cache.is_alive


cdef inline bint _must_check_assign(Column column, object cache, int status) except -1:
    """Whether an assignment must go through ``_check_assign_`` (the pure twin's condition)."""
    cdef CacheBase known
    if isinstance(cache, CacheBase):
        known = <CacheBase>cache
        return (
            not known.is_alive
            or status >= _DELETED
            or column.readonly
            or known.readonly
            or _foreign(known.session)
        )
    return (
        not cache.is_alive or status >= _DELETED or column.readonly or cache.readonly or _foreign(cache.session)
    )


cdef int _save_original(EntityBase entity, Py_ssize_t index, object old) except -1:
    orig = entity._orig_
    if orig is None:
        entity._orig_ = {index: old}
    elif type(orig) is dict:
        PyDict_SetItem(<dict>orig, index, old)
    else:
        orig[index] = old
    return 0


cdef int _mark_dirty(object cache, object obj) except -1:
    cdef dict dirty
    if isinstance(cache, CacheBase):
        dirty = (<CacheBase>cache).dirty
        if dirty is None:
            raise TypeError("'NoneType' object does not support item assignment")
        dirty[obj] = None
    else:
        cache.dirty[obj] = None
    return 0


cdef object _get_generic(Column column, object obj):
    """``Column.__get__`` off the fast path, written like the pure twin."""
    cache = obj._cache_
    if not cache.is_alive:
        return column._read_after_session_(obj)
    if obj._status_ >= _DELETED:
        return column._deleted_(obj)
    value = _raw_get(column, obj)
    if value is _MISSING:
        return column._load_(obj)
    obj._rbits_ |= column.bit
    return value


cdef int _set_generic(Column column, object obj, object value) except -1:
    """``Column.__set__`` off the fast path, written like the pure twin."""
    cache = obj._cache_
    status = obj._status_
    if (
        not cache.is_alive
        or status >= _DELETED
        or column.readonly
        or cache.readonly
        or _foreign(cache.session)
    ):
        column._check_assign_(obj, value)
    if not column._plain_kind or not _passes_plain(column, value):
        value = column._validate_(obj, value)
    old = _raw_get(column, obj)
    if old is not _MISSING and old == value:
        return 0
    if column.tracked:
        column._before_change_(obj, None if old is _MISSING else old, value)
    bit = column.bit
    if status != _CREATED and not obj._wbits_ & bit and old is not _MISSING:
        orig = obj._orig_
        if orig is None:
            obj._orig_ = orig = {}
        orig[column.index] = old
    obj._wbits_ |= bit
    _raw_set(column, obj, value)
    if status == _LOADED:
        obj._status_ = _MODIFIED
        cache.dirty[obj] = None
    return 0


# -- materialize helpers ---------------------------------------------------------------------------

@cython.boundscheck(False)  # i < min(len(converters), len(row))
@cython.wraparound(False)
cdef tuple _convert(tuple converters, tuple row):
    """The pure twin's ``[v if conv is None or v is None else conv(v) for conv, v in zip(...)]``."""
    cdef Py_ssize_t i
    cdef Py_ssize_t size = min(PyTuple_GET_SIZE(converters), PyTuple_GET_SIZE(row))
    cdef tuple result = PyTuple_New(size)
    for i in range(size):
        value = row[i]
        conv = converters[i]
        if conv is not None and value is not None:
            value = conv(value)
        Py_INCREF(value)
        PyTuple_SET_ITEM(result, i, value)
    return result


@cython.boundscheck(False)  # i < len(columns), and i is checked against len(row)
@cython.wraparound(False)  # i >= npk >= 1
cdef int _merge(
    object obj,
    tuple columns,
    tuple row,
    Py_ssize_t npk,
    unsigned long long check_low,
    object check_high,
) except -1:
    """Bring the database values of ``row`` into an object already in the map."""
    cdef Py_ssize_t i
    cdef Column column
    cdef unsigned long long rlow, wlow
    cdef bint written, checked
    if isinstance(obj, EntityBase):
        rlow = (<EntityBase>obj)._rlow
        wlow = (<EntityBase>obj)._wlow
        high = (<EntityBase>obj)._high
        rhigh = 0 if high is None else high[0]
        whigh = 0 if high is None else high[1]
    else:
        rbits = obj._rbits_
        wbits = obj._wbits_
        rlow = _low_bits(rbits)
        wlow = _low_bits(wbits)
        rhigh = rbits >> 64
        whigh = wbits >> 64
    for i in range(npk, PyTuple_GET_SIZE(columns)):
        column = <Column>columns[i]
        if i >= PyTuple_GET_SIZE(row):
            raise IndexError("tuple index out of range")
        new = row[i]
        if column._low:
            written = wlow & column._low
            checked = rlow & column._low & check_low
        else:
            written = whigh & column._high
            checked = rhigh & column._high & check_high
        if written:
            orig = (<EntityBase>obj)._orig_ if isinstance(obj, EntityBase) else obj._orig_
            if orig is None:
                known = _MISSING
            elif type(orig) is dict:
                known = _dict_get(orig, column.index, _MISSING)
            else:
                known = orig.get(column.index, _MISSING)
            if known is not _MISSING and checked and known != new:
                column._unrepeatable_(obj, known, new)
            continue
        current = _raw_get(column, obj)
        if current is _MISSING:
            _raw_set(column, obj, new)
            continue
        if current != new:
            if checked:
                column._unrepeatable_(obj, current, new)
            _raw_set(column, obj, new)
    return 0


# -- the constructor's fast path -------------------------------------------------------------------

def plain_params(columns, values):
    """The parameters binding ``values`` (beside ``columns``) as they are, None values left out:
    each value passes its column's ``plain_check``, which makes validating it a no-op. None where
    one does not (it is validated, and may be converted or refused)."""
    return _plain_params(columns, values)


cdef object _plain_params(object columns, object values):
    cdef list params = []
    cdef Column column
    for column, value in zip(columns, values):
        if value is None:
            continue
        if not _passes_plain(column, value):
            return None
        params.append(value)
    return params


def init_new(obj, plan, kwargs):
    """Make ``obj``, a new object of a class without relationships, from the constructor's
    ``kwargs`` along its class's ``plan``; False, with nothing done, where the plan does not apply.

    The pure twin's docstring has the plan's layout and every check. Values of a column's own type
    that pass its checks are taken in C; any other value is validated by the column's hook.
    """
    return _init_new(obj, plan, kwargs)


cdef bint _init_new(object obj, object plan, object kwargs) except -1:
    """``init_new``."""
    if plan is None:
        return False
    cdef tuple p = <tuple?>plan
    if p[0] is not type(obj):
        return False
    cdef dict given = <dict?>kwargs
    cdef tuple columns = <tuple?>p[2]
    cdef tuple names = <tuple?>p[3]
    cdef tuple checks = <tuple?>p[4]
    cdef Py_ssize_t width = PyTuple_GET_SIZE(names)
    cdef Py_ssize_t i, found = 0
    if PyTuple_GET_SIZE(columns) != width or PyTuple_GET_SIZE(checks) != width:
        raise ValueError(f"{PyTuple_GET_SIZE(columns)} columns, {width} names and {PyTuple_GET_SIZE(checks)} checks")
    cdef list values = [None] * width
    for i in range(width):
        value = _dict_get(given, names[i], _MISSING)
        if value is not _MISSING:
            found += 1
        values[i] = value
    if found != len(given):
        return False  # a name that is not a column: the full path names it
    cache = _new_cache(_current(), p[1])
    if cache is None:
        return False
    _fill_new(<EntityBase?>obj, p, columns, checks, values, cache)
    return True


cdef object _new_cache(object session, object database):
    """The cache of ``database`` in ``session`` where ``init_new`` may use it, else None."""
    cache = _cache_of(session, database)
    if cache is None:
        return None
    if isinstance(cache, CacheBase):
        return None if (<CacheBase>cache).readonly else cache
    return None if cache.readonly else cache


cdef object _failure_of(object session):
    """``session.failure``, read from the instance dict of a ``SessionBase`` (None when not set there)."""
    if isinstance(session, SessionBase):
        state = PyObject_GenericGetDict(session, NULL)
        if type(state) is dict:
            return _dict_get(<dict>state, "failure", None)
    return session.failure


cdef object _cache_of(object session, object database):
    """The cache of ``database`` in ``session`` if it is this thread's or task's, has not failed
    and has one (``session_cache``), else None."""
    cdef SessionBase known
    if isinstance(session, SessionBase):
        known = <SessionBase>session
        if known.owner is not None and known.owner is not current_task():
            return None
        if _failure_of(session) is not None:
            return None
        caches = known.caches
        return _dict_get(caches, database, None) if caches is not None else session.caches.get(database)
    if session is None or (session.owner is not None and session.owner is not current_task()):
        return None
    if session.failure is not None:
        return None
    return session.caches.get(database)


@cython.boundscheck(False)  # every index is below the width checked in init_new
@cython.wraparound(False)
cdef int _fill_new(EntityBase entity, tuple plan, tuple columns, tuple checks, list values, object cache) except -1:
    """The validation and the stores of ``init_new``, once its session checks passed."""
    cdef Py_ssize_t i
    cdef Py_ssize_t width = PyTuple_GET_SIZE(columns)
    cdef Py_ssize_t npk = plan[5]
    cdef tuple check
    obj = <object>entity
    for i in range(width):
        value = values[i]
        check = <tuple?>checks[i]
        if value is _MISSING:
            if check[1]:
                values[i] = None
            else:
                column = columns[i]
                values[i] = column._validate_(None, column.default_value())
        elif not _passes(check, value):
            values[i] = columns[i]._validate_(None, value)
    _init_state(entity, cache, _CREATED)
    for i in range(width):
        value = values[i]
        if value is not None or not (<tuple>checks[i])[1]:
            _raw_set(<Column?>columns[i], obj, value)
    if npk == 1:
        pk = values[0]
    else:
        pk = tuple(values[:npk])
        if None in pk:
            pk = None
    if plan[6] or pk is not None:
        cache.register_new(obj, pk)
    number = next(plan[7])
    state = PyObject_GenericGetDict(cache, NULL) if isinstance(cache, CacheBase) else None
    if type(state) is dict and type(_dict_get(<dict>state, "new_ids", None)) is dict:
        (<dict>(<dict>state)["new_ids"])[obj] = number
    else:
        cache.new_ids[obj] = number
    _mark_dirty(cache, obj)
    return 0


cdef inline void _init_state(EntityBase entity, object cache, int status):
    """``entity._init_state_(cache, status)``: attached to ``cache``, no tracked bits."""
    entity._cache_ = cache
    entity._status_ = status
    entity._rlow = 0
    entity._wlow = 0
    entity._high = None
    entity._orig_ = None


cdef bint _passes(tuple check, object value) except -1:
    """Whether ``value`` passes the checks ``(kind, auto, a, b)`` of ``init_new`` unchanged (kind 1:
    ``a`` and ``b`` are the bounds; kind 3: the longest str and whether to refuse whitespace)."""
    cdef long kind = check[0]
    if kind == 1:
        return _value_passes(1, check[2], check[3], -1, False, value)
    if kind == 3:
        return _value_passes(3, 0, 0, check[2], check[3], value)
    return _value_passes(kind, 0, 0, -1, False, value)


cdef class LazyIterator:
    """An iterator over items made at its first ``next()``: a copy of what a subclass's
    ``_items_()`` returns then (so making the iterator reads nothing, and changes to the source
    while it runs do not affect it). Each later ``next()`` is one C call."""

    cdef list _made
    cdef Py_ssize_t _at

    def __iter__(self):
        return self

    def __next__(self):
        cdef list made = self._made
        if made is None:
            made = self._made = list(self._items_())
        if self._at >= PyList_GET_SIZE(made):
            raise StopIteration
        item = <object>PyList_GET_ITEM(made, self._at)
        self._at += 1
        return item


# -- statements ------------------------------------------------------------------------------


cdef class QueryStat:
    """How often one statement ran and how long it took (in seconds), in a database's statistics.

    ``sql`` is the statement's text (None for the total of all statements of the statistics).
    ``db_count`` counts the times it was sent to the database; ``sum_time``, ``min_time``,
    ``max_time`` and ``avg_time`` are the durations, each measured around the driver's call
    (fetching the rows included).
    """

    cdef public object sql
    cdef public object db_count
    cdef public object sum_time
    cdef public object min_time
    cdef public object max_time

    def __init__(self, sql) -> None:
        self.sql = sql
        self.db_count = 0
        self.sum_time = 0.0
        self.min_time = None
        self.max_time = None

    @property
    def avg_time(self):
        """The mean duration (None before the statement ran)."""
        return self.sum_time / self.db_count if self.db_count else None

    def add(self, seconds) -> None:
        """Count one more run lasting ``seconds``."""
        _stat_add(self, seconds)

    def merge(self, QueryStat other not None) -> None:
        """Add another ``QueryStat`` of the same statement to this one."""
        if not other.db_count:
            return
        self.db_count += other.db_count
        self.sum_time += other.sum_time
        if other.min_time is not None and (self.min_time is None or other.min_time < self.min_time):
            self.min_time = other.min_time
        if other.max_time is not None and (self.max_time is None or other.max_time > self.max_time):
            self.max_time = other.max_time

    def copy(self):
        """A new ``QueryStat`` with this one's figures."""
        stat = QueryStat(self.sql)
        stat.merge(self)
        return stat

    def __repr__(self) -> str:
        return f"<QueryStat {self.sql!r}: {self.db_count} run(s), {self.sum_time:.6f} s>"


cdef int _stat_add(QueryStat stat, object seconds) except -1:
    """``stat.add(seconds)``; its arithmetic in C when every figure is an exact int or float."""
    cdef double value
    count, total, low, high = stat.db_count, stat.sum_time, stat.min_time, stat.max_time
    if (
        PyFloat_CheckExact(seconds) and PyLong_CheckExact(count) and PyFloat_CheckExact(total)
        and (low is None or PyFloat_CheckExact(low)) and (high is None or PyFloat_CheckExact(high))
    ):
        value = PyFloat_AS_DOUBLE(seconds)
        stat.db_count = count + 1
        stat.sum_time = PyFloat_AS_DOUBLE(total) + value
        if low is None or value < PyFloat_AS_DOUBLE(low):
            stat.min_time = seconds
        if high is None or value > PyFloat_AS_DOUBLE(high):
            stat.max_time = seconds
        return 0
    stat.db_count = count + 1
    stat.sum_time = total + seconds
    if low is None or seconds < low:
        stat.min_time = seconds
    if high is None or seconds > high:
        stat.max_time = seconds
    return 0


def add_run(dict stats not None, sql, seconds, Py_ssize_t limit):
    """Count one run of ``sql`` lasting ``seconds`` in a thread's statistics ``stats``.

    ``stats[None]`` is the total of all statements. A statement new to ``stats`` when it already
    holds more than ``limit`` of them is counted in the total only.
    """
    _add_run(stats, sql, seconds, limit)


cdef int _add_run(dict stats, object sql, object seconds, Py_ssize_t limit) except -1:
    total = stats[None]
    if type(total) is QueryStat:
        _stat_add(<QueryStat>total, seconds)
    else:
        total.add(seconds)
    stat = _dict_get(stats, sql, None)
    if stat is None:
        if len(stats) > limit:
            return 0
        stat = QueryStat(sql)
        stats[sql] = stat
    if type(stat) is QueryStat:
        _stat_add(<QueryStat>stat, seconds)
    else:
        stat.add(seconds)
    return 0


def read_rows(provider, conn, sql, params):
    """The rows of one SELECT sent on ``conn``: the direct path of a read (``run(...).rows`` in fewer calls).

    The statement becomes this thread's ``last_sql`` and its run is counted in ``provider.stats``
    (the duration measured around sending and fetching), whether it succeeds or fails. With SQL
    debugging on, ``provider.logged_rows`` sends it and logs it.
    """
    return _read_rows(provider, conn, sql, params)


cdef object _read_rows(object provider, object conn, object sql, object params):
    cdef PyObject* state = NULL
    cdef bint debugging
    cdef bint gc_was_enabled
    provider._statements.sql = sql
    started = _perf_counter()
    try:
        PyContextVar_Get(_sql_debug_var, NULL, &state)
        debugging = state is not NULL and bool((<object>state)[0])
        Py_XDECREF(state)
        if debugging:
            return provider.logged_rows(conn, sql, params)
        cursor = None
        try:
            if provider.sends_directly:
                cursor = conn.execute(sql, params)
            else:
                cursor = provider.send(conn, sql, params)
            if cursor.description is None:
                return []
            # the cyclic GC paused while the rows arrive, as Provider._rows does (its comment says why)
            gc_was_enabled = PyGC_Disable()
            try:
                return cursor.fetchall()
            finally:
                if gc_was_enabled:
                    PyGC_Enable()
        except Exception as exc:
            raise provider.statement_failed(cursor, exc) from exc
    finally:
        _count_run(provider.stats, sql, _perf_counter() - started)


cdef int _count_run(object stats, object sql, object seconds) except -1:
    """``stats.add(sql, seconds)`` (a QueryStats), in C when this thread's statistics exist."""
    local = getattr(stats._local, "stats", None)
    if type(local) is dict:
        return _add_run(<dict>local, sql, seconds, stats.MAX_STATEMENTS)
    stats.add(sql, seconds)
    return 0


def session_cache(database):
    """The cache of ``database`` in the current session, or None.

    None when there is no session of this thread or task, the session failed, or it has no cache
    of ``database`` yet: ``require_session().cache_for()`` then raises or makes the cache.
    """
    return _cache_of(_current(), database)


def read_now(cache, sql, params):
    """The rows of one SELECT run at once on ``cache``'s open connection, or None.

    None when something must happen first: a flush of pending changes, a connection to open or a
    transaction to begin, or an error to raise (the session failed or ended). None also on an
    asyncio cache, whose IO is awaited. The caller then takes the full path.
    """
    return _read_now(cache, sql, params)


cdef object _read_now(object cache, object sql, object params):
    """``read_now``, called from C."""
    if not isinstance(cache, CacheBase):
        return _read_now_generic(cache, sql, params)
    cdef CacheBase known = <CacheBase>cache
    if known.dirty or not known.is_alive:
        return None
    found = PyObject_GenericGetDict(cache, NULL)
    if type(found) is not dict:
        return _read_now_generic(cache, sql, params)
    cdef dict state = <dict>found
    m2m = _dict_get(state, "m2m", _MISSING)
    is_async = _dict_get(state, "is_async", _MISSING)
    conn = _dict_get(state, "conn", _MISSING)
    immediate = _dict_get(state, "immediate", _MISSING)
    began = _dict_get(state, "in_transaction", _MISSING)
    provider = _dict_get(state, "provider", _MISSING)
    if (
        m2m is _MISSING or is_async is _MISSING or conn is _MISSING or immediate is _MISSING
        or began is _MISSING or provider is _MISSING
    ):
        return _read_now_generic(cache, sql, params)
    if m2m or is_async or conn is None or (immediate and not began):
        return None
    if _failure_of(known.session) is not None:
        return None
    return _read_rows(provider, conn, sql, params)


cdef object _read_now_generic(object cache, object sql, object params):
    """``read_now`` of a cache that is not a ``CacheBase`` with its state in a dict: the pure twin's."""
    if cache.dirty or cache.m2m or cache.is_async or not cache.is_alive:
        return None
    conn = cache.conn
    if conn is None or (cache.immediate and not cache.in_transaction) or cache.session.failure is not None:
        return None
    return _read_rows(cache.provider, conn, sql, params)


def keyword_sql(dict known not None, dict values not None, dialect):
    """The text and parameters of ``get(**values)`` from ``known``, an entity's texts by shape; None
    when the text of this shape is not known for ``dialect``, or a value does not bind as given.

    A shape is the keywords in order and which values are None; its entry holds (dialect, text,
    columns, whether values bind as given, the constant parameters after the values').
    """
    return _keyword_sql(known, values, dialect)


cdef object _keyword_sql(dict known, dict values, object dialect):
    """``keyword_sql``, called from C."""
    cdef Py_ssize_t count = len(values)
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    names = PyTuple_New(count)
    nones = PyTuple_New(count)
    while PyDict_Next(values, &pos, &key, &value):
        flag = value == <PyObject*>None
        Py_INCREF(<object>key)
        PyTuple_SET_ITEM(names, i, <object>key)
        Py_INCREF(flag)
        PyTuple_SET_ITEM(nones, i, flag)
        i += 1
    entry = _dict_get(known, (names, nones), None)
    if entry is None:
        return None
    if type(entry) is not tuple or PyTuple_GET_SIZE(entry) != 5:
        raise TypeError(f"keyword_sql() takes entries of 5 items, got {entry!r}")
    if (<tuple>entry)[0] is not dialect or not (<tuple>entry)[3]:
        return None
    columns = (<tuple>entry)[2]
    if type(columns) is not tuple or PyTuple_GET_SIZE(columns) != count:
        params = _plain_params(columns, values.values())
        if params is None:
            return None
    else:
        # _plain_params without a zip: one pass over the values, the column of each by its index
        params = []
        pos = 0
        i = 0
        while PyDict_Next(values, &pos, &key, &value):
            if value != <PyObject*>None:
                if not _passes_plain(<Column?>(<tuple>columns)[i], <object>value):
                    return None
                (<list>params).append(<object>value)
            i += 1
    (<list>params).extend((<tuple>entry)[4])
    return (<tuple>entry)[1], params


# -- get(attr=value) in one call ---------------------------------------------------------------------

#: loaded objects of entities with unique keys that wait to be indexed (``learn_unique``): few
#: enough to bound the list, enough to batch the work
UNLEARNED_LOADS = 256


def learn_unique(cache, objects, entity):
    """Index loaded objects of ``entity`` by its unique keys in ``cache``: when the indexes are
    next read, or at once when ``UNLEARNED_LOADS`` loads wait (a long session reloading the same
    objects stays bounded)."""
    _learn_unique(cache, objects, entity)


cdef int _learn_unique(object cache, object objects, object entity) except -1:
    if _class_attr(entity, "_unique_keys_"):
        unlearned = cache._unlearned
        unlearned.append((tuple(objects), entity))
        if len(unlearned) >= UNLEARNED_LOADS:
            cache._learn_loaded()
    return 0


def load_rows(entity, cache, attrs, converters, rows):
    """The objects of ``rows`` (values of ``attrs``, one column each) as objects of ``entity`` in
    ``cache``'s identity map, their unique keys learned: ``materialize_rows`` where no wide
    attribute and no discriminator asks for more."""
    return _load_rows(entity, cache, attrs, converters, rows)


cdef list _load_rows(object entity, object cache, object attrs, object converters, object rows):
    session = cache.session
    imap = None
    if isinstance(session, SessionBase):
        if (<SessionBase>session).maps is not None:
            imap = _dict_get((<SessionBase>session).maps, entity, None)
    else:
        imap = session.maps.get(entity)
    if imap is None:
        imap = cache.identity_map(entity)
    objects = _materialize(
        entity, cache, imap, attrs, converters, _class_attr(entity, "_npk_"),
        _class_attr(entity, "_check_mask_"), rows,
    )
    _learn_unique(cache, objects, entity)
    return objects


def get_now(entity, dict values not None):
    """The objects ``entity.get(**values)`` finds, read with one call, or None.

    None when the text of the keywords' shape is not known yet or its values do not bind as given
    (``keyword_sql``), when the read cannot run at once (``read_now``), or when the entity is wide
    or has a discriminator: the caller then takes the full path, which finds the same objects.
    """
    provider = _class_attr(entity, "_database_").provider
    if provider is None:
        return None
    found = _keyword_sql(_class_attr(entity, "_keyword_sql_"), values, provider.dialect)
    if found is None:
        return None
    return _fetch_now(entity, (<tuple>found)[0], (<tuple>found)[1])


def fetch_now(entity, sql, params):
    """The objects of ``entity`` that one SELECT of its query columns finds, read at once, or None.

    None when the read cannot run at once (``read_now``, or no cache of the entity's database in
    the current session yet) or the entity is wide or has a discriminator: the caller then takes
    the full path, which finds the same objects.
    """
    return _fetch_now(entity, sql, params)


cdef object _fetch_now(object entity, object sql, object params):
    if not _is_plain_entity(entity):
        return None
    cache = _cache_of(_current(), _class_attr(entity, "_database_"))
    if cache is None:
        return None
    rows = _read_now(cache, sql, params)
    if rows is None:
        return None
    return _load_rows(
        entity, cache, _class_attr(entity, "_select_attrs_"), _class_attr(entity, "_select_converters_"), rows
    )


cdef inline bint _is_plain_entity(object entity) except -1:
    """Whether ``entity``'s rows are one value per column of its own class: no wide attribute, no discriminator."""
    return not _class_attr(entity, "_wide_") and _class_attr(entity, "_discriminator_attr_") is None


# -- a collection's members ------------------------------------------------------------------------


cdef class SetData:
    """What a session knows of one collection of one object: its members (``items``, in the
    order they became known) and whether every member is known (``loaded``)."""

    cdef public object items
    cdef public object loaded

    def __init__(self) -> None:
        self.items = {}
        self.loaded = False


cdef object _column_get(object column, object obj):
    """``column.get_raw(obj)``, in C (no Python class overrides ``get_raw``)."""
    if isinstance(column, Column):
        value = _raw_get(<Column>column, obj)
        return None if value is _MISSING else value
    return column.get_raw(obj)


def members_now(attr, owner):
    """The state of collection ``attr`` of ``owner`` with every member known, or None.

    The state already loaded, or, for a one-to-many collection whose SELECT was made before
    (``attr.one_owner_sql``), its members read at once (``read_now``): the objects read whose
    reference holds ``owner``'s key. None when the caller's full path must run: a many-to-many
    collection, a new owner, an owner of a session that is over or not the current one, a key
    of several columns or references, a target that is wide or has a discriminator, or a read
    that cannot run at once.
    """
    state = attr.state
    data = _column_get(state, owner)
    cdef int status = (<EntityBase?>owner)._status_
    if data is not None and data.loaded and (not attr.volatile or status == _CREATED):
        return data
    cache = (<EntityBase>owner)._cache_
    if attr.is_m2m or status == _CREATED or not cache.is_alive:
        return None
    session = _current()
    if session is None or session is not cache.session or _foreign(session):
        return None
    known = attr.one_owner_sql
    entity = type(owner)
    target = attr.py_type
    if (
        known is None
        or (<tuple?>known)[0] is not cache.provider.dialect
        or _class_attr(entity, "_npk_") != 1
        or _class_attr(entity, "_pk_has_refs_")
        or not _is_plain_entity(target)
    ):
        return None
    pk = _column_get(_class_attr(entity, "_pk_attrs_")[0], owner)
    rows = _read_now(cache, (<tuple>known)[1], [pk])
    if rows is None:
        return None
    members = _load_rows(
        target, cache, _class_attr(target, "_select_attrs_"), _class_attr(target, "_select_converters_"), rows
    )
    return _take_members(attr, owner, pk, members)


def take_members(attr, owner, pk, members):
    """The state of collection ``attr`` of ``owner`` (key ``pk``), loaded: its members are the
    ``members`` read for it, less those deleted or whose reference the session points elsewhere."""
    return _take_members(attr, owner, pk, members)


cdef object _take_members(object attr, object owner, object pk, object members):
    state = attr.state
    ref_column = attr.reverse
    key_type = type(pk)
    items = {}
    for member in members:
        if (<EntityBase?>member)._status_ < _DELETED:
            ref = _column_get(ref_column, member)
            if type(ref) is not key_type and isinstance(ref, EntityBase):
                # a reference stored as its object (saved: the read came after the flush)
                ref = ref._pk_raw_()
            if ref == pk:
                items[member] = None
    data = _column_get(state, owner)
    if data is None:
        data = SetData()
        _raw_set(<Column?>state, owner, data)
    data.items = items
    data.loaded = True
    return data


# -- a query's SELECT text, kept per shape -----------------------------------------------------------

#: the value types whose query conditions share a kept SELECT text: each binds as itself
BOUND_TYPES = frozenset({str, int, float, bool, bytes, Decimal, datetime, date, time, timedelta, UUID})
#: the comparisons a kept SELECT text spells the same whatever the values (bar None and IN's length)
SHAPED_OPERATORS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in"})

cdef frozenset _bound_types = BOUND_TYPES
cdef frozenset _shaped_operators = SHAPED_OPERATORS
cdef object _compare_class = None  # the expression classes of conditions (use_condition_classes)
cdef object _bool_op_class = None
cdef object _not_class = None


def use_condition_classes(compare, bool_op, not_):
    """The classes of a query's conditions whose shape ``shape_of`` reads: a comparison (``attr``,
    ``op``, ``value``), an and/or (``op``, ``items``) and a negation (``item``)."""
    global _compare_class, _bool_op_class, _not_class
    _compare_class, _bool_op_class, _not_class = compare, bool_op, not_


def shape_of(conditions, list key not None, list params not None):
    """Append the shape of each condition to ``key`` and its values to ``params``, in the order a
    SELECT text binds them; False when a condition is not a comparison of a column with plain
    values (``BOUND_TYPES``), or and/or/not of such.

    A comparison's shape is its column and operator, with None for a None value and the length of
    an IN list; an and/or's is its operator and count, a negation's ``"NOT"``.
    """
    return _shape_of(conditions, key, params)


cdef bint _shape_of(object conditions, list key, list params) except -1:
    for condition in conditions:
        kind = type(condition)
        if kind is _compare_class:
            attr, op, value = condition.attr, condition.op, condition.value
            if not isinstance(attr, Column) or attr.width != 1 or op not in _shaped_operators:
                return False
            if value is None:
                key.append((attr.column, op, None))
            elif op == "in":
                for item in value:
                    if type(item) not in _bound_types:
                        return False
                key.append((attr.column, op, len(value)))
                params.extend(value)
            elif type(value) in _bound_types:
                key.append((attr.column, op))
                params.append(value)
            else:
                return False
        elif kind is _bool_op_class:
            items = condition.items
            key.append((condition.op, len(items)))
            if not _shape_of(items, key, params):
                return False
        elif kind is _not_class:
            key.append("NOT")
            if not _shape_of((condition.item,), key, params):
                return False
        else:
            return False
    return True


def select_sql_now(query, dialect, count, limit):
    """The text and parameters of the SELECT of ``query``'s objects (of ``COUNT(*)`` when
    ``count``) with ``limit`` as its limit, when its entity keeps the text of its shape for
    ``dialect``; None otherwise (the caller renders it, and keeps it when it can).

    The shape is ``select_shape``'s, with the keys of an order the entity knows (``_orders_``).
    """
    return _select_sql_now(query, dialect, count, limit)


cdef object _select_sql_now(object query, object dialect, object count, object limit):
    entity = query.entity
    order = query._order
    if count or not order:
        keys = ()
    else:
        known = _dict_get(<dict?>_class_attr(entity, "_orders_"), id(order), None)
        if known is None or (<tuple?>known)[0] is not order or (<tuple>known)[2] is None:
            return None
        keys = (<tuple>known)[2]
    shaped = _select_shape(query, count, limit, keys)
    if shaped is None:
        return None
    entry = _dict_get(<dict?>_class_attr(entity, "_select_sql_"), (<tuple>shaped)[0], None)
    if entry is None or (<tuple?>entry)[0] is not dialect:
        return None
    params = (<tuple>shaped)[1]
    (<list>params).extend((<tuple>entry)[2])
    return (<tuple>entry)[1], params


def select_shape(query, count, limit, keys):
    """The shape of the SELECT of ``query``'s objects (of ``COUNT(*)`` when ``count``) with
    ``limit`` as its limit and ``keys`` the keys of its order, and the values it binds, in order;
    None when a condition has no shape (``shape_of``).

    The shape is whether it counts, the limit, offset, locking, DISTINCT, the order's keys and
    the shapes of the conditions, the entity's own kind filter last.
    """
    return _select_shape(query, count, limit, keys)


cdef object _select_shape(object query, object count, object limit, object keys):
    key = [count, limit, query._offset, query._for_update, bool(query._distinct), keys]
    params = []
    where = query._where
    kind_filter = _class_attr(query.entity, "_kind_filter_")
    if kind_filter:
        where = where + kind_filter
    if not _shape_of(where, key, params):
        return None
    return tuple(key), params
