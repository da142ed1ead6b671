"""Run Pony's own test suite against nextorm on SQLite and report what passes.

    python scripts/pony-tests.py --pony-python .venv-pony/bin/python [--report FILE] [--jobs N]

Pony's tests ship inside the ``pony`` package. ``--pony-python`` is the interpreter of an
environment where ``pony`` is installed (kept apart from nextorm's). At run time the test files
are copied from there into a scratch directory beside the compatibility package in
``tests/pony_compat`` (which maps ``pony.orm`` onto nextorm), and each file runs in its own
process under the current interpreter, where nextorm is installed. The number of tests in each
file is counted by loading it with the real Pony, so a file that fails to import counts all of
its tests as failed. Every test has ``--test-timeout`` seconds.

Prints each file's counts, the failures grouped by cause, and a closing total; writes the same
as Markdown to ``--report``. Exits 1 when fewer tests pass than the floor in
``tests/pony_compat/floor.txt`` (which only goes up).
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COMPAT = REPO / "tests" / "pony_compat"
FLOOR_FILE = COMPAT / "floor.txt"
#: why known failures fail: "- `test id or prefix`: reason" lines
REASONS_FILE = COMPAT / "reasons.md"
# Pony's bytecode decompiler is not part of nextorm (it translates from the syntax tree).
EXCLUDED = {"test_decompiler.py"}
# Test files of Pony's own that its test modules import as helpers or data.
HELPER_FILES = {"testutils.py", "fixtures.py", "model1.py", "queries.txt", "sql_tests.py"}


# -- counting with the real Pony ----------------------------------------------------------------


def count_in_pony() -> None:
    """Print ``{file: number of tests}`` for every Pony test file, loaded with the real Pony."""
    import pony.orm.tests as tests_package

    directory = Path(tests_package.__file__).parent
    counts: dict[str, int] = {}
    loader = unittest.TestLoader()
    for path in sorted(directory.glob("test_*.py")):
        if path.name in EXCLUDED:
            continue
        try:
            module = __import__(f"pony.orm.tests.{path.stem}", fromlist=["*"])
            counts[path.name] = loader.loadTestsFromModule(module).countTestCases()
        except Exception:
            counts[path.name] = 0
    print(json.dumps({"directory": str(directory), "counts": counts}))


# -- one file under nextorm -----------------------------------------------------------------------


class _TestTimeout(Exception):
    """A test ran past its time."""


#: the compatibility package's module of read-only views of Pony's private names (``_vals_``,
#: ``_indexes_`` ...); it records which of them each test read
VIEWS_MODULE = "pony.orm._views"


def _views_touched() -> set[str]:
    """The names of the views read since the last call (none before the module is imported)."""
    views = sys.modules.get(VIEWS_MODULE)
    if views is None:
        return set()
    touched = set(views.touched)
    views.touched.clear()
    return touched


class _Recorder(unittest.TestResult):
    """Records each test's outcome with the exception that ended it, and the views it read."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[dict[str, Any]] = []

    def startTest(self, test: Any) -> None:
        super().startTest(test)
        _views_touched()  # a class's setup is not the test's

    def _record(self, test: Any, outcome: str, err: Any = None) -> None:
        entry: dict[str, Any] = {"test": test.id(), "outcome": outcome}
        views = _views_touched()
        if views:
            entry["views"] = sorted(views)
        if err is not None:
            exc_type, exc, tb = err
            frames = traceback.extract_tb(tb)
            entry["error"] = f"{exc_type.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            entry["where"] = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        self.outcomes.append(entry)

    def addSuccess(self, test: Any) -> None:
        self._record(test, "passed")

    def addFailure(self, test: Any, err: Any) -> None:
        self._record(test, "failed", err)

    def addError(self, test: Any, err: Any) -> None:
        # errors in setUpClass arrive once for the class, as a pseudo-test without an id of its own
        self._record(test, "failed", err)

    def addSkip(self, test: Any, reason: str) -> None:
        _views_touched()
        self.outcomes.append({"test": test.id(), "outcome": "skipped", "error": reason})

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        self._record(test, "passed")

    def addUnexpectedSuccess(self, test: Any) -> None:
        self._record(test, "failed")


