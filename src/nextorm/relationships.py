"""Relationships: Reference and Set declarations, reverse resolution, in-memory relinking, cascades.

A reference (``Required(User)``, ``Optional(User)``) is a column holding the
target's primary key; reading it returns the target object from the session's
identity map (a not-yet-loaded "seed" object when the row was not loaded yet).
While the target is new and has no key, the column holds the object itself.

A ``Set`` is a collection descriptor. Its per-object state (``SetData``: the
known members and whether they are all known) lives in a slot of the owner.
One-to-many collections mirror the children's foreign keys; many-to-many
changes are kept per (owner, attribute) in the session cache as added and
removed links and flushed to the join table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import FunctionType
from typing import Any, Generic, Self, TypeVar, overload

from ._impl import CREATED, DELETED, Column, EntityBase, LazyIterator, SetData, members_now
from .exceptions import (
    AttributeTypeError,
    ConstraintError,
    ERDiagramError,
    MappingError,
    OperationWithDeletedObjectError,
    TransactionError,
    ValidationError,
    noted,
)
from .expressions import Expr
from .identity import key_db_values, known_object, reference_to_db, seed
from .loading import load_collection, load_collections_steps, one_to_one_partner, one_to_one_partner_steps
from .providers.dialect import Dialect
from .query import Query
from .session import EntityProxy, active_session
from .sql import AllEqual, Equals, InSubquery, Select
from .steps import Steps

__all__ = [
    "Members",
    "Multiset",
    "SetData",
    "SetInstance",
    "reference_on_delete",
    "resolve_columns",
    "resolve_relations",
    "unlink_steps",
]


#: the entity class a collection holds (``Set(Post)`` is a ``Set[Post]``)
_E = TypeVar("_E")


#: the options ``Set(...)`` takes
_SET_OPTIONS = frozenset(
    {
        "reverse",
        "cascade_delete",
        "table",
        "column",
        "columns",
        "reverse_column",
        "reverse_columns",
        "lazy",
        "volatile",
        "unique",
        "fk_name",
        "reverse_fk_name",
        "index",
        "reverse_index",
    }
)


def join_table_option(table: Any) -> str | None:
    """The ``table=`` option of a Set checked: a name, or a list of parts (``[schema, name]``)."""
    if table is None or isinstance(table, str):
        return table
    if isinstance(table, (list, tuple)):
        for part in table:
            if not isinstance(part, str):
                raise TypeError(f"Each part of table name must be a string. Got: {part!r}")
        raise TypeError(
            f"Parameter 'table' of a Set takes one name; schemas are not supported. Got: {table!r}"
        )
    raise TypeError(f"Parameter 'table' must be a string. Got: {table!r}")


def column_option(options: dict[str, Any], single: str, several: str) -> tuple[str | None, list[str] | None]:
    """The ``column=``/``columns=`` pair of options (or ``reverse_column(s)=``) checked and combined."""
    column, columns = options.get(single), options.get(several)
    if column is not None:
        if columns is not None and list(columns) != [column]:
            raise TypeError(f"Parameters {single!r} and {several!r} cannot be specified simultaneously")
        if not isinstance(column, str):
            raise TypeError(f"Parameter {single!r} must be a string. Got: {column!r}")
        return column, [column]
    if columns is not None:
        if not isinstance(columns, (list, tuple)):
            raise TypeError(f"Parameter {several!r} must be a list. Got: {columns!r}")
        if not all(isinstance(part, str) for part in columns):
            if several == "columns":
                raise TypeError(f"Items of parameter {several!r} must be strings. Got: {columns!r}")
            raise TypeError(f"Parameter {several!r} must be a list of strings. Got: {columns!r}")
        return (columns[0] if len(columns) == 1 else None), list(columns)
    return None, None


# -- references --------------------------------------------------------------------------------


def reference_value(attr: Any, obj: Any, value: Any) -> Any:
    """Validate ``value`` for reference ``attr`` of ``obj``: the target's pk, or the new target itself."""
    target = attr.py_type
    if isinstance(value, EntityProxy):
        value = value._get_object()
    if isinstance(value, EntityBase):
        if not isinstance(value, target):
            raise AttributeTypeError(
                f"Value type for attribute {attr.qualname} must be {target.__name__}. "
                f"Got {type(value).__name__}: {value!r}"
            )
        cache = value._cache_
        if (
            not cache.is_alive
            or (obj is not None and cache is not obj._cache_)
            or (obj is None and cache.session is not active_session())
        ):
            raise TransactionError(
                f"An attempt to mix objects belonging to different transactions: {value!r} assigned to {attr.qualname}"
            )
        if value._status_ >= DELETED:
            raise OperationWithDeletedObjectError(
                f"{value!r} was deleted and cannot be assigned to {attr.qualname}"
            )
        pk = value._pk_raw_()
        return value if pk is None else pk
    if target._npk_ == 1:
        try:
            return target._pk_attrs_[0].validate(value)
        except (AttributeTypeError, ValidationError):
            raise AttributeTypeError(
                f"Value type for attribute {attr.qualname} must be {target.__name__} or its primary key "
                f"({target._pk_attrs_[0].py_type.__name__}). Got {type(value).__name__}: {value!r}"
            ) from None
    if not isinstance(value, tuple) or len(value) != target._npk_:
        raise AttributeTypeError(
            f"Value type for attribute {attr.qualname} must be {target.__name__} or its primary key. Got: {value!r}"
        )
    return tuple(a.validate(v) for a, v in zip(target._pk_attrs_, value))


