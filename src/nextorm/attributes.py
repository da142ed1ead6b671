"""Entity attributes: column descriptors with their declaration options and slow paths."""

from __future__ import annotations

import sys
from datetime import datetime, time, timedelta
from decimal import Decimal
from types import FunctionType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast, overload

from . import _impl
from ._impl import CREATED, DELETED, GONE
from .exceptions import (
    ConstraintError,
    DatabaseSessionIsOver,
    ERDiagramError,
    MappingError,
    OperationWithDeletedObjectError,
    QueryError,
    ReadOnlyAttributeError,
    TransactionError,
    UnrepeatableReadError,
    ValidationError,
)
from .expressions import (
    ArrayContains,
    ArrayItem,
    ArrayLength,
    ArraySlice,
    Column,
    ColumnOperand,
    Expr,
    JsonPath,
    Value,
    compare_of,
    desc,
    expression_for,
)
from .identity import UniqueKey, flat_key, nested_key, reference_to_db, seed
from .loading import load_missing, one_to_one_partner
from .relationships import SetAttr, claim_partner, column_option, reference_value, relink
from .session import active_session
from .types import (
    INT64_MAX,
    INT64_MIN,
    INT_SIZES,
    Array,
    FloatType,
    IntType,
    Json,
    LongStr,
    StrType,
    TrackedArray,
    TrackedValue,
    column_type_for,
    show_short,
)

#: column types whose ``validate`` returns a value of their Python type unchanged when it passes
#: the checks ``Attribute.validate`` repeats inline
_PLAIN_TYPES: dict[type, type] = {IntType: int, FloatType: float, StrType: str}

#: the Python type of an attribute's value, as type checkers see it (``Required(int)`` reads as int)
_T = TypeVar("_T")

__all__ = [
    "Attribute",
    "Discriminator",
    "InstanceDictMember",
    "Optional",
    "PrimaryKey",
    "Required",
    "Set",
    "composite_index",
    "composite_key",
    "desc",
]

_OPTIONS = frozenset(
    {
        "autostrip",
        "columns",
        "fk_name",
        "optimistic",
        "py_check",
        "size",
        "sql_default",
        "unsigned",
        "unique",
        "default",
        "column",
        "max_len",
        "volatile",
        "lazy",
        "auto",
        "index",
        "sql_type",
        "min",
        "max",
        "nullable",
        "tz_aware",
        "precision",
        "scale",
        "reverse",
        "cascade_delete",
        "table",
    }
)


def status_word(status: int) -> str:
    """Pony's word for a status in "X was ..." messages."""
    return {DELETED: "marked to delete", GONE: "deleted"}.get(status, "changed")


def is_entity_reference(py_type: Any) -> bool:
    """Whether ``py_type`` names another entity: a class, a name, or a function returning one."""
    return isinstance(py_type, (str, FunctionType)) or (
        isinstance(py_type, type) and issubclass(py_type, _impl.EntityBase)
    )


