"""Column types: validation of Python values and conversion to and from the database."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from .exceptions import AttributeTypeError, ValidationError

__all__ = ["COLUMN_TYPES", "ColumnType", "Json", "column_type_for"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def show(value: Any) -> str:
    """``repr(value)`` for an error message, also for an int too long for ``repr``."""
    try:
        return repr(value)
    except ValueError:  # an int beyond the int/str conversion limit (sys.set_int_max_str_digits)
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        return f"<{type(value).__name__} holding an int too long to show>"


class Json:
    """Marker type for a column holding any JSON-serializable value."""


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
        return AttributeTypeError(
            f"Value type for attribute {self.attr.qualname} must be {self.py_type.__name__}. "
            f"Got {type(value).__name__}: {show(value)}"
        )

    def value_error(self, value: Any, why: str) -> ValidationError:
        """The error for ``value`` of the right type but not acceptable."""
        return ValidationError(f"Value {show(value)} of attribute {self.attr.qualname} {why}")


class IntType(ColumnType):
    py_type = int

    def validate(self, value: Any) -> Any:
        if type(value) is not int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.type_error(value)
            value = int(value)
        attr = self.attr
        low = INT64_MIN if attr.min is None else attr.min
        high = INT64_MAX if attr.max is None else attr.max
        if not low <= value <= high:
            raise self.value_error(value, f"is out of range [{low}, {high}]")
        return value


class StrType(ColumnType):
    py_type = str

    def validate(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise self.type_error(value)
        max_len = self.attr.max_len
        if max_len is not None and len(value) > max_len:
            raise self.value_error(value, f"is longer than max_len={max_len} ({len(value)} characters)")
        self.check_text(value)
        return str(value)

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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.type_error(value)
        try:
            value = float(value)
        except OverflowError:
            raise self.value_error(value, "is too large for a float") from None
        if not math.isfinite(value):
            raise self.value_error(value, "is not a finite number")
        attr = self.attr
        if (attr.min is not None and value < attr.min) or (attr.max is not None and value > attr.max):
            raise self.value_error(value, f"is out of range [{attr.min}, {attr.max}]")
        return value


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
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
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
        attr = self.attr
        if (attr.min is not None and value < attr.min) or (attr.max is not None and value > attr.max):
            raise self.value_error(value, f"is out of range [{attr.min}, {attr.max}]")
        return value

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
            raise self.type_error(value)
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
        if not isinstance(value, date) or isinstance(value, datetime):
            raise self.type_error(value)
        return value


class TimeType(ColumnType):
    py_type = time

    @staticmethod
    def from_db(value: Any) -> time:
        return value if isinstance(value, time) else time.fromisoformat(value)

    to_db = staticmethod(time.isoformat)

    def validate(self, value: Any) -> Any:
        if not isinstance(value, time):
            raise self.type_error(value)
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
            raise self.type_error(value)
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


COLUMN_TYPES: dict[type, type[ColumnType]] = {
    int: IntType,
    str: StrType,
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
    cls = COLUMN_TYPES.get(attr.py_type)
    if cls is None:
        return None  # type: ignore[return-value]
    return cls(attr)