def relink(attr: Any, obj: Any, old: Any, new: Any) -> None:
    """After ``obj.attr`` changed from ``old`` to ``new``: keep the reverse side in step in memory."""
    reverse = attr.reverse
    cache = obj._cache_
    target = attr.py_type
    if isinstance(reverse, SetAttr):
        old_obj = known_object(target, cache, old)
        if old_obj is not None:
            data = reverse.data(old_obj)
            if data is not None:
                data.items.pop(obj, None)
        new_obj = known_object(target, cache, new)
        if new_obj is not None:
            data = reverse.data(new_obj)
            if data is not None:
                data.items[obj] = None
        return
    if reverse.is_column:
        _relink_both_columns(attr, obj, old, new)
        return
    # one-to-one: ``attr`` holds the key, ``reverse`` caches the partner on the other side; the
    # column is unique, so the old partner now has none, which is known without a query even when
    # its object was not in the session yet
    old_obj = None if old is None else old if isinstance(old, EntityBase) else seed(target, cache, old)
    if old_obj is not None and reverse.get_raw(old_obj, obj) is obj:
        reverse.set_raw(old_obj, None)
    new_obj = known_object(target, cache, new)
    if new_obj is not None:
        reverse.set_raw(new_obj, obj)


def _relink_both_columns(attr: Any, obj: Any, old: Any, new: Any) -> None:
    """``obj.attr`` of a one-to-one whose both sides hold a column changed from ``old`` to ``new``:
    the old partner's column is cleared and the new partner's set to ``obj`` (tracked writes).

    Both sides hold one when both name their column (``column=``) and in a symmetric one-to-one
    (``spouse = Optional('Person', reverse='spouse')``), where every row holds its partner's key.
    """
    cache = obj._cache_
    target = attr.py_type
    reverse = attr.reverse
    old_obj = None if old is None else old if isinstance(old, EntityBase) else seed(target, cache, old)
    if old_obj is not None and old_obj is not obj and old_obj._status_ < DELETED:
        if reverse.__get__(old_obj, target) is obj:
            Column.__set__(reverse, old_obj, None)
    new_obj = None if new is None else new if isinstance(new, EntityBase) else seed(target, cache, new)
    if new_obj is None or new_obj is obj:
        return
    previous = reverse.__get__(new_obj, target)
    if previous is obj:
        return
    if (
        previous is not None
        and previous._status_ < DELETED
        and attr.__get__(previous, attr.entity) is new_obj
    ):
        Column.__set__(attr, previous, None)
    Column.__set__(reverse, new_obj, obj)


def claim_partner(attr: Any, obj: Any, value: Any) -> None:
    """Before ``obj.attr`` (the key side of a one-to-one) takes ``value``: unlink the target's current partner."""
    if value is None or isinstance(attr.reverse, SetAttr):
        return
    reverse = attr.reverse
    if reverse.is_column:
        # both sides hold a column: the target's partner (whose row holds the target's key) lets go first
        target = value if isinstance(value, EntityBase) else seed(attr.py_type, obj._cache_, value)
        previous = None if target is obj else reverse.__get__(target, attr.py_type)
        if previous is not None and previous is not obj and previous._status_ < DELETED:
            if attr.__get__(previous, attr.entity) is target:
                Column.__set__(attr, previous, None)
        return
    target = value if isinstance(value, EntityBase) else seed(attr.py_type, obj._cache_, value)
    previous = one_to_one_partner(attr.reverse, target)
    if previous is None or previous is obj or previous._status_ >= DELETED:
        return
    if attr.is_required:
        raise ConstraintError(
            f"Cannot unlink {previous!r} from previous {target!r} object, because {attr!r} attribute is required"
        )
    attr.__set__(previous, None)


# -- collections --------------------------------------------------------------------------------


