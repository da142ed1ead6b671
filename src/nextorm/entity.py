"""Entities: the metaclass that maps a class onto a table, and the instance API."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from ._impl import (
    CREATED,
    DELETED,
    GONE,
    LOADED,
    MODIFIED,
    EntityBase,
    EntityMetaBase,
    attribute_dict,
    get_now,
)
from .attributes import (
    Attribute,
    ClassCodeMember,
    CompositeKey,
    Discriminator,
    InstanceDictMember,
    PrimaryKey,
    Reference,
    status_word,
)
from .display import describe
from .exceptions import (
    ERDiagramError,
    MultipleObjectsFoundError,
    ObjectCopyError,
    ObjectNotFound,
    OperationWithDeletedObjectError,
    ReadOnlyAttributeError,
    TransactionError,
    TransactionIntegrityError,
    UnknownAttributeError,
    ValidationError,
)
from .expressions import Expr, check_entities
from .identity import UniqueKey, flat_key, nested_key
from .loading import fetch, fetch_steps, load_attr_steps, load_missing_steps, refresh_steps
from .query import Query, caller_namespace, conditions_for, keyword_get_sql, query_of
from .relationships import SetAttr, SetInstance, claim_partner, relink, unlink_steps
from .session import EntityProxy, SessionCache, active_session, require_session
from .steps import Steps, run_async, run_sync
from .translator import lambda_var, repeated_lambda
from .types import untracked
from .unitofwork import is_new, savepoint_begin_steps, savepoint_release_steps, savepoint_rollback_steps

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .database import Database

__all__ = ["Entity", "EntityMeta", "EntityProxy", "UniqueKey", "make_proxy"]

#: an entity class, in the signatures of EntityMeta (a metaclass method's ``cls``)
_E = TypeVar("_E")

_new_object_numbers = itertools.count(1)

#: how many times get_or_create() reads again after its INSERT lost a race
GET_OR_CREATE_ATTEMPTS = 5


class _Owner:
    """Stands for an object being constructed when its references are validated."""

    __slots__ = ("_cache_",)

    def __init__(self, cache: Any) -> None:
        self._cache_ = cache


class EntityMeta(EntityMetaBase):
    """Maps an entity class onto its table and gives it ``Entity[pk]`` and iteration."""

    # Put in every entity's namespace by ``__new__`` (the other class attributes are set by
    # ``_finish_declaration_`` and ``_finish_mapping_``).
    _table_: str
    _table_given_: bool
    # Set by ``__new__`` and ``_finish_declaration_``: the declaration and the entity hierarchy.
    _attrs_: tuple[Any, ...]
    _attrs_by_name_: dict[str, Any]
    _relations_by_name_: dict[str, Any]
    _unique_keys_: tuple[Any, ...]
    _root_: Any
    _direct_bases_: tuple[Any, ...]
    _all_bases_: tuple[Any, ...]
    _subclasses_: list[Any]
    _subclass_attrs_: list[Any]
    _subclass_names_: dict[str, Any]
    _next_index_: int
    _discriminator_attr_: Any
    _discriminator_: Any

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], db: Database | None = None
    ) -> Any:
        if namespace.get("_is_base_"):
            return super().__new__(mcs, name, bases, namespace)
        if db is not None:
            # ``class Person(Entity, db=db)``: ``db.Entity`` spelled so that mypy accepts it too
            if bases != (Entity,):
                raise ERDiagramError(f"Entity {name} with db= must derive from nextorm.Entity alone")
            bases = (db.Entity,)
        parents = [b for b in bases if isinstance(b, EntityMeta) and "_is_base_" not in b.__dict__]
        if parents:
            return mcs._new_subclass_(name, bases, namespace, parents)
        base = bases[0] if bases else None
        db = getattr(base, "_database_", None)
        if base is Entity:
            raise ERDiagramError("Base Entity does not belong to any database")
        if len(bases) != 1 or db is None:
            raise ERDiagramError(f"Entity {name} must derive from exactly one db.Entity")
        check_class_statement(name, namespace)
        if base is not db.Entity:
            raise ERDiagramError(f"Entity {name} must derive from db.Entity or from other entities")
        _check_new_name(db, name)

        declared, collections, composite = _declared_members(namespace)
        for key in composite:
            key.attrs = tuple(_key_attr(name, namespace, part, key) for part in key.attrs)
        primaries = [key for key in composite if key.primary]
        pk_names = [key for key, value in declared if isinstance(value, PrimaryKey)]
        if len(pk_names) + len(primaries) > 1:
            raise ERDiagramError("Only one primary key can be defined in each entity class")
        if primaries:
            pk_attrs = list(primaries[0].attrs)
        elif pk_names:
            pk_attrs = [namespace[pk_names[0]]]
        else:
            if "id" in namespace:
                raise ERDiagramError(
                    f"Cannot create default primary key attribute for {name} because name 'id' is already "
                    f"in use. Please create a PrimaryKey attribute for entity {name} or rename the 'id' attribute"
                )
            auto_pk = PrimaryKey(int, auto=True)
            auto_pk.is_implicit = True
            declared.insert(0, ("id", auto_pk))
            namespace["id"] = auto_pk
            pk_attrs = [auto_pk]
        names = {id(value): key for key, value in declared}
        for attr in pk_attrs:
            if id(attr) not in names:
                raise ERDiagramError(f"Primary key part {attr!r} of {name} is not an attribute of {name}")
        for key in composite:
            check_key_parts(name, key, names, namespace)
        pk_ids = {id(a) for a in pk_attrs}
        ordered = pk_attrs + [value for _, value in declared if id(value) not in pk_ids]
        slots = namespace.pop("__slots__", ())
        slots = (slots,) if isinstance(slots, str) else tuple(slots)
        # ``__dict__`` holds the attributes of subclasses, which add no slots (see InstanceDictMember)
        namespace["__slots__"] = (
            slots
            + ("__dict__",) * ("__dict__" not in slots)
            + tuple(f"_v_{names[id(a)]}_" for a in ordered if not a.is_discriminator)
            + tuple(f"_v_{key}_" for key, _ in collections)
        )
        namespace["_table_given_"] = "_table_" in namespace
        namespace.setdefault("_table_", name)
        cls = super().__new__(mcs, name, bases, namespace)

        for index, attr in enumerate(ordered):
            attr_name = names[id(attr)]
            if attr.entity is not None:
                raise ERDiagramError(f"Duplicate use of attribute {attr!r} in entity {name}")
            attr._link_(cls, attr_name)
            member = _CLASS_CODE if attr.is_discriminator else cls.__dict__[f"_v_{attr_name}_"]
            attr._bind_slot_(member, index)
            if id(attr) in pk_ids:
                attr.is_pk = True
                attr.readonly = True
                attr.nullable = False
        for key, collection in collections:
            if collection.entity is not None:
                raise ERDiagramError(f"Duplicate use of attribute {collection!r} in entity {name}")
            collection._link_(cls, key, cls.__dict__[f"_v_{key}_"])
        cls._finish_declaration_(db, ordered, pk_attrs, composite, [c for _, c in collections])
        discriminators = [a for a in ordered if a.is_discriminator]
        if len(discriminators) > 1:
            raise ERDiagramError(f"Entity {name} declares more than one Discriminator attribute")
        cls._start_hierarchy_(discriminators[0] if discriminators else None, namespace)
        db.entities[name] = cls
        return cls

    def _start_hierarchy_(cls, discriminator: Any, namespace: dict[str, Any]) -> None:
        """A root entity: its own hierarchy, with a discriminator when declared or given a value."""
        cls._root_ = cls
        cls._direct_bases_ = ()
        cls._all_bases_ = ()
        cls._subclasses_ = []
        cls._subclass_attrs_ = []
        cls._subclass_names_ = {}
        cls._next_index_ = len(cls._attrs_)
        cls._discriminator_attr_ = discriminator
        cls._discriminator_ = namespace.get("_discriminator_")
        if discriminator is None and cls._discriminator_ is not None:
            cls._add_default_discriminator_()
        elif discriminator is not None:
            cls._take_discriminator_(namespace)

    def _add_default_discriminator_(cls) -> None:
        """Give the root entity the ``classtype`` column (Pony's name) once it has a subclass."""
        if "classtype" in cls._attrs_by_name_ or "classtype" in cls._relations_by_name_:
            raise ERDiagramError(
                f"Cannot create discriminator column for {cls.__name__} automatically "
                "because name 'classtype' is already in use"
            )
        attr: Discriminator[str] = Discriminator(str, column="classtype")
        attr.is_implicit = True
        attr._link_(cls, "classtype")
        attr._bind_slot_(_CLASS_CODE, cls._next_index_)
        cls._next_index_ += 1
        type.__setattr__(cls, "classtype", attr)
        cls._attrs_ = (*cls._attrs_, attr)
        cls._attrs_by_name_ = {a.name: a for a in cls._attrs_}
        cls._discriminator_attr_ = attr
        cls._take_discriminator_(cls.__dict__)

    def _take_discriminator_(cls, namespace: Any) -> None:
        """Settle this class's discriminator value (``_discriminator_``) and record its class."""
        attr = cls._discriminator_attr_
        code = attr.code_for(cls, namespace.get("_discriminator_"))
        other = attr.code2cls.get(code)
        if other is not None and other is not cls:
            raise ERDiagramError(
                f"Entities {other.__name__} and {cls.__name__} have the same discriminator value {code!r}"
            )
        type.__setattr__(cls, "_discriminator_", code)
        attr.code2cls[code] = cls

    @classmethod
    def _new_subclass_(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], parents: list[Any]
    ) -> Any:
        """``class Student(Person)``: a class of Person's hierarchy, stored in Person's table."""
        dbs = {parent._database_ for parent in parents}
        if len(dbs) > 1:
            raise ERDiagramError(
                "With multiple inheritance of entities, all entities must belong to the same database"
            )
        db = dbs.pop()
        root = parents[0]._root_
        for parent in parents[1:]:
            if parent._root_ is not root:
                raise ERDiagramError(
                    "Multiple inheritance graph must be diamond-like. "
                    f"Entity {name} inherits from {root.__name__} and {parent._root_.__name__} entities "
                    "which don't have common base class."
                )
        _check_new_name(db, name)
        if root._discriminator_attr_ is None:
            root._add_default_discriminator_()
        inherited: dict[str, Any] = {}
        for parent in parents:
            for attr in (*parent._attrs_, *parent._collections_):
                known = inherited.setdefault(attr.name, attr)  # a diamond brings the root's twice
                if known is not attr:
                    raise ERDiagramError(
                        f"Attribute {known!r} clashes with attribute {attr!r} in derived entity {name}"
                    )
        all_bases: dict[Any, None] = {}
        for parent in parents:
            all_bases.update(dict.fromkeys(parent._all_bases_))
            all_bases[parent] = None
        declared, collections, composite = _declared_members(namespace)
        members: list[tuple[str, Any]] = [*declared, *collections]
        for key, value in members:
            if key in inherited:
                raise ERDiagramError(f"Name {key!r} hides base attribute {inherited[key]!r}")
            if isinstance(value, PrimaryKey) or any(k.primary for k in composite):
                raise ERDiagramError("Primary key cannot be redefined in derived classes")
            if isinstance(value, Discriminator):
                raise ERDiagramError(f"Discriminator attribute {name}.{key} cannot be declared in subclass")
            if value.entity is not None:
                raise ERDiagramError(f"Attribute {value!r} cannot be reused as {name}.{key}")
        # a key or index of a derived class may name the attributes it inherits, or give them
        known_names = {**inherited, **dict(members)}
        for key in composite:
            key.attrs = tuple(_key_attr(name, known_names, part, key) for part in key.attrs)
        for key, _ in declared:
            for base in all_bases:
                known = base._subclass_names_.get(key)
                if known is not None:
                    raise ERDiagramError(
                        f"Attribute {name}.{key} conflicts with attribute {known!r} because both entities "
                        f"inherit from {root.__name__}. To fix this, move attribute definition to base class"
                    )
        namespace["__slots__"] = ()
        namespace["_table_given_"] = True
        namespace["_table_"] = root._table_
        cls = EntityMetaBase.__new__(mcs, name, bases, namespace)
        for key, attr in declared:
            attr._link_(cls, key)
            attr._bind_slot_(InstanceDictMember(f"_v_{key}_"), root._next_index_)
            root._next_index_ += 1
        for key, collection in collections:
            collection._link_(cls, key, InstanceDictMember(f"_v_{key}_"))
        attrs: list[Any] = list(dict.fromkeys(a for a in inherited.values() if isinstance(a, Attribute)))
        attrs += [value for _, value in declared]
        inherited_collections = [a for a in inherited.values() if isinstance(a, SetAttr)]
        inherited_composite = list(
            dict.fromkeys(k for parent in parents for k in parent._composite_unique_keys_)
        )
        cls._finish_declaration_(
            db,
            attrs,
            list(root._pk_attrs_),
            inherited_composite + composite,
            inherited_collections + [c for _, c in collections],
        )
        cls._root_ = root
        cls._direct_bases_ = tuple(parents)
        cls._all_bases_ = tuple(all_bases)
        cls._subclasses_ = []
        cls._subclass_attrs_ = []
        cls._discriminator_attr_ = root._discriminator_attr_
        for base in all_bases:
            base._subclasses_.append(cls)
            for _, attr in declared:
                base._subclass_names_[attr.name] = attr
                base._subclass_attrs_.append(attr)
        cls._subclass_names_ = {}
        cls._take_discriminator_(namespace)
        db.entities[name] = cls
        return cls

    def _finish_declaration_(
        cls,
        db: Any,
        ordered: list[Attribute],
        pk_attrs: list[Attribute],
        composite: list[Any],
        collections: list[Any],
    ) -> None:
        cls._database_ = db
        cls._attrs_ = tuple(ordered)
        cls._attrs_by_name_ = {attr.name: attr for attr in ordered}
        cls._pk_attrs_ = tuple(pk_attrs)
        cls._npk_ = len(pk_attrs)
        cls._pk_names_ = frozenset(a.name for a in pk_attrs)
        cls._auto_pk_ = pk_attrs[0] if len(pk_attrs) == 1 and pk_attrs[0].auto else None
        cls._references_ = tuple(a for a in ordered if a.is_reference)
        cls._pk_has_refs_ = any(a.is_reference for a in pk_attrs)
        cls._collections_ = tuple(collections)
        cls._relations_by_name_ = {a.name: a for a in (*cls._references_, *collections)}
        cls._composite_unique_keys_ = tuple(key for key in composite if not key.primary and key.unique)
        cls._composite_indexes_ = tuple(key for key in composite if not key.unique)

    def _finish_mapping_(cls) -> None:
        """Once relationships are resolved: the column lists, masks and keys SQL is built from.

        Called for every entity in declaration order, so a class's bases are finished before it.
        """
        root = cls._root_
        if root is not cls:
            cls._table_ = root._table_
        for attr in cls._references_:
            if attr.is_column and attr.entity is cls:
                cast(Reference, attr)._target_ready_()
        columns = tuple(a for a in cls._attrs_ if a.is_column)
        cls._columns_ = columns
        # a query of a class with subclasses reads their columns too: its rows may be of any of them
        loaded = dict.fromkeys(columns)
        for sub in cls._subclasses_:
            loaded.update(dict.fromkeys(a for a in sub._attrs_ if a.is_column))
        cls._loaded_columns_ = tuple(loaded)
        cls._fk_refs_ = tuple(a for a in cls._references_ if a.is_column)
        cls._select_attrs_ = tuple(a for a in cls._loaded_columns_ if not a.lazy or a.is_pk)
        #: get(**values): the SELECT text per shape of the keywords (see keyword_get_sql)
        cls._keyword_sql_: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        #: what a blocking get() on an async database names instead
        cls._aget_hint_ = f"await {cls.__name__}.aget(...)"
        #: what a blocking fetch of a query on an async database names instead
        cls._afetch_hint_ = f"await {cls.__name__}.select(...).afetch()"
        #: a query's SELECT text per shape of its conditions, order and limit (see plain_select_sql)
        cls._select_sql_: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        #: order_by(attr) of this entity's queries: one shared order and its ORDER BY keys, by the
        #: ids of the attribute and of that order (see Query.order_by)
        cls._orders_: dict[int, tuple[Any, ...]] = {}
        #: what to_dict() reads, at 2 * with_collections + with_lazy; see _dict_plan
        cls._dict_plans_: list[tuple[Any, ...] | None] = [None] * 4
        #: what a raw SELECT's rows fill, per list of its column names (see loading.materialize_raw)
        cls._raw_plans_: dict[tuple[str, ...], tuple[Any, ...]] = {}
        cls._select_converters_ = tuple(a.from_db for a in cls._select_attrs_)
        cls._select_columns_ = tuple(c for a in cls._select_attrs_ for c in a.column_names)
        #: whether an attribute has several columns (a reference to a composite key): rows are folded
        cls._wide_ = any(a.width > 1 for a in columns)
        cls._check_mask_ = sum(a.bit for a in columns if a.checked and not a.is_pk)
        discriminator = cls._discriminator_attr_
        cls._attr_at_ = cls._attrs_ if discriminator is None else {a.index: a for a in cls._attrs_}
        cls._kind_filter_: tuple[Any, ...] = ()
        if discriminator is not None and root is not cls:
            codes = [cls._discriminator_, *(sub._discriminator_ for sub in cls._subclasses_)]
            cls._kind_filter_ = (discriminator.in_(codes),)
        inherited = {id(key): key for base in cls._direct_bases_ for key in base._unique_keys_}
        keys = list(inherited.values())
        keys += [UniqueKey((a,)) for a in columns if a.unique and not a.is_pk and a.entity is cls]
        known = {frozenset(map(id, key.attrs)) for key in keys}
        keys += [
            UniqueKey(tuple(key.attrs))
            for key in cls._composite_unique_keys_
            if frozenset(map(id, key.attrs)) not in known
        ]
        cls._unique_keys_ = tuple(keys)
        for attr in cls._attrs_:
            if attr.entity is cls:
                attr.unique_keys = tuple(key for key in keys if any(a is attr for a in key.attrs))
                attr.tracked = bool(attr.unique_keys)

    if TYPE_CHECKING:
        # ``Person[pk]`` is the compiled identity-map lookup of EntityMetaBase; typed here per class
        def __getitem__(cls: type[_E], key: Any) -> _E: ...

        # ``iter(Person)`` is EntityMetaBase's C slot too (a QueryIterator without a query)
        def __iter__(cls: type[_E]) -> Iterator[_E]: ...

    def _missing_attr_(cls, name: str) -> Any:
        # a class attribute that is not found (EntityMetaBase calls this hook; a metaclass
        # __getattr__ would slow every class attribute read down): a query of a base class may
        # test its subclasses' attributes, Person.gpa is Student.gpa
        attr = cls.__dict__.get("_subclass_names_", {}).get(name)
        if attr is None:
            raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")
        return attr

    def __repr__(cls) -> str:
        return f"<Entity {cls.__name__}>"


