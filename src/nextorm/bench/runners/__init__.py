"""Runners: one module per system, each doing every workload its own idiomatic way.

Every workload method is a context manager: it does the untimed setup (open a
session, load the objects a workload needs), yields the callable that is timed,
and tears down after. An asynchronous workload's method is an async context
manager yielding a coroutine function; all of one measurement runs in one task
of one event loop, and ``aclose()`` runs in that loop at the end. ``Runner``
subclasses are exported as ``RUNNER``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Awaitable, Callable, Iterable
from typing import ClassVar

from nextorm.bench.dataset import Target
from nextorm.bench.workloads import Config

Timed = Callable[[], object]
AsyncTimed = Callable[[], Awaitable[object]]


class Unsupported(Exception):
    """This system cannot run on this database (e.g. a driver it needs is missing)."""


class Runner:
    """Base of every system's runner; subclasses add one method per workload."""

    distributions: ClassVar[tuple[str, ...]] = ()
    #: a workload's note: shown beside its figures, or as the reason it is unsupported
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

    async def aclose(self) -> None:
        """Release asyncio connections, in the event loop that made them."""


def read_attributes(objs: Iterable[object]) -> None:
    """Read the four value columns of every object, the attribute-read workload's body."""
    for obj in objs:
        obj.name  # type: ignore[attr-defined]  # noqa: B018
        obj.email  # type: ignore[attr-defined]  # noqa: B018
        obj.age  # type: ignore[attr-defined]  # noqa: B018
        obj.score  # type: ignore[attr-defined]  # noqa: B018


def read_children(parents: Iterable[object]) -> int:
    """Read the name of every child of every parent, the prefetch workload's body; the child count."""
    count = 0
    for parent in parents:
        for child in parent.children:  # type: ignore[attr-defined]
            child.name  # noqa: B018
            count += 1
    return count


def driver_versions(target: Target) -> dict[str, str]:
    """Versions of the installed drivers the ORMs use on this target: psycopg, or aiosqlite for asyncio SQLite."""
    name = "psycopg" if target.is_postgres else "aiosqlite"
    try:
        return {name: importlib.metadata.version(name)}
    except importlib.metadata.PackageNotFoundError:
        return {}


def require_modules(*names: str, purpose: str) -> None:
    """Raise Unsupported naming the missing ones when any of these modules cannot be imported."""
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        raise Unsupported(f"{purpose} needs {', '.join(missing)}: pip install 'nextorm[bench]'")
