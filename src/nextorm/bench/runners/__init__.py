"""Runners: one module per system, each doing every workload its own idiomatic way.

Every workload method is a context manager: it does the untimed setup (open a
session, load the objects a workload needs), yields the callable that is timed,
and tears down after. ``Runner`` subclasses are exported as ``RUNNER``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable
from typing import ClassVar

from nextorm.bench.dataset import Target
from nextorm.bench.workloads import Config

Timed = Callable[[], object]


class Unsupported(Exception):
    """This system cannot run on this database (e.g. a driver it needs is missing)."""


class Runner:
    """Base of every system's runner; subclasses add one method per workload."""

    distributions: ClassVar[tuple[str, ...]] = ()
    notes: ClassVar[dict[str, str]] = {}

    def __init__(self, target: Target, config: Config) -> None:
        self.target = target
        self.config = config

    def versions(self) -> dict[str, str]:
        """Versions of the packages this runner measures."""
        return {name: importlib.metadata.version(name) for name in self.distributions}

    def info(self) -> dict[str, object]:
        """Facts about the build under test worth recording (e.g. ``compiled``)."""
        return {}

    def close(self) -> None:
        """Release connections."""


def read_attributes(objs: Iterable[object]) -> None:
    """Read the four value columns of every object, the attribute-read workload's body."""
    for obj in objs:
        obj.name  # type: ignore[attr-defined]  # noqa: B018
        obj.email  # type: ignore[attr-defined]  # noqa: B018
        obj.age  # type: ignore[attr-defined]  # noqa: B018
        obj.score  # type: ignore[attr-defined]  # noqa: B018
