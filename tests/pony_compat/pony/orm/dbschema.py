"""``pony.orm.dbschema``: the schema error class."""

from nextorm import DBSchemaError

__all__ = ["DBSchemaError"]
