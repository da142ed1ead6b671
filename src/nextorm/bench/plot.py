"""The PNG: a grouped bar chart of every system's ratio to the raw DB-API floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nextorm.bench.systems import BASELINE
from nextorm.bench.workloads import WORKLOADS

#: file types ``--plot`` writes (matplotlib picks the format from the suffix)
FORMATS = (".png", ".svg", ".pdf")


def legend_labels(report: dict[str, Any]) -> dict[str, str]:
    """Every system of the run but raw, by name, with what it could not run in its label.

    A system that ran nothing still gets a label, so the chart shows who was left out and why.
    """
    results = report["results"]
    labels = {}
    for name in report["systems"]:
        if name == BASELINE:
            continue
        own = [r for r in results if r["system"] == name]
        left_out = [r for r in own if r.get("ratio_to_raw") is None]
        if own and len(left_out) == len(own):
            statuses = sorted({r["status"] for r in left_out})
            labels[name] = f"{name}: did not run ({', '.join(_status_word(s) for s in statuses)})"
        elif left_out:
            labels[name] = f"{name} (n/a in {len(left_out)} of {len(own)} workloads)"
        else:
            labels[name] = name
    return labels


def _status_word(status: str) -> str:
    return {"missing": "not installed"}.get(status, status)


def write_plot(report: dict[str, Any], path: Path) -> None:
    """Save a grouped bar chart (log scale) of median ratios to ``raw``, one group per workload.

    Whiskers span the interquartile range, bars below the raw floor are hatched as noise, and a
    slot where a system could not run says ``n/a``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    workloads = [w for w in WORKLOADS if w in report["workloads"]]
    labels = legend_labels(report)
    systems = list(labels)
    by_key = {(r["system"], r["workload"]): r for r in results}

    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * len(workloads)), 5.5), layout="constrained")
    width = 0.8 / max(1, len(systems))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, system in enumerate(systems):
        color = colors[i % len(colors)]
        xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(len(workloads))]
        ran = [(x, by_key.get((system, w), {})) for x, w in zip(xs, workloads)]
        measured = [(x, r) for x, r in ran if r.get("ratio_to_raw")]
        heights = [r["ratio_to_raw"] for _, r in measured]
        errors = [
            [h - r["ratio_to_raw_spread"][0] for h, (_, r) in zip(heights, measured)],
            [r["ratio_to_raw_spread"][1] - h for h, (_, r) in zip(heights, measured)],
        ]
        bars = ax.bar(
            [x for x, _ in measured],
            heights,
            width,
            label=labels[system],
            color=color,
            yerr=errors if measured else None,
            ecolor="black",
            capsize=2,
        )
        for bar, (_, r) in zip(bars.patches, measured):
            if r.get("noise"):
                bar.set_hatch("//")
        if not measured:
            # An empty bar series leaves no legend entry: a proxy keeps the system in the legend.
            ax.bar([], [], width, label=labels[system], color=color)
        for x, r in ran:
            if not r.get("ratio_to_raw"):
                ax.text(x, 1.0, "n/a", rotation=90, ha="center", va="bottom", fontsize=7, color=color)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="raw DB-API = 1")
    ax.set_yscale("log")
    ax.set_xlim(-0.5, len(workloads) - 0.5)  # keep the n/a slots of the last group in view
    ax.set_xticks(range(len(workloads)), [WORKLOADS[w].title for w in workloads], rotation=20, ha="right")
    ax.set_ylabel("median ratio to raw DB-API (log scale, lower is better)")
    config = report["config"]
    ax.set_title(
        f"nextorm-bench: {config['rows']} rows, batch {config['batch']}, {config['database']}; median of "
        f"{config['repeat']} runs\nwhiskers: interquartile range; hatched: below the raw floor (noise)"
    )
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=120)
    plt.close(fig)
