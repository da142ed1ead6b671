"""``nextorm-bench``: run every workload on every system and report side by side."""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import site
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nextorm.bench import dataset, report
from nextorm.bench.dataset import Target
from nextorm.bench.systems import SYSTEMS, System
from nextorm.bench.workloads import WORKLOADS, Config

if TYPE_CHECKING:
    from rich.console import Console

DEFAULTS = {"rows": 10_000, "batch": 1_000, "repeat": 5}
QUICK = {"rows": 500, "batch": 100, "repeat": 3}
FORMAT_VERSION = 1

# The directory holding this ``nextorm`` package: workers must import this very code.
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every installed system ran, 1 when any run failed."""
    args = parse_args(argv)
    if args.list:
        print(describe())
        return 0
    try:
        from rich.console import Console
    except ImportError:
        sys.exit("nextorm-bench needs rich: pip install 'nextorm[bench]'")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        sys.exit("--plot needs matplotlib: pip install 'nextorm[bench]'")
    # Every output is checked before the first run, so a typo never costs a whole benchmark.
    for option in ("json", "markdown", "plot"):
        problem = output_problem(getattr(args, option), plot=option == "plot")
        if problem:
            sys.exit(f"nextorm-bench: --{option} {getattr(args, option)}: {problem}")

    config = Config(rows=args.rows, batch=args.batch, repeat=args.repeat, warmup=args.warmup)
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="nextorm-bench-", dir=_memory_dir()) as tmp:
        target = Target.parse(args.db or str(Path(tmp) / "bench.sqlite3"))
        problem = None if target.is_postgres else output_problem(target.location)
        if problem:
            sys.exit(f"nextorm-bench: --db {args.db}: {problem}")
        try:
            database = FreshDatabase(target, Path(tmp), config.rows)
        except ValueError as exc:
            sys.exit(f"nextorm-bench: {exc}")
        try:
            results = run_all(args.systems, args.workloads, database, config)
        finally:
            database.close()
    report.add_ratios(results)
    document = build_report(results, args, config, target, machine)

    # Piped output gets room for the whole table rather than the 80-column default.
    show(Console(width=None if sys.stdout.isatty() else 120), results, document)
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(report.markdown_table(results))
    if args.plot:
        from nextorm.bench.plot import write_plot

        write_plot(document, Path(args.plot))
    return 1 if any(r["status"] == "error" for r in results) else 0


def show(console: Console, results: list[dict[str, Any]], document: dict[str, Any]) -> None:
    """Print the table, then what was missing, mislabelled or failed."""
    config = document["config"]
    caption = (
        f"{config['rows']} rows, batch {config['batch']}, best and median of {config['repeat']} "
        f"(after {config['warmup']} warm-up), per operation; {config['database']}. " + report.RATIO_LEGEND
    )
    console.print(report.rich_table(results, caption))
    missing = [name for name, s in document["systems"].items() if s["status"] == "missing"]
    if missing:
        console.print(f"not installed: {', '.join(missing)} (pip install 'nextorm[bench]')")
    for name in sorted({r["system"] for r in results if report.compiled_mismatch(r)}):
        compiled = document["systems"][name]["compiled"]
        console.print(
            f"warning: {name} ran with nextorm.COMPILED={compiled}; "
            "its figures are not those of the build its name says",
            style="red",
        )
    shown: set[str] = set()
    for r in results:
        if r["status"] != "error":
            continue
        console.print(f"{r['system']} / {r['workload']}: {r['error']}", style="red", markup=False)
        if r.get("stderr") and r["error"] not in shown:
            shown.add(r["error"])
            console.print(r["stderr"], markup=False, highlight=False)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, with ``--quick`` sizes filled in where none were given."""
    parser = argparse.ArgumentParser(
        prog="nextorm-bench",
        description="Run the same workloads on nextorm (compiled and pure), the raw DB-API "
        "floor and the installed peer ORMs (Pony, SQLAlchemy, Peewee); each system and "
        "workload in its own process, on an identical fresh database.",
    )
    parser.add_argument("--rows", type=_positive, help=f"rows in the table (default {DEFAULTS['rows']})")
    parser.add_argument(
        "--batch", type=_positive, help=f"objects per update/insert (default {DEFAULTS['batch']})"
    )
    parser.add_argument(
        "--repeat", type=_positive, help=f"timed runs per workload (default {DEFAULTS['repeat']})"
    )
    parser.add_argument("--warmup", type=_non_negative, default=1, help="untimed runs first (default 1)")
    parser.add_argument(
        "--systems",
        type=_choices(SYSTEMS),
        default=list(SYSTEMS),
        help=f"comma-separated, from: {','.join(SYSTEMS)} (default all)",
    )
    parser.add_argument(
        "--workloads",
        type=_choices(WORKLOADS),
        default=list(WORKLOADS),
        help=f"comma-separated, from: {','.join(WORKLOADS)} (default all)",
    )
    parser.add_argument(
        "--db",
        help="a SQLite file (recreated for every run; default: a temporary file, in RAM "
        "under /dev/shm where there is one, so disk flushes don't drown the ORMs' costs) or a "
        "postgresql:// DSN of a scratch database (its tables person, parent and child are dropped "
        "and recreated)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every figure, versions and machine info")
    parser.add_argument("--plot", metavar="FILE.png", help="write a bar chart of the ratios to raw")
    parser.add_argument("--markdown", metavar="FILE", help="write the table as GitHub markdown")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"small sizes: --rows {QUICK['rows']} --batch {QUICK['batch']} --repeat {QUICK['repeat']}",
    )
    parser.add_argument("--list", action="store_true", help="list systems and workloads, then exit")
    parser.add_argument("--version", action="version", version=version())
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else DEFAULTS
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.batch > args.rows:
        parser.error("--batch cannot exceed --rows: updates change the first --batch rows")
    return args