class SetAttr(Generic[_E]):
    """``Set(Entity)``: a to-many relationship (one-to-many or many-to-many)."""

    is_collection = True
    is_column = False
    is_pk = False
    lazy = False
    _counter = 0
    #: of a many-to-many collection, set when the mapping is generated: the join table, its columns
    #: holding the owner's primary key and its columns holding the member's
    join_table: str
    owner_columns: tuple[str, ...]
    target_columns: tuple[str, ...]

    # A forward reference by name is ``Set[Any]`` to a checker: ``posts: Set[Post] = Set('Post')``.
    @overload
    def __init__(self, py_type: type[_E], *args: Any, **options: Any) -> None: ...
    @overload
    def __init__(self: SetAttr[Any], py_type: str, *args: Any, **options: Any) -> None: ...
    def __init__(self, py_type: Any, *args: Any, **options: Any) -> None:
        if "py_check" in options:
            raise NotImplementedError("'py_check' parameter is not supported for collection attributes")
        #: options a Set does not take: refused once it has its name (``_link_``)
        self.unknown_options = sorted(set(options) - _SET_OPTIONS)
        if args:
            raise TypeError(f"Set() takes one entity, got {args!r}")
        reverse = options.get("reverse")
        if reverse is not None and not isinstance(reverse, (str, SetAttr, Column)):
            raise TypeError(f"Value of 'reverse' option must be name of reverse attribute). Got: {reverse!r}")
        SetAttr._counter += 1
        self.order = SetAttr._counter
        self.py_type = py_type
        self.reverse: Any = reverse
        self.cascade_delete = options.get("cascade_delete")
        self.table = join_table_option(options.get("table"))
        self.column, self.columns_given = column_option(options, "column", "columns")
        self.reverse_column, self.reverse_columns_given = column_option(
            options, "reverse_column", "reverse_columns"
        )
        self.volatile = bool(options.get("volatile", False))
        self.unique = options.get("unique")
        self.fk_name = options.get("fk_name")
        self.reverse_fk_name = options.get("reverse_fk_name")
        self.index = options.get("index")
        self.reverse_index = options.get("reverse_index")
        #: the column names as given (``columns=``/``reverse_columns=``), for keys of several columns
        self.columns = self.columns_given
        self.reverse_columns = self.reverse_columns_given
        #: a collection is always declared by the entity (see ``Attribute.is_implicit``)
        self.is_implicit = False
        self.name = ""
        #: the SELECT of one owner's members, once made: (dialect, text); its one parameter is the key
        self.one_owner_sql: tuple[Any, str] | None = None
        #: the column of the slot that holds each object's collection state (a ``SetData``), once bound
        self.state: Any = None
        self.entity: Any = None
        self.qualname = "?"
        self.is_m2m = False
        self.m2m_primary = False

    def _link_(self, entity: Any, name: str, member: Any) -> None:
        self.entity = entity
        self.name = name
        self.qualname = f"{entity.__name__}.{name}"
        if self.unknown_options:
            raise TypeError(f"Attribute {self.qualname} has unknown option {self.unknown_options[0]!r}")
        if self.unique is not None:
            raise TypeError(
                f"'unique' option cannot be set for attribute {self.qualname} because it is collection"
            )
        # the state's slot read through a column of its own, whose get_raw answers None for an
        # empty slot without raising (each first use of a collection finds it empty)
        slot = Column()
        slot._bind_slot_(member, 0)
        self.state = slot
        self.data = slot.get_raw  # type: ignore[method-assign]
        self._set_data = member.__set__

    def __repr__(self) -> str:
        return self.qualname

    @property
    def is_volatile(self) -> bool:
        """Whether members may change in the database behind the session (``volatile=True``)."""
        return self.volatile

    def data(self, obj: Any) -> SetData | None:
        """The collection state of ``obj``, or None when nothing is known yet.

        Replaced for each attribute, once bound to its entity's slot, by a direct read of the slot.
        """
        raise TypeError(f"Collection {self.qualname} is not bound to an entity yet")

    def ensure_data(self, obj: Any) -> SetData:
        """The collection state of ``obj``, created empty (not loaded) when missing."""
        data = self.data(obj)
        return self.new_data(obj) if data is None else data

    def new_data(self, obj: Any) -> SetData:
        """A new empty (not loaded) collection state for ``obj``, which has none yet."""
        data = SetData()
        self._set_data(obj, data)
        return data

    @overload
    def __get__(self, obj: None, cls: Any = None) -> Self: ...
    @overload
    def __get__(self, obj: object, cls: Any = None) -> SetInstance[_E]: ...
    def __get__(self, obj: Any, cls: Any = None) -> Self | SetInstance[_E]:
        if obj is None:
            return self
        return SetInstance(obj, self)

    def __set__(self, obj: Any, items: Iterable[_E]) -> None:
        SetInstance(obj, self).replace(items)

    def __hash__(self) -> int:
        return id(self)


class Members(LazyIterator, Generic[_E]):
    """An iterator over a collection's members, loaded at the first ``next()``.

    ``query`` is the query of the members, so that ``select(s for s in g.students)`` is a query
    (a generator's iterator is made before select() sees it)."""

    __slots__ = ("_set",)

    #: Python's sum(), min() and max() over such a generator read the loaded members (the
    #: query functions of the same names see this and step aside)
    reads_loaded_members = True

    def __init__(self, members: SetInstance[_E]) -> None:
        self._set = members

    def _items_(self) -> Iterable[_E]:
        return self._set._loaded().items

    @property
    def query(self) -> Query[_E]:
        return self._set.select()