class Attribute(_impl.Column, ColumnOperand, Generic[_T]):
    """One declared attribute of an entity; subclasses say whether it is required."""

    is_required = False
    is_pk = False
    is_reference = False
    is_collection = False
    is_column = True
    is_discriminator = False
    _counter = 0
    _plain_type_: type | None = None
    #: the unique keys this attribute is part of, set when the mapping is generated
    unique_keys: tuple[UniqueKey, ...]

    # At runtime the compiled ``__get__``/``__set__`` of ``_impl.Column`` are the descriptor: these
    # signatures exist for type checkers only, so the hot path stays a C slot.
    if TYPE_CHECKING:

        @overload
        def __get__(self, obj: None, cls: Any = None) -> Self: ...
        @overload
        def __get__(self, obj: object, cls: Any = None) -> _T: ...
        def __get__(self, obj: object, cls: Any = None) -> Any: ...
        def __set__(self, obj: object, value: _T) -> None: ...

    def __new__(cls, py_type: Any = None, *args: Any, **options: Any) -> Self:
        if cls is Attribute:
            raise TypeError("'Attribute' is abstract type")
        if is_entity_reference(py_type) and not cls.is_reference:
            reference_class = _REFERENCE_CLASSES.get(cls)
            if reference_class is None:
                raise ERDiagramError(f"{cls.__name__}({py_type!r}): a primary key cannot be a relationship")
            return cast(Self, super().__new__(reference_class))
        if py_type is Json and cls in _JSON_CLASSES:
            return cast(Self, super().__new__(_JSON_CLASSES[cls]))
        if isinstance(py_type, type) and issubclass(py_type, Array) and cls in _ARRAY_CLASSES:
            return cast(Self, super().__new__(_ARRAY_CLASSES[cls]))
        return super().__new__(cls)

    def __init__(self, py_type: Any, *args: Any, **options: Any) -> None:
        super().__init__()
        if not isinstance(py_type, (type, str, FunctionType)):
            raise TypeError(f"Incorrect type of attribute: {py_type!r}")
        #: options no attribute takes: refused once the attribute has its name (``_link_``)
        self.unknown_options = sorted(set(options) - _OPTIONS)
        reverse = options.get("reverse")
        if reverse is not None:
            if not isinstance(reverse, (str, Attribute, SetAttr)):
                raise TypeError(
                    f"Value of 'reverse' option must be name of reverse attribute). Got: {reverse!r}"
                )
            if not is_entity_reference(py_type):
                raise TypeError(f"Reverse option cannot be set for this type: {py_type!r}")
        column, columns_given = column_option(options, "column", "columns")
        options["column"] = column
        Attribute._counter += 1
        self.order = Attribute._counter
        self.py_type = py_type
        self.name = ""
        self.entity: Any = None
        self.qualname = "?"
        self.auto = bool(options.get("auto", False))
        self.unique = bool(options.get("unique", False))
        self.default = options.get("default")
        # None until _link_ defaults it to the attribute name: a str wherever it is used
        self.column: str = options.get("column")  # type: ignore[assignment]
        self.max_len = options.get("max_len")
        self.volatile = bool(options.get("volatile", False))
        self.lazy = bool(options.get("lazy", getattr(py_type, "lazy", False)))
        self.autostrip = bool(options.get("autostrip", True))
        self.py_check = options.get("py_check")
        self.size = options.get("size")
        self.unsigned = options.get("unsigned")
        self.sql_default = options.get("sql_default")
        self.fk_name = options.get("fk_name")
        self.optimistic = options.get("optimistic")
        self.default_given = "default" in options
        self.db_index = options.get("index")
        self.sql_type = options.get("sql_type")
        self.min = options.get("min")
        self.max = options.get("max")
        self.tz_aware = bool(options.get("tz_aware", False))
        self.precision = options.get("precision")
        self.scale = options.get("scale")
        self.nullable = options.get("nullable", not self.is_required)
        self.reverse: Any = options.get("reverse")
        self.cascade_delete = options.get("cascade_delete")
        self.column_given = self.column is not None
        self.time_precision = 6
        if py_type in (datetime, time, timedelta):
            precision = options.get("precision")
            if args:
                if len(args) > 1 or precision is not None:
                    raise TypeError(
                        f"Unexpected positional arguments for {self.__class__.__name__}({py_type!r}): {args!r}"
                    )
                precision, args = args[0], ()
            if precision is not None:
                if isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= 6:
                    raise ValueError(
                        f"Precision value of attribute {self.__class__.__name__}({py_type.__name__}) "
                        f"must be between 0 and 6. Got: {precision!r}"
                    )
                self.time_precision = precision
            self.precision = None
        #: whether nextorm added the attribute itself (the default ``id`` key, the ``classtype``
        #: discriminator) rather than the entity declaring it
        self.is_implicit = False
        #: the ``columns=[...]`` option (one name per column of the target's key, for a reference)
        self.columns_given: tuple[str, ...] | None = None if columns_given is None else tuple(columns_given)
        #: the database columns the attribute is stored in, set when the mapping is generated; a
        #: reference to an entity with a composite primary key has several
        self.column_names: tuple[str, ...] = ()
        #: the number of those columns
        self.width = 1
        if args:
            if py_type in (str, bytes) and len(args) == 1 and isinstance(args[0], int):
                self.max_len = args[0]
            elif py_type is Decimal and len(args) <= 2 and all(isinstance(a, int) for a in args):
                self.precision = args[0]
                if len(args) == 2:
                    self.scale = args[1]
            else:
                raise TypeError(
                    f"Unexpected positional arguments for {self.__class__.__name__}({py_type!r}): {args!r}"
                )
        self._set_column_type_()

    def _set_column_type_(self) -> None:
        self.ctype: Any = column_type_for(self)
        if self.ctype is None:
            raise ERDiagramError(f"{self.__class__.__name__}({self.py_type!r}): unsupported column type")
        self._plain_type_ = _PLAIN_TYPES.get(type(self.ctype))
        self.from_db = self.ctype.from_db
        self.to_db = self.ctype.to_db
        self.checked = self.ctype.checkable and not self.volatile and self.optimistic is not False
        self.plain_check = plain_check(self)

    def _link_(self, entity: Any, name: str) -> None:
        """Attach the attribute to ``entity`` under ``name``."""
        self.entity = entity
        self.name = name
        self.qualname = f"{entity.__name__}.{name}"
        check_declaration(self)
        if self.column is None:
            self.column = name
        if self.auto and (self.py_type is not int or not self.is_pk):
            raise ERDiagramError(f"auto=True is only supported for an int primary key, not {self.qualname}")

    @property
    def columns(self) -> list[str]:
        """The names of the database columns the attribute is stored in, once the mapping is
        generated (several for a reference to a composite key; none for the side of a one-to-one
        relationship whose partner holds the column)."""
        return list(self.column_names)

    @property
    def is_volatile(self) -> bool:
        """Whether the value may change in the database behind the session (``volatile=True``)."""
        return self.volatile

    def __repr__(self) -> str:
        return self.qualname

    # -- values -----------------------------------------------------------------------------

    def validate(self, value: Any, obj: Any = None) -> Any:
        """``value`` converted for this attribute, or a ValidationError naming it."""
        plain: Any = self._plain_type_
        if type(value) is plain and self.py_check is None:
            # a value of the column's own type that every check below would pass unchanged; the
            # rest (conversions, errors, stripped text) takes the full path
            if plain is int:
                ctype = self.ctype
                if ctype.low <= value <= ctype.high:
                    return value
            elif plain is float:
                if value - value == 0.0 and self.min is None and self.max is None:  # finite
                    return value
            elif (
                value
                and value.isascii()
                and "\x00" not in value
                and (self.max_len is None or len(value) <= self.max_len)
                and (not self.autostrip or value.strip() is value)
            ):
                return value
        if value is None:
            if not self.nullable and not self.auto:
                where = f"{obj!r}.{self.name}" if isinstance(obj, _impl.EntityBase) else self.qualname
                raise ValidationError(f"Attribute {where} is required")
            return None
        value = self.ctype.validate(value)
        if value == "" and self.is_required and isinstance(value, str):
            where = f"{obj!r}.{self.name}" if isinstance(obj, _impl.EntityBase) else self.qualname
            raise ValidationError(f"Attribute {where} is required")
        if self.py_check is not None:
            run_py_check(self, value)
        return value

    def default_value(self) -> Any:
        """The value a new object gets when none is given."""
        default = self.default
        return default() if callable(default) else default

    # -- hooks called by the hot path --------------------------------------------------------

    def _validate_(self, obj: Any, value: Any) -> Any:
        return self.validate(value, obj)

    def _load_(self, obj: Any) -> Any:
        cache = obj._cache_
        if cache.session is not active_session():
            raise TransactionError(f"Object {obj!r} doesn't belong to current transaction")
        if obj._status_ == CREATED:
            return None  # a new object's generated key reads None until it is flushed, as in Pony
        load_missing(obj, self)
        return self.__get__(obj, None)

    def _read_after_session_(self, obj: Any) -> Any:
        cache = obj._cache_
        if cache.strict:
            raise DatabaseSessionIsOver(f"Cannot read value of {obj!r}.{self.name}: {cache.over}")
        if not self.is_loaded(obj):
            raise cache.closed_error(f"Cannot load attribute {obj!r}.{self.name}")
        return self.get_raw(obj)

    def _deleted_(self, obj: Any) -> Any:
        if (obj._status_ == DELETED or self.is_pk) and self.is_loaded(obj):
            return self.get_raw(obj)  # marked to delete: what was loaded stays readable until the flush
        raise OperationWithDeletedObjectError(f"{obj!r} was {status_word(obj._status_)}")

    def _check_assign_(self, obj: Any, value: Any) -> None:
        cache = obj._cache_
        if not cache.is_alive:
            raise cache.closed_error(f"Cannot assign new value to {obj!r}.{self.name}")
        if obj._status_ >= DELETED:
            raise OperationWithDeletedObjectError(f"{obj!r} was {status_word(obj._status_)}")
        if self.readonly:
            if self.is_loaded(obj) and self.get_raw(obj) == value:
                return  # an equal value: the write is a no-op
            raise ReadOnlyAttributeError(
                f"Cannot change value of primary key attribute {self.qualname} of {obj!r} to {value!r}"
            )
        if cache.session is not active_session():
            raise TransactionError(f"An attempt to mix objects belonging to different transactions: {obj!r}")
        if cache.readonly:
            raise cache.readonly_error(f"assign {value!r} to {obj!r}.{self.name}")

    def _before_change_(self, obj: Any, old: Any, new: Any) -> None:
        obj._cache_.update_unique(obj, self, old, new)

    def _unrepeatable_(self, obj: Any, known: Any, new: Any) -> None:
        raise UnrepeatableReadError(
            f"Value of {self.qualname} for {obj!r} was updated outside of current transaction "
            f"(was: {known!r}, now: {new!r})"
        )

    # -- expressions ---------------------------------------------------------------------------

    __hash__ = _impl.Column.__hash__

    def _value_(self) -> Value:
        return Column(self)

    def __eq__(self, other: Any) -> Any:
        if self.passes_plain(other) and self.to_db is None:
            return compare_of(self, "==", other)  # a value validation keeps as it is: bound as itself
        if isinstance(other, (Attribute, SetAttr)):
            return self is other  # declarations compare by identity (``attr.reverse == Other.attr``)
        return expression_for(self, "==", other)

    def __ne__(self, other: Any) -> Any:
        if self.passes_plain(other) and self.to_db is None:
            return compare_of(self, "!=", other)
        if isinstance(other, (Attribute, SetAttr)):
            return self is not other
        return expression_for(self, "!=", other)

    def __neg__(self) -> Any:
        raise QueryError(
            f"-{self.qualname} is not an order: use desc({self.qualname}) or {self.qualname}.desc()"
        )


