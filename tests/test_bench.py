"""nextorm-bench: the CLI runs every installed system and reports honest, complete figures."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nextorm.bench import cli, dataset, report, worker
from nextorm.bench.dataset import Target, make_rows
from nextorm.bench.plot import legend_labels
from nextorm.bench.report import rows as table_rows
from nextorm.bench.systems import SYSTEMS, System
from nextorm.bench.workloads import WORKLOADS, Config

QUICK = cli.QUICK
# A quick run starts a worker process per system and workload (about a hundred): on a loaded
# machine that takes longer than the suite's default per-test timeout, which is for hangs.
pytestmark = pytest.mark.timeout(1200)
#: the systems whose asyncio API the benchmark measures; the others report the async workloads unsupported
ASYNC_SYSTEMS = ("nextorm", "nextorm-pure", "sqlalchemy", "raw")
ASYNC_WORKLOADS = [name for name, workload in WORKLOADS.items() if workload.asynchronous]


#: the forms of the query workload a system has no syntax for
NO_SYNTAX = {"pony": ("query-expr",), "sqlalchemy": ("query-gen",), "peewee": ("query-gen",)}


def _supported(system: str, workload: str) -> bool:
    """Whether ``system`` is expected to measure ``workload`` (on SQLite)."""
    if workload in NO_SYNTAX.get(system, ()):
        return False
    return system in ASYNC_SYSTEMS or not WORKLOADS[workload].asynchronous


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One ``--quick`` run of every system and workload, with every output file."""
    out = tmp_path_factory.mktemp("bench")
    paths = {"json": out / "bench.json", "plot": out / "bench.png", "markdown": out / "bench.md"}
    code = cli.main(
        [
            "--quick",
            "--json",
            str(paths["json"]),
            "--plot",
            str(paths["plot"]),
            "--markdown",
            str(paths["markdown"]),
        ]
    )
    return {"code": code, "report": json.loads(paths["json"].read_text()), **paths}


def _results(report: dict[str, Any], system: str) -> dict[str, dict[str, Any]]:
    """One system's results by workload."""
    return {r["workload"]: r for r in report["results"] if r["system"] == system}


def test_quick_run_of_all_installed_systems_succeeds(quick_run: dict[str, Any]) -> None:
    """Every installed system runs every workload without error."""
    errors = [
        f"{r['system']}/{r['workload']}: {r.get('error')}\n{r.get('stderr', '')}"
        for r in quick_run["report"]["results"]
        if r["status"] == "error"
    ]
    assert errors == []
    assert quick_run["code"] == 0


def test_json_has_config_machine_workloads_and_systems(quick_run: dict[str, Any]) -> None:
    """The JSON records the sizes, the machine, every workload and every system."""
    report = quick_run["report"]
    assert report["format"] == cli.FORMAT_VERSION
    config = report["config"]
    assert (config["rows"], config["batch"], config["repeat"]) == (
        QUICK["rows"],
        QUICK["batch"],
        QUICK["repeat"],
    )
    assert config["quick"] is True and config["database"] == "sqlite"
    assert {"python", "platform", "cpu_count", "sqlite"} <= report["machine"].keys()
    assert set(report["workloads"]) == set(WORKLOADS)
    for name, workload in report["workloads"].items():
        assert workload["ops"] == WORKLOADS[name].ops(Config(**QUICK))
    assert set(report["systems"]) == set(SYSTEMS)


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_every_installed_system_has_positive_figures(quick_run: dict[str, Any], system: str) -> None:
    """An installed system has, per workload it supports, positive best/median/samples and ratios."""
    report = quick_run["report"]
    results = _results(report, system)
    assert set(results) == set(WORKLOADS)
    if not SYSTEMS[system].installed():
        assert report["systems"][system]["status"] == "missing"
        assert {r["status"] for r in results.values()} == {"missing"}
        return
    assert report["systems"][system]["status"] == "ok"
    assert report["systems"][system]["versions"]
    for workload, r in results.items():
        if not _supported(system, workload):
            continue
        assert r["status"] == "ok", (workload, r)
        assert r["unit"] == WORKLOADS[workload].unit
        assert r["ops"] > 0
        assert len(r["samples"]) == QUICK["repeat"]
        assert all(sample > 0 for sample in r["samples"])
        assert 0 < r["best"] <= r["median"]
        assert r["best"] == min(r["samples"])
        assert r["ratio_to_raw"] > 0
        assert r["ratio_to_fastest_peer"] is None or r["ratio_to_fastest_peer"] > 0