def check_class_statement(name: str, namespace: dict[str, Any]) -> None:
    """Refuse an entity name or ``_table_`` no table could be made of."""
    if not name[:1].isupper():
        raise ERDiagramError(f"Entity class name should start with a capital letter. Got: {name}")
    table = namespace.get("_table_")
    if table is not None and not isinstance(table, str):
        raise TypeError(f"{name}._table_ property must be a string. Got: {table!r}")


def check_key_parts(name: str, key: CompositeKey, names: dict[int, str], namespace: dict[str, Any]) -> None:
    """Refuse a composite key over attributes that are not this entity's or cannot be part of a key."""
    what = "primary key" if key.primary else "unique index"
    for attr in key.attrs:
        if isinstance(attr, SetAttr):
            where = next((f"{name}.{k}" for k, v in namespace.items() if v is attr), repr(attr))
            raise TypeError(f"Set attribute {where} cannot be part of {what}")
        if id(attr) not in names:
            raise ERDiagramError(f"Invalid use of attribute {attr!r} in entity {name}")
        where = f"{name}.{names[id(attr)]}"
        if attr.py_type is float:
            raise TypeError(f"Attribute {where} of type float cannot be part of {what}")
        if key.primary and not attr.is_required:
            raise TypeError(f"Optional attribute {where} cannot be part of primary key")
        if key.primary and attr.volatile:
            raise TypeError(f"Volatile attribute {where} cannot be part of primary key")


