"""nextorm, compiled or pure (``NEXTORM_NO_EXTENSIONS=1`` set by the parent)."""

from __future__ import annotations

import importlib.metadata
from types import ModuleType
from typing import Any, ClassVar

import nextorm
from nextorm.bench.runners._ponylike import PonyLikeRunner


class NextormRunner(PonyLikeRunner):
    """nextorm's Pony-style idioms."""

    orm: ClassVar[ModuleType] = nextorm

    def versions(self) -> dict[str, str]:
        """nextorm's version."""
        try:
            return {"nextorm": importlib.metadata.version("nextorm")}
        except importlib.metadata.PackageNotFoundError:
            return {"nextorm": str(getattr(nextorm, "__version__", "unknown"))}

    def info(self) -> dict[str, object]:
        """Whether the compiled session core actually loaded."""
        return {"compiled": bool(nextorm.COMPILED)}

    def select_batch(self) -> Any:
        """``Person.select(Person.id <= batch)``."""
        Person = self.Person
        return Person.select(Person.id <= self.config.batch)


RUNNER = NextormRunner