def test_ratios_are_relative_to_raw_and_the_fastest_peer(quick_run: dict[str, Any]) -> None:
    """Ratios are of medians: raw's to itself is 1, the fastest peer's to itself is 1; the spread brackets it."""
    report = quick_run["report"]
    for workload in WORKLOADS:
        ok = {r["system"]: r for r in report["results"] if r["workload"] == workload and r["status"] == "ok"}
        assert ok["raw"]["ratio_to_raw"] == 1.0
        for r in ok.values():
            assert r["ratio_to_raw"] == pytest.approx(r["median"] / ok["raw"]["median"])
            low, high = r["ratio_to_raw_spread"]
            assert min(r["samples"]) / ok["raw"]["median"] <= low <= r["ratio_to_raw"] <= high
            assert high <= max(r["samples"]) / ok["raw"]["median"]
            assert r["noise"] is (r["system"] != "raw" and r["ratio_to_raw"] < 1)
        fastest = ok["raw"]["fastest_peer"]
        if fastest is not None:
            assert ok[fastest]["ratio_to_fastest_peer"] == 1.0
            peers = [r["median"] for r in ok.values() if SYSTEMS[r["system"]].peer]
            assert ok[fastest]["median"] == min(peers)


def test_nextorm_records_which_implementation_ran(quick_run: dict[str, Any]) -> None:
    """``nextorm`` runs the compiled core when it is built; ``nextorm-pure`` never does."""
    systems = quick_run["report"]["systems"]
    built = importlib.util.find_spec("nextorm._speedups") is not None
    assert systems["nextorm"]["compiled"] is built
    assert systems["nextorm-pure"]["compiled"] is False
    assert systems["nextorm-pure"]["env"] == {"NEXTORM_NO_EXTENSIONS": "1"}


@pytest.mark.parametrize("system", [s for s in SYSTEMS if s not in ASYNC_SYSTEMS])
def test_systems_without_a_measured_asyncio_api_say_why(quick_run: dict[str, Any], system: str) -> None:
    """Pony and Peewee report the asyncio workloads unsupported, with the reason as the note."""
    if not SYSTEMS[system].installed():
        pytest.skip(f"{system} is not installed")
    results = _results(quick_run["report"], system)
    for workload in ASYNC_WORKLOADS:
        assert results[workload]["status"] == "unsupported"
        assert "asyncio" in results[workload]["note"]


@pytest.mark.parametrize("system", list(NO_SYNTAX))
def test_systems_without_a_query_form_say_why(quick_run: dict[str, Any], system: str) -> None:
    """Pony has no attribute expressions, SQLAlchemy and Peewee no generators: unsupported, with the reason."""
    if not SYSTEMS[system].installed():
        pytest.skip(f"{system} is not installed")
    results = _results(quick_run["report"], system)
    for workload in NO_SYNTAX[system]:
        assert results[workload]["status"] == "unsupported"
        assert "has no" in results[workload]["note"] and "quer" in results[workload]["note"]


def test_nextorm_measures_every_form_of_the_query(quick_run: dict[str, Any]) -> None:
    """The query as a lambda, a generator and attribute expressions: each with its median and spread."""
    for system in ("nextorm", "nextorm-pure"):
        results = _results(quick_run["report"], system)
        for workload in ("query", "query-gen", "query-expr"):
            r = results[workload]
            assert r["status"] == "ok", r
            assert r["ops"] == QUICK["batch"]
            low, high = r["ratio_to_raw_spread"]
            assert low <= r["ratio_to_raw"] <= high


