"""Instructions per operation of nextorm-bench workloads, counted by callgrind, side by side.

    python benchmarks/instructions.py query raw nextorm nextorm-pure
    python benchmarks/instructions.py n-plus-1 raw nextorm --db /tmp/bench.sqlite --rows 20000 --batch 2000

For each system, the workload's timed function (the one ``nextorm-bench`` times) runs after two
warm-up runs, once and then three times, each in a process of its own under ``valgrind
--tool=callgrind``; the difference of the two totals, over the two extra runs and the workload's
operations, is the system's instructions per operation, and each ratio is over the first
system's. Unlike wall-clock times, these counts barely move with the load of a shared machine, so a
target is judged on them when the timed ratios swing between runs. SQLite only: a file made as
``nextorm-bench`` makes it (kept and reused when ``--db`` names an existing file).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from nextorm.bench.dataset import Target, write_sqlite
from nextorm.bench.systems import SYSTEMS
from nextorm.bench.workloads import WORKLOADS, Config

#: runs after the warm-up ones: the count of RUNS minus the count of one run is (RUNS - 1) runs' cost
RUNS = 3


def run_child(system: str, workload: str, runs: int, db: str, rows: int, batch: int) -> None:
    """In the measured process: the workload's timed function, twice to warm up, then ``runs`` times."""
    config = Config(rows=rows, batch=batch, repeat=1)
    runner = importlib.import_module(SYSTEMS[system].runner).RUNNER(Target.parse(db), config)
    try:
        with getattr(runner, WORKLOADS[workload].method)() as timed:
            for _ in range(2 + runs):
                timed()
    finally:
        runner.close()


def count(system: str, workload: str, runs: int, db: str, rows: int, batch: int) -> int:
    """The instructions callgrind counts in a whole process running ``runs`` timed runs."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        system,
        workload,
        str(runs),
        db,
        str(rows),
        str(batch),
    ]
    env = {**os.environ, **SYSTEMS[system].env}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{system} {workload}: the measured run failed\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--child":
        system, workload, runs, db, rows, batch = args[1:7]
        run_child(system, workload, int(runs), db, int(rows), int(batch))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("systems", nargs="+", choices=sorted(SYSTEMS))
    parser.add_argument("--db", help="the SQLite file (made when missing; default: a temporary one)")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000)
    options = parser.parse_args(args)
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(options.db or Path(scratch) / "bench.sqlite").resolve()
        if not db.exists():
            write_sqlite(db, options.rows)
        ops = WORKLOADS[options.workload].ops(Config(rows=options.rows, batch=options.batch, repeat=1))
        first = None
        for system in options.systems:
            one = count(system, options.workload, 1, str(db), options.rows, options.batch)
            more = count(system, options.workload, RUNS, str(db), options.rows, options.batch)
            per_op = (more - one) / (RUNS - 1) / ops
            first = per_op if first is None else first
            print(
                f"{options.workload:<12} {system:<13} {per_op:14,.0f} instructions/op  {per_op / first:6.3f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