#: the methods the unit of work calls around an object's statement
_SAVE_HOOKS = (
    "_before_save_",
    "_after_save_",
    "before_insert",
    "after_insert",
    "before_update",
    "after_update",
    "before_delete",
    "after_delete",
)


class Entity(EntityBase, metaclass=EntityMeta):
    """Base of every entity class; ``db.Entity`` is the one bound to a database."""

    __slots__ = ()
    _is_base_ = True
    _database_: Any = None
    _cache_: SessionCache
    _attrs_: tuple[Attribute[Any], ...] = ()

    if TYPE_CHECKING:
        # the class keyword of ``class Person(Entity, db=db)``, taken by EntityMeta
        def __init_subclass__(cls, db: Database | None = None) -> None: ...

    # -- copying: refused, a session holds one object per row -----------------------------------

    def _attr_changed_(self, attr: Any) -> None:
        """A tracked value of ``attr`` (a Json dict or list, an array) is about to change in place."""
        cache = self._cache_
        status = self._status_
        if not cache.is_alive or status >= DELETED or cache.readonly or cache.session is not active_session():
            attr._check_assign_(self, attr.get_raw(self))
        bit = attr.bit
        if status != CREATED and not self._wbits_ & bit:
            state: Any = self  # _orig_ is declared None on EntityBase; it holds a dict once written
            if state._orig_ is None:
                state._orig_ = {}
            state._orig_[attr.index] = untracked(attr.get_raw(self))
        self._wbits_ |= bit
        if status == LOADED:
            self._status_ = MODIFIED
            cache.dirty[self] = None

    def _copy_refused_(self, what: str) -> ObjectCopyError:
        return ObjectCopyError(
            f"{self!r} cannot be {what}: a session holds one object per row. "
            "Use to_dict() for its values or make_proxy() for a reference usable in other sessions"
        )

    def __copy__(self) -> Any:
        raise self._copy_refused_("copied")

    def __deepcopy__(self, memo: Any) -> Any:
        raise self._copy_refused_("copied")

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise self._copy_refused_("pickled")

    def __reduce__(self) -> Any:
        raise self._copy_refused_("pickled")

    # -- creation ---------------------------------------------------------------------------------

    # ``EntityBase.__init__`` makes a new object: along ``_new_plan_`` (see ``_new_plan``, set on
    # the class when its first object is made; None, inherited, where it does not apply) with
    # ``init_new``, else through ``_init_full_``.
    _new_plan_: Any = None

    def _init_full_(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """``__init__`` where ``init_new`` does not apply: every check, relationships, hierarchies."""
        cls = type(self)
        if args:
            raise TypeError(
                f"{cls.__name__} constructor accept only keyword arguments. "
                f"Got: {len(args)} positional argument{'s' if len(args) > 1 else ''}"
            )
        if not cls._database_._mapped_:
            cls._database_._require_mapping_(cls)
        attrs = cls._attrs_by_name_
        relations = cls._relations_by_name_
        for key, value in kwargs.items():
            if key not in attrs and key not in relations:
                raise UnknownAttributeError(
                    f"Unknown attribute {key!r} of entity {cls.__name__} (value {value!r})"
                )
        cache = require_session().cache_for(cls._database_)
        if cache.readonly:
            raise cache.readonly_error(
                f"create {cls.__name__}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
            )
        values = []
        plan = cls.__dict__.get("_init_plan_")
        if plan is None:
            plan = cls._init_plan_ = tuple(  # type: ignore[attr-defined]  # set here, once per class
                (a, a.name, a.is_reference, a.is_discriminator, a.auto) for a in cls._columns_
            )
            cls._new_plan_ = _new_plan(cls)
        for attr, name, is_reference, is_discriminator, auto in plan:
            if name in kwargs:
                value = (
                    attr.validate(kwargs[name], None)
                    if not is_reference
                    else attr.validate(kwargs[name], _Owner(cache))
                )
                if is_discriminator and value != cls._discriminator_:
                    raise TypeError(
                        f"Invalid discriminator attribute value for {cls.__name__}. "
                        f"Expected: {cls._discriminator_!r}, got: {value!r}"
                    )
            elif auto:
                value = None
            elif is_discriminator:
                value = cls._discriminator_
            else:
                value = attr.default_value()
                value = attr.validate(value) if value is not None else attr.validate(None)
            values.append(value)
        if cls._collections_:
            owner = _Owner(cache)
            for collection in cls._collections_:
                if collection.name in kwargs:  # refused before the object exists anywhere
                    SetInstance(owner, collection)._items(kwargs[collection.name])
        self._init_state_(cache, CREATED)
        for (attr, _, _, _, auto), value in zip(plan, values):
            if value is not None or not auto:
                attr.set_raw(self, value)
        for attr in cls._fk_refs_:
            claim_partner(attr, self, attr.get_raw(self))
        pk = cls._pk_of_values_(values)
        cache.register_new(self, pk)
        cache.new_ids[self] = next(_new_object_numbers)
        cache.dirty[self] = None
        if cls._references_ or cls._collections_:
            self._link_new_(kwargs)

    def _link_new_(self, kwargs: dict[str, Any]) -> None:
        """Bring the reverse sides of a new object's relationships in step."""
        cls = type(self)
        for attr in cls._references_:
            if attr.is_column:
                value = attr.get_raw(self)
                if value is not None:
                    relink(attr, self, None, value)
            else:
                attr.set_raw(self, None)
                if kwargs.get(attr.name) is not None:
                    attr.__set__(self, kwargs[attr.name])
        for collection in cls._collections_:
            collection.ensure_data(self).loaded = True
            if kwargs.get(collection.name) is not None:
                SetInstance(self, collection).add(kwargs[collection.name])

    @classmethod
    def _pk_of_values_(cls, values: list[Any]) -> Any:
        if cls._npk_ == 1:
            return values[0]
        pk = tuple(values[: cls._npk_])
        return None if None in pk else pk

    # -- identity ---------------------------------------------------------------------------------

    def _pk_raw_(self) -> Any:
        """The primary key value without tracking; None for a new object with an auto key."""
        cls = type(self)
        if cls._npk_ == 1:
            return cls._pk_attrs_[0].get_raw(self)
        values = tuple(a.get_raw(self) for a in cls._pk_attrs_)
        return None if None in values else values

    def __repr__(self) -> str:
        pk = self._pk_raw_()
        cls = type(self)
        name = cls.__name__
        if pk is None:
            return f"{name}[new:{self._cache_.new_ids.get(self, '?')}]"
        if cls._pk_has_refs_:
            return f"{name}[{_key_repr(cls, pk)}]"
        if isinstance(pk, tuple):
            return f"{name}[{','.join(map(repr, pk))}]"
        return f"{name}[{pk!r}]"

    # -- ordering: by primary key, so results of objects can be sorted ---------------------------

    def _order_key_(self) -> tuple[int, Any]:
        """Objects with a key in key order, then new objects without one in their order of creation."""
        pk = self._pk_raw_()
        if pk is None:
            return (1, self._cache_.new_ids.get(self, 0))
        return (0, pk)

    def _compare_(self, other: Any) -> Any:
        """``(self key, other key)`` for ordering, or NotImplemented for something not an entity object."""
        if not isinstance(other, Entity):
            return NotImplemented
        return self._order_key_(), other._order_key_()

    def __lt__(self, other: Any) -> Any:
        keys = self._compare_(other)
        return keys if keys is NotImplemented else keys[0] < keys[1]

    def __le__(self, other: Any) -> Any:
        keys = self._compare_(other)
        return keys if keys is NotImplemented else (self is other or keys[0] <= keys[1])

    def __gt__(self, other: Any) -> Any:
        keys = self._compare_(other)
        return keys if keys is NotImplemented else keys[0] > keys[1]

    def __ge__(self, other: Any) -> Any:
        keys = self._compare_(other)
        return keys if keys is NotImplemented else (self is other or keys[0] >= keys[1])

    def get_pk(self) -> Any:
        """The primary key value: one value per key column (a tuple for a composite key, a key made
        of references holding the keys of the objects referred to); flushes a new object to get it."""
        cls = type(self)
        if self._status_ == CREATED and self._pk_raw_() is None:
            self._check_live_("flush object").flush()  # the session's pending changes, in order
        if cls._npk_ == 1 and not cls._pk_has_refs_:
            return cls._pk_attrs_[0].__get__(self, cls)
        for attr in cls._pk_attrs_:
            attr.__get__(self, cls)  # tracked reads of the key
        flat = flat_key(cls, self._pk_raw_())
        return flat[0] if len(flat) == 1 else flat

    # -- instance API ----------------------------------------------------------------------------

    def _check_live_(self, action: str) -> Any:
        cache = self._cache_
        if not cache.is_alive:
            raise cache.closed_error(f"Cannot {action} {self!r}")
        if cache.session is not require_session():
            raise TransactionError(f"Object {self!r} doesn't belong to current transaction")
        return cache

    def set(self, **kwargs: Any) -> None:
        """Assign several attributes at once; nothing is assigned if any value is rejected."""
        cls = type(self)
        self._check_live_("change object")
        if self._status_ >= DELETED:
            raise OperationWithDeletedObjectError(f"{self!r} was {status_word(self._status_)}")
        attrs = cls._attrs_by_name_
        checked = []
        collections = []
        for key, value in kwargs.items():
            attr = attrs.get(key)
            if attr is None:
                collection = cls._relations_by_name_.get(key)
                if collection is None:
                    raise UnknownAttributeError(
                        f"Unknown attribute {key!r} of entity {cls.__name__} (value {value!r})"
                    )
                collections.append((collection, value))
                continue
            if attr.is_pk and attr.get_raw(self) != value:
                raise ReadOnlyAttributeError(
                    f"Cannot change value of primary key attribute {attr.qualname} of {self!r} to {value!r}"
                )
            checked.append((attr, attr.validate(value, self)))
        self._cache_.check_unique(self, {attr: value for attr, value in checked if attr.tracked})
        for attr, value in checked:
            if not attr.is_pk:
                attr.__set__(self, value)
        for collection, value in collections:
            collection.__set__(self, value)

    def to_dict(
        self,
        only: Any = None,
        exclude: Any = None,
        with_collections: bool = False,
        with_lazy: bool = False,
        related_objects: bool = False,
    ) -> dict[str, Any]:
        """Attribute values by name, as Pony gives them.

        ``only``/``exclude`` name attributes (a list, or one string separated by spaces or commas);
        lazy attributes need ``with_lazy`` and collections ``with_collections`` unless named in
        ``only``. Related objects are given as primary keys (collections as sorted lists of them),
        or as the objects themselves with ``related_objects=True``. A new object is flushed first so
        that the dict holds its generated key.
        """
        cls = type(self)
        if self._status_ == CREATED and self._pk_raw_() is None:
            self._check_live_("flush object").flush()
        if only is None and exclude is None:
            # the common call: the attributes to read are known per class, read in one compiled pass
            plan = cls._dict_plans_[(2 if with_collections else 0) + (1 if with_lazy else 0)]
            if plan is None or plan[0] is not cls._attrs_ or plan[1] is not cls._collections_:
                plan = _dict_plan(cls, with_collections, with_lazy)
            values = attribute_dict(self, plan[2], plan[3])
            if plan[4] or plan[5]:
                _relations_in_dict(values, plan[4], plan[5], related_objects)
            return values
        only_names = _names(only)
        exclude_names = _names(exclude) or set()
        for name in (only_names or set()) | exclude_names:
            if name not in cls._attrs_by_name_ and name not in cls._relations_by_name_:
                raise UnknownAttributeError(f"Entity {cls.__name__} does not have attribute {name}")
        result: dict[str, Any] = {}
        for attr in (*cls._attrs_, *cls._collections_):
            if (only_names is not None and attr.name not in only_names) or attr.name in exclude_names:
                continue
            if only_names is None and (
                (attr.lazy and not with_lazy) or (attr.is_collection and not with_collections)
            ):
                continue
            value = attr.__get__(self, cls)
            if attr.is_collection:
                members = sorted(value, key=_pk_order)
                result[attr.name] = members if related_objects else [m.get_pk() for m in members]
            elif attr.is_reference and value is not None and not related_objects:
                result[attr.name] = value.get_pk()
            else:
                result[attr.name] = value
        return result

    def _load_steps_(self) -> Steps[None]:
        self._check_live_("load object")
        missing = [a for a in type(self)._columns_ if not a.is_loaded(self)]
        if missing and self._status_ != CREATED:
            yield from load_missing_steps(self, missing[0], with_lazy=True)

    def load(self) -> None:
        """Load every attribute that is not loaded yet (lazy ones included)."""
        run_sync(self._load_steps_(), "await obj.aload()")

    async def aload(self) -> None:
        """Awaitable ``load()``."""
        await run_async(self._load_steps_())

    def _refresh_steps_(self) -> Steps[None]:
        self._check_live_("refresh object")
        if self._status_ == CREATED:
            yield from self._flush_steps_()
        yield from refresh_steps(self)

    def refresh(self) -> None:
        """Reload every column from the database (pending changes are flushed first).

        The values read become this session's snapshot for optimistic checks, so a row changed
        by another transaction since it was read is not an unrepeatable read after a refresh.
        """
        run_sync(self._refresh_steps_(), "await obj.arefresh()")

    async def arefresh(self) -> None:
        """Awaitable ``refresh()``."""
        await run_async(self._refresh_steps_())

    def _flush_steps_(self) -> Steps[None]:
        cache = self._check_live_("flush object")
        if self in cache.dirty:
            pending = [target for attr in type(self)._fk_refs_ if is_new(target := attr.get_raw(self))]
            yield from cache.flush_steps([*pending, self])

    def flush(self) -> None:
        """Send this object's pending INSERT, UPDATE or DELETE now (and of new objects it refers to)."""
        run_sync(self._flush_steps_(), "await obj.aflush()")

    async def aflush(self) -> None:
        """Awaitable ``flush()``."""
        await run_async(self._flush_steps_())

    def delete(self) -> None:
        """Delete the object (DELETE is sent at the next flush)."""
        run_sync(self._delete_steps_(), "await obj.adelete()")

    async def adelete(self) -> None:
        """Awaitable ``delete()``: loads what cascades and checks need, then deletes."""
        await run_async(self._delete_steps_())

    def _delete_steps_(self, cascading: bool = False) -> Steps[None]:
        cache = self._cache_
        if not cache.is_alive:
            raise cache.closed_error(f"Cannot delete object {self!r}")
        status = self._status_
        if status >= DELETED:
            return
        if cache.session is not require_session():
            raise TransactionError(f"Object {self!r} doesn't belong to current transaction")
        if cache.readonly:
            raise cache.readonly_error(f"delete {self!r}")
        cls = type(self)
        if cls._references_ or cls._collections_:
            yield cache, "ready", ()  # a blocking delete on an async database stops before any change
            yield from unlink_steps(self, cascading)
            if self._status_ >= DELETED:
                return  # a cascade came back to this object and deleted it
        if status == CREATED:
            self._status_ = GONE
            cache.dirty.pop(self, None)
            pk = self._pk_raw_()
            if pk is not None:
                cache.identity_map(type(self)).pop(pk, None)
            cache.forget_unique(self)
            return
        self._status_ = DELETED
        cache.dirty[self] = None

    @property
    def awaitable_attrs(self) -> AwaitableAttrs:
        """``await obj.awaitable_attrs.name``: the attribute, loaded first if needed (for async sessions)."""
        return AwaitableAttrs(self)

    # -- hooks ------------------------------------------------------------------------------------

    def before_insert(self) -> None:
        """Called before the object's INSERT is sent."""

    def after_insert(self) -> None:
        """Called after the object's INSERT was sent."""

    def before_update(self) -> None:
        """Called before the object's UPDATE is sent."""

    def after_update(self) -> None:
        """Called after the object's UPDATE was sent."""

    def before_delete(self) -> None:
        """Called before the object's DELETE is sent."""

    def after_delete(self) -> None:
        """Called after the object's DELETE was sent."""

    @classmethod
    def _has_save_hooks_(cls) -> bool:
        """Whether a save hook of this class does something (``Entity``'s own do nothing)."""
        return any(getattr(cls, name) is not getattr(Entity, name) for name in _SAVE_HOOKS)

    def _before_save_(self) -> None:
        status = self._status_
        if status == CREATED:
            self.before_insert()
        elif status == MODIFIED:
            self.before_update()
        elif status == DELETED:
            self.before_delete()

    def _after_save_(self, status: int) -> None:
        if status == CREATED:
            self.after_insert()
        elif status == MODIFIED:
            self.after_update()
        elif status == DELETED:
            self.after_delete()

    # -- class API ------------------------------------------------------------------------------

    @classmethod
    def describe(cls) -> str:
        """The entity's declaration as Python text (what ``show(Entity)`` prints)."""
        return describe(cls)

    @classmethod
    def select(cls, *conditions: Any, **values: Any) -> Query[Self]:
        """A query of this entity's objects matching every condition."""
        database = cls._database_
        if not database._mapped_:
            database._require_mapping_(cls)
        if len(conditions) == 1 and not values:
            condition = conditions[0]
            if isinstance(condition, Expr):  # an attribute expression: about this entity, checked
                check_entities(cls, conditions)
                return query_of(cls, conditions)
            # a lambda translated before: its conditions (checked) from the values it reads
            repeated = repeated_lambda(cls, condition)
            if repeated is not None:
                query = query_of(cls, repeated)
                code = condition.__code__
                if code.co_argcount == 1:
                    query._var = code.co_varnames[0]
                return query
        query = query_of(cls, conditions_for(cls, conditions, values))
        var = lambda_var(conditions)
        return query if var is None else query._named(var)

    @classmethod
    def select_random(cls, limit: int) -> list[Self]:
        """``limit`` objects of this entity chosen at random."""
        return cls.select().random(limit)

    @classmethod
    def _get_steps_(cls, conditions: tuple[Any, ...], values: dict[str, Any]) -> Steps[Any]:
        if not conditions and values and not values.keys() >= cls._pk_names_:
            # by other attributes than the primary key: one SELECT (get() runs it directly)
            return cls._one_((yield from fetch_steps(cls, *keyword_get_sql(cls, values))))
        if not conditions and values and len(values) == cls._npk_:
            key = (
                values[cls._pk_attrs_[0].name]
                if cls._npk_ == 1
                else tuple(values[a.name] for a in cls._pk_attrs_)
            )
            try:
                return (yield from cls._lookup_steps_(key))
            except ObjectNotFound:
                return None
        if not conditions and values:
            known, found = cls._get_in_session_(values)
            if known:
                return found
            return cls._one_((yield from fetch_steps(cls, *keyword_get_sql(cls, values))))
        return cls._one_((yield from cls.select(*conditions, **values).limit(2).fetch_steps()))

    @classmethod
    def _one_(cls, found: list[Any]) -> Any:
        """The object a get() found, or None; MultipleObjectsFoundError when it found several."""
        if len(found) > 1:
            raise MultipleObjectsFoundError(
                f"Multiple objects were found. Use {cls.__name__}.select(...) to retrieve them"
            )
        return found[0] if found else None

    @classmethod
    def _get_in_session_(cls, values: dict[str, Any]) -> tuple[bool, Any]:
        """``get(**values)`` answered from the session without a query, when it can be.

        When ``values`` name the primary key and the session has that object with every other
        named attribute loaded, the answer is that object if they all match, else None:
        ``(True, answer)``. ``(False, None)`` when a query must decide.
        """
        pk_names = cls._pk_names_
        if cls._pk_has_refs_ or not values.keys() >= pk_names:
            return False, None
        others = []
        for name, value in values.items():
            attr = cls._attrs_by_name_.get(name)
            if attr is None or attr.is_reference:
                return False, None
            if name not in pk_names:
                others.append((attr, value))
        try:
            key = tuple(a.validate(values[a.name]) for a in cls._pk_attrs_)
            wanted = [(attr, attr.validate(value)) for attr, value in others]
        except Exception:
            return False, None  # the query reports the bad value
        cache = require_session().cache_for(cls._database_)
        obj = cache.identity_map(cls).get(key[0] if cls._npk_ == 1 else key)
        if obj is None:
            return False, None
        if obj._status_ >= DELETED or not isinstance(obj, cls):
            return True, None
        if not all(attr.is_loaded(obj) for attr, _ in wanted):
            return False, None
        return True, obj if all(attr.get_raw(obj) == value for attr, value in wanted) else None

    @classmethod
    def get(cls, *conditions: Any, **values: Any) -> Self | None:
        """The one matching object, or None; MultipleObjectsFoundError when several match."""
        if not conditions and values and not values.keys() >= cls._pk_names_:
            # the steps' first branch, its one SELECT run directly: in one call when it can
            found = get_now(cls, values)
            if found is None:
                found = fetch(cls, *keyword_get_sql(cls, values), cls._aget_hint_)
            return found[0] if len(found) == 1 else cls._one_(found)
        return run_sync(cls._get_steps_(conditions, values), f"await {cls.__name__}.aget(...)")

    @classmethod
    async def aget(cls, *conditions: Any, **values: Any) -> Self | None:
        """Awaitable ``get()``."""
        return await run_async(cls._get_steps_(conditions, values))

    @classmethod
    def _get_or_create_steps_(
        cls, defaults: dict[str, Any] | None, keys: dict[str, Any]
    ) -> Steps[tuple[Any, bool]]:
        name = cls.__name__
        if not keys:
            raise TypeError(f"{name}.get_or_create() needs keyword arguments that find the object")
        if defaults is not None and not isinstance(defaults, dict):
            raise TypeError(f"{name}.get_or_create(defaults=...) takes a dict, got {defaults!r}")
        for key, value in (*keys.items(), *(defaults or {}).items()):
            if key not in cls._attrs_by_name_ and key not in cls._relations_by_name_:
                raise UnknownAttributeError(f"Unknown attribute {key!r} of entity {name} (value {value!r})")
        session = require_session()
        error: BaseException | None = None
        for _ in range(GET_OR_CREATE_ATTEMPTS):
            obj = yield from cls._get_steps_((), keys)
            if obj is not None:
                return obj, False
            # another transaction may insert the same key first: the INSERT runs in a savepoint,
            # and its unique violation sends us back to read the row that transaction stored
            point = yield from savepoint_begin_steps(session, objects=False)
            try:
                obj = cls(**{**(defaults or {}), **keys})
                yield from obj._cache_.flush_steps()
            except TransactionIntegrityError as exc:
                yield from savepoint_rollback_steps(point)
                error = exc
                continue
            except GeneratorExit:
                raise
            except BaseException:
                yield from savepoint_rollback_steps(point)
                raise
            yield from savepoint_release_steps(point)
            return obj, True
        assert error is not None
        raise error

    @classmethod
    def get_or_create(cls, defaults: dict[str, Any] | None = None, **keys: Any) -> tuple[Self, bool]:
        """``(obj, created)``: the object matching ``keys``, or a new one made of ``keys`` and ``defaults``.

        Safe against a concurrent session creating the same unique key: the INSERT runs in a
        savepoint, and on a unique violation the row the other session stored is returned.
        """
        return run_sync(
            cls._get_or_create_steps_(defaults, keys), f"await {cls.__name__}.aget_or_create(...)"
        )

    @classmethod
    async def aget_or_create(cls, defaults: dict[str, Any] | None = None, **keys: Any) -> tuple[Self, bool]:
        """Awaitable ``get_or_create()``."""
        return await run_async(cls._get_or_create_steps_(defaults, keys))

    @classmethod
    def get_for_update(
        cls, *conditions: Any, nowait: bool = False, skip_locked: bool = False, **values: Any
    ) -> Self | None:
        """Like ``get()``, locking the row (``SELECT ... FOR UPDATE``) until the transaction ends."""
        query = cls.select(*conditions, **values).for_update(nowait=nowait, skip_locked=skip_locked)
        return run_sync(query.get_steps(), f"await {cls.__name__}.aget_for_update(...)")

    @classmethod
    async def aget_for_update(
        cls, *conditions: Any, nowait: bool = False, skip_locked: bool = False, **values: Any
    ) -> Self | None:
        """Awaitable ``get_for_update()``."""
        query = cls.select(*conditions, **values).for_update(nowait=nowait, skip_locked=skip_locked)
        return await run_async(query.get_steps())

    @classmethod
    def exists(cls, *conditions: Any, **values: Any) -> bool:
        """Whether any object matches."""
        return run_sync(
            cls.select(*conditions, **values).exists_steps(), f"await {cls.__name__}.aexists(...)"
        )

    @classmethod
    async def aexists(cls, *conditions: Any, **values: Any) -> bool:
        """Awaitable ``exists()``."""
        return await run_async(cls.select(*conditions, **values).exists_steps())

    @classmethod
    def _raw_steps_(cls, sql: str, params: Any, namespace: Any, single: bool) -> Steps[Any]:
        db = cls._database_
        db._require_mapping_(cls)
        sql, args = db._prepare_sql_(sql, params, namespace)
        result = yield from fetch_steps(cls, sql, args, raw=True)
        if not single:
            return result
        if len(result) > 1:
            raise MultipleObjectsFoundError(
                f"Multiple objects were found. Use {cls.__name__}.select_by_sql(...) to retrieve them"
            )
        return result[0] if result else None

    @classmethod
    def select_by_sql(cls, sql: str, params: Any = None) -> list[Self]:
        """Objects from a raw SELECT; ``$name`` refers to a caller variable or a key of ``params``."""
        steps = cls._raw_steps_(sql, params, caller_namespace(), single=False)
        return run_sync(steps, f"await {cls.__name__}.aselect_by_sql(...)")  # type: ignore[no-any-return]

    @classmethod
    async def aselect_by_sql(cls, sql: str, params: Any = None) -> list[Self]:
        """Awaitable ``select_by_sql()``."""
        return await run_async(cls._raw_steps_(sql, params, caller_namespace(), single=False))  # type: ignore[no-any-return]

    @classmethod
    def get_by_sql(cls, sql: str, params: Any = None) -> Self | None:
        """The one object of a raw SELECT, or None; MultipleObjectsFoundError when several."""
        return run_sync(
            cls._raw_steps_(sql, params, caller_namespace(), single=True),
            f"await {cls.__name__}.aget_by_sql(...)",
        )

    @classmethod
    async def aget_by_sql(cls, sql: str, params: Any = None) -> Self | None:
        """Awaitable ``get_by_sql()``."""
        return await run_async(cls._raw_steps_(sql, params, caller_namespace(), single=True))

    # -- loading -----------------------------------------------------------------------------------

    @classmethod
    def _lookup_miss_(cls, key: Any) -> Any:
        pk_name = cls._pk_attrs_[0].name if cls._npk_ == 1 else "..."
        return run_sync(cls._lookup_steps_(key), f"await {cls.__name__}.aget({pk_name}=...)")

    @classmethod
    def _lookup_steps_(cls, key: Any) -> Steps[Any]:
        cls._database_._require_mapping_(cls)
        width = len(cls._pk_columns_)
        if width > cls._npk_ and isinstance(key, tuple) and len(key) == width != cls._npk_:
            key = nested_key(cls, iter(key))  # one value per key column: grouped by attribute
            if cls._npk_ == 1:
                key = (key,)
        if cls._npk_ == 1:
            if isinstance(key, tuple):
                if len(key) != 1:
                    raise TypeError(
                        f"Invalid count of attrs in {cls.__name__} primary key ({len(key)} instead of 1)"
                    )
                key = key[0]
            key = cls._pk_attrs_[0].validate(key)
            if key is None:
                raise ValidationError(f"Primary key of {cls.__name__} cannot be None")
        else:
            if not isinstance(key, tuple) or len(key) != cls._npk_:
                got = len(key) if isinstance(key, tuple) else 1
                raise TypeError(
                    f"Invalid count of attrs in {cls.__name__} primary key ({got} instead of {cls._npk_})"
                )
            key = tuple(a.validate(v) for a, v in zip(cls._pk_attrs_, key))
        cache = require_session().cache_for(cls._database_)
        obj = cache.identity_map(cls).get(key)
        shown = _key_repr(cls, key) if cls._pk_has_refs_ else None
        if obj is not None:
            if obj._status_ >= DELETED or not isinstance(obj, cls):
                raise ObjectNotFound(cls, key, shown)
            return obj
        result = yield from cls.select(*cls._pk_conditions_(key)).fetch_steps()
        if not result:
            raise ObjectNotFound(cls, key, shown)
        return result[0]

    @classmethod
    def _pk_conditions_(cls, key: Any) -> list[Any]:
        if cls._npk_ == 1:
            return [cls._pk_attrs_[0] == key]
        return [a == v for a, v in zip(cls._pk_attrs_, key)]


_CLASS_CODE = ClassCodeMember()


def _new_plan(cls: Any) -> tuple[Any, ...] | None:
    """The plan of ``init_new`` for ``cls``: a class whose every attribute is a column of a
    plain attribute (no relationship, no discriminator), else None."""
    columns = cls._columns_
    if (
        cls._relations_by_name_
        or cls._collections_
        or cls._discriminator_ is not None
        or set(cls._attrs_by_name_) != {a.name for a in columns}
        or any(
            a.is_reference or a.is_discriminator or type(a).validate is not Attribute.validate
            for a in columns
        )
    ):
        return None
    return (
        cls,
        cls._database_,
        columns,
        tuple(a.name for a in columns),
        tuple(_new_check(a) for a in columns),
        cls._npk_,
        bool(cls._unique_keys_),
        _new_object_numbers,
    )


def _new_check(attr: Any) -> tuple[int, bool, Any, Any]:
    """``(kind, auto, a, b)`` of ``attr`` in a plan of ``init_new``: its ``plain_check``, or kind 0
    (every value is validated) where it has none."""
    return attr.plain_check or (0, bool(attr.auto), None, None)


def _declared_members(
    namespace: dict[str, Any],
) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]], list[Any]]:
    """The attributes, the collections and the composite keys a class statement declares.

    Composite keys are taken out of ``namespace`` (``composite_key()`` in the class body leaves
    them in ``_composite_keys_``; one assigned to a name is found by its type), once each.
    """
    declared = [(key, value) for key, value in namespace.items() if isinstance(value, Attribute)]
    collections = [(key, value) for key, value in namespace.items() if isinstance(value, SetAttr)]
    composite = list(namespace.pop("_composite_keys_", []))
    for key, value in list(namespace.items()):
        if isinstance(value, CompositeKey):
            namespace.pop(key)
            if not any(value is known for known in composite):
                composite.append(value)
    return declared, collections, composite