def plain_check(attr: Any) -> tuple[int, bool, Any, Any] | None:
    """The ``(kind, auto, a, b)`` checks a value of ``attr``'s own type passes through ``validate``
    unchanged (``Column.plain_check``), or None where every value must be validated."""
    cls = type(attr)
    if cls.validate is not Attribute.validate or cls._validate_ is not Attribute._validate_:
        return None
    plain = attr._plain_type_
    auto = bool(attr.auto)
    if attr.py_check is not None:
        return None
    if plain is int:
        low, high = attr.ctype.low, attr.ctype.high
        if type(low) is int and type(high) is int and INT64_MIN <= low and high <= INT64_MAX:
            return (1, auto, low, high)
    elif plain is float and attr.min is None and attr.max is None:
        return (2, auto, None, None)
    elif plain is str and (attr.max_len is None or type(attr.max_len) is int):
        return (3, auto, -1 if attr.max_len is None else attr.max_len, bool(attr.autostrip))
    return None


def run_py_check(attr: Any, value: Any) -> None:
    """Call ``attr``'s ``py_check``; a false answer is a ValidationError naming the attribute and value."""
    if not attr.py_check(value):
        raise ValidationError(f"Check for attribute {attr.qualname} failed. Value: {show_short(value)}")


def check_declaration(attr: Any) -> None:
    """Refuse the options of ``attr`` that contradict each other, once it has its name."""
    where = attr.qualname
    if attr.unknown_options:
        raise TypeError(f"Attribute {where} has unknown option {attr.unknown_options[0]!r}")
    if attr.name.startswith("_") and attr.name.endswith("_"):
        raise ERDiagramError(f"Attribute name cannot both start and end with underscore. Got: {attr.name}")
    if attr.is_pk:
        if attr.lazy:
            raise TypeError(f"Primary key attribute {where} cannot be lazy")
        if attr.py_type is float:
            raise TypeError(f"PrimaryKey attribute {where} cannot be of type float")
        if attr.volatile:
            raise TypeError(f"PrimaryKey attribute {where} cannot be volatile")
    elif attr.unique and attr.py_type is float:
        raise TypeError(f"Unique attribute {where} cannot be of type float")
    if attr.default_given and attr.is_required and not attr.auto:
        if attr.default is None:
            raise TypeError(f"Default value for required attribute {where} cannot be None")
        if isinstance(attr.default, str) and attr.default == "":
            raise TypeError(f"Default value for required attribute {where} cannot be empty string")
    if attr.cascade_delete is not None and not attr.is_reference:
        raise TypeError(
            f"'cascade_delete' option cannot be set for attribute {where}, because it is not relationship attribute"
        )
    sql_default = attr.sql_default
    if isinstance(sql_default, str):
        if sql_default == "":
            raise TypeError(
                "'sql_default' option value cannot be empty string, because it should be valid SQL literal "
                "or expression. Try to use \"''\", or just specify default='' instead."
            )
    elif sql_default not in (None, True, False):
        raise TypeError(
            f"'sql_default' option of {where} attribute must be of string or bool type. Got: {sql_default!r}"
        )
    if attr.py_check is not None and not callable(attr.py_check):
        raise TypeError(f"'py_check' parameter of {where} attribute should be callable")
    if attr.fk_name is not None and not isinstance(attr.fk_name, str):
        raise TypeError(f"'fk_name' option of {where} must be a string. Got: {attr.fk_name!r}")
    if attr.columns_given is not None and len(attr.columns_given) > 1 and not attr.is_reference:
        raise MappingError(f"Too many columns were specified for {where}")
    if attr.size is not None or attr.unsigned is not None:
        check_int_size(attr)
    if attr.max_len is not None and attr.py_type is LongStr:
        raise TypeError(f"Max length is not supported for CLOBs ({where} is a LongStr)")
    if attr.max_len is not None and (isinstance(attr.max_len, bool) or not isinstance(attr.max_len, int)):
        raise TypeError(f"Max length argument of {where} must be int. Got: {attr.max_len!r}")
    for bound in ("min", "max"):
        value = getattr(attr, bound)
        if (
            value is not None
            and attr.py_type is int
            and (isinstance(value, bool) or not isinstance(value, int))
        ):
            raise TypeError(f"{bound!r} argument for attribute {where} must be int. Got: {value!r}")


