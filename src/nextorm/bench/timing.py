"""Measuring a workload: warm-up, then timed (or traced) repeats.

Every repeat gets its own setup, so each one starts from the same state (a fresh
session, freshly loaded objects). The garbage collector is run before each
measurement and stays enabled during it: ORMs create reference cycles, and the
collections they cause are part of what using them costs.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass

from nextorm.bench.runners import AsyncTimed, Timed

Setup = Callable[[], AbstractContextManager[Timed]]
AsyncSetup = Callable[[], AbstractAsyncContextManager[AsyncTimed]]


@dataclass(frozen=True)
class Measurement:
    """Per-operation figures of one workload on one system."""

    samples: list[float]

    @property
    def best(self) -> float:
        """The smallest sample."""
        return min(self.samples)

    @property
    def median(self) -> float:
        """The median sample."""
        return statistics.median(self.samples)


def warm_up(setup: Setup, times: int) -> None:
    """Run the workload untimed, so caches and lazy imports are filled first."""
    for _ in range(times):
        with setup() as run:
            run()


def measure_time(setup: Setup, ops: int, repeat: int, warmup: int) -> Measurement:
    """Nanoseconds per operation of ``repeat`` timed runs of ``ops`` operations each."""
    warm_up(setup, warmup)
    samples = []
    for _ in range(repeat):
        with setup() as run:
            gc.collect()
            start = time.perf_counter_ns()
            result = run()
            elapsed = time.perf_counter_ns() - start
            del result
        samples.append(elapsed / ops)
    return Measurement(samples)


async def ameasure_time(setup: AsyncSetup, ops: int, repeat: int, warmup: int) -> Measurement:
    """``measure_time`` of an asynchronous workload, awaited in the running event loop."""
    for _ in range(warmup):
        async with setup() as run:
            await run()
    samples = []
    for _ in range(repeat):
        async with setup() as run:
            gc.collect()
            start = time.perf_counter_ns()
            result = await run()
            elapsed = time.perf_counter_ns() - start
            del result
        samples.append(elapsed / ops)
    return Measurement(samples)


def measure_memory(setup: Setup, ops: int, repeat: int, warmup: int) -> Measurement:
    """Bytes still allocated per operation after a run, its result kept alive."""
    warm_up(setup, warmup)
    samples = []
    for _ in range(repeat):
        with setup() as run:
            gc.collect()
            tracemalloc.start()
            try:
                result = run()
                # Transient cycles are garbage, not memory the loaded objects hold.
                gc.collect()
                retained, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            del result
        samples.append(retained / ops)
    return Measurement(samples)