def _check_new_name(db: Any, name: str) -> None:
    """Refuse an entity declared after the mapping or under a name already taken."""
    if db._mapped_:
        raise ERDiagramError(f"Cannot define entity {name!r}: database mapping has already been generated")
    if name in db.entities:
        raise ERDiagramError(f"Entity {name} already exists")


def _pk_order(obj: Any) -> Any:
    """The sort key of an object in a list of related objects: its primary key."""
    return obj.get_pk()


def _key_repr(entity: Any, pk: Any) -> str:
    """The primary key ``pk`` of ``entity`` as a repr shows it: referred objects as ``Course['Math',1]``."""
    parts = (pk,) if entity._npk_ == 1 else pk
    shown = []
    for attr, value in zip(entity._pk_attrs_, parts):
        if attr.is_reference:
            target = attr.py_type
            inner = (
                _key_repr(target, value)
                if target._pk_has_refs_
                else (",".join(map(repr, value)) if isinstance(value, tuple) else repr(value))
            )
            shown.append(f"{target.__name__}[{inner}]")
        else:
            shown.append(repr(value))
    return ",".join(shown)


def _key_attr(entity: str, namespace: dict[str, Any], part: Any, key: CompositeKey) -> Attribute:
    """A part of a composite key or index: an attribute of the entity being declared (or its name)."""
    if isinstance(part, str):
        found = namespace.get(part)
        if not isinstance(found, (Attribute, SetAttr)):
            raise ERDiagramError(f"Entity {entity} has no attribute {part!r} to make a composite key of")
        part = found
    if isinstance(part, SetAttr):
        key_name = next((k for k, v in namespace.items() if v is part), "?")
        what = "primary key" if key.primary else "unique index" if key.unique else "index"
        raise TypeError(f"Set attribute {entity}.{key_name} cannot be part of {what}")
    return cast(Attribute, part)