def check_int_size(attr: Any) -> None:
    """Refuse ``size=``/``unsigned=`` on other than an int, or values the databases cannot store."""
    where, size, unsigned = attr.qualname, attr.size, attr.unsigned
    if attr.py_type is not int:
        raise TypeError(f"'size' and 'unsigned' options are for int attributes only, not {where}")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"'size' option for attribute {where} must be of int type. Got: {size!r}")
        if size not in INT_SIZES:
            raise TypeError(
                f"incorrect value of 'size' option for attribute {where}. "
                f"Should be 8, 16, 24, 32 or 64. Got: {size}"
            )
    if unsigned is not None and not isinstance(unsigned, bool):
        raise TypeError(f"'unsigned' option for attribute {where} must be of bool type. Got: {unsigned!r}")
    if size == 64 and unsigned:
        raise TypeError(
            f"Attribute {where}: unsigned 64-bit integers are not supported "
            "(SQLite and PostgreSQL store signed 64-bit integers at most)"
        )
    ctype = attr.ctype
    if attr.max is not None and attr.max > ctype.size_high:
        raise ValueError(
            f"'max' argument should be less or equal to {ctype.size_high} because of size={size or 32} and "
            f"unsigned={bool(unsigned)}. Got: {attr.max}"
        )
    if attr.min is not None and attr.min < ctype.size_low:
        raise ValueError(
            f"'min' argument should be greater or equal to {ctype.size_low} because of size={size or 32} and "
            f"unsigned={bool(unsigned)}. Got: {attr.min}"
        )