def _with_timeout(test: Any, seconds: int) -> None:
    def expire(signum: int, frame: Any) -> None:
        raise _TestTimeout(f"test ran longer than {seconds} s")

    method = getattr(test, test._testMethodName)

    def timed(*args: Any, **kwargs: Any) -> Any:
        signal.signal(signal.SIGALRM, expire)
        signal.alarm(seconds)
        try:
            return method(*args, **kwargs)
        finally:
            signal.alarm(0)

    setattr(test, test._testMethodName, timed)


def _flatten(suite: Any) -> Any:
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


def run_worker(module_name: str, out: str, seconds: int) -> None:
    """Run one Pony test module against nextorm and write its outcomes as JSON to ``out``."""
    result = _Recorder()
    try:
        module = __import__(module_name, fromlist=["*"])
        suite = unittest.TestLoader().loadTestsFromModule(module)
        for test in _flatten(suite):
            if hasattr(test, "_testMethodName") and hasattr(test, test._testMethodName):
                _with_timeout(test, seconds)
        suite.run(result)
    except BaseException:
        result._record(_ImportFailure(module_name), "import-failed", sys.exc_info())
    Path(out).write_text(json.dumps(result.outcomes))


class _ImportFailure:
    def __init__(self, name: str) -> None:
        self.name = name

    def id(self) -> str:
        return self.name


# -- failure causes --------------------------------------------------------------------------------

QUERY_NAMES = (
    "select|get|exists|count|sum|min|max|avg|desc|raw_sql|JOIN|left_join|distinct|between|"
    "coalesce|concat|group_concat|delete|show|select_random|random|avg|max|min|page|sort_by"
)
# (category, pattern on "ExcType: message" or on the location) - first match wins
CAUSES: list[tuple[str, str]] = [
    ("timeout", r"_TestTimeout|timed out"),
    # before the features: a test reading Pony's private attribute fails on that read, whatever it tests
    (
        "private internals (Pony modules and objects that are not public API)",
        r"No module named 'pony\.|cannot import name .* from 'pony|has no attribute '_|"
        r"module 'pony(\.orm)?(\.core)?' has no attribute",
    ),
    ("entity type given as a lambda", r"Entity <lambda>|(Optional|Required|Set)\(<function"),
    ("Json (tracked values, Json queries)", r"Json|TrackedDict|TrackedList|TrackedValue"),
    (
        "query syntax (generator, lambda and string queries; Pony's query functions)",
        rf"NameError: name '({QUERY_NAMES})' is not defined|A query condition has no truth value|"
        r"Expected a query condition, got|takes attributes of .* got|"
        r"'EntityMeta' object is not iterable|TranslationError|ExprEvalError|IncomparableTypes|"
        r"'Query' object has no attribute|<lambda>|<genexpr>",
    ),
    ("attribute paths through collections (g.students.name)", r"'SetInstance' object has no attribute"),
    (
        "composite keys in relations",
        r"[Cc]omposite|several columns|single-column primary key|composite_key|composite_index",
    ),
    ("entity inheritance", r"[Ii]nherit|[Dd]iscriminator|_discriminator_"),
    ("arrays", r"IntArray|StrArray|FloatArray"),
    ("LongStr / LongUnicode", r"LongStr|LongUnicode"),
    ("attribute options", r"has unknown option|attribute option"),
    (
        "Database API (db.schema, db.Person, db.insert(Entity), provider.dialect, last_sql ...)",
        r"'Database' object has no attribute '(?!_)|'SQLiteProvider' object has no attribute|"
        r"type object '\w+' has no attribute 'replace'",
    ),
    ("one-to-one column side and raw SQL over Pony's schema", r"no such column|syntax error"),
    ("declaration checks (Pony rejects, nextorm accepts)", r"Expected exception .* wasn't raised"),
    ("error class or message differs from Pony's", r"incorrect exception message|AssertionError: .* != "),
    ("value conversion on assignment", r"ValidationError|AttributeTypeError|a number is required"),
]


