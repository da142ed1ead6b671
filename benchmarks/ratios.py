"""The ratio table of a benchmark run: each twin against its group's baseline, and compiled against pure.

    pytest benchmarks/ --benchmark-only --benchmark-json=bench.json
    python benchmarks/ratios.py bench.json

Times are medians (the machine's noise moves means and minimums more). The
per-operation groups time ``LOOP`` operations per call and are shown per
operation; the memory group is compared by the bytes it recorded per row, not
by time.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from test_hot_path import LOOP

# Groups without a baseline of their own are compared with the driver's fetchall of the same rows.
BASELINE_OF_GROUP = {"materialize 100k fetched rows": "test_load_baseline_fetchall"}
PER_OPERATION = {"identity-map hit", "attribute read", "attribute write"}
MEMORY_GROUP = "memory per object"
MEMORY_KEYS = ("traced_bytes_per_row_with_values", "traced_bytes_per_row", "object_bytes")


def ratio_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str, str, str, str]]:
    """One row per group and measure: baseline, compiled, pure, and the three ratios."""
    by_name = {bench["name"]: bench for bench in report["benchmarks"]}
    groups: dict[str, dict[str, Any]] = {}
    for bench in report["benchmarks"]:
        kind = bench.get("param") or ("baseline" if "baseline" in bench["name"] else bench["name"])
        groups.setdefault(bench["group"], {})[kind] = bench
    for group, baseline_name in BASELINE_OF_GROUP.items():
        if group in groups and baseline_name in by_name:
            groups[group].setdefault("baseline", by_name[baseline_name])
    rows = []
    for group, members in groups.items():
        if group == MEMORY_GROUP:
            for key in MEMORY_KEYS:
                values = {kind: bench["extra_info"].get(key) for kind, bench in members.items()}
                rows.append(_row(f"{group}: {key}", values, "B"))
            continue
        scale, unit = (1e9 / LOOP, "ns/op") if group in PER_OPERATION else (1e3, "ms")
        values = {kind: bench["stats"]["median"] * scale for kind, bench in members.items()}
        rows.append(_row(group, values, unit))
    return rows


def _row(label: str, values: dict[str, Any], unit: str) -> tuple[str, str, str, str, str, str, str]:
    base, compiled, pure = (values.get(kind) for kind in ("baseline", "compiled", "pure"))

    def show(value: Any) -> str:
        return "-" if value is None else f"{value:,.1f} {unit}"

    def ratio(a: Any, b: Any) -> str:
        return "-" if a is None or not b else f"{a / b:.2f}x"

    return (
        label,
        show(base),
        show(compiled),
        show(pure),
        ratio(compiled, base),
        ratio(pure, base),
        ratio(compiled, pure),
    )


def main(argv: list[str]) -> int:
    """Print the table of the JSON report named by ``argv[1]`` as Markdown."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as report:
        rows = ratio_rows(json.load(report))
    header = (
        "benchmark",
        "baseline",
        "compiled",
        "pure",
        "compiled/baseline",
        "pure/baseline",
        "compiled/pure",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