class SetInstance(Generic[_E]):
    """The collection ``obj.attr``: set-like, loaded on first use, kept in step with the reverse side."""

    __slots__ = ("_attr", "_obj")

    def __init__(self, obj: Any, attr: SetAttr[_E]) -> None:
        self._obj = obj
        self._attr = attr

    # -- state -------------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self._obj!r}.{self._attr.name}"

    def _check_change(self) -> Any:
        obj = self._obj
        cache = obj._cache_
        if not cache.is_alive:
            raise cache.closed_error(f"Cannot change collection {self._where()}")
        if cache.session is not active_session():
            raise TransactionError(
                f"Cannot change collection {self._where()}: {obj!r} belongs to another session"
            )
        if obj._status_ >= DELETED:
            raise OperationWithDeletedObjectError(f"{obj!r} was deleted")
        if cache.readonly:
            raise cache.readonly_error(f"change collection {self._where()}")
        return cache

    def _loaded(self) -> SetData:
        """The collection state with every member known, loading it when needed."""
        obj, attr = self._obj, self._attr
        data = members_now(attr, obj)  # known, or read at once: the common cases in one call
        if data is not None:
            return data
        data = attr.data(obj)
        if data is not None and data.loaded and not (attr.volatile and obj._status_ != CREATED):
            return data
        cache = obj._cache_
        if data is not None and data.loaded and not cache.is_alive:
            return data  # a volatile collection keeps what it read last once the session is over
        if not cache.is_alive:
            raise cache.closed_error(f"Cannot load collection {self._where()}")
        if cache.session is not active_session():
            raise TransactionError(
                f"Cannot load collection {self._where()}: {obj!r} belongs to another session"
            )
        if data is None:
            data = attr.new_data(obj)  # (looking for it again would fail again: a costly exception)
        if obj._status_ == CREATED:
            data.loaded = True
            return data
        load_collection(attr, obj, f"await obj.awaitable_attrs.{attr.name}")
        return data

    # -- reading ---------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[_E]:
        return Members(self)

    def __len__(self) -> int:
        return len(self._loaded().items)

    def __contains__(self, item: Any) -> bool:
        return item in self._loaded().items

    def __bool__(self) -> bool:
        return not self.is_empty()

    def _known(self) -> SetData | None:
        """The collection state when every member is known; None when a query is needed (and possible)."""
        data = self._attr.data(self._obj)
        if data is not None and data.loaded:
            if not (self._attr.volatile and self._obj._cache_.is_alive and self._obj._status_ != CREATED):
                return data
        if not self._obj._cache_.is_alive:
            raise self._obj._cache_.closed_error(f"Cannot read value of {self._where()}")
        return None

    def is_empty(self) -> bool:
        """Whether the collection has no members."""
        data = self._known()
        return not data.items if data is not None else not self.select().exists()

    def count(self) -> int:
        """The number of members (a COUNT query unless loaded)."""
        data = self._known()
        return len(data.items) if data is not None else self.select().count()

    def load(self) -> None:
        """Load every member now (a ``volatile`` collection reads them again)."""
        self._loaded()

    def select(self, *conditions: Any, **values: Any) -> Query[_E]:
        """A query of the members matching the conditions."""
        obj, attr = self._obj, self._attr
        reverse = attr.reverse
        if obj._cache_.is_alive and obj._status_ == CREATED:
            obj._cache_.flush()
        target = attr.py_type
        if attr.is_m2m:
            membership: Expr = JoinMembership(attr, obj)
        else:
            membership = reverse == obj
        return target.select(membership, *conditions, **values)

    filter = select

    def __getattr__(self, name: str) -> Multiset:
        # ``group.students.name``: the values of an attribute of every member, as Pony's multiset
        if name.startswith("_"):
            raise AttributeError(name)
        return Multiset.of(self._obj, (self._attr.name,), self._attr.py_type, {m: 1 for m in self}, name)

    def __repr__(self) -> str:
        return f"<{self._attr.py_type.__name__}Set {self._where()}>"

    def __str__(self) -> str:
        data = self._attr.data(self._obj)
        if data is None or not data.loaded:
            if not self._obj._cache_.is_alive:
                return f"{self._attr.py_type.__name__}Set([...])"
            data = self._loaded()
        return f"{self._attr.py_type.__name__}Set([{', '.join(map(repr, data.items))}])"

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, SetInstance):
            return set(self) == set(other)
        if isinstance(other, (set, frozenset, list, tuple)):
            return set(self) == set(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    # -- changing ----------------------------------------------------------------------------------

    def _items(self, items: Any) -> list[Any]:
        attr = self._attr
        if items is None:
            name = attr.py_type.__name__
            raise AttributeTypeError(f"A single {name} instance or {name} iterable is expected. Got: None")
        if isinstance(items, EntityBase) or not isinstance(items, Iterable):
            items = [items]
        result = []
        for item in items:
            value = reference_value_for_set(attr, self._obj, item)
            result.append(value)
        return result

    def add(self, items: _E | Iterable[_E]) -> None:
        """Add one object or several."""
        self._check_change()
        attr, obj = self._attr, self._obj
        for item in self._items(items):
            if attr.is_m2m:
                link(attr, obj, item, add=True)
            else:
                attr.reverse.__set__(item, obj)

    def remove(self, items: _E | Iterable[_E]) -> None:
        """Remove one object or several."""
        self._check_change()
        attr, obj = self._attr, self._obj
        for item in self._items(items):
            if attr.is_m2m:
                link(attr, obj, item, add=False)
            else:
                reverse = attr.reverse
                if (
                    reverse.get_raw(item) is None
                    or known_object(obj.__class__, obj._cache_, reverse.get_raw(item)) is not obj
                ):
                    continue
                if _cascades(attr):
                    item.delete()  # a member that must belong to the owner goes with it (as Pony)
                elif reverse.is_required:
                    raise ConstraintError(
                        f"Cannot unlink {obj!r} from previous {item!r} object, because {reverse!r} attribute is required"
                    )
                else:
                    reverse.__set__(item, None)

    def clear(self) -> None:
        """Remove every member."""
        self._check_change()
        self.remove(list(self))

    def replace(self, items: Iterable[_E]) -> None:
        """Make the collection hold exactly ``items``."""
        self._check_change()
        wanted = self._items(items)
        current = list(self)
        wanted_ids = {id(i) for i in wanted}
        self.remove([i for i in current if id(i) not in wanted_ids])
        self.add([i for i in wanted if i not in self._loaded().items])

    def create(self, **kwargs: Any) -> _E:
        """Create a new member object linked to the owner."""
        self._check_change()
        attr = self._attr
        if attr.reverse.name in kwargs:
            raise TypeError(
                f"When using {attr.qualname}.create(), {attr.reverse.name!r} attribute should not be passed explicitly"
            )
        if attr.is_m2m:
            item = attr.py_type(**kwargs)
            self.add(item)
            return item
        kwargs[attr.reverse.name] = self._obj
        return attr.py_type(**kwargs)


def _shown_order(item: tuple[Any, int]) -> Any:
    """Where a multiset's text shows an item: objects by their key, other values by themselves."""
    value = item[0]
    if isinstance(value, EntityBase):
        return value._pk_raw_()  # type: ignore[attr-defined]  # an Entity's
    return value


class Multiset:
    """The values of an attribute across the members of a collection, with their counts.

    ``group.students.name`` is a multiset of names; ``department.groups.students`` one of
    students (a member counted once per way it is reached), and attribute access goes on:
    ``department.groups.students.courses``. It is computed when made (loading what it needs)
    and compares equal to another multiset, a dict of counts, or any iterable of the same
    values in any order.
    """

    __slots__ = ("_counts", "_owner", "_path", "_type_name")

    def __init__(self, owner: Any, path: tuple[str, ...], type_name: str, counts: dict[Any, int]) -> None:
        self._owner = owner
        self._path = path
        self._type_name = type_name
        self._counts = counts

    @staticmethod
    def of(owner: Any, path: tuple[str, ...], entity: Any, members: dict[Any, int], name: str) -> Multiset:
        """The multiset of attribute ``name`` over ``members`` (objects of ``entity`` with counts)."""
        attr = entity._attrs_by_name_.get(name) or entity._relations_by_name_.get(name)
        if attr is None:
            raise AttributeError(f"Entity {entity.__name__} has no attribute {name!r}")
        counts: dict[Any, int] = {}
        for member, count in members.items():
            value = attr.__get__(member, entity)
            if attr.is_collection:
                for item in value:
                    counts[item] = counts.get(item, 0) + count
            elif value is not None:
                counts[value] = counts.get(value, 0) + count
        return Multiset(owner, (*path, name), attr.py_type.__name__, counts)

    def __getattr__(self, name: str) -> Multiset:
        if name.startswith("_"):
            raise AttributeError(name)
        entities = {type(value) for value in self._counts}
        if len(entities) != 1 or not issubclass(next(iter(entities)), EntityBase):
            raise AttributeError(f"{self._type_name}Multiset has no attribute {name!r}")
        return Multiset.of(self._owner, self._path, next(iter(entities)), self._counts, name)

    def distinct(self) -> dict[Any, int]:
        """Each value once, with the number of times it occurs."""
        return dict(self._counts)

    def __len__(self) -> int:
        return sum(self._counts.values())

    def __bool__(self) -> bool:
        return bool(self._counts)

    def __iter__(self) -> Iterator[Any]:
        for value, count in self._counts.items():
            for _ in range(count):
                yield value

    def __contains__(self, value: Any) -> bool:
        return value in self._counts

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Multiset):
            return self._counts == other._counts
        if isinstance(other, dict):
            return self._counts == other
        if isinstance(other, Iterable) and not isinstance(other, (str, bytes)):
            counts: dict[Any, int] = {}
            for value in other:
                counts[value] = counts.get(value, 0) + 1
            return self._counts == counts
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        where = f"{self._owner!r}.{'.'.join(self._path)}"
        if not self._owner._cache_.is_alive:
            return f"<{self._type_name}Multiset {where}>"
        size = len(self)
        return f"<{self._type_name}Multiset {where} ({size} item{'' if size == 1 else 's'})>"

    def __str__(self) -> str:
        items = list(self._counts.items())
        try:
            items.sort(key=_shown_order)
        except TypeError:
            pass  # values of no common order are shown in the order they were found
        return f"{self._type_name}Multiset({{{', '.join(f'{k!r}: {v!r}' for k, v in items)}}})"


