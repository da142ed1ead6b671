"""``pony.orm.ormtypes``: the column types nextorm shares with Pony."""

from nextorm import Json

__all__ = ["Json"]
