"""Column types: validation of Python values and conversion to and from the database."""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from .exceptions import AttributeTypeError, ValidationError

__all__ = [
    "COLUMN_TYPES",
    "Array",
    "ColumnType",
    "FloatArray",
    "IntArray",
    "Json",
    "LongStr",
    "LongUnicode",
    "StrArray",
    "TrackedArray",
    "TrackedDict",
    "TrackedList",
    "TrackedValue",
    "column_type_for",
    "parse_date",
    "parse_datetime",
    "parse_time",
    "parse_timedelta",
    "untracked",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: the ``size=`` an int attribute may declare, in bits
INT_SIZES = (8, 16, 24, 32, 64)


def show(value: Any) -> str:
    """``repr(value)`` for an error message, also for an int too long for ``repr``."""
    try:
        return repr(value)
    except ValueError:  # an int beyond the int/str conversion limit (sys.set_int_max_str_digits)
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        return f"<{type(value).__name__} holding an int too long to show>"


def show_short(value: Any, limit: int = 100) -> str:
    """``show(value)`` cut to ``limit`` characters (ending in ``...`` when cut)."""
    text = show(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Json:
    """The type of a column holding any JSON-serializable value; ``Json(value)`` marks a value as JSON in a query."""

    __slots__ = ("wrapped",)

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def __repr__(self) -> str:
        return f"<Json {self.wrapped!r}>"


class Array:
    """Base of the array column types: a list of items of ``item_type``."""

    item_type: type = object


class IntArray(Array):
    """A list of ints: ``int[]`` on PostgreSQL, JSON text on SQLite."""

    item_type = int


class StrArray(Array):
    """A list of strs: ``text[]`` on PostgreSQL, JSON text on SQLite."""

    item_type = str


class FloatArray(Array):
    """A list of floats: ``double precision[]`` on PostgreSQL, JSON text on SQLite."""

    item_type = float


# -- values changed in place ---------------------------------------------------------------------


class TrackedValue:
    """A dict or list inside an attribute's value that tells its object before it changes in place.

    ``obj._attr_changed_(attr)`` is called before each change, so the object can keep the value it
    had and queue its UPDATE; ``attr.validate_item(value)`` (when the attribute has it) checks each
    value put in, before anything changes.
    """

    __slots__ = ()
    _owner_: Any
    _attr_: Any

    @staticmethod
    def make(obj: Any, attr: Any, value: Any) -> Any:
        """``value`` with every dict and list in it tracked for ``obj``'s ``attr``."""
        if isinstance(value, dict):
            return TrackedDict(obj, attr, value)
        if isinstance(value, list):
            return TrackedList(obj, attr, value)
        return value

    def belongs_to(self, obj: Any, attr: Any) -> bool:
        """Whether this value reports its changes to ``obj``'s ``attr``."""
        return self._owner_ is obj and self._attr_ is attr

    def _incoming_(self, value: Any) -> Any:
        check = getattr(self._attr_, "validate_item", None)
        if check is not None:
            value = check(value)
        return TrackedValue.make(self._owner_, self._attr_, value)

    def _changing_(self) -> None:
        self._owner_._attr_changed_(self._attr_)


class TrackedDict(TrackedValue, dict):  # type: ignore[type-arg]
    """A dict in a tracked value."""

    __slots__ = ("_attr_", "_owner_")

    def __init__(self, obj: Any, attr: Any, value: Any) -> None:
        self._owner_ = obj
        self._attr_ = attr
        dict.__init__(self, {key: TrackedValue.make(obj, attr, item) for key, item in value.items()})

    def __reduce__(self) -> Any:
        return dict, (untracked(self),)

    def __setitem__(self, key: Any, value: Any) -> None:
        value = self._incoming_(value)
        self._changing_()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        self._changing_()
        dict.__delitem__(self, key)

    def __ior__(self, other: Any) -> Any:  # type: ignore[misc]
        self.update(other)
        return self

    def update(self, *args: Any, **kwargs: Any) -> None:
        changes = {key: self._incoming_(value) for key, value in dict(*args, **kwargs).items()}
        self._changing_()
        dict.update(self, changes)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return self[key]
        self[key] = default
        return self[key]

    def pop(self, *args: Any) -> Any:
        self._changing_()
        return dict.pop(self, *args)

    def popitem(self) -> Any:
        self._changing_()
        return dict.popitem(self)

    def clear(self) -> None:
        self._changing_()
        dict.clear(self)


class TrackedList(TrackedValue, list):  # type: ignore[type-arg]
    """A list in a tracked value."""

    __slots__ = ("_attr_", "_owner_")

    def __init__(self, obj: Any, attr: Any, value: Any) -> None:
        self._owner_ = obj
        self._attr_ = attr
        list.__init__(self, (TrackedValue.make(obj, attr, item) for item in value))

    def __reduce__(self) -> Any:
        return list, (untracked(self),)

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            value = [self._incoming_(item) for item in value]
        else:
            value = self._incoming_(value)
        self._changing_()
        list.__setitem__(self, index, value)

    def __delitem__(self, index: Any) -> None:
        self._changing_()
        list.__delitem__(self, index)

    def __iadd__(self, items: Any) -> Any:  # type: ignore[misc]
        self.extend(items)
        return self

    def __imul__(self, times: Any) -> Any:  # type: ignore[misc]
        self._changing_()
        return list.__imul__(self, times)

    def append(self, item: Any) -> None:
        item = self._incoming_(item)
        self._changing_()
        list.append(self, item)

    def extend(self, items: Any) -> None:
        items = [self._incoming_(item) for item in items]
        self._changing_()
        list.extend(self, items)

    def insert(self, index: Any, item: Any) -> None:
        item = self._incoming_(item)
        self._changing_()
        list.insert(self, index, item)

    def pop(self, *args: Any) -> Any:
        self._changing_()
        return list.pop(self, *args)

    def remove(self, item: Any) -> None:
        self._changing_()
        list.remove(self, item)

    def reverse(self) -> None:
        self._changing_()
        list.reverse(self)

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._changing_()
        list.sort(self, *args, **kwargs)

    def clear(self) -> None:
        self._changing_()
        list.clear(self)


class TrackedArray(TrackedList):
    """The list of an array attribute: items are checked against the item type; ``in`` takes a list too."""

    __slots__ = ()

    def __contains__(self, item: Any) -> bool:
        if isinstance(item, (list, tuple)):  # Pony's subset test: every item is in the array
            return all(list.__contains__(self, part) for part in item)
        return list.__contains__(self, item)


def untracked(value: Any) -> Any:
    """A plain copy of ``value``: dicts and lists (tracked or not) copied all the way down."""
    if isinstance(value, dict):
        return {key: untracked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [untracked(item) for item in value]
    return value


class LongStr(str):
    """Marker type for a long text column (``TEXT``, no length limit); lazy unless ``lazy=False``."""

    lazy = True


#: Pony's other name for :class:`LongStr`
LongUnicode = LongStr


class ColumnType:
    """How one Python type is checked and how its values cross the DB-API."""

    py_type: type = object
    #: converts a value the driver returned; None when the driver already returns ``py_type``
    from_db: Callable[[Any], Any] | None = None
    #: converts a valid Python value into what the driver accepts; None for identity
    to_db: Callable[[Any], Any] | None = None
    #: the value ``==`` compares equal across a write and a re-read
    checkable = True

    def __init__(self, attr: Any) -> None:
        self.attr = attr

    def validate(self, value: Any) -> Any:
        """Return ``value`` converted to the column's Python type, or raise."""
        if isinstance(value, self.py_type):
            return value
        raise self.type_error(value)

    def type_error(self, value: Any) -> AttributeTypeError:
        """The error for ``value`` of the wrong type."""
        error = AttributeTypeError(
            f"Value type for attribute {self.attr.qualname} must be {self.py_type.__name__}. "
            f"Got {type(value).__name__}: {show(value)}"
        )
        error.attr, error.value = self.attr, value
        return error

    def value_error(self, value: Any, why: str) -> ValidationError:
        """The error for ``value`` of the right type but not acceptable."""
        return ValidationError(f"Value {show(value)} of attribute {self.attr.qualname} {why}")


class IntType(ColumnType):
    py_type = int

    def __init__(self, attr: Any) -> None:
        super().__init__(attr)
        size, unsigned = attr.size, attr.unsigned
        if size is None and unsigned:
            size = 32
        if size in INT_SIZES:
            low, high = (0, 2**size - 1) if unsigned else (-(2 ** (size - 1)), 2 ** (size - 1) - 1)
        else:
            low, high = INT64_MIN, INT64_MAX
        #: the range of the declared size (64-bit signed by default)
        self.size_low, self.size_high = low, high
        #: the values the column accepts: its size's range narrowed by ``min``/``max``
        self.low = low if attr.min is None else max(low, attr.min)
        self.high = high if attr.max is None else min(high, attr.max)

    def validate(self, value: Any) -> Any:
        if type(value) is not int:
            if isinstance(value, bool):
                raise self.type_error(value)
            if isinstance(value, str):
                try:
                    value = int(value)
                except ValueError:
                    raise AttributeTypeError(
                        f"Value type for attribute {self.attr.qualname} must be int. "
                        f"Got string {show_short(value)}"
                    ) from None
            elif isinstance(value, int) or hasattr(type(value), "__index__"):
                value = operator.index(value)
            else:
                raise self.type_error(value)
        if value < self.low:
            raise ValidationError(
                f"Value {show(value)} of attr {self.attr.qualname} is less than the minimum "
                f"allowed value {self.low}"
            )
        if value > self.high:
            raise ValidationError(
                f"Value {show(value)} of attr {self.attr.qualname} is greater than the maximum "
                f"allowed value {self.high}"
            )
        return value


class StrType(ColumnType):
    py_type = str

    def validate(self, value: Any) -> Any:
        if type(value) is not str:
            if not isinstance(value, str):
                raise self.type_error(value)
            value = str(value)
        attr = self.attr
        if attr.autostrip:
            value = value.strip()
        max_len = attr.max_len
        if max_len is not None and len(value) > max_len:
            raise self.value_error(value, f"is longer than max_len={max_len} ({len(value)} characters)")
        self.check_text(value)
        return value

    def check_text(self, value: str) -> None:
        """Refuse text some supported database cannot store: lone surrogates, NUL characters."""
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise self.value_error(value, f"is not valid Unicode text ({exc.reason})") from None
        if "\x00" in value:
            raise self.value_error(value, "contains a NUL character, which PostgreSQL cannot store")


class FloatType(ColumnType):
    py_type = float
    checkable = False

    def validate(self, value: Any) -> Any:
        if type(value) is not float:
            if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
                raise self.type_error(value)
            try:
                value = float(value)
            except OverflowError:
                raise self.value_error(value, "is too large for a float") from None
            except ValueError:
                raise AttributeTypeError(
                    f"Value type for attribute {self.attr.qualname} must be float. Got string {show_short(value)}"
                ) from None
        if not math.isfinite(value):
            raise self.value_error(value, "is not a finite number")
        attr = self.attr
        if attr.min is not None or attr.max is not None:
            check_bounds(attr, value)
        return value


def check_bounds(attr: Any, value: Any) -> None:
    """Raise the ValidationError for a number outside ``attr``'s ``min``/``max``."""
    if attr.min is not None and value < attr.min:
        raise ValidationError(
            f"Value {show(value)} of attr {attr.qualname} is less than the minimum allowed value {attr.min!r}"
        )
    if attr.max is not None and value > attr.max:
        raise ValidationError(
            f"Value {show(value)} of attr {attr.qualname} is greater than the maximum allowed value {attr.max!r}"
        )


class BoolType(ColumnType):
    py_type = bool
    from_db = bool


class DecimalType(ColumnType):
    py_type = Decimal

    @staticmethod
    def from_db(value: Any) -> Decimal:
        return value if isinstance(value, Decimal) else Decimal(str(value))

    to_db = str

    @property
    def precision(self) -> int:
        """The total number of digits the column holds."""
        return self.attr.precision or 12

    @property
    def scale(self) -> int:
        """The number of digits after the decimal point the column holds."""
        return 2 if self.attr.scale is None else int(self.attr.scale)

    def validate(self, value: Any) -> Any:
        if isinstance(value, float):
            value = self.from_float(value)
        elif isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
            raise self.type_error(value)
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise self.value_error(value, "is not a decimal number") from None
        if not value.is_finite():
            raise self.value_error(value, "is not a finite number")
        precision, scale = self.precision, self.scale
        # counted on the digits themselves: rounding in the decimal context would lose digits
        # of a value longer than the context's precision
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # a finite Decimal
        significant = len(digits)
        while significant and digits[significant - 1] == 0 and exponent < 0:
            significant -= 1  # trailing zeros after the point hold no information: 1.2300 is 1.23
            exponent += 1
        if significant and -exponent > scale:
            raise self.value_error(value, f"has more than scale={scale} decimal places")
        if significant and significant + exponent > precision - scale:
            raise self.value_error(
                value,
                f"does not fit precision={precision}, scale={scale} "
                f"(at most {precision - scale} digits before the decimal point)",
            )
        check_bounds(self.attr, value)
        return value

    def from_float(self, value: float) -> Decimal:
        """The Decimal a float stands for, at the column's scale (a float is a binary approximation)."""
        if not math.isfinite(value):
            raise self.value_error(value, "is not a finite number")
        shortest = Decimal(repr(value))  # the shortest text that reads back as this float
        _, _, exponent = shortest.as_tuple()
        assert isinstance(exponent, int)
        if -exponent <= self.scale:
            return shortest
        try:
            return shortest.quantize(Decimal(1).scaleb(-self.scale), context=Context(prec=self.precision + 1))
        except InvalidOperation:
            return shortest  # too many digits before the point: refused by the precision check

    def fixed_text(self, value: Decimal) -> str:
        """A valid ``value`` as plain digits with exactly the column's scale: ``'0.10'``, ``'-3.00'``."""
        scale = self.scale
        fixed = value.quantize(Decimal(1).scaleb(-scale), context=Context(prec=self.precision + 1))
        return format(fixed if fixed else abs(fixed), "f")


class DatetimeType(ColumnType):
    py_type = datetime

    @staticmethod
    def from_db(value: Any) -> datetime:
        return value if isinstance(value, datetime) else datetime.fromisoformat(value)

    @staticmethod
    def to_db(value: datetime) -> str:
        # stored as text: an aware value in UTC, so that text order is the order of instants
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat(" ")

    def validate(self, value: Any) -> Any:
        if not isinstance(value, datetime):
            if not isinstance(value, str):
                raise self.type_error(value)
            value = parse_or_fail(self, parse_datetime, value)
        value = to_precision(self.attr, value)
        aware = value.tzinfo is not None and value.utcoffset() is not None
        if aware != bool(self.attr.tz_aware):
            want = "timezone-aware" if self.attr.tz_aware else "naive (no tzinfo)"
            raise self.value_error(value, f"must be a {want} datetime")
        if aware:
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise self.value_error(value, "is out of range in UTC") from None
        return value


class DateType(ColumnType):
    py_type = date

    @staticmethod
    def from_db(value: Any) -> date:
        return value if isinstance(value, date) else date.fromisoformat(value)

    to_db = staticmethod(date.isoformat)

    def validate(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return value.date()
        if not isinstance(value, date):
            if not isinstance(value, str):
                raise self.type_error(value)
            value = parse_or_fail(self, parse_date, value)
        return value


class TimeType(ColumnType):
    py_type = time

    @staticmethod
    def from_db(value: Any) -> time:
        return value if isinstance(value, time) else time.fromisoformat(value)

    to_db = staticmethod(time.isoformat)

    def validate(self, value: Any) -> Any:
        if not isinstance(value, time):
            if not isinstance(value, str):
                raise self.type_error(value)
            value = parse_or_fail(self, parse_time, value)
        value = to_precision(self.attr, value)
        if value.tzinfo is not None:
            # PostgreSQL's TIME drops the offset and SQLite could not compare offsets: refused
            # rather than read back as a different time of day
            raise self.value_error(
                value,
                "has a tzinfo: a time of day is stored without an offset "
                "(store a naive time, or a datetime with tz_aware=True)",
            )
        return value


#: the longest duration every supported database stores: SQLite keeps microseconds in an INTEGER
TIMEDELTA_MAX = timedelta(microseconds=INT64_MAX)


class TimedeltaType(ColumnType):
    py_type = timedelta

    @staticmethod
    def from_db(value: Any) -> timedelta:
        return value if isinstance(value, timedelta) else timedelta(microseconds=value)

    @staticmethod
    def to_db(value: timedelta) -> int:
        return (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds

    def validate(self, value: Any) -> Any:
        if not isinstance(value, timedelta):
            if not isinstance(value, str):
                raise self.type_error(value)
            value = parse_or_fail(self, parse_timedelta, value)
        digits = self.attr.time_precision
        if digits < 6 and value.microseconds % 10 ** (6 - digits):
            unit = 10 ** (6 - digits)
            value = timedelta(value.days, value.seconds, value.microseconds // unit * unit)
        if not -TIMEDELTA_MAX <= value <= TIMEDELTA_MAX:
            raise self.value_error(value, f"is out of range [-{TIMEDELTA_MAX!r}, {TIMEDELTA_MAX!r}]")
        return value


class BytesType(ColumnType):
    py_type = bytes

    def validate(self, value: Any) -> Any:
        if isinstance(value, (bytearray, memoryview)):
            value = bytes(value)
        elif not isinstance(value, bytes):
            raise self.type_error(value)
        max_len = self.attr.max_len
        if max_len is not None and len(value) > max_len:
            raise self.value_error(value, f"is longer than max_len={max_len} ({len(value)} bytes)")
        return value

    @staticmethod
    def from_db(value: Any) -> bytes:
        return value if type(value) is bytes else bytes(value)


class UUIDType(ColumnType):
    py_type = UUID

    @staticmethod
    def from_db(value: Any) -> UUID:
        return value if isinstance(value, UUID) else UUID(value)

    to_db = str

    def validate(self, value: Any) -> Any:
        if isinstance(value, UUID):
            return value
        if isinstance(value, str):
            try:
                return UUID(value)
            except ValueError:
                raise self.value_error(value, "is not a UUID") from None
        raise self.type_error(value)


class JsonType(ColumnType):
    py_type = Json
    # the stored text need not match a re-serialization, so equality in SQL is no safe check
    checkable = False
    from_db = staticmethod(json.loads)
    to_db = staticmethod(json.dumps)

    def validate(self, value: Any) -> Any:
        try:
            json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise self.value_error(value, f"is not JSON-serializable ({exc})") from None
        for key in _non_text_keys(value):
            raise self.value_error(
                value, f"has the dict key {key!r}, which is not a str (JSON object keys are text)"
            )
        return value


class ArrayType(ColumnType):
    """A list of items of the array type's ``item_type`` (its portable form is JSON text)."""

    from_db = staticmethod(json.loads)
    to_db = staticmethod(json.dumps)

    def __init__(self, attr: Any) -> None:
        super().__init__(attr)
        self.item_type = attr.py_type.item_type
        self.checkable = self.item_type is not float  # floats are never compared in a check

    def validate(self, value: Any) -> Any:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise self.type_error(value)
        return [self.validate_item(item) for item in value]

    def validate_item(self, item: Any) -> Any:
        """``item`` as an item of the array, or AttributeTypeError naming the attribute."""
        kind = self.item_type
        if kind is float and isinstance(item, (int, float)) and not isinstance(item, bool):
            item = float(item)
            if not math.isfinite(item):
                raise self.value_error(item, "is not a finite number")
            return item
        if (
            kind is int
            and type(item) is not int
            and not isinstance(item, bool)
            and hasattr(item, "__index__")
        ):
            item = item.__index__()
        if not isinstance(item, kind) or isinstance(item, bool):
            error = AttributeTypeError(
                f"Cannot store {type(item).__name__!r} item in array of {kind.__name__!r}"
            )
            error.add_note(f"attribute {self.attr.qualname}, value {show(item)}")  # the text is Pony's
            raise error
        if kind is int and not INT64_MIN <= item <= INT64_MAX:
            raise self.value_error(item, f"is out of range [{INT64_MIN}, {INT64_MAX}]")
        return item


def _non_text_keys(value: Any) -> Iterator[Any]:
    """The dict keys inside ``value`` that are not str: they would read back as different keys."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    yield key
                todo.append(inner)
        elif isinstance(item, (list, tuple)):
            todo.extend(item)


def to_precision(attr: Any, value: Any) -> Any:
    """A datetime or time with its microseconds cut to ``attr``'s fractional digits (``precision``)."""
    digits = attr.time_precision
    if digits < 6:
        unit = 10 ** (6 - digits)
        if value.microsecond % unit:
            return value.replace(microsecond=value.microsecond // unit * unit)
    return value


def parse_or_fail(ctype: ColumnType, parse: Callable[[str], Any], text: str) -> Any:
    """``parse(text)``, or the ValidationError naming the attribute when the text is no such value."""
    try:
        return parse(text)
    except ValueError as exc:
        raise AttributeTypeError(
            f"Value {show_short(text)} of attribute {ctype.attr.qualname} is not a "
            f"{ctype.py_type.__name__}: {exc}"
        ) from None


# -- text to dates and times ----------------------------------------------------------------------
# The forms people type: ISO dates, 12/31/2024 (month first), 31.12.2024 (day first), month names;
# times as 13:45, 1:45 pm, 13.45.10, 13h45, 13 h 45 min 10.5 s.

_MONTHS = {
    name: number
    for number, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)
}

_DATE_FORMS = [
    (re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"), False),
    (re.compile(r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"), False),
    (re.compile(r"(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})"), False),
    (re.compile(r"(?P<name>[a-z]{3,})\.?\s*(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})"), True),
    (re.compile(r"(?P<d>\d{1,2})(?:st|nd|rd|th)?\s*(?P<name>[a-z]{3,})\.?,?\s*(?P<y>\d{4})"), True),
    (re.compile(r"(?P<y>\d{4})\s+(?P<name>[a-z]{3,})\.?\s+(?P<d>\d{1,2})"), True),
]

_TIME_FORM = re.compile(
    r"""
    (?P<h>\d{1,2}) (?:\s*[hu])?
    (?:
        (?: [:.] | \s+ | (?<=[a-z])\s* )      # a separator (none needed after a unit letter)
        (?P<m>\d{1,2}) (?:\s*(?:min|m|'))?
        (?:
            (?: [:.] | \s+ | (?<=[a-z'])\s* )
            (?P<s>\d{1,2}) (?:\.(?P<f>\d{1,6}))? (?:\s*(?:sec|s|"))?
        )?
    )?
    """,
    re.VERBOSE,
)
_MERIDIEM = re.compile(r"\s*(?P<half>[ap])\.?m\.?$")
_TIMEDELTA_FORM = re.compile(
    r"(?P<sign>-)?(?:(?P<days>\d+)\s+days?,\s*)?(?P<h>\d+):(?P<m>\d{1,2}):(?P<s>\d{1,2})(?:\.(?P<f>\d{1,6}))?"
)


def _date_prefix(text: str) -> tuple[date, str]:
    """The date ``text`` starts with, and the rest of the text."""
    for form, named in _DATE_FORMS:
        match = form.match(text)
        if match is None:
            continue
        month = _MONTHS.get(match["name"][:3]) if named else int(match["m"])
        if month is None:
            continue
        return date(int(match["y"]), month, int(match["d"])), text[match.end() :]
    raise ValueError("Unrecognized date format")


def parse_date(text: str) -> date:
    """A date from text: ``2024-12-31``, ``12/31/2024``, ``31.12.2024``, ``Dec 31 2024``, ``31 December 2024``."""
    value, rest = _date_prefix(text.strip().lower())
    if rest:
        raise ValueError("Unrecognized date format")
    return value


def parse_time(text: str) -> time:
    """A time of day from text: ``13:45``, ``1:45 pm``, ``13.45.10.5``, ``13h45``, ``13 h 45 min 10 s``."""
    text = text.strip().lower()
    meridiem = _MERIDIEM.search(text)
    if meridiem is not None:
        text = text[: meridiem.start()]
    match = _TIME_FORM.fullmatch(text)
    if match is None:
        raise ValueError("Unrecognized time format")
    hour = int(match["h"])
    if meridiem is not None:
        if not 1 <= hour <= 12:
            raise ValueError("Unrecognized time format")
        hour = hour % 12 + (12 if meridiem["half"] == "p" else 0)
    fraction = match["f"] or ""
    return time(
        hour, int(match["m"] or 0), int(match["s"] or 0), int(fraction.ljust(6, "0")) if fraction else 0
    )


def parse_datetime(text: str) -> datetime:
    """A datetime from text: ISO 8601, or a date as :func:`parse_date` reads it and a time after it."""
    text = text.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    day, rest = _date_prefix(text.lower())
    rest = rest.lstrip()
    if rest.startswith("t"):
        rest = rest[1:]
    if not rest:
        return datetime(day.year, day.month, day.day)
    try:
        moment = parse_time(rest)
    except ValueError:
        raise ValueError("Unrecognized datetime format") from None
    return datetime.combine(day, moment)


def parse_timedelta(text: str) -> timedelta:
    """A duration from text: ``[-][D days, ]H:MM:SS[.ffffff]`` (as ``str(timedelta)`` writes it)."""
    match = _TIMEDELTA_FORM.fullmatch(text.strip())
    if match is None:
        raise ValueError("Unrecognized timedelta format")
    fraction = match["f"] or ""
    value = timedelta(
        days=int(match["days"] or 0),
        hours=int(match["h"]),
        minutes=int(match["m"]),
        seconds=int(match["s"]),
        microseconds=int(fraction.ljust(6, "0")) if fraction else 0,
    )
    return -value if match["sign"] else value


COLUMN_TYPES: dict[type, type[ColumnType]] = {
    int: IntType,
    str: StrType,
    LongStr: StrType,
    float: FloatType,
    bool: BoolType,
    Decimal: DecimalType,
    datetime: DatetimeType,
    date: DateType,
    time: TimeType,
    timedelta: TimedeltaType,
    bytes: BytesType,
    UUID: UUIDType,
    Json: JsonType,
}


def column_type_for(attr: Any) -> ColumnType:
    """The ColumnType for ``attr.py_type``, or None when the type is not a column type."""
    if isinstance(attr.py_type, type) and issubclass(attr.py_type, Array) and attr.py_type is not Array:
        return ArrayType(attr)
    cls = COLUMN_TYPES.get(attr.py_type)
    if cls is None:
        return None  # type: ignore[return-value]
    return cls(attr)