def reference_value_for_set(attr: SetAttr, owner: Any, item: Any) -> Any:
    """``item`` as an object of the collection's entity in the owner's session."""
    if isinstance(item, EntityProxy):
        item = item._get_object()
    target = attr.py_type
    if not isinstance(item, target):
        raise AttributeTypeError(
            f"Item of collection {attr.qualname} must be {target.__name__}. Got {type(item).__name__}: {item!r}"
        )
    if not item._cache_.is_alive or item._cache_ is not owner._cache_:
        raise TransactionError(
            f"An attempt to mix objects belonging to different transactions: {item!r} added to {attr.qualname}"
        )
    if item._status_ >= DELETED:
        raise OperationWithDeletedObjectError(f"{item!r} was deleted and cannot be added to {attr.qualname}")
    return item


def link(attr: SetAttr, owner: Any, item: Any, add: bool) -> None:
    """Add or remove the many-to-many link owner <-> item, in memory and as a pending change."""
    reverse = attr.reverse
    data = attr.data(owner)
    if data is not None and data.loaded and (item in data.items) == add:
        return  # already linked (or already not)
    for side, this, other in ((attr, owner, item), (reverse, item, owner)):
        data = side.data(this)
        if data is not None:
            if add:
                data.items[other] = None
            else:
                data.items.pop(other, None)
    primary, p_owner, p_item = (attr, owner, item) if attr.m2m_primary else (reverse, item, owner)
    changes = owner._cache_.m2m.setdefault(primary, ({}, {}))
    added, removed = changes
    undo, do = (removed, added) if add else (added, removed)
    keys = [(p_owner, p_item)]
    if attr is reverse and p_owner is not p_item:
        keys.append((p_item, p_owner))  # a symmetric relationship stores both directions
    for key in keys:
        if key in undo:
            del undo[key]
        else:
            do[key] = None