@pytest.mark.skipif(not SYSTEMS["peewee"].installed(), reason="peewee is not installed")
def test_peewee_lookup_is_marked_as_no_identity_map(quick_run: dict[str, Any]) -> None:
    """Peewee's primary-key lookup is labelled as a SELECT, not an identity-map hit."""
    assert "no identity map" in _results(quick_run["report"], "peewee")["pk-lookup"]["note"]


def test_plot_is_a_png(quick_run: dict[str, Any]) -> None:
    """``--plot`` writes a PNG image."""
    assert quick_run["plot"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_markdown_table_has_a_row_per_result(quick_run: dict[str, Any]) -> None:
    """``--markdown`` writes a table with a row per system and workload that ran."""
    lines = quick_run["markdown"].read_text().splitlines()
    assert lines[0].startswith("| workload | system | best | median |")
    ran = [r for r in quick_run["report"]["results"] if r["status"] != "missing"]
    assert len(lines) == 2 + len(ran)


# nextorm-pure shares nextorm's runner; the worker switches the implementation.
@pytest.mark.parametrize("system", [s for s in SYSTEMS if s != "nextorm-pure"])
def test_every_runner_does_the_same_work(tmp_path: Path, system: str) -> None:
    """Each runner loads every row, updates exactly the first M ages by one and inserts the same M rows."""
    db = tmp_path / "same.sqlite3"
    runner = _runner(system, db)
    try:
        with runner.load() as run:
            assert len(run()) == 40
        for workload in ("get_by_pk", "read_attrs", "empty_session", "update", "insert"):
            with getattr(runner, workload)() as run:
                run()
    finally:
        runner.close()
    _assert_first_ages_incremented_and_rows_added(db)


@pytest.mark.parametrize("system", [s for s in ASYNC_SYSTEMS if s != "nextorm-pure"])
def test_every_async_runner_does_the_same_work(tmp_path: Path, system: str) -> None:
    """Awaited, each runner loads every row, updates exactly the first M ages by one and inserts the same M rows."""
    db = tmp_path / "same.sqlite3"
    runner = _runner(system, db)

    async def work() -> int:
        try:
            async with runner.async_load() as run:
                loaded = len(await run())
            for workload in ("async_update", "async_insert"):
                async with getattr(runner, workload)() as run:
                    await run()
        finally:
            await runner.aclose()
        return loaded

    try:
        assert asyncio.run(work()) == 40
    finally:
        runner.close()
    _assert_first_ages_incremented_and_rows_added(db)


@pytest.mark.parametrize("system", [s for s in SYSTEMS if s != "nextorm-pure"])
def test_every_prefetch_loads_the_same_parents_and_children(tmp_path: Path, system: str) -> None:
    """Every system's prefetch workload loads all 4 parents and reads all 40 children through them."""
    runner = _runner(system, tmp_path / "prefetch.sqlite3")
    try:
        with runner.prefetch() as run:
            assert run() == (4, 40)
    finally:
        runner.close()


@pytest.mark.parametrize("system", [s for s in SYSTEMS if s != "nextorm-pure"])
def test_every_runner_answers_the_query_workloads_alike(tmp_path: Path, system: str) -> None:
    """query, count, get, n-plus-1 and to-dict give every system the same rows, counts and dicts."""
    db = tmp_path / "queries.sqlite3"
    runner = _runner(system, db)
    with sqlite3.connect(db) as conn:
        ages = dataset.query_ages(7)
        expected_rows = sum(
            min(10, conn.execute("SELECT COUNT(*) FROM person WHERE age = ?", (age,)).fetchone()[0])
            for age in ages
        )
        expected_count = sum(
            conn.execute("SELECT COUNT(*) FROM person WHERE age = ?", (age,)).fetchone()[0] for age in ages
        )
    try:
        with runner.query() as run:
            assert run() == expected_rows
        with runner.count() as run:
            assert run() == expected_count
        with runner.get_by_email() as run:
            assert run() == 7
        with runner.children_lazily() as run:
            assert run() == (4, 40)
        with runner.to_dicts() as run:
            dicts = run()
            assert len(dicts) == 40
            assert dicts[0] == {
                "id": 1,
                "name": "person 0",
                "email": "person0@example.com",
                "age": dicts[0]["age"],
                "score": dicts[0]["score"],
            }
    finally:
        runner.close()


def test_query_rounds_repeat_no_age_within_a_round() -> None:
    """The query and count workloads' sessions never see one age twice, and together ask for every age."""
    rounds = dataset.query_rounds(200)
    assert [age for ages in rounds for age in ages] == dataset.query_ages(200)
    assert all(len(set(ages)) == len(ages) for ages in rounds)
    assert len(rounds) == 3


def test_pony_sends_every_query_of_the_count_workload(tmp_path: Path) -> None:
    """Pony answers a repeated query from its session's cache; the count workload runs its rounds in
    sessions of their own, so Pony sends as many COUNTs as it is asked for, as raw does."""
    db = tmp_path / "counts.sqlite3"
    if not SYSTEMS["pony"].installed():
        pytest.skip("pony is not installed")
    dataset.write_sqlite(db, 200)
    runner = importlib.import_module(SYSTEMS["pony"].runner).RUNNER(
        Target.parse(str(db)), Config(rows=200, batch=150, repeat=1)
    )
    try:
        with runner.count() as run:
            run()
            run()
        sent = sum(stat.db_count for sql, stat in runner.db.local_stats.items() if sql and "COUNT" in sql)
    finally:
        runner.close()
    assert sent == 300


def test_nextorm_prefetch_sends_one_select_per_table(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """nextorm's prefetch workload reads children without a lazy load per parent: two SELECTs in all."""
    import nextorm

    runner = _runner("nextorm", tmp_path / "prefetch.sqlite3")
    try:
        with runner.prefetch() as run, caplog.at_level("INFO", logger="nextorm.sql"):
            nextorm.set_sql_debug(True)
            try:
                run()
            finally:
                nextorm.set_sql_debug(False)
    finally:
        runner.close()
    statements = [r.getMessage() for r in caplog.records if r.name == "nextorm.sql"]
    assert [sql.split(" FROM ")[1].split()[0] for sql in statements] == ['"parent"', '"child"']


def test_missing_asyncio_driver_makes_async_workloads_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without aiosqlite an async workload on SQLite is reported unsupported, naming the package."""
    db = tmp_path / "noaio.sqlite3"
    dataset.write_sqlite(db, 20)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "aiosqlite" else find_spec(name, *a)
    )
    for system in ("raw", "nextorm", "sqlalchemy"):
        result = worker.run(
            system, "async-load", Target.parse(str(db)), Config(rows=20, batch=5, repeat=1, warmup=0)
        )
        assert result["status"] == "unsupported" and "aiosqlite" in result["note"], result


def _runner(system: str, db: Path) -> Any:
    """``system``'s runner on a fresh 40-row SQLite database at ``db`` (skipped when not installed)."""
    if not SYSTEMS[system].installed():
        pytest.skip(f"{system} is not installed")
    dataset.write_sqlite(db, 40)
    return importlib.import_module(SYSTEMS[system].runner).RUNNER(
        Target.parse(str(db)), Config(rows=40, batch=7, repeat=1)
    )


def _assert_first_ages_incremented_and_rows_added(db: Path) -> None:
    """The first 7 of 40 ages are one higher and the 7 rows ``make_rows`` gives next were added."""
    with sqlite3.connect(db) as conn:
        ages = conn.execute("SELECT age FROM person WHERE id <= 40 ORDER BY id").fetchall()
        added = conn.execute(
            "SELECT name, email, age, score FROM person WHERE id > 40 ORDER BY id"
        ).fetchall()
    original = [(age,) for _, _, age, _ in make_rows(40)]
    assert ages == [(age + 1,) for (age,) in original[:7]] + original[7:]
    assert added == make_rows(7, start=40)


def test_table_flags_nextorm_run_without_its_compiled_core() -> None:
    """A ``nextorm`` result with ``compiled`` False is labelled as not compiled; pure is not flagged."""
    figures = {"status": "ok", "workload": "load", "unit": "ns", "best": 1.0, "median": 1.0}
    results = [
        {**figures, "system": "nextorm", "info": {"compiled": False}},
        {**figures, "system": "nextorm-pure", "info": {"compiled": False}},
    ]
    labels = [row[1] for row in table_rows(results)]
    assert labels == ["nextorm (NOT compiled!)", "nextorm-pure"]


def test_ratio_below_the_raw_floor_is_flagged_as_noise() -> None:
    """A system measured faster than raw gets a ratio under 1 and a note saying it is noise."""
    figures = {"status": "ok", "workload": "load", "unit": "ns"}
    results = [
        {**figures, "system": "raw", "best": 90.0, "median": 100.0, "samples": [90.0, 100.0, 110.0]},
        {**figures, "system": "nextorm", "best": 80.0, "median": 95.0, "samples": [80.0, 95.0, 120.0]},
        {**figures, "system": "sqlalchemy", "best": 900.0, "median": 1000.0, "samples": [900.0, 1000.0]},
    ]
    report.add_ratios(results)
    raw, nextorm, sqlalchemy = results
    assert nextorm["ratio_to_raw"] == pytest.approx(0.95) and nextorm["noise"] is True
    assert nextorm["ratio_to_raw_spread"] == pytest.approx([0.875, 1.075])
    assert raw["noise"] is False and sqlalchemy["noise"] is False
    cells = {row[1]: row for row in table_rows(results)}
    assert cells["nextorm"][4] == "0.950x (0.875-1.07)"
    assert cells["nextorm"][6] == report.NOISE_NOTE
    assert cells["sqlalchemy"][6] == ""


def test_chart_labels_every_system_including_those_that_did_not_run() -> None:
    """The legend names every system but raw, saying which did not run and where it was n/a."""
    ok = {"status": "ok", "ratio_to_raw": 2.0, "ratio_to_raw_spread": [1.5, 2.5]}
    document = {
        "systems": {name: {} for name in ("nextorm", "raw", "pony", "peewee")},
        "results": [
            {**ok, "system": "nextorm", "workload": "load"},
            {**ok, "system": "nextorm", "workload": "async-load"},
            {**ok, "system": "raw", "workload": "load"},
            {"system": "pony", "workload": "load", "status": "missing"},
            {"system": "pony", "workload": "async-load", "status": "missing"},
            {**ok, "system": "peewee", "workload": "load"},
            {"system": "peewee", "workload": "async-load", "status": "unsupported"},
        ],
    }
    assert legend_labels(document) == {
        "nextorm": "nextorm",
        "pony": "pony: did not run (not installed)",
        "peewee": "peewee (n/a in 1 of 2 workloads)",
    }


def test_version_names_the_harness_and_the_build(capsys: pytest.CaptureFixture[str]) -> None:
    """``nextorm-bench --version`` prints the version and which hot path is installed, then exits 0."""
    import nextorm

    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"nextorm-bench {nextorm.__version__} (nextorm {nextorm.__version__}, ")
    assert ("compiled hot path" if nextorm.COMPILED else "pure-Python twin") in out


@pytest.mark.parametrize(
    ("option", "name", "problem"),
    [
        ("--json", "missing-dir/bench.json", "directory .*missing-dir does not exist"),
        ("--markdown", ".", "is a directory"),
        ("--plot", "bench.txt", "the chart is written as .png, .svg, .pdf; the name says .txt"),
        ("--db", "missing-dir/bench.sqlite3", "directory .*missing-dir does not exist"),
    ],
)
def test_bad_output_path_fails_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, name: str, problem: str
) -> None:
    """An output or SQLite file that cannot be written stops the CLI with one line naming it, before any run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "run_worker", _no_worker)
    with pytest.raises(SystemExit) as exc:
        cli.main(["--quick", "--systems", "raw", option, name])
    message = str(exc.value.code)
    assert "\n" not in message
    assert re.fullmatch(f"nextorm-bench: {option} {re.escape(name)}: {problem}", message)


def test_unreachable_database_fails_before_any_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL ``--db`` nobody answers on stops the CLI with one line, password hidden, no worker run."""
    monkeypatch.setattr(cli, "run_worker", _no_worker)
    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(SystemExit) as exc:
            cli.main(["--quick", "--db", f"postgresql://bench:s3cret@127.0.0.1:{port}/scratch"])
    message = str(exc.value.code)
    assert message.startswith(
        f"nextorm-bench: cannot connect to postgresql://bench:***@127.0.0.1:{port}/scratch: "
    )
    assert "\n" not in message and "s3cret" not in message