def version() -> str:
    """``nextorm-bench X (nextorm X, compiled hot path, Python Y)``."""
    import nextorm

    build = "compiled hot path" if nextorm.COMPILED else "pure-Python twin"
    return f"nextorm-bench {nextorm.__version__} (nextorm {nextorm.__version__}, {build}, Python {platform.python_version()})"


def output_problem(path: str | None, plot: bool = False) -> str | None:
    """Why ``path`` cannot be written as an output file, or None when it can (or is not asked for)."""
    if not path:
        return None
    target = Path(path)
    if plot:
        from nextorm.bench.plot import FORMATS

        if target.suffix.lower() not in FORMATS:
            return f"the chart is written as {', '.join(FORMATS)}; the name says {target.suffix or 'no type'}"
    if target.is_dir():
        return "is a directory"
    parent = target.parent
    if not parent.is_dir():
        return f"directory {parent} does not exist"
    if not os.access(parent if not target.exists() else target, os.W_OK):
        return "is not writable"
    return None


def describe() -> str:
    """The systems (and whether each is installed) and the workloads."""
    lines = ["systems:"]
    for system in SYSTEMS.values():
        state = "installed" if system.installed() else "not installed"
        lines.append(f"  {system.name:<14} {state}")
    lines.append("workloads:")
    for workload in WORKLOADS.values():
        lines.append(f"  {workload.name:<14} {workload.title}: {workload.description}")
    return "\n".join(lines)


class FreshDatabase:
    """Makes the identical fresh database each run starts from."""

    def __init__(self, target: Target, tmp: Path, rows: int) -> None:
        self.target = target
        self.rows = rows
        if target.is_postgres:
            dataset.check_postgres_reachable(target)
            self.template = None
        else:
            dataset.check_sqlite_overwritable(Path(target.location))
            # Built once, copied before every run: every system reads the same bytes.
            self.template = tmp / "template.sqlite3"
            dataset.write_sqlite(self.template, rows)

    def fresh(self) -> None:
        """Reset the database to its initial contents."""
        if self.template is None:
            dataset.write_postgres(self.target.location, self.rows)
        else:
            dataset.copy_sqlite(self.template, Path(self.target.location))

    def close(self) -> None:
        """Drop what the benchmark made in a PostgreSQL database."""
        if self.target.is_postgres:
            dataset.drop_postgres(self.target.location)