class Required(Attribute[_T]):
    """An attribute that must have a value (NOT NULL; a str may not be empty)."""

    is_required = True

    if TYPE_CHECKING:
        # The value type comes from the declared Python type: ``Required(int)`` is ``Required[int]``,
        # ``Required(Person)`` is ``Required[Person]``. ``Json`` values and references by name are
        # ``Any`` to a checker (``author: Required['Person'] = Required('Person')`` says more).

        @overload
        def __init__(self: Required[Any], py_type: type[Json], *args: Any, **options: Any) -> None: ...
        @overload
        def __init__(self, py_type: type[_T], *args: Any, **options: Any) -> None: ...
        @overload
        def __init__(self: Required[Any], py_type: str, *args: Any, **options: Any) -> None: ...
        def __init__(self, py_type: Any, *args: Any, **options: Any) -> None: ...


class Optional(Attribute[_T]):
    """An attribute that may be None (NULL)."""

    if TYPE_CHECKING:
        # Required's constructor signatures; reads may give None and None may be assigned, so
        # ``Optional(str)`` reads as ``str | None``

        @overload
        def __init__(self: Optional[Any], py_type: type[Json], *args: Any, **options: Any) -> None: ...
        @overload
        def __init__(self, py_type: type[_T], *args: Any, **options: Any) -> None: ...
        @overload
        def __init__(self: Optional[Any], py_type: str, *args: Any, **options: Any) -> None: ...
        def __init__(self, py_type: Any, *args: Any, **options: Any) -> None: ...

        @overload  # type: ignore[override]
        def __get__(self, obj: None, cls: Any = None) -> Self: ...
        @overload
        def __get__(self, obj: object, cls: Any = None) -> _T | None: ...
        def __get__(self, obj: object, cls: Any = None) -> Any: ...
        def __set__(self, obj: object, value: _T | None) -> None: ...  # type: ignore[override]


