"""``pony.orm.ormtypes``: the column types and tracked values nextorm shares with Pony."""

from nextorm import Json
from nextorm.types import TrackedDict, TrackedList, TrackedValue

__all__ = ["Json", "TrackedDict", "TrackedList", "TrackedValue"]
