"""Concurrent sessions on shared rows (issue #9): every acknowledged write is kept exactly once, nothing else.

Threads (on ``Database``) and asyncio tasks (on ``AsyncDatabase``) run many short
``@db_session(retry=...)`` sessions against four shared counters: deposits, transfers between two
counters, deposits under ``get_for_update``, and audits that read everything. Every write also
inserts ledger entries, so each counter must equal the sum of its entries, both in every audit
(one statement, one snapshot) and at the end, where it must also equal the sum of the writes the
sessions acknowledged by returning. Sessions may fail only with documented exceptions. The default
sizes are small; ``--soak`` runs 8 threads x 500 sessions and 200 tasks.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter as Tally
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from nextorm import (
    OptimisticCheckError,
    PrimaryKey,
    Required,
    SerializationFailure,
    TransactionError,
    aflush,
    db_session,
    flush,
)

COUNTERS = (1, 2, 3, 4)
RETRY = 100
#: counters whose value differs from the sum of their entries (0 when every session was atomic)
AUDIT = (
    "SELECT count(*) FROM counter c "
    "WHERE c.value <> (SELECT coalesce(sum(e.amount), 0) FROM entry e WHERE e.counter = c.id)"
)


def declare(database: Any) -> SimpleNamespace:
    """Map Counter and Entry (the ledger) onto ``database``; counters 1..4 start at 0."""

    class Counter(database.Entity):
        _table_ = "counter"
        id = PrimaryKey(int)
        value = Required(int)

    class Entry(database.Entity):
        _table_ = "entry"
        id = PrimaryKey(int, auto=True)
        counter = Required(int, index=True)
        amount = Required(int)

    database.generate_mapping(create_tables=True)
    return SimpleNamespace(db=database, Counter=Counter, Entry=Entry)


@pytest.fixture
def shared(storage: Any, flavour: str) -> SimpleNamespace:
    """Counter and Entry on a fresh database of the test's flavour, with the counters committed."""
    ns = declare(storage.database(asyncio=flavour == "async", sqlite_timeout=30.0))
    client = storage.client()
    for key in COUNTERS:
        client.execute("INSERT INTO counter (id, value) VALUES (?, 0)", (key,))
    return ns


def plan(rng: random.Random) -> tuple[str, tuple[int, ...]]:
    """One random session: an operation and its arguments."""
    roll = rng.random()
    amount = rng.randint(1, 9)
    if roll < 0.35:
        return "deposit", (rng.choice(COUNTERS), amount)
    if roll < 0.6:
        src, dst = rng.sample(COUNTERS, 2)
        return "transfer", (src, dst, amount)
    if roll < 0.75:
        return "locked_deposit", (rng.choice(COUNTERS), amount)
    return "audit", ()


def changes(operation: str, args: tuple[int, ...]) -> list[tuple[int, int]]:
    """The (counter, amount) entries an acknowledged session wrote."""
    if operation in ("deposit", "locked_deposit"):
        return [(args[0], args[1])]
    if operation == "transfer":
        return [(args[0], -args[2]), (args[1], args[2])]
    return []


