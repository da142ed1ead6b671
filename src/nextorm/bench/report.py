"""Turning results into ratios, a rich table and a markdown table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nextorm.bench.systems import BASELINE, SYSTEMS
from nextorm.bench.workloads import WORKLOADS

if TYPE_CHECKING:
    from rich.table import Table

Result = dict[str, Any]

HEADERS = ("workload", "system", "best", "median", "x raw", "x peer", "note")


def add_ratios(results: list[Result]) -> None:
    """Set each ok result's ratio to ``raw`` and to the fastest peer ORM, by best figure.

    The peers are the third-party ORMs (Pony, SQLAlchemy, Peewee); the fastest is
    the one with the lowest best figure in that workload. Lower ratios are better.
    """
    for workload in {r["workload"] for r in results}:
        done = [r for r in results if r["workload"] == workload and r["status"] == "ok"]
        floor = next((r for r in done if r["system"] == BASELINE), None)
        peers = [r for r in done if SYSTEMS[r["system"]].peer]
        fastest = min(peers, key=lambda r: r["best"], default=None)
        for r in done:
            r["ratio_to_raw"] = r["best"] / floor["best"] if floor else None
            r["fastest_peer"] = fastest["system"] if fastest else None
            r["ratio_to_fastest_peer"] = r["best"] / fastest["best"] if fastest else None


def compiled_mismatch(result: Result) -> bool:
    """Whether a nextorm run did not use the implementation its system name promises."""
    expected = SYSTEMS[result["system"]].expect_compiled
    compiled = result.get("info", {}).get("compiled")
    return expected is not None and compiled is not None and compiled != expected


def format_figure(value: float, unit: str) -> str:
    """A per-operation time in ns/µs/ms, or a byte count, to three significant digits."""
    if unit == "B":
        return f"{value:,.0f} B"
    for scale, name in ((1e6, "ms"), (1e3, "µs")):
        if value >= scale:
            return f"{_significant(value / scale)} {name}"
    return f"{_significant(value)} ns"


def format_ratio(value: float | None) -> str:
    """``4.20x``, or a dash when there is nothing to compare with."""
    if value is None:
        return "-"
    return f"{_significant(value)}x"


def _significant(value: float) -> str:
    """Three significant digits, trailing zeros kept (``1.00``, ``46.3``, ``268``)."""
    return f"{value:.0f}" if value >= 100 else f"{value:#.3g}"


def system_label(result: Result) -> str:
    """The system's name, flagged when the nextorm build under test is the wrong one."""
    if not compiled_mismatch(result):
        return str(result["system"])
    actual = "compiled" if result["info"]["compiled"] else "NOT compiled"
    return f"{result['system']} ({actual}!)"


def rows(results: Iterable[Result], titles: bool = False) -> list[list[str]]:
    """Table rows grouped by workload, its name (or title) on a group's first row only."""
    ordered = sorted(
        (r for r in results if r["status"] != "missing"),
        key=lambda r: (list(WORKLOADS).index(r["workload"]), list(SYSTEMS).index(r["system"])),
    )
    table: list[list[str]] = []
    previous = None
    for r in ordered:
        workload = WORKLOADS[r["workload"]]
        title = "" if r["workload"] == previous else workload.title if titles else workload.name
        previous = r["workload"]
        if r["status"] == "ok":
            unit = r["unit"]
            cells = [
                format_figure(r["best"], unit),
                format_figure(r["median"], unit),
                format_ratio(r.get("ratio_to_raw")),
                format_ratio(r.get("ratio_to_fastest_peer")),
                r.get("note", ""),
            ]
        else:
            cells = ["-", "-", "-", "-", f"{r['status']}: {r.get('note', '')}".rstrip(": ")]
        table.append([title, system_label(r), *cells])
    return table


def rich_table(results: list[Result], caption: str) -> Table:
    """The results as a rich table, one section per workload."""
    from rich.table import Table

    table = Table(caption=caption, caption_justify="left")
    for header in HEADERS:
        if header == "note":
            table.add_column(header)
        else:
            # Never cut short: the numbers shown are the ones measured.
            numeric = header not in ("workload", "system")
            table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    body = rows(results)
    for i, row in enumerate(body):
        last_of_group = i + 1 == len(body) or body[i + 1][0] != ""
        style = "red" if "!" in row[1] or row[2] == "-" else None
        table.add_row(*row, style=style, end_section=last_of_group)
    return table


def markdown_table(results: list[Result]) -> str:
    """The results as a GitHub markdown table, workloads by title."""
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---", "---", "---:", "---:", "---:", "---:", "---"]) + "|",
    ]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
        for row in rows(results, titles=True)
    ]
    return "\n".join(lines) + "\n"
