"""The systems compared: where each one's runner lives and what it needs."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field


@dataclass(frozen=True)
class System:
    """One contestant: a runner module, the package it needs, its environment."""

    name: str
    runner: str
    requires: str
    peer: bool = False
    env: dict[str, str] = field(default_factory=dict)
    expect_compiled: bool | None = None

    def installed(self) -> bool:
        """Whether the package this system benchmarks can be imported."""
        return importlib.util.find_spec(self.requires) is not None


_RUNNERS = "nextorm.bench.runners"

SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System("nextorm", f"{_RUNNERS}.nextorm", "nextorm", expect_compiled=True),
        System(
            "nextorm-pure",
            f"{_RUNNERS}.nextorm",
            "nextorm",
            env={"NEXTORM_NO_EXTENSIONS": "1"},
            expect_compiled=False,
        ),
        System("raw", f"{_RUNNERS}.raw", "sqlite3"),
        System("pony", f"{_RUNNERS}.pony", "pony", peer=True),
        System("sqlalchemy", f"{_RUNNERS}.sqlalchemy", "sqlalchemy", peer=True),
        System("peewee", f"{_RUNNERS}.peewee", "peewee", peer=True),
    )
}

BASELINE = "raw"
