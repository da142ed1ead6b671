"""The PNG: a grouped bar chart of every system's ratio to the raw DB-API floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nextorm.bench.systems import BASELINE, SYSTEMS
from nextorm.bench.workloads import WORKLOADS


def write_plot(report: dict[str, Any], path: Path) -> None:
    """Save a grouped bar chart (log scale) of ratios to ``raw``, one group per workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in report["results"] if r.get("ratio_to_raw")]
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in results)]
    systems = [s for s in SYSTEMS if s != BASELINE and any(r["system"] == s for r in results)]
    ratios = {(r["system"], r["workload"]): r["ratio_to_raw"] for r in results}

    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * len(workloads)), 5.0), layout="constrained")
    width = 0.8 / max(1, len(systems))
    for i, system in enumerate(systems):
        xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(len(workloads))]
        heights = [ratios.get((system, w), 0.0) for w in workloads]
        ax.bar(xs, heights, width, label=system)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="raw DB-API = 1")
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)), [WORKLOADS[w].title for w in workloads], rotation=20, ha="right")
    ax.set_ylabel("ratio to raw DB-API (log scale, lower is better)")
    config = report["config"]
    ax.set_title(
        f"nextorm-bench: {config['rows']} rows, batch {config['batch']}, "
        f"best of {config['repeat']}, {config['database']}"
    )
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=120)
    plt.close(fig)