def known_reasons() -> dict[str, str]:
    """The reasons recorded in ``REASONS_FILE``, by test id (or the id of its class or module)."""
    if not REASONS_FILE.exists():
        return {}
    found = re.findall(r"^- `([^`]+)`: (.+)$", REASONS_FILE.read_text(), flags=re.MULTILINE)
    return dict(found)


def reason_for(test: str, reasons: dict[str, str]) -> str | None:
    """The recorded reason for ``test``: its own, else its class's, else its module's."""
    parts = test.split(".")
    for end in range(len(parts), 0, -1):
        reason = reasons.get(".".join(parts[:end]))
        if reason is not None:
            return reason
    return None


def cause_of(error: str, where: str) -> str:
    """The failure's category, from its exception text."""
    text = f"{error} @ {where}"
    for category, pattern in CAUSES:
        if re.search(pattern, text):
            return category
    return "other"


# -- the run ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pony-python", required=False, help="interpreter of an environment with pony")
    parser.add_argument("--report", help="write the results as Markdown to this file")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--test-timeout", type=int, default=20)
    parser.add_argument("--file-timeout", type=int, default=240)
    parser.add_argument("--raise-floor", action="store_true", help="raise the floor to this run's count")
    parser.add_argument("--failures", help="write every failing test with its cause and error to this file")
    parser.add_argument("--count-in-pony", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, metavar=("MODULE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_in_pony:
        count_in_pony()
        return 0
    if args.worker:
        run_worker(args.worker[0], args.worker[1], args.test_timeout)
        return 0
    if not args.pony_python:
        parser.error("--pony-python is required")
    if importlib.util.find_spec("nextorm") is None:
        parser.error(f"nextorm is not installed for {sys.executable}: run this script with its environment")

    counted = subprocess.run(
        [os.path.abspath(args.pony_python), __file__, "--count-in-pony"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    info = json.loads(counted.stdout.strip().splitlines()[-1])
    source, expected = Path(info["directory"]), info["counts"]

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nextorm-pony-") as scratch:
        root = Path(scratch)
        shutil.copytree(COMPAT / "pony", root / "pony")
        tests_dir = root / "pony" / "orm" / "tests"
        for path in source.iterdir():
            if path.name in HELPER_FILES or (path.name in expected):
                shutil.copy(path, tests_dir / path.name)

        def run_file(name: str) -> tuple[str, list[dict[str, Any]]]:
            out = root / f"{name}.json"
            env = dict(os.environ, PYTHONPATH=scratch, PYTHONDONTWRITEBYTECODE="1")
            try:
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--worker",
                        f"pony.orm.tests.{Path(name).stem}",
                        str(out),
                        "--test-timeout",
                        str(args.test_timeout),
                    ],
                    cwd=scratch,
                    env=env,
                    timeout=args.file_timeout,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return name, [
                    {"test": name, "outcome": "import-failed", "error": "_TestTimeout: file timed out"}
                ]
            if not out.exists():
                return name, [
                    {"test": name, "outcome": "import-failed", "error": "worker crashed", "where": ""}
                ]
            # the scratch directory's name changes every run: keep it out of the report
            return name, json.loads(out.read_text().replace(scratch, "<scratch>"))

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = dict(pool.map(run_file, sorted(expected)))

    lines: list[str] = []
    causes: collections.Counter[str] = collections.Counter()
    examples: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total_passed = total_failed = total_skipped = 0
    failing: list[tuple[str, str, str, int, str]] = []
    # passing tests that read a view of Pony's private names: (test, the views it read)
    through_views: list[tuple[str, list[str]]] = []
    lines.append("| file | passed | of them through views | failed | skipped | tests |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for name in sorted(expected):
        outcomes = results[name]
        tests = expected[name]
        passed = sum(o["outcome"] == "passed" for o in outcomes)
        skipped = sum(o["outcome"] == "skipped" for o in outcomes)
        failed = max(tests - passed - skipped, 0)
        failures = [o for o in outcomes if o["outcome"] in ("failed", "import-failed")]
        viewed = [(o["test"], o["views"]) for o in outcomes if o["outcome"] == "passed" and o.get("views")]
        through_views += viewed
        # a failure that ends several tests at once (an import, a setUpClass) is charged to each
        share = (
            [failed // len(failures) + (i < failed % len(failures)) for i in range(len(failures))]
            if failures
            else []
        )
        for outcome, weight in zip(failures, share):
            cause = cause_of(outcome.get("error", ""), outcome.get("where", ""))
            failing.append((cause, name, outcome.get("test", name), weight, outcome.get("error", "")))
            causes[cause] += weight
            examples[cause][outcome.get("error", "")[:140]] += weight
        if failed and not failures:
            causes["other"] += failed
            examples["other"]["tests not run (no outcome recorded)"] += failed
        total_passed, total_failed, total_skipped = (
            total_passed + passed,
            total_failed + failed,
            total_skipped + skipped,
        )
        lines.append(f"| {name} | {passed} | {len(viewed)} | {failed} | {skipped} | {tests} |")
    elapsed = time.monotonic() - started
    total = total_passed + total_failed + total_skipped
    lines.append(
        f"| **total** | **{total_passed}** | **{len(through_views)}** | **{total_failed}** "
        f"| **{total_skipped}** | **{total}** |"
    )
    per_view = collections.Counter(view for _, views in through_views for view in views)
    view_lines = [
        f"{len(through_views)} of the {total_passed} passing tests read Pony's private names, answered by the "
        f"read-only views of nextorm's state in `tests/pony_compat/pony/orm/_views.py`; without the views "
        f"{total_passed - len(through_views)} pass. Passing tests per view read:",
        "",
        ", ".join(f"`{view}` {n}" for view, n in sorted(per_view.items())) or "none",
        "",
        *[f"- `{test}`: {', '.join(f'`{v}`' for v in views)}" for test, views in sorted(through_views)],
    ]
    cause_lines = ["| cause | failed tests |", "|---|---:|"]
    cause_lines += [f"| {cause} | {n} |" for cause, n in causes.most_common()]
    detail = []
    for cause, n in causes.most_common():
        detail.append(f"\n### {cause} ({n})\n")
        detail += [f"- {count} x `{text}`" for text, count in examples[cause].most_common(12)]

    floor = int(FLOOR_FILE.read_text().split()[0])
    report = "\n".join(
        [
            "# Pony's test suite against nextorm (SQLite)",
            "",
            f"Pony's tests outside the decompiler tests, run by `scripts/pony-tests.py` in {elapsed:.0f} s "
            f"with {sys.version.split()[0]}; floor {floor}.",
            "",
            *lines,
            "",
            "## Passing through views of Pony's private names",
            "",
            *view_lines,
            "",
            "## Failures by cause",
            "",
            *cause_lines,
            "",
            "## Most frequent errors per cause",
            *detail,
            "",
        ]
    )
    print(report)
    if args.report:
        Path(args.report).write_text(report)
    if args.failures:
        reasons = known_reasons()
        listing = ["# Pony's tests that fail against nextorm, by cause", ""]
        for cause in [c for c, _ in causes.most_common()]:
            listing += ["", f"## {cause} ({causes[cause]})", ""]
            for _, _name, test, weight, error in sorted(f for f in failing if f[0] == cause):
                first = error.strip().splitlines()[0][:200] if error.strip() else "no error recorded"
                times = f" ({weight} tests)" if weight > 1 else ""
                listing.append(f"- `{test}`{times}: `{first}`")
                reason = reason_for(test, reasons)
                if reason is not None:
                    listing.append(f"  - why: {reason}")
        Path(args.failures).write_text("\n".join(listing) + "\n")
    if args.raise_floor and total_passed > floor:
        FLOOR_FILE.write_text(f"{total_passed}\n")
        print(f"floor raised from {floor} to {total_passed}")
    print(
        f"pony: {total_passed} passed ({len(through_views)} through views of Pony's private names), "
        f"{total_failed} failed, {total_skipped} skipped"
    )
    if total_passed < floor:
        print(f"Fewer of Pony's tests pass than the floor: {total_passed} < {floor}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