class PrimaryKey(Required[_T]):
    """The primary key; ``PrimaryKey(a, b)`` with attributes declares a composite key."""

    is_pk = True

    def __new__(cls, *args: Any, **options: Any) -> Self:
        if args and isinstance(args[0], (Attribute, SetAttr)):
            if options or not all(isinstance(a, (Attribute, SetAttr, str)) for a in args) or len(args) < 2:
                raise TypeError("PrimaryKey(a, b, ...) takes two or more attributes and no options")
            key = CompositeKey(args, primary=True)
            # Pony style: a bare ``PrimaryKey(a, b)`` statement in the entity body declares the key
            sys._getframe(1).f_locals.setdefault("_composite_keys_", []).append(key)
            # the value of a bare statement: checkers see a PrimaryKey, which nothing reads
            return cast(Self, key)
        return super().__new__(cls, *args, **options)

    @overload
    def __init__(self, py_type: type[_T], *args: Any, **options: Any) -> None: ...
    @overload  # ``PrimaryKey(a, b)``: a composite key (the statement's value is not used)
    def __init__(self: PrimaryKey[Any], py_type: Attribute[Any], *args: Attribute[Any]) -> None: ...
    def __init__(self, py_type: Any, *args: Any, **options: Any) -> None:
        super().__init__(py_type, *args, **options)
        self.unique = True
        self.readonly = True


class Discriminator(Required[_T]):
    """The column of an entity hierarchy's table that says which class a row is (Pony's ``Discriminator``).

    Its value is the class's ``_discriminator_`` (the class name unless the class sets it): it is
    never stored per object, so reading it costs nothing and a row's class is found from it.
    """

    is_discriminator = True

    def __init__(self, py_type: Any, *args: Any, **options: Any) -> None:
        super().__init__(py_type, *args, **options)
        #: the class of each discriminator value of the hierarchy
        self.code2cls: dict[Any, Any] = {}

    def code_for(self, entity: Any, value: Any) -> Any:
        """``value`` as a discriminator value of ``entity``: the class name when None and the column is text."""
        if value is None:
            if self.py_type is str:
                return entity.__name__
            raise TypeError(
                f"Discriminator value for entity {entity.__name__} with custom discriminator column "
                f"{self.name!r} of {cast(type, self.py_type).__name__!r} type is not set"
            )
        try:
            return self.py_type(value) if self.py_type in (int, str) else self.ctype.validate(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"Incorrect discriminator value is set for {entity.__name__} attribute {self.name!r} "
                f"of {cast(type, self.py_type).__name__!r} type: {value!r}"
            ) from None

    def validate(self, value: Any, obj: Any = None) -> Any:
        entity: Any = type(obj) if isinstance(obj, _impl.EntityBase) else None
        if entity is not None and value != entity._discriminator_:
            raise TypeError(
                f"Invalid discriminator attribute value for {entity.__name__}. "
                f"Expected: {entity._discriminator_!r}, got: {value!r}"
            )
        return super().validate(value, obj)


class ClassCodeMember:
    """Storage of a Discriminator: the value is the object's class's ``_discriminator_``."""

    __slots__ = ()

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        return type(obj)._discriminator_

    def __set__(self, obj: Any, value: Any) -> None:
        pass  # the class says it; the hierarchy's loader picks the class from the row

    def __delete__(self, obj: Any) -> None:
        pass


class InstanceDictMember:
    """Storage of an attribute declared in an entity subclass: a key of the object's ``__dict__``.

    Subclasses add no slots, so every class of a hierarchy has the root's layout: an object loaded
    as its root class before its row was read can take its real class, and diamonds are possible.
    """

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        try:
            return obj.__dict__[self.key]
        except KeyError:
            raise AttributeError(self.key) from None

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.key] = value

    def __delete__(self, obj: Any) -> None:
        try:
            del obj.__dict__[self.key]
        except KeyError:
            raise AttributeError(self.key) from None