class JoinMembership(Expr):
    """``pk IN (SELECT ... FROM join table WHERE owner = ?)``: members of a many-to-many collection."""

    __slots__ = ("attr", "owner")

    def __init__(self, attr: SetAttr, owner: Any) -> None:
        self.attr = attr
        self.owner = owner

    def entities(self) -> Iterator[Any]:
        yield self.attr.py_type

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        attr = self.attr
        owner = self.owner
        owner_key = reference_to_db(owner)
        if len(attr.owner_columns) == 1:
            is_owner: Any = Equals(attr.owner_columns[0], owner_key)
        else:
            is_owner = AllEqual(attr.owner_columns, key_db_values(type(owner), owner_key))
        members = Select(attr.join_table, attr.target_columns, where=(is_owner,))
        target_key = attr.py_type._pk_columns_
        return InSubquery(target_key[0] if len(target_key) == 1 else target_key, members).sql(dialect, params)


# -- loading and prefetch ------------------------------------------------------------------------


# -- deletion ----------------------------------------------------------------------------------------


def unlink_steps(obj: Any, cascading: bool = False) -> Steps[None]:
    """Before ``obj`` is deleted: cascade, clear or refuse according to each relationship.

    ``cascading`` is set for the objects a cascade reaches: the first object's deletion loaded
    their collections already.
    """
    entity = type(obj)
    if not cascading and entity._collections_:
        yield from _load_cascade_steps(obj)
    for attr in entity._collections_:
        data = attr.data(obj)
        if obj._status_ != CREATED and (data is None or not data.loaded):
            if not obj._cache_.is_alive:
                raise obj._cache_.closed_error(f"Cannot load collection {obj!r}.{attr.name}")
            yield from load_collections_steps(attr, [obj])
        members = list(attr.ensure_data(obj).items)
        if attr.is_m2m:
            for member in members:
                link(attr, obj, member, add=False)
            continue
        reverse = attr.reverse
        members = [m for m in members if m._status_ < DELETED]
        if not members:
            continue
        if _cascades(attr):
            for member in members:
                yield from member._delete_steps_(cascading=True)
        elif reverse.is_required:
            raise ConstraintError(
                f"Cannot delete object {obj!r}, because it has non-empty set of {attr.name}, "
                f"and 'cascade_delete' option of {attr!r} is not set"
            )
        else:
            for member in members:
                reverse.__set__(member, None)
    for attr in entity._references_:
        if attr.is_column:
            relink(attr, obj, attr.get_raw(obj), None) if isinstance(
                attr.reverse, SetAttr
            ) or attr.reverse.is_column else _forget_partner(attr, obj)
            continue
        partner = yield from one_to_one_partner_steps(attr, obj)
        if partner is None or partner._status_ >= DELETED:
            continue
        reverse = attr.reverse
        if attr.cascade_delete:
            yield from partner._delete_steps_()
        elif reverse.is_required:
            raise ConstraintError(
                f"Cannot delete object {obj!r}, because it has associated {attr.name}, "
                f"and 'cascade_delete' option of {attr!r} is not set"
            )
        else:
            reverse.__set__(partner, None)


def reference_on_delete(attr: Any) -> str | None:
    """The ``ON DELETE`` action of the foreign key of column reference ``attr``: ``CASCADE`` where
    deleting the target deletes the object, ``SET NULL`` where it clears an optional reference.

    The session already does the same before it deletes the target (``unlink_steps``, hooks
    included) and sends the changes of the referring rows first; the database's action covers
    rows the session did not load, as in a bulk ``DELETE`` or one sent as raw SQL.
    """
    reverse = attr.reverse
    if reverse is None:
        return None
    if _cascades(reverse) if isinstance(reverse, SetAttr) else reverse.cascade_delete:
        return "CASCADE"
    return "SET NULL" if not attr.is_required and attr.nullable else None


def _cascades(attr: SetAttr) -> bool:
    """Whether deleting the owner of one-to-many collection ``attr`` deletes its members."""
    return bool(attr.cascade_delete if attr.cascade_delete is not None else attr.reverse.is_required)


def _load_cascade_steps(obj: Any) -> Steps[None]:
    """Load the collections deleting ``obj`` walks, a level of the cascade at a time.

    One query per collection attribute and level, instead of one per object.
    """
    level = [obj]
    reached = {id(obj)}
    while level:
        unloaded: dict[Any, list[Any]] = {}
        for owner in level:
            if owner._status_ == CREATED:
                continue
            for attr in type(owner)._collections_:
                data = attr.data(owner)
                if data is None or not data.loaded:
                    unloaded.setdefault(attr, []).append(owner)
        for attr, owners in unloaded.items():
            yield from load_collections_steps(attr, owners)
        following = []
        for owner in level:
            for attr in type(owner)._collections_:
                if attr.is_m2m or not _cascades(attr):
                    continue
                for member in attr.ensure_data(owner).items:
                    if member._status_ < DELETED and id(member) not in reached:
                        reached.add(id(member))
                        following.append(member)
        level = following


def _forget_partner(attr: Any, obj: Any) -> None:
    partner = known_object(attr.py_type, obj._cache_, attr.get_raw(obj))
    if partner is not None and attr.reverse.get_raw(partner, None) is obj:
        attr.reverse.set_raw(partner, None)


# -- mapping -----------------------------------------------------------------------------------------