def _no_worker(*args: Any) -> dict[str, Any]:
    raise AssertionError("a worker started although the command line was refused")


def test_missing_system_is_reported_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer that is not installed is listed as missing and the run still succeeds."""
    monkeypatch.setattr(System, "installed", lambda self: self.name != "pony")
    out = tmp_path / "bench.json"
    code = cli.main(["--quick", "--systems", "raw,pony", "--workloads", "session", "--json", str(out)])
    report = json.loads(out.read_text())
    assert code == 0
    assert report["systems"]["pony"]["status"] == "missing"
    assert _results(report, "pony")["session"]["status"] == "missing"
    assert _results(report, "raw")["session"]["status"] == "ok"


def test_worker_prints_one_json_line(tmp_path: Path) -> None:
    """The worker protocol: one JSON line on stdout with the measured figures."""
    db = tmp_path / "w.sqlite3"
    dataset.write_sqlite(db, 50)
    proc = _worker("--system=raw", "--workload=load", f"--db={db}", "--rows=50", "--batch=5", "--repeat=2")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    result = json.loads(line)
    assert (result["system"], result["workload"], result["status"]) == ("raw", "load", "ok")
    assert result["ops"] == 50 and len(result["samples"]) == 2 and result["best"] > 0


def test_worker_failure_is_a_json_error_line(tmp_path: Path) -> None:
    """A failing run still answers with one JSON line, status ``error``, and exits 1."""
    db = tmp_path / "empty.sqlite3"
    sqlite3.connect(db).close()
    proc = _worker("--system=raw", "--workload=load", f"--db={db}", "--rows=5", "--batch=1", "--repeat=1")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["status"] == "error" and "no such table" in result["error"]


def test_importing_nextorm_leaves_the_harness_unloaded() -> None:
    """The harness ships in the runtime wheel (README, "Where the harness ships") but ``import nextorm`` never loads it."""
    code = "import sys, nextorm; print(sorted(m for m in sys.modules if m.startswith('nextorm.bench')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_module_entry_point_lists_systems_and_workloads() -> None:
    """``python -m nextorm.bench --list`` names every system and workload."""
    proc = subprocess.run(
        [sys.executable, "-m", "nextorm.bench", "--list"], capture_output=True, text=True, check=True
    )
    for name in [*SYSTEMS, *WORKLOADS]:
        assert name in proc.stdout


def test_quick_sets_small_sizes_that_explicit_options_override() -> None:
    """``--quick`` picks small sizes; an explicit size still wins."""
    args = cli.parse_args(["--quick", "--rows", "800"])
    assert (args.rows, args.batch, args.repeat) == (800, QUICK["batch"], QUICK["repeat"])
    args = cli.parse_args([])
    assert (args.rows, args.batch, args.repeat) == tuple(cli.DEFAULTS.values())


@pytest.mark.parametrize(
    "argv",
    [
        ["--systems", "nosuch"],
        ["--workloads", "load,nosuch"],
        ["--rows", "0"],
        ["--rows", "5", "--batch", "6"],
    ],
)
def test_bad_options_are_usage_errors(argv: list[str]) -> None:
    """Unknown systems or workloads and impossible sizes exit with a usage error."""
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    assert exc.value.code == 2


def test_refuses_to_overwrite_a_sqlite_file_with_other_tables(tmp_path: Path) -> None:
    """``--db`` never recreates a SQLite file that holds someone else's tables."""
    db = tmp_path / "app.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(SystemExit, match="invoices"):
        cli.main(["--quick", "--systems", "raw", "--workloads", "load", "--db", str(db)])
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("invoices",)]


