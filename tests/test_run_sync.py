"""``await run_sync(fn, ...)`` (README "Sync code in async sessions"): a plain function using the
sync API runs against the async session's own connection and transaction.

Runs on SQLite and, when ``NEXTORM_TEST_POSTGRES`` is set, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nextorm import (
    AsyncDatabase,
    AsyncRequired,
    PrimaryKey,
    Required,
    Set,
    TransactionError,
    db_session,
    flush,
    run_sync,
)


@pytest.fixture
def model(adb: AsyncDatabase) -> Any:
    """Team with a Set of Player."""

    class Team(adb.Entity):
        _table_ = "team"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        players = Set("Player")

    class Player(adb.Entity):
        _table_ = "player"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        team = Required(Team)

    adb.generate_mapping(create_tables=True)
    return Team, Player


def test_run_sync_uses_the_same_session_and_transaction(model: Any, other_connection: Any) -> None:
    """A sync helper queries, loads collections, creates and flushes in the async session; the outer commit stores it."""
    Team, Player = model

    def sync_helper(team_id: int, name: str) -> list[str]:
        team = Team[team_id]  # an identity-map miss loads through the async connection
        Player(name=name, team=team)
        flush()
        return sorted(p.name for p in team.players)

    async def main() -> None:
        async with db_session:
            team = Team(name="Reds")
            Player(name="Ann", team=team)
            await team.aflush()
            names = await run_sync(sync_helper, team.id, name="Bob")
            assert names == ["Ann", "Bob"]
            assert sorted(p.name for p in await Player.select().afetch()) == ["Ann", "Bob"]

    asyncio.run(main())
    assert sorted(r[0] for r in other_connection.execute("SELECT name FROM player").fetchall()) == ["Ann", "Bob"]


def test_run_sync_exceptions_propagate_and_roll_back(model: Any, other_connection: Any) -> None:
    """An exception of the sync function reaches the awaiting code; the session rolls back as usual."""
    Team, _ = model

    def failing() -> None:
        Team(name="Blues")
        flush()
        raise LookupError("nope")

    async def main() -> None:
        async with db_session:
            await run_sync(failing)

    with pytest.raises(LookupError):
        asyncio.run(main())
    assert other_connection.execute("SELECT COUNT(*) FROM team").fetchone()[0] == 0


def test_run_sync_needs_a_session(model: Any) -> None:
    """Outside a db_session run_sync raises TransactionError; sync IO without it raises AsyncRequired."""
    Team, _ = model

    async def main() -> None:
        with pytest.raises(TransactionError):
            await run_sync(lambda: None)
        async with db_session:
            with pytest.raises(AsyncRequired):
                Team.select().fetch()

    asyncio.run(main())