def resolve_relations(db: Any) -> None:
    """Resolve target entities and reverse attributes of every relationship of ``db``."""
    entities = db.entities
    relations = [a for e in entities.values() for a in (*e._references_, *e._collections_) if a.entity is e]
    for attr in relations:
        target = attr.py_type
        if isinstance(target, FunctionType):
            target = entity_from_function(attr, target)
        if isinstance(target, str):
            found = entities.get(target)
            if found is None:
                raise noted(
                    ERDiagramError(f"Entity definition {target} was not found"), f"used by {attr.qualname}"
                )
            target = found
        if "_is_base_" in target.__dict__:
            raise TypeError(
                f"Cannot link attribute {attr.qualname} to abstract Entity class. Use specific Entity subclass instead"
            )
        if getattr(target, "_database_", None) is not db:
            raise noted(
                ERDiagramError(
                    "Interrelated entities must belong to same database. "
                    f"Entities {attr.entity.__name__} and {target.__name__} belongs to different databases"
                ),
                f"used by {attr.qualname}",
            )
        attr.py_type = target
    for attr in relations:
        if not isinstance(attr.reverse, (str, type(None), SetAttr, Column)):
            raise ERDiagramError(
                f"Value of 'reverse' option must be string. Got: {type(attr.reverse)!r} ({attr.qualname})"
            )
    for attr in relations:
        if isinstance(attr.reverse, (str, type(None))):
            _resolve_reverse(attr)
        else:
            other = attr.reverse  # given as the attribute itself
            named = other.reverse
            if other.entity is not attr.py_type or not (
                named is None or named is attr or (isinstance(named, str) and named == attr.name)
            ):
                raise ERDiagramError(f"Inconsistent reverse attributes {attr.qualname} and {other.qualname}")
            other.reverse = attr
    _check_cascade_delete(relations)
    for attr in relations:
        if attr.reverse.volatile and not attr.volatile:
            # members or keys changed behind the session on one side change the other side too
            attr.volatile = True
            if not attr.is_collection:
                attr.checked = False
    for attr in relations:
        _classify(attr)


def _check_cascade_delete(relations: list[Any]) -> None:
    """``cascade_delete=True`` goes on one side of a relationship, never on a collection whose reverse is
    a collection too (a member may belong to several owners); ``fk_name`` goes on the reference."""
    for attr in relations:
        reverse = attr.reverse
        if attr.cascade_delete and reverse.cascade_delete and reverse is not attr:
            raise TypeError(
                f"'cascade_delete' option cannot be set for both sides of relationship "
                f"({attr.qualname} and {reverse.qualname}) simultaneously"
            )
    for attr in relations:
        reverse = attr.reverse
        if attr.cascade_delete and isinstance(reverse, SetAttr):
            raise TypeError(
                f"'cascade_delete' option cannot be set for attribute {attr.qualname}, "
                f"because reverse attribute {reverse.qualname} is collection"
            )
        if isinstance(attr, SetAttr) and not isinstance(reverse, SetAttr) and attr.fk_name is not None:
            # the foreign key is the reference's column: its declaration names it
            raise TypeError(f"You should specify fk_name in {reverse.qualname} instead of {attr.qualname}")