class CompositeKey:
    """A composite primary key, unique key or index declared in an entity body.

    Its parts are attributes, or names of attributes of the same entity (resolved when the
    entity is declared).
    """

    def __init__(self, attrs: tuple[Any, ...], primary: bool, unique: bool = True) -> None:
        self.attrs = attrs
        self.primary = primary
        self.unique = unique

    def __repr__(self) -> str:
        return f"({', '.join(a if isinstance(a, str) else a.name for a in self.attrs)})"


def _key_parts(function: str, attrs: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(attrs) < 2:
        raise TypeError(f"{function}() must receive at least two attributes as arguments")
    for attr in attrs:
        if not isinstance(attr, (Attribute, SetAttr, str)):
            raise TypeError(f"{function}() arguments must be attributes. Got: {attr!r}")
    return attrs


def composite_key(*attrs: Attribute[Any] | str) -> None:
    """Declare, in an entity body, that ``attrs`` are unique together (an index enforces it)."""
    key = CompositeKey(_key_parts("composite_key", attrs), primary=False)
    sys._getframe(1).f_locals.setdefault("_composite_keys_", []).append(key)


def composite_index(*attrs: Attribute[Any] | str) -> None:
    """Declare, in an entity body, an index over ``attrs`` (not unique)."""
    key = CompositeKey(_key_parts("composite_index", attrs), primary=False, unique=False)
    sys._getframe(1).f_locals.setdefault("_composite_keys_", []).append(key)


class Reference(Attribute[_T]):
    """A column holding another entity's primary key; reads return the object."""

    #: the key columns of the target this reference's columns hold, one per column (set at mapping)
    leaves: tuple[Any, ...]

    is_reference = True

    def _set_column_type_(self) -> None:
        self._plain_type_ = None
        self.ctype = ReferenceType(self)
        self.to_db = reference_to_db
        self.from_db = None
        self.checked = not self.volatile

    def _target_ready_(self) -> None:
        """Once the target's key columns are known: convert database values like its primary key."""
        if self.width > 1:
            # several columns: a row's values are folded into the key by ``value_from_db``
            self.to_db = self.db_values
            self.from_db = None
            return
        leaf = self.leaves[0]
        self.from_db = leaf.from_db
        if leaf.to_db is not None:
            convert = leaf.to_db
            self.to_db = lambda value: convert(reference_to_db(value))

    def db_values(self, value: Any) -> tuple[Any, ...]:
        """The database values of the columns of a stored reference (one per column of the target's key)."""
        flat = flat_key(self.py_type, reference_to_db(value))
        return tuple(
            v if v is None or leaf.to_db is None else leaf.to_db(v) for leaf, v in zip(self.leaves, flat)
        )

    def value_from_db(self, values: Any) -> Any:
        """The stored reference for the database values of its columns (None when they are NULL)."""
        if all(v is None for v in values):
            return None
        converted = [
            v if v is None or leaf.from_db is None else leaf.from_db(v)
            for leaf, v in zip(self.leaves, values)
        ]
        return nested_key(self.py_type, iter(converted))

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        if obj is None:
            return self
        if not self.is_column:
            if obj._cache_.is_alive and obj._status_ >= DELETED:
                return self._deleted_(obj)
            return one_to_one_partner(self, obj)
        value = _impl.Column.__get__(self, obj, cls)
        if value is None or isinstance(value, _impl.EntityBase):
            return value
        return seed(self.py_type, obj._cache_, value)

    def __set__(self, obj: Any, value: Any) -> None:
        if not self.is_column:
            self._set_partner_(obj, value)
            return
        old = self.get_raw(obj)
        if value is not None and obj._cache_.is_alive and obj._status_ < DELETED:
            claim_partner(self, obj, self._validate_(obj, value))
        _impl.Column.__set__(self, obj, value)
        new = self.get_raw(obj)
        if new is not old:
            relink(self, obj, old, new)

    def _set_partner_(self, obj: Any, value: Any) -> None:
        """Assign the key-less side of a one-to-one: the partner's key changes."""
        if not obj._cache_.is_alive or obj._status_ >= DELETED or obj._cache_.readonly:
            self._check_assign_(obj, value)
        partner = None if value is None else reference_value(self, obj, value)
        if partner is not None and not isinstance(partner, _impl.EntityBase):
            partner = seed(self.py_type, obj._cache_, partner)
        old = one_to_one_partner(self, obj)
        if old is partner:
            return
        reverse = self.reverse
        if old is not None and old._status_ < DELETED:
            if reverse.is_required:
                raise ConstraintError(
                    f"Cannot unlink {obj!r} from previous {old!r} object, because {reverse!r} attribute is required"
                )
            reverse.__set__(old, None)
        if partner is not None:
            reverse.__set__(partner, obj)
        self.set_raw(obj, partner)

    def _validate_(self, obj: Any, value: Any) -> Any:
        if value is None:
            return self.validate(None, obj)
        return reference_value(self, obj, value)

    def validate(self, value: Any, obj: Any = None) -> Any:
        if value is None:
            return super().validate(None, obj)
        return reference_value(self, obj, value)


class RequiredReference(Reference[_T], Required[_T]):
    """``Required(Entity)``."""


class PrimaryKeyReference(Reference[_T], PrimaryKey[_T]):
    """``PrimaryKey(Entity)``: the key of an object is the key of the object it refers to."""


class OptionalReference(Reference[_T], Optional[_T]):
    """``Optional(Entity)``."""


class ReferenceType:
    """Validation of values compared with a reference in queries."""

    checkable = True

    def __init__(self, attr: Reference) -> None:
        self.attr = attr

    def validate(self, value: Any) -> Any:
        return reference_value(self.attr, None, value)


_REFERENCE_CLASSES: dict[type, type] = {
    Required: RequiredReference,
    Optional: OptionalReference,
    PrimaryKey: PrimaryKeyReference,
}


class JsonAttribute(Attribute[Any]):
    """A Json column: its dicts and lists are tracked values, so a change made in place is saved too."""

    #: queries may index it, test ``in`` and take ``len()`` of it
    has_items = True

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        value = _impl.Column.__get__(self, obj, cls)
        if obj is not None and isinstance(value, (dict, list)) and obj._cache_.is_alive:
            if not (isinstance(value, TrackedValue) and value.belongs_to(obj, self)):
                value = self._track_(obj, value)
                self.set_raw(obj, value)
        return value

    def _track_(self, obj: Any, value: Any) -> Any:
        return TrackedValue.make(obj, self, value)

    def validate_item(self, value: Any) -> Any:
        """A value put into the attribute's dicts or lists: any JSON value."""
        return self.ctype.validate(value)

    # -- in queries: ``Product.info["os"]["version"] == "9"``, ``"key" in Product.info``

    def __getitem__(self, key: Any) -> Any:
        return JsonPath(self, (key,))

    def contains(self, item: Any) -> Expr:  # type: ignore[override]
        """``item in value``: a key of the Json object, an item of the Json array."""
        return JsonPath(self, ()).contains(item)

    def length(self) -> Any:
        """``len(value)`` of a Json array."""
        return JsonPath(self, ()).length()


class RequiredJson(JsonAttribute, Required[Any]):
    """``Required(Json)``."""


class OptionalJson(JsonAttribute, Optional[Any]):
    """``Optional(Json)``."""


_JSON_CLASSES: dict[type, type] = {Required: RequiredJson, Optional: OptionalJson}


class ArrayAttribute(JsonAttribute):
    """An ``IntArray``/``StrArray``/``FloatArray`` column: a tracked list; empty, not None, by default."""

    def __init__(self, py_type: Any, *args: Any, **options: Any) -> None:
        super().__init__(py_type, *args, **options)
        if "nullable" not in options:
            self.nullable = False  # Pony: an Optional array is an empty list unless nullable=True
        if self.default is None and not self.nullable:
            self.default = list

    def _track_(self, obj: Any, value: Any) -> Any:
        return TrackedArray(obj, self, value)

    def validate_item(self, value: Any) -> Any:
        """An item put into the array: of the array's item type."""
        return self.ctype.validate_item(value)

    # -- in queries: ``10 in Foo.numbers``, ``[10, 20] in Foo.numbers``, ``len()``, ``Foo.numbers[0]``

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return ArraySlice(self, index)
        return ArrayItem(self, index)

    def contains(self, item: Any) -> Expr:  # type: ignore[override]
        """``item in array`` (or, given a list, every one of its items)."""
        return ArrayContains(self, item)

    def length(self) -> Any:
        """``len(array)``."""
        return ArrayLength(self)


class RequiredArray(ArrayAttribute, Required[Any]):
    """``Required(IntArray)`` and the other array types."""


class OptionalArray(ArrayAttribute, Optional[Any]):
    """``Optional(IntArray)`` and the other array types."""


_ARRAY_CLASSES: dict[type, type] = {Required: RequiredArray, Optional: OptionalArray}

Set = SetAttr
