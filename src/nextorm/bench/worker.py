"""One system, one workload, in its own process; prints one JSON line of results.

``python -m nextorm.bench.worker --system pony --workload load --db FILE
--rows N --batch M --repeat R``. The parent prepares the database first.
Anything the system prints goes to stderr, so stdout carries only the result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import sys
import traceback
from typing import Any

from nextorm.bench.dataset import Target
from nextorm.bench.runners import Runner, Unsupported
from nextorm.bench.systems import SYSTEMS
from nextorm.bench.timing import Measurement, ameasure_time, measure_memory, measure_time
from nextorm.bench.workloads import WORKLOADS, Config, Workload


def run(system_name: str, workload_name: str, target: Target, config: Config) -> dict[str, Any]:
    """Measure one workload on one system; the result as a JSON-ready dict."""
    system = SYSTEMS[system_name]
    workload = WORKLOADS[workload_name]
    ops = workload.ops(config)
    result: dict[str, Any] = {
        "system": system_name,
        "workload": workload_name,
        "unit": workload.unit,
        "ops": ops,
    }
    runner_class = importlib.import_module(system.runner).RUNNER
    try:
        runner = runner_class(target, config)
    except Unsupported as exc:
        return {**result, "status": "unsupported", "note": str(exc)}
    try:
        result["versions"] = runner.versions()
        result["info"] = runner.info()
        if getattr(runner, workload.method, None) is None:
            note = runner.notes.get(workload_name) or "workload not implemented"
            return {**result, "status": "unsupported", "note": note}
        try:
            measurement = measure(runner, workload, ops, config)
        except Unsupported as exc:
            return {**result, "status": "unsupported", "note": str(exc)}
    finally:
        runner.close()
    return {
        **result,
        "status": "ok",
        "best": measurement.best,
        "median": measurement.median,
        "samples": measurement.samples,
        "note": runner.notes.get(workload_name, ""),
    }


def measure(runner: Runner, workload: Workload, ops: int, config: Config) -> Measurement:
    """Time (or trace) one workload; an asynchronous one in an event loop of its own."""
    setup = getattr(runner, workload.method)
    if workload.asynchronous:
        return asyncio.run(_ameasure(runner, setup, ops, config))
    measure_kind = measure_memory if workload.kind == "memory" else measure_time
    return measure_kind(setup, ops, config.repeat, config.warmup)


async def _ameasure(runner: Runner, setup: Any, ops: int, config: Config) -> Measurement:
    try:
        return await ameasure_time(setup, ops, config.repeat, config.warmup)
    finally:
        await runner.aclose()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The worker's command line."""
    parser = argparse.ArgumentParser(prog="python -m nextorm.bench.worker")
    parser.add_argument("--system", required=True, choices=sorted(SYSTEMS))
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--db", required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--repeat", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one measurement and print its result as one JSON line."""
    args = parse_args(argv)
    config = Config(rows=args.rows, batch=args.batch, repeat=args.repeat, warmup=args.warmup)
    out = sys.stdout
    status = 0
    with contextlib.redirect_stdout(sys.stderr):
        try:
            result = run(args.system, args.workload, Target.parse(args.db), config)
        except Exception as exc:  # reported to the parent, which shows it in the table
            traceback.print_exc()
            result = {
                "system": args.system,
                "workload": args.workload,
                "status": "error",
                "error": f"{type(exc).__name__}: {exc}",
            }
            status = 1
    out.write(json.dumps(result) + "\n")
    out.flush()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
