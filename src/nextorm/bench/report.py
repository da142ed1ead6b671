"""Turning results into ratios, a rich table and a markdown table."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nextorm.bench.systems import BASELINE, SYSTEMS
from nextorm.bench.workloads import WORKLOADS

if TYPE_CHECKING:
    from rich.table import Table

Result = dict[str, Any]

HEADERS = ("workload", "system", "best", "median", "x raw (IQR)", "x peer", "note")

#: how the ratio columns are made, for captions and pages that show the table
RATIO_LEGEND = (
    "x raw: the system's median over raw DB-API's median, with the interquartile range of the "
    "system's runs over that median in brackets; x peer: the median over the fastest of "
    "Pony/SQLAlchemy/Peewee's median in that workload. Lower is better; a ratio under 1x is "
    "flagged as noise."
)


def add_ratios(results: list[Result]) -> None:
    """Set each ok result's ratio to ``raw`` and to the fastest peer ORM, by median figure.

    A ratio is the system's median over the other system's median; ``ratio_to_raw_spread``
    is the interquartile range of the system's samples over raw's median, so a reader sees how
    far one run strays from another. The peers are the third-party ORMs (Pony, SQLAlchemy,
    Peewee); the fastest is the one with the lowest median in that workload. A system measured
    below the raw DB-API floor (a ratio under 1) is marked ``noise``: no layer on top of the
    driver does less than the driver, so the difference is the machine's jitter. Lower ratios
    are better.
    """
    for workload in {r["workload"] for r in results}:
        done = [r for r in results if r["workload"] == workload and r["status"] == "ok"]
        floor = next((r for r in done if r["system"] == BASELINE), None)
        peers = [r for r in done if SYSTEMS[r["system"]].peer]
        fastest = min(peers, key=lambda r: r["median"], default=None)
        for r in done:
            r["fastest_peer"] = fastest["system"] if fastest else None
            r["ratio_to_fastest_peer"] = r["median"] / fastest["median"] if fastest else None
            if floor is None:
                r["ratio_to_raw"] = r["ratio_to_raw_spread"] = None
                continue
            low, high = quartiles(r.get("samples") or [r["median"]])
            r["ratio_to_raw"] = r["median"] / floor["median"]
            r["ratio_to_raw_spread"] = [low / floor["median"], high / floor["median"]]
            r["noise"] = r["system"] != BASELINE and r["ratio_to_raw"] < 1.0


def quartiles(samples: list[float]) -> tuple[float, float]:
    """The first and third quartiles of ``samples`` (both the sample when there is one)."""
    if len(samples) < 2:
        return samples[0], samples[0]
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q3


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


def format_ratio(value: float | None, spread: list[float] | None = None) -> str:
    """``4.20x``, ``4.20x (4.10-4.50)`` with a spread, or a dash when there is nothing to compare with."""
    if value is None:
        return "-"
    if spread is None:
        return f"{_significant(value)}x"
    return f"{_significant(value)}x ({_significant(spread[0])}-{_significant(spread[1])})"


#: the note of a result measured below the raw floor
NOISE_NOTE = "below the raw DB-API floor: noise"


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
                format_ratio(r.get("ratio_to_raw"), r.get("ratio_to_raw_spread")),
                format_ratio(r.get("ratio_to_fastest_peer")),
                "; ".join(note for note in (r.get("note", ""), NOISE_NOTE if r.get("noise") else "") if note),
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