def test_dsn_password_is_not_recorded() -> None:
    """A PostgreSQL DSN is recorded without its password."""
    target = dataset.Target.parse("postgresql://bench:s3cret@localhost:5432/scratch")
    assert target.is_postgres
    assert target.describe() == "postgresql://bench:***@localhost:5432/scratch"


@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get("NEXTORM_TEST_POSTGRES"), reason="NEXTORM_TEST_POSTGRES is not set")
def test_every_system_runs_on_postgres(tmp_path: Path) -> None:
    """nextorm, raw, SQLAlchemy and Peewee run on PostgreSQL via psycopg 3 (async too); Pony needs psycopg2."""
    out = tmp_path / "pg.json"
    systems = [name for name, system in SYSTEMS.items() if system.installed()]
    dsn = os.environ["NEXTORM_TEST_POSTGRES"]
    code = cli.main(["--quick", "--db", dsn, "--systems", ",".join(systems), "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["config"]["database"] == "postgres"
    for r in report["results"]:
        no_driver = r["system"] == "pony" and importlib.util.find_spec("psycopg2") is None
        if no_driver or not _supported(r["system"], r["workload"]):
            assert r["status"] == "unsupported"
        else:
            assert r["status"] == "ok" and r["best"] > 0, r
    assert code == 0


def _worker(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the worker module with the given arguments."""
    return subprocess.run(
        [sys.executable, "-m", "nextorm.bench.worker", *args], capture_output=True, text=True
    )


def test_raw_get_reports_a_second_match_as_a_get_must(tmp_path: Path) -> None:
    """The raw get workload reads up to two rows per email and fails on a duplicate, as get() does."""
    db = tmp_path / "dupes.sqlite3"
    runner = _runner("raw", db)
    try:
        email = dataset.lookup_emails(runner.config)[0]
        runner.conn.execute(
            "INSERT INTO person (name, email, age, score) VALUES (?, ?, ?, ?)", ("twin", email, 1, 1.0)
        )
        with runner.get_by_email() as run, pytest.raises(LookupError, match=email):
            run()
    finally:
        runner.close()


def test_nextorm_runner_prepares_statements_on_postgres_as_the_raw_connection_does() -> None:
    """On PostgreSQL the nextorm runner binds with prepare_threshold=5, psycopg's default that raw has."""
    from nextorm.bench.runners.nextorm import NextormRunner

    bound: list[dict[str, Any]] = []

    class Recorder:
        def bind(self, **options: Any) -> None:
            bound.append(options)

    runner = NextormRunner.__new__(NextormRunner)
    runner.target = Target.parse("postgresql://bench@localhost:5432/scratch")
    runner.bind(Recorder())
    runner.target = sqlite = Target.parse("bench.sqlite3")
    runner.bind(Recorder())
    assert bound == [
        {"provider": "postgres", "dsn": "postgresql://bench@localhost:5432/scratch", "prepare_threshold": 5},
        {"provider": "sqlite", "filename": sqlite.location},
    ]