def entity_from_function(attr: Any, function: Any) -> Any:
    """The entity class a declaration like ``Required(lambda: Car)`` names, called at mapping time."""
    try:
        target = function()
    except Exception as exc:
        raise ERDiagramError(
            f"The entity type of {attr.qualname} could not be resolved: the function given as its type "
            f"raised {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(target, type) and issubclass(target, EntityBase)):
        raise TypeError(f"Invalid type of attribute {attr.qualname}: expected entity class, got {target!r}")
    return target


def _candidates(attr: Any) -> list[Any]:
    target = attr.py_type
    return [
        other
        for other in (*target._references_, *target._collections_)
        if other is not attr and other.py_type is attr.entity
    ]


def _resolve_reverse(attr: Any) -> None:
    target = attr.py_type
    name = attr.reverse
    if name is not None:
        if not isinstance(name, str):
            raise ERDiagramError(f"Value of 'reverse' option must be string. Got: {type(name)!r}")
        other = target._relations_by_name_.get(name)
        if other is None:
            raise noted(
                ERDiagramError(f"Reverse attribute {target.__name__}.{name} not found"),
                f"for {attr.qualname}",
            )
    else:
        explicit = [o for o in _candidates(attr) if isinstance(o.reverse, str) and o.reverse == attr.name]
        candidates = explicit or [o for o in _candidates(attr) if o.reverse is None or o.reverse is attr]
        if not candidates:
            raise ERDiagramError(f"Reverse attribute for {attr.qualname} not found")
        if len(candidates) > 1:
            raise ERDiagramError(
                f"Ambiguous reverse attribute for {attr.qualname}. Use the 'reverse' parameter for pointing to right attribute"
            )
        other = candidates[0]
    named = other.reverse
    if other.py_type is not attr.entity or not (
        named is None or named is attr or (isinstance(named, str) and named == attr.name)
    ):
        raise ERDiagramError(f"Inconsistent reverse attributes {attr.qualname} and {other.qualname}")
    attr.reverse = other
    other.reverse = attr


def _classify(attr: Any) -> None:
    reverse = attr.reverse
    if isinstance(attr, SetAttr):
        if isinstance(reverse, SetAttr):
            attr.is_m2m = True
            first, second = sorted((attr, reverse), key=lambda a: (a.entity.__name__, a.name))
            attr.m2m_primary = attr is first
            if attr.table and reverse.table and attr.table != reverse.table:
                raise MappingError(
                    f"Parameter 'table' for {first.qualname} and {second.qualname} do not match"
                )
            if attr is reverse:  # symmetric (``friends``): named after the entity and the attribute
                default = f"{attr.entity.__name__}_{attr.name}"
            else:
                default = f"{first.entity.__name__}_{second.entity.__name__}"
            attr.join_table = attr.table or reverse.table or default
        return
    if isinstance(reverse, SetAttr):
        attr.is_column = True
    else:
        if attr.is_required and reverse.is_required:
            raise ERDiagramError(
                f"At least one attribute of one-to-one relationship {attr.qualname} - {reverse.qualname} must be optional"
            )
        if attr.is_pk != reverse.is_pk:
            attr.is_column = attr.is_pk  # a key made of the reference is stored in the row
        elif attr.is_required != reverse.is_required:
            attr.is_column = attr.is_required
        elif attr.column_given != reverse.column_given:
            attr.is_column = attr.column_given
        elif attr is reverse or attr.column_given:
            # symmetric (``spouse``), or both sides name their column: each row holds its partner's key
            attr.is_column = True
        elif attr.entity is not reverse.entity:
            attr.is_column = attr.entity.__name__ < reverse.entity.__name__
        else:
            attr.is_column = attr.order < reverse.order  # the one declared first
        if attr.is_column:
            attr.unique = True


def resolve_columns(db: Any, normalize: Any) -> None:
    """The database columns of every attribute and join table of ``db`` (column names normalized).

    A reference has one column per column of its target's primary key: its own name when the key
    has one column, else its name joined to each of the key's column names (``course_name``,
    ``course_semester``); ``columns=[...]`` names them. A join table has the key columns of both
    sides, named after the entities (``student``, ``course_name``, ``course_semester``).
    """
    resolving: list[Any] = []

    def pk_leaves(entity: Any) -> tuple[tuple[str, Any], ...]:
        leaves = entity.__dict__.get("_pk_leaves_")
        if leaves is not None:
            return leaves  # type: ignore[no-any-return]
        if entity in resolving:
            chain = " -> ".join(e.__name__ for e in (*resolving[resolving.index(entity) :], entity))
            raise ERDiagramError(f"The primary key of {entity.__name__} refers to itself: {chain}")
        resolving.append(entity)
        leaves = tuple(leaf for attr in entity._pk_attrs_ for leaf in attr_leaves(attr))
        resolving.pop()
        entity._pk_leaves_ = leaves
        entity._pk_columns_ = tuple(column for column, _ in leaves)
        return leaves

    def attr_leaves(attr: Any) -> tuple[tuple[str, Any], ...]:
        if attr.column_names:
            return tuple(zip(attr.column_names, attr.leaves))
        given = attr.columns_given
        if not attr.is_reference:
            if given is not None and len(given) > 1:
                raise MappingError(
                    f"{attr.qualname} is stored in one column, but columns= names {len(given)}"
                )
            attr.column_names = (attr.column,)
            attr.leaves = (attr,)
            return ((attr.column, attr),)
        target = attr.py_type
        target_leaves = pk_leaves(target)
        if given is None and attr.column_given and len(target_leaves) > 1:
            given = (attr.column,)
        if given is not None:
            if len(given) != len(target_leaves):
                raise noted(
                    MappingError(f"Invalid number of columns specified for {attr.qualname}"),
                    f"{attr.qualname} names {len(given)} column(s), but the primary key "
                    f"of {target.__name__} has {len(target_leaves)}",
                )
            names = given
        elif len(target_leaves) == 1:
            names = (attr.column,)
        else:
            names = tuple(normalize(f"{attr.name}_{column}") for column, _ in target_leaves)
        attr.column_names = names
        attr.leaves = tuple(leaf for _, leaf in target_leaves)
        attr.width = len(names)
        attr.column = names[0]
        return tuple(zip(names, attr.leaves))

    entities = list(db.entities.values())
    for entity in entities:
        pk_leaves(entity)
        for attr in entity._attrs_:
            if attr.is_reference and not attr.is_column:
                attr.column_names = ()
                attr.leaves = ()
            else:
                attr_leaves(attr)
    for entity in entities:
        for attr in entity._collections_:
            if attr.is_m2m and attr.m2m_primary:
                _join_columns(attr, normalize)


def _join_columns(attr: Any, normalize: Any) -> None:
    """The columns of the join table of many-to-many ``attr`` (its primary side) and its reverse."""
    reverse = attr.reverse

    def default(entity: Any) -> tuple[str, ...]:
        base = entity.__name__.lower()
        if len(entity._pk_columns_) == 1:
            return (normalize(base),)
        return tuple(normalize(f"{base}_{column}") for column in entity._pk_columns_)

    def named(entity: Any, *options: tuple[Any, Any]) -> tuple[str, ...] | None:
        """The join table columns for ``entity``'s key from the first option given (with the attribute giving it)."""
        for option, giver in options:
            if option is None:
                continue
            names = (option,) if isinstance(option, str) else tuple(option)
            if len(names) != len(entity._pk_columns_):
                raise noted(
                    MappingError(f"Invalid number of columns for {giver.qualname}"),
                    f"{giver.qualname}: {len(names)} join table column(s) given for the primary key of "
                    f"{entity.__name__}, which has {len(entity._pk_columns_)}",
                )
            return names
        return None

    own_default, other_default = default(attr.entity), default(attr.py_type)
    if attr is reverse or own_default == other_default:
        other_default = tuple(f"{c}_2" for c in other_default)
    own = named(
        attr.entity,
        (attr.reverse_column, attr),
        (attr.reverse_columns, attr),
        (reverse.column, reverse),
        (reverse.columns, reverse),
    )
    other = named(
        attr.py_type,
        (attr.column, attr),
        (attr.columns, attr),
        (reverse.reverse_column, reverse),
        (reverse.reverse_columns, reverse),
    )
    attr.owner_columns = own or own_default
    attr.target_columns = other or other_default
    if reverse is not attr:
        reverse.join_table = attr.join_table
        reverse.owner_columns = attr.target_columns
        reverse.target_columns = attr.owner_columns
