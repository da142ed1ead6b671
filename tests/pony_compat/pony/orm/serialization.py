"""``pony.orm.serialization``: objects (and the objects they refer to) as dicts by entity and key.

Built on ``obj.to_dict()``: each object given is a dict of its attributes with collections (as
sorted key lists); the objects it refers to are included one level deep, without collections.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from nextorm import Entity

__all__ = ["json_converter", "to_dict", "to_json"]


def to_dict(objects: Any) -> dict[str, dict[Any, dict[str, Any]]]:
    """``{entity name: {primary key: attribute dict}}`` for ``objects`` and the objects they refer to."""
    items = [objects] if isinstance(objects, Entity) else list(objects)
    for item in items:
        if not isinstance(item, Entity):
            raise TypeError(f"Entity instance or a sequence of instances expected. Got: {item!r}")
    result: dict[str, dict[Any, dict[str, Any]]] = defaultdict(dict)

    def put(obj: Any, with_related: bool) -> None:
        plain = obj.to_dict(related_objects=True)
        full = obj.to_dict(with_collections=True, related_objects=True)
        values: dict[str, Any] = {}
        for name, value in full.items():
            if name not in plain:  # a collection
                if not with_related:
                    continue
                for member in value:
                    if member.get_pk() not in result[type(member).__name__]:
                        put(member, False)
                values[name] = [member.get_pk() for member in value]
            elif isinstance(value, Entity):
                if with_related:
                    put(value, False)
                values[name] = value.get_pk()
            else:
                values[name] = value
        result[type(obj).__name__][obj.get_pk()] = values

    for item in items:
        if item.get_pk() not in result[type(item).__name__]:
            put(item, True)
    return dict(result)


def json_converter(value: Any) -> str:
    """Dates and decimals as text for ``json.dumps``."""
    if isinstance(value, (datetime, date, Decimal)):
        return str(value)
    raise TypeError(value)


def to_json(objects: Any) -> str:
    """``to_dict(objects)`` as indented JSON text."""
    return json.dumps(to_dict(objects), default=json_converter, indent=2, sort_keys=True)