def _dict_plan(cls: Any, with_collections: bool, with_lazy: bool) -> tuple[Any, ...]:
    """What ``to_dict()`` without ``only``/``exclude`` reads of ``cls``'s objects, kept on the class
    for the attribute tuples it was made of: those tuples, the names and attributes to read in
    declaration order, and the names of the references and of the collections among them."""
    attrs = tuple(
        attr
        for attr in (*cls._attrs_, *cls._collections_)
        if not ((attr.lazy and not with_lazy) or (attr.is_collection and not with_collections))
    )
    plan = (
        cls._attrs_,
        cls._collections_,
        tuple(attr.name for attr in attrs),
        attrs,
        tuple(attr.name for attr in attrs if not attr.is_collection and attr.is_reference),
        tuple(attr.name for attr in attrs if attr.is_collection),
    )
    cls._dict_plans_[(2 if with_collections else 0) + (1 if with_lazy else 0)] = plan
    return plan


def _relations_in_dict(
    result: dict[str, Any], references: tuple[str, ...], collections: tuple[str, ...], related_objects: bool
) -> None:
    """Replace related objects in a ``to_dict()`` result by their keys (unless ``related_objects``)
    and collections by lists of their members (or keys) in key order."""
    if not related_objects:
        for name in references:
            value = result[name]
            if value is not None:
                result[name] = value.get_pk()
    for name in collections:
        members = sorted(result[name], key=_pk_order)
        result[name] = members if related_objects else [m.get_pk() for m in members]


def _names(spec: Any) -> set[str] | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        return set(spec.replace(",", " ").split())
    return set(spec)


class AwaitableAttrs:
    """Attribute access that loads, awaited: ``await post.awaitable_attrs.author``."""

    __slots__ = ("_obj",)

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        obj = self._obj
        cls = type(obj)
        attr = cls._attrs_by_name_.get(name) or cls._relations_by_name_.get(name)
        if attr is None:
            raise AttributeError(f"{cls.__name__} has no attribute {name!r}")
        return _load_then_get(obj, attr)


async def _load_then_get(obj: Any, attr: Any) -> Any:
    await run_async(load_attr_steps(obj, attr))
    return attr.__get__(obj, type(obj))


def make_proxy(obj: Any) -> EntityProxy:
    """An ``EntityProxy`` for ``obj`` (flushing it first if it has no primary key yet)."""
    if not isinstance(obj, Entity):
        raise TypeError(f"make_proxy() takes an entity object, got {obj!r}")
    return EntityProxy(obj)
