"""``pony.converting``: the text-to-date/time parsers, as nextorm's attribute conversions provide them."""

from nextorm.types import parse_date as str2date
from nextorm.types import parse_datetime as str2datetime
from nextorm.types import parse_time as str2time
from nextorm.types import parse_timedelta as str2timedelta

__all__ = ["str2date", "str2datetime", "str2time", "str2timedelta"]
