"""The general helpers Pony's public utility module offers, from the standard library."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from importlib import import_module
from typing import Any

__all__ = ["cached_property", "class_property", "import_module"]


class class_property:
    """A read-only property computed on the class rather than on an instance."""

    def __init__(self, getter: Callable[[Any], Any]) -> None:
        self.getter = getter

    def __get__(self, obj: Any, cls: Any) -> Any:
        return self.getter(cls)
