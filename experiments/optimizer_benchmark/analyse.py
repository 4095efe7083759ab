"""Wang & Ponce's normalised optimiser scores from a benchmark sweep, with the published anchors.

Score of a run: the best noise-free activation of any image it evaluated (``clean_best``).
Normalised per unit (generator x target) by the best score any optimiser reached on that unit,
over all noise levels and repeats (Wang & Ponce, GECCO 2022). Writes, into the sweep directory
(or ``--output``): ``table.md`` (mean normalised score per optimiser x noise, the anchors
beside, and the ratio of each optimiser to the XDREAM GA), ``records.csv`` (one raw row per
run, normalised score included) and ``figure.png``.

    python experiments/optimizer_benchmark/analyse.py SWEEP_DIR [--output DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

# Wang & Ponce (GECCO 2022), normalised means on AlexNet units with DeePSiM fc6
ANCHORS = {
    "ga-wang-ponce": {"all": 0.333, "0": 0.37},
    "cholesky-cma": {"all": 0.556, "0": 0.73},
    "pycma": {"all": 0.547},
    "pycma-diag": {"all": 0.563},
    "sphere-cma": {"all": 0.596, "0": 0.86},
}
REFERENCE_GA = "ga-xdream"


def load_records(sweep_dir: Path) -> list[dict]:
    """Per-run records from ``results.jsonl`` (written when the sweep completed)."""
    path = sweep_dir / "results.jsonl"
    if not path.is_file():
        sys.exit(f"analyse: {path} not found: run the sweep to completion first")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def normalise(records: list[dict]) -> list[dict]:
    """Add ``unit`` and ``normalised`` (clean_best / best clean_best on that unit) to each record."""
    best = defaultdict(lambda: -math.inf)
    out = []
    for r in records:
        unit = f"{r.get('generator', '')}|{r.get('target', '')}"
        out.append({**r, "unit": unit})
        if r["clean_best"] is not None:
            best[unit] = max(best[unit], r["clean_best"])
    for r in out:
        top = best[r["unit"]]
        ok = r["clean_best"] is not None and top > 0
        r["normalised"] = r["clean_best"] / top if ok else math.nan
    return out


def summarise(records: list[dict]) -> tuple[list[str], list[str], dict]:
    """Mean normalised score per (optimiser, noise) and per optimiser over all noise ("all")."""
    optimisers = list(dict.fromkeys(r["optimizer"] for r in records))
    noises = sorted({r.get("noise", "0") for r in records}, key=float)
    cells = defaultdict(list)
    for r in records:
        for key in (r.get("noise", "0"), "all"):
            cells[(r["optimizer"], key)].append(r["normalised"])
    means = {k: (float(np.nanmean(v)), len(v)) for k, v in cells.items()}
    return optimisers, noises, means


def table_markdown(optimisers, noises, means) -> str:
    columns = [*noises, "all"]
    head = "| optimiser | " + " | ".join(f"noise {c}" if c != "all" else "all noise" for c in columns)
    head += " | ratio to GA (XDREAM), per column |\n"
    head += "|---" * (len(columns) + 2) + "|\n"
    rows = []
    for opt in optimisers:
        cells = []
        for c in columns:
            mean, n = means.get((opt, c), (math.nan, 0))
            anchor = ANCHORS.get(opt, {}).get(c)
            cells.append(f"{mean:.3f} (n={n})" + (f" [paper {anchor}]" if anchor is not None else ""))
        ratios = []
        for c in columns:
            ga = means.get((REFERENCE_GA, c), (math.nan, 0))[0]
            mean = means.get((opt, c), (math.nan, 0))[0]
            ratios.append(f"{mean / ga:.2f}" if ga > 0 else "n/a")
        rows.append(f"| {opt} | " + " | ".join(cells) + " | " + " / ".join(ratios) + " |")
    best_lines = []
    for c in columns:
        scored = [(means[(o, c)][0], o) for o in optimisers if (o, c) in means and o != REFERENCE_GA]
        ga = means.get((REFERENCE_GA, c), (math.nan, 0))[0]
        if scored and ga > 0:
            top, name = max(scored)
            best_lines.append(f"- noise {c}: best {name} {top:.3f} / GA (XDREAM) {ga:.3f} = **{top / ga:.2f}x**")
    note = ("\nPaper anchors (Wang & Ponce 2022, AlexNet units, DeePSiM fc6, their GA settings = "
            "ga-wang-ponce): Sphere-exp 0.596 vs GA 0.333 over all noise (1.79x), 0.86 vs 0.37 "
            "without noise (2.32x).\n")
    return head + "\n".join(rows) + "\n\nBest optimiser over the XDREAM GA:\n" + "\n".join(best_lines) + "\n" + note


def write_csv(records: list[dict], path: Path) -> None:
    keys = list(dict.fromkeys(k for r in records for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(records)
    path.write_text(buffer.getvalue())


def plot(optimisers, noises, means, path: Path) -> None:
    """Grouped bars: normalised score per optimiser at each noise level; paper anchors as marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(noises)
    x = np.arange(len(optimisers))
    fig, ax = plt.subplots(figsize=(1.2 * len(optimisers) + 2, 4), dpi=110)
    for i, noise in enumerate(noises):
        values = [means.get((o, noise), (np.nan, 0))[0] for o in optimisers]
        ax.bar(x + (i - (len(noises) - 1) / 2) * width, values, width, label=f"noise {noise}")
    for j, o in enumerate(optimisers):
        if "all" in ANCHORS.get(o, {}):
            ax.plot([j - 0.4, j + 0.4], [ANCHORS[o]["all"]] * 2, "k--", lw=1)
    ax.plot([], [], "k--", lw=1, label="paper, all noise")
    ax.set_xticks(x, optimisers, rotation=30, ha="right")
    ax.set_ylabel("normalised score (best = 1 per unit)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def analyse(sweep_dir: Path, output: Path | None = None) -> str:
    output = output or sweep_dir
    output.mkdir(parents=True, exist_ok=True)
    records = normalise(load_records(sweep_dir))
    optimisers, noises, means = summarise(records)
    table = table_markdown(optimisers, noises, means)
    (output / "table.md").write_text(table)
    write_csv(records, output / "records.csv")
    plot(optimisers, noises, means, output / "figure.png")
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    print(analyse(args.sweep_dir, args.output))


if __name__ == "__main__":
    main()
