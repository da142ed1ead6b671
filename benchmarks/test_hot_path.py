"""Hot-path micro-benchmarks: each operation for both twins, beside the plain-Python baseline.

Run with ``pytest benchmarks/ --benchmark-only``; each group holds one
operation and its baseline, so the table's ratios read as "this many times
the baseline". Memory per object is in each memory benchmark's ``extra_info``
(``--benchmark-json``).
"""

from __future__ import annotations

import sys
import tracemalloc
from typing import Any

import pytest

LOOP = 1000  # operations per timed call in the per-operation groups
LOAD_ROUNDS = 15


@pytest.mark.benchmark(group="load 100k rows")
def test_load_baseline_fetchall(benchmark: Any, fetchall: Any) -> None:
    """Baseline: the driver's ``fetchall()`` of the query."""
    rows = benchmark.pedantic(fetchall, rounds=LOAD_ROUNDS, warmup_rounds=1)
    assert len(rows) == 100_000


@pytest.mark.benchmark(group="load 100k rows")
def test_load_entities(benchmark: Any, fetchall: Any, model: Any) -> None:
    """``fetchall()`` plus ``materialize`` into a fresh identity map: every row a new entity."""

    def fresh_map() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return ({},), {}

    objs = benchmark.pedantic(
        lambda imap: model.load(imap, fetchall()), setup=fresh_map, rounds=LOAD_ROUNDS, warmup_rounds=1
    )
    assert len(objs) == 100_000 and objs[-1].id == 100_000


@pytest.mark.benchmark(group="materialize 100k fetched rows")
def test_materialize(benchmark: Any, fetchall: Any, model: Any) -> None:
    """``materialize`` alone, rows already fetched, into a fresh identity map: the twins side by side."""
    rows = fetchall()

    def fresh_map() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return ({}, rows), {}

    objs = benchmark.pedantic(model.load, setup=fresh_map, rounds=LOAD_ROUNDS, warmup_rounds=1)
    assert len(objs) == 100_000


@pytest.mark.benchmark(group="reload 100k rows")
def test_reload_baseline_fetchall(benchmark: Any, fetchall: Any) -> None:
    """Baseline: the driver's ``fetchall()`` of the query."""
    rows = benchmark.pedantic(fetchall, rounds=LOAD_ROUNDS, warmup_rounds=1)
    assert len(rows) == 100_000


@pytest.mark.benchmark(group="reload 100k rows")
def test_reload_known_entities(benchmark: Any, fetchall: Any, model: Any) -> None:
    """``fetchall()`` plus ``materialize`` when every row is in the map: identity hits and merges."""
    imap: dict[Any, Any] = {}
    model.load(imap, fetchall())
    objs = benchmark.pedantic(lambda: model.load(imap, fetchall()), rounds=LOAD_ROUNDS, warmup_rounds=1)
    assert len(objs) == len(imap) == 100_000


@pytest.fixture
def rows(fetchall: Any) -> list[tuple[Any, ...]]:
    """One timed call's worth of rows."""
    return fetchall()[:LOOP]


@pytest.mark.benchmark(group="identity-map hit")
def test_identity_hit_baseline_dict(benchmark: Any, rows: list[tuple[Any, ...]]) -> None:
    """Baseline: ``d[pk]`` on a dict of the same keys."""
    table = {row[0]: row for row in rows}
    keys = list(table)

    def run() -> None:
        for key in keys:
            table[key]

    benchmark(run)


@pytest.mark.benchmark(group="identity-map hit")
def test_identity_hit(benchmark: Any, model: Any, rows: list[tuple[Any, ...]]) -> None:
    """``Entity[pk]`` through the metaclass ``__getitem__`` when the object is in the map."""
    imap = model.session.maps[model.entity] = {}
    model.load(imap, rows)
    entity = model.entity
    keys = list(imap)

    def run() -> None:
        for key in keys:
            entity[key]

    benchmark(run)
    assert entity[keys[-1]] is imap[keys[-1]]


@pytest.mark.benchmark(group="attribute read")
def test_read_baseline_slots(benchmark: Any, plain_objects: Any, rows: list[tuple[Any, ...]]) -> None:
    """Baseline: ``obj.name`` on plain ``__slots__`` objects."""
    objs = plain_objects(rows)

    def run() -> None:
        for obj in objs:
            obj.name  # noqa: B018 - the read is what is measured

    benchmark(run)


@pytest.mark.benchmark(group="attribute read")
def test_read_tracked(benchmark: Any, model: Any, rows: list[tuple[Any, ...]]) -> None:
    """``obj.name`` through the Column descriptor: alive check, status check, read bit."""
    objs = model.load({}, rows)

    def run() -> None:
        for obj in objs:
            obj.name  # noqa: B018 - the read is what is measured

    benchmark(run)
    assert objs[0]._rbits_ == 0b10


@pytest.mark.benchmark(group="attribute write")
def test_write_baseline_slots(benchmark: Any, plain_objects: Any, rows: list[tuple[Any, ...]]) -> None:
    """Baseline: ``obj.age = value`` on plain ``__slots__`` objects, a new value each call."""
    objs = plain_objects(rows)
    state = [0]

    def run() -> None:
        state[0] ^= 1
        value = state[0]
        for obj in objs:
            obj.age = value

    benchmark(run)


@pytest.mark.benchmark(group="attribute write")
def test_write_tracked(benchmark: Any, model: Any, rows: list[tuple[Any, ...]]) -> None:
    """``obj.age = value`` through the Column: session check, ``_validate_`` hook, compare, write bit."""
    objs = model.load({}, rows)
    state = [-1]  # ages in the table are >= 0, so every write is a change

    def run() -> None:
        state[0] ^= 1
        value = state[0]
        for obj in objs:
            obj.age = value

    benchmark(run)
    assert objs[0]._status_ == model.speedups.MODIFIED and len(model.cache.dirty) == len(objs)


def traced_bytes(build: Any) -> tuple[float, Any]:
    """Bytes per row allocated (and kept) by ``build()``, and what it built."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = build()
        return (tracemalloc.get_traced_memory()[0] - before) / len(built), built
    finally:
        tracemalloc.stop()


def record_memory(benchmark: Any, build: Any, fetchall: Any) -> None:
    """Put the object size and the bytes per row, without and with the row values, in ``extra_info``."""
    rows = fetchall()
    per_row, objs = traced_bytes(lambda: build(rows))
    with_values, _ = traced_bytes(lambda: build(fetchall()))
    benchmark.extra_info.update(
        object_bytes=sys.getsizeof(objs[0]),
        traced_bytes_per_row=round(per_row, 1),
        traced_bytes_per_row_with_values=round(with_values, 1),
    )
    benchmark.pedantic(build, args=(rows,), rounds=5)


@pytest.mark.benchmark(group="memory per object")
def test_memory_baseline_slots(benchmark: Any, fetchall: Any, plain_objects: Any) -> None:
    """Baseline: plain slot objects of the rows, in a list; sizes in ``extra_info``."""
    record_memory(benchmark, plain_objects, fetchall)


@pytest.mark.benchmark(group="memory per object")
def test_memory_entities(benchmark: Any, fetchall: Any, model: Any) -> None:
    """Entities of the rows, in a list (the map is dropped); sizes in ``extra_info``."""
    record_memory(benchmark, lambda rows: model.load({}, rows), fetchall)