class Outcome:
    """What the workers saw: acknowledged entries and the exceptions sessions ended with."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: list[tuple[int, int]] = []
        self.sessions = Tally[str]()
        self.failures: list[BaseException] = []
        self.retried: list[BaseException] = []

    def retryable(self, error: BaseException) -> bool:
        """``retry_exceptions`` of the sessions: TransactionError and its subclasses, each one remembered."""
        with self.lock:
            self.retried.append(error)
        return isinstance(error, TransactionError)

    def record(self, operation: str, args: tuple[int, ...], error: BaseException | None) -> None:
        """Count one finished session."""
        with self.lock:
            if error is None:
                self.sessions[operation] += 1
                self.acknowledged.extend(changes(operation, args))
            else:
                self.failures.append(error)


def sync_operations(ns: SimpleNamespace, outcome: Outcome) -> dict[str, Callable[..., None]]:
    """The sessions, as retrying db_session functions on a Database."""
    retrying = db_session(retry=RETRY, retry_exceptions=outcome.retryable)

    @retrying
    def deposit(key: int, amount: int) -> None:
        ns.Counter[key].value += amount
        ns.Entry(counter=key, amount=amount)

    @retrying
    def transfer(src: int, dst: int, amount: int) -> None:
        for key, change in sorted(((src, -amount), (dst, amount))):  # rows in key order: no deadlock
            ns.Counter[key].value += change
            ns.Entry(counter=key, amount=change)

    @retrying
    def locked_deposit(key: int, amount: int) -> None:
        ns.Counter.get_for_update(id=key).value += amount
        ns.Entry(counter=key, amount=amount)

    @retrying
    def audit() -> None:
        assert ns.db.select(AUDIT) == [0], "an audit saw a counter out of step with its entries"
        assert [c.id for c in ns.Counter.select().order_by(ns.Counter.id)] == list(COUNTERS)

    return {"deposit": deposit, "transfer": transfer, "locked_deposit": locked_deposit, "audit": audit}


def async_operations(ns: SimpleNamespace, outcome: Outcome) -> dict[str, Callable[..., Any]]:
    """The sessions, as retrying db_session coroutines on an AsyncDatabase."""
    retrying = db_session(retry=RETRY, retry_exceptions=outcome.retryable)

    @retrying
    async def deposit(key: int, amount: int) -> None:
        (await ns.Counter.aget(id=key)).value += amount
        ns.Entry(counter=key, amount=amount)

    @retrying
    async def transfer(src: int, dst: int, amount: int) -> None:
        for key, change in sorted(((src, -amount), (dst, amount))):  # rows in key order: no deadlock
            (await ns.Counter.aget(id=key)).value += change
            ns.Entry(counter=key, amount=change)

    @retrying
    async def locked_deposit(key: int, amount: int) -> None:
        (await ns.Counter.aget_for_update(id=key)).value += amount
        ns.Entry(counter=key, amount=amount)

    @retrying
    async def audit() -> None:
        assert await ns.db.aselect(AUDIT) == [0], "an audit saw a counter out of step with its entries"
        assert [c.id for c in await ns.Counter.select().order_by(ns.Counter.id).afetch()] == list(COUNTERS)

    return {"deposit": deposit, "transfer": transfer, "locked_deposit": locked_deposit, "audit": audit}


def check(storage: Any, outcome: Outcome, total: int, documented: Any) -> None:
    """The database holds exactly the acknowledged writes; failures were documented and few."""
    for error in outcome.failures + outcome.retried:
        documented(error)
        assert isinstance(error, TransactionError), repr(error)
    assert sum(outcome.sessions.values()) + len(outcome.failures) == total
    assert len(outcome.failures) <= total // 100, outcome.failures[:5]
    expected = {key: 0 for key in COUNTERS}
    for key, amount in outcome.acknowledged:
        expected[key] += amount
    values = dict(storage.fetch("SELECT id, value FROM counter"))
    assert values == expected
    entries = storage.fetch("SELECT counter, amount FROM entry ORDER BY counter, amount")
    assert entries == sorted(outcome.acknowledged)
    assert storage.fetch(AUDIT) == [(0,)]


def test_concurrent_sessions_keep_every_acknowledged_write(
    storage: Any, shared: SimpleNamespace, flavour: str, soak: bool, documented: Any
) -> None:
    """8 threads of retrying sessions (async: asyncio tasks) on four shared counters: totals are exact, no hang."""
    outcome = Outcome()
    if flavour == "sync":
        threads, per_thread = 8, (500 if soak else 60)
        total = threads * per_thread
        operations = sync_operations(shared, outcome)

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(per_thread):
                operation, args = plan(rng)
                try:
                    operations[operation](*args)
                except Exception as exc:
                    outcome.record(operation, args, exc)
                else:
                    outcome.record(operation, args, None)

        workers = [threading.Thread(target=worker, args=(seed,), daemon=True) for seed in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(600)
        assert not any(thread.is_alive() for thread in workers), "a worker thread hangs (deadlock?)"
    else:
        tasks, per_task = (200, 5) if soak else (50, 4)
        total = tasks * per_task
        aoperations = async_operations(shared, outcome)

        async def aworker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(per_task):
                operation, args = plan(rng)
                try:
                    await aoperations[operation](*args)
                except Exception as exc:
                    outcome.record(operation, args, exc)
                else:
                    outcome.record(operation, args, None)

        async def main() -> None:
            await asyncio.wait_for(asyncio.gather(*(aworker(seed) for seed in range(tasks))), 600)

        storage.run(main)
    check(storage, outcome, total, documented)
    assert set(outcome.sessions) == {"deposit", "transfer", "locked_deposit", "audit"}


@pytest.mark.postgres
def test_a_deadlock_is_retried_and_both_sessions_commit(
    storage: Any, shared: SimpleNamespace, flavour: str, documented: Any
) -> None:
    """Two sessions locking two rows in opposite orders deadlock: one gets SerializationFailure, retry re-runs it."""
    outcome = Outcome()
    orders = {"one": ((1, 1), (2, 1)), "two": ((2, 10), (1, 10))}
    attempts = Tally[str]()
    if flavour == "sync":
        barrier = threading.Barrier(2, timeout=120)

        @db_session(retry=5, retry_exceptions=outcome.retryable)
        def cross(name: str) -> None:
            attempts[name] += 1
            (first, a), (second, b) = orders[name]
            shared.Counter[first].value += a
            flush()
            if attempts[name] == 1:
                barrier.wait()
            shared.Counter[second].value += b

        def worker(name: str) -> None:
            try:
                cross(name)
            except Exception as exc:
                outcome.record("cross", (), exc)
            else:
                outcome.record("cross", (), None)

        workers = [threading.Thread(target=worker, args=(name,), daemon=True) for name in orders]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(300)
        assert not any(thread.is_alive() for thread in workers), "a session hangs"
    else:

        async def main() -> None:
            barrier = asyncio.Barrier(2)

            @db_session(retry=5, retry_exceptions=outcome.retryable)
            async def across(name: str) -> None:
                attempts[name] += 1
                (first, a), (second, b) = orders[name]
                (await shared.Counter.aget(id=first)).value += a
                await aflush()
                if attempts[name] == 1:
                    await asyncio.wait_for(barrier.wait(), 120)
                (await shared.Counter.aget(id=second)).value += b

            async def aworker(name: str) -> None:
                try:
                    await across(name)
                except Exception as exc:
                    outcome.record("cross", (), exc)
                else:
                    outcome.record("cross", (), None)

            await asyncio.wait_for(asyncio.gather(*(aworker(name) for name in orders)), 300)

        storage.run(main)
    assert outcome.failures == []
    assert outcome.sessions["cross"] == 2
    for error in outcome.retried:
        documented(error)
    assert all(isinstance(e, (SerializationFailure, OptimisticCheckError)) for e in outcome.retried), (
        outcome.retried
    )
    assert any(isinstance(e, SerializationFailure) and "deadlock" in str(e) for e in outcome.retried), (
        outcome.retried
    )
    assert dict(storage.fetch("SELECT id, value FROM counter")) == {1: 11, 2: 11, 3: 0, 4: 0}