def run_all(
    system_names: list[str], workload_names: list[str], database: FreshDatabase, config: Config
) -> list[dict[str, Any]]:
    """Every workload on every system, workload by workload, behind a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    systems = [SYSTEMS[name] for name in system_names]
    installed = [s for s in systems if s.installed()]
    results = [
        {"system": s.name, "workload": w, "status": "missing"}
        for s in systems
        if s not in installed
        for w in workload_names
    ]
    with Progress(
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=len(installed) * len(workload_names))
        for workload in workload_names:
            for system in installed:
                progress.update(task, description=f"{workload} · {system.name}")
                database.fresh()
                results.append(run_worker(system, workload, database.target, config))
                progress.advance(task)
    return results


def run_worker(system: System, workload: str, target: Target, config: Config) -> dict[str, Any]:
    """Start the worker process for one system and workload; its parsed result."""
    env = {k: v for k, v in os.environ.items() if k != "NEXTORM_NO_EXTENSIONS"}
    env.update(system.env)
    # A source checkout goes first on the path; a site directory must not, ahead of the stdlib.
    if str(_SOURCE_ROOT) not in {str(Path(p).resolve()) for p in site.getsitepackages()}:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SOURCE_ROOT), env.get("PYTHONPATH")) if p)
    command = [
        sys.executable,
        "-m",
        "nextorm.bench.worker",
        f"--system={system.name}",
        f"--workload={workload}",
        f"--db={target.location}",
        f"--rows={config.rows}",
        f"--batch={config.batch}",
        f"--repeat={config.repeat}",
        f"--warmup={config.warmup}",
    ]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        result = {
            "system": system.name,
            "workload": workload,
            "status": "error",
            "error": f"worker exited with status {proc.returncode} and no result",
        }
    if result["status"] == "error":
        result["stderr"] = "\n".join(proc.stderr.strip().splitlines()[-15:])
    return result


def build_report(
    results: list[dict[str, Any]],
    args: argparse.Namespace,
    config: Config,
    target: Target,
    machine: dict[str, Any],
) -> dict[str, Any]:
    """The JSON document: configuration, machine, systems, workloads and every result."""
    systems: dict[str, dict[str, Any]] = {}
    for name in args.systems:
        own = [r for r in results if r["system"] == name]
        statuses = {r["status"] for r in own}
        info: dict[str, Any] = {}
        versions: dict[str, str] = {}
        for r in own:
            info.update(r.get("info", {}))
            versions.update(r.get("versions", {}))
        systems[name] = {
            "status": "missing" if statuses == {"missing"} else "error" if "error" in statuses else "ok",
            "versions": versions,
            "env": SYSTEMS[name].env,
            "expect_compiled": SYSTEMS[name].expect_compiled,
            **info,
        }
    return {
        "format": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config": {
            "rows": config.rows,
            "batch": config.batch,
            "repeat": config.repeat,
            "warmup": config.warmup,
            "quick": args.quick,
            "database": target.kind,
            "db": target.describe(),
            "gc": "collected before each timed run, enabled during it",
        },
        "machine": machine,
        "workloads": {
            name: {
                "title": w.title,
                "description": w.description,
                "kind": w.kind,
                "unit": w.unit,
                "ops": w.ops(config),
            }
            for name, w in WORKLOADS.items()
            if name in args.workloads
        },
        "systems": systems,
        "results": results,
    }


def _memory_dir() -> str | None:
    """``/dev/shm`` when it is a writable RAM-backed directory, else the default temp dir."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    import sqlite3

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model() or platform.processor(),
        "cpu_count": os.cpu_count(),
        # Other work on the machine skews timings; this says how busy it was.
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "sqlite": sqlite3.sqlite_version,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _positive(text: str) -> int:
    return _at_least(1, text)


def _non_negative(text: str) -> int:
    return _at_least(0, text)


def _at_least(low: int, text: str) -> int:
    value = int(text)
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


def _choices(known: dict[str, Any]) -> Any:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown: {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}"
            )
        return list(dict.fromkeys(names))

    return parse
