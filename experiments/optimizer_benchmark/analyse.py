"""Wang & Ponce's normalised optimiser scores from a benchmark sweep, with the published anchors.

Score of a run: the best noise-free activation of any image it evaluated (``clean_best``).
Normalised per unit (generator x target) by the best score any optimiser reached on that unit,
over all noise levels and repeats (Wang & Ponce, GECCO 2022). Writes, into the sweep directory
(or ``--output``): ``table.md`` (mean normalised score per optimiser x noise, the anchors
beside, and the ratio of each optimiser to the XDREAM GA; then the statistics: each mean with
its 95% confidence interval, a paired test of each optimiser against the GA, and the ratios
best / GA and best xdream / best peer against the goals; then the evaluations each optimiser
needed to reach fixed levels, against the GA's: ``levels.py``), ``records.csv`` (one raw row per
run, normalised score included), ``trajectories.jsonl`` (each run's best-so-far clean score per
generation, where the run directories are there) and ``figure.png``.

Several sweep directories (the ``power`` preset and its peers) are analysed as one: the
per-unit best is taken over all of them. A run that failed (recorded by ``run.py`` in
``failures.json``) is a row with no score, counted in the table, never silently left out.

Statistics: a mean's 95% CI is Student's t interval over its runs. The paired test pairs each
optimiser's run with the GA's run on the same unit, seed and noise level: the mean paired
difference with its t interval, and the two-sided Wilcoxon signed-rank test (scipy) on the
differences. Optimisers whose label starts with ``peer-`` are the off-the-shelf peers.

    python experiments/optimizer_benchmark/analyse.py SWEEP_DIR [MORE_SWEEP_DIRS...] [--output DIR]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from levels import levels_markdown  # noqa: E402

# Wang & Ponce (GECCO 2022), normalised means on AlexNet units with DeePSiM fc6
ANCHORS = {
    "ga-wang-ponce": {"all": 0.333, "0": 0.37},
    "cholesky-cma": {"all": 0.556, "0": 0.73},
    "pycma": {"all": 0.547},
    "pycma-diag": {"all": 0.563},
    "sphere-cma": {"all": 0.596, "0": 0.86},
}
REFERENCE_GA = "ga-xdream"
PEER_PREFIX = "peer-"
GOALS = {"best / GA": 1.3, "best xdream / best peer": 1.1}
TRAJECTORIES = "trajectories.jsonl"  # per run: [[evaluations, best-so-far clean score], ...]
FAILURES = "failures.json"  # run name -> error, written by run.py when runs of a sweep failed


def load_records(sweep_dir: Path) -> list[dict]:
    """Per-run records (with each run's ``trajectory`` where its directory is there, see
    :func:`run_trajectory`): ``results.jsonl`` (written when every run of the sweep
    completed), or, where runs failed, the plan's runs, the complete ones with their record
    and the failed ones with their error (``failures.json``) and no score."""
    path = sweep_dir / "results.jsonl"
    if path.is_file():
        records = [_as_text(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
        for r in records:
            trajectory = run_trajectory(sweep_dir / "runs" / r["name"])
            if trajectory is not None:
                r["trajectory"] = trajectory
        return records
    if not (sweep_dir / FAILURES).is_file():
        sys.exit(f"analyse: {path} not found: run the sweep to completion first")
    from xdream.sweep.runner import PLAN, is_complete, run_record

    failures = json.loads((sweep_dir / FAILURES).read_text())
    records = []
    for run in json.loads((sweep_dir / PLAN).read_text())["runs"]:
        run_dir = sweep_dir / "runs" / run["name"]
        if is_complete(run_dir):
            trajectory = run_trajectory(run_dir)
            extra = {} if trajectory is None else {"trajectory": trajectory}
            records.append(_as_text({"name": run["name"], **run["labels"], **run_record(run_dir), **extra}))
        else:
            error = failures.get(run["name"], "incomplete")
            records.append(_as_text({"name": run["name"], **run["labels"], "clean_best": None, "failed": error}))
    return records


def _as_text(record: dict) -> dict:
    """A record's ``noise`` and ``seed`` as the text the tables use (``"0.2"``): sweeps record
    grid values typed as written (``0.2``, ``0``) since issue 25, earlier ones as text."""
    return {**record, **{k: str(record[k]) for k in ("noise", "seed") if k in record}}


def run_trajectory(run_dir: Path) -> list[list[float]] | None:
    """A run's best-so-far noise-free score after each generation, compactly:
    ``[[evaluations, best so far], ...]`` (the log's ``clean_best``, or ``best`` for a run
    without noise); None when the run's directory or log is not there."""
    if not (run_dir / "log.jsonl").is_file():
        return None
    from xdream.runs.rundir import RunDir

    log = RunDir(run_dir).read_log()
    key = "clean_best" if any("clean_best" in r for r in log) else "best"
    out, best = [], -math.inf
    for r in log:
        value = r.get(key)
        if value is not None and math.isfinite(value):
            best = max(best, value)
        out.append([int(r["evaluations"]), best if math.isfinite(best) else None])
    return out


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
    means = {k: (_finite_mean(v), len(v)) for k, v in cells.items()}
    return optimisers, noises, means


def _finite_mean(values) -> float:
    """Mean of the finite values (NaN if none: every run of the cell failed)."""
    x = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(x)) if x else math.nan


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
        scored = [(means[(o, c)][0], o) for o in optimisers  # NaN: every run of the cell failed
                  if (o, c) in means and o != REFERENCE_GA and math.isfinite(means[(o, c)][0])]
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


def mean_ci(values) -> tuple[float, float, int]:
    """Mean, half-width of its 95% Student t interval (NaN below 2 values), and n, over the
    finite values."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return math.nan, math.nan, 0
    if len(x) < 2:
        return float(x.mean()), math.nan, 1
    half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return float(x.mean()), half, len(x)


def paired_test(diffs) -> dict:
    """Paired comparison from differences (optimiser - GA): mean with its 95% t interval, the
    two-sided Wilcoxon signed-rank p-value (1.0 when every difference is zero), wins, n."""
    from scipy import stats

    d = np.asarray(diffs, dtype=np.float64)
    mean, half, n = mean_ci(d)
    if n == 0:
        return {"n": 0, "mean": math.nan, "half": math.nan, "p": math.nan, "wins": 0}
    p = 1.0 if not np.any(d != 0) else float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
    return {"n": n, "mean": mean, "half": half, "p": p, "wins": int(np.sum(d > 0))}


def run_statistics(records: list[dict]) -> dict:
    """Per (optimiser, column): the mean's CI, and the paired test against the GA; columns are
    the noise levels and ``all``. Failed runs are counted per optimiser."""
    optimisers = list(dict.fromkeys(r["optimizer"] for r in records))
    noises = sorted({r.get("noise", "0") for r in records}, key=float)
    columns = [*noises, "all"]
    score = {(r["optimizer"], r["unit"], str(r.get("seed", "0")), r.get("noise", "0")): r["normalised"]
             for r in records}
    out = {"optimisers": optimisers, "columns": columns, "ci": {}, "paired": {}, "failed": defaultdict(list)}
    for r in records:
        if r.get("failed"):
            out["failed"][r["optimizer"]].append(r["failed"])
    for opt in optimisers:
        for c in columns:
            keys = [k for k in score if k[0] == opt and (c == "all" or k[3] == c)]
            out["ci"][(opt, c)] = mean_ci(score[k] for k in keys)
            if opt == REFERENCE_GA:
                continue
            diffs = []
            for k in keys:
                ga = score.get((REFERENCE_GA, *k[1:]))
                if ga is not None and math.isfinite(ga) and math.isfinite(score[k]):
                    diffs.append(score[k] - ga)
            out["paired"][(opt, c)] = paired_test(diffs)
    return out


def _best(stats_: dict, column: str, among) -> tuple[str, float] | None:
    scored = [(stats_["ci"][(o, column)][0], o) for o in among if math.isfinite(stats_["ci"][(o, column)][0])]
    return (max(scored)[1], max(scored)[0]) if scored else None


def statistics_markdown(stats_: dict) -> str:
    """The confidence intervals, the paired tests against the GA, and the ratios against the goals."""
    optimisers, columns = stats_["optimisers"], stats_["columns"]
    label = {c: ("all noise" if c == "all" else f"noise {c}") for c in columns}
    lines = ["", "## Statistics", "",
             "Mean normalised score with its 95% confidence interval (Student t; n = runs scored):", "",
             "| optimiser | " + " | ".join(label[c] for c in columns) + " | failed runs |",
             "|---" * (len(columns) + 2) + "|"]
    for opt in optimisers:
        cells = []
        for c in columns:
            mean, half, n = stats_["ci"][(opt, c)]
            cells.append(f"{mean:.3f} ± {half:.3f} (n={n})" if n > 1 else f"{mean:.3f} (n={n})")
        failed = stats_["failed"].get(opt, [])
        lines.append(f"| {opt} | " + " | ".join(cells) + f" | {len(failed)} |")
    lines += ["", f"Paired against {REFERENCE_GA} (same unit, seed and noise): mean difference in normalised "
              "score [95% CI], Wilcoxon signed-rank p, pairs the optimiser won:", "",
              "| optimiser | " + " | ".join(label[c] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for opt in optimisers:
        if opt == REFERENCE_GA:
            continue
        cells = []
        for c in columns:
            t = stats_["paired"][(opt, c)]
            if t["n"] == 0:
                cells.append("no pairs")
                continue
            ci = f" [{t['mean'] - t['half']:+.3f}, {t['mean'] + t['half']:+.3f}]" if math.isfinite(t["half"]) else ""
            cells.append(f"{t['mean']:+.3f}{ci}, p={t['p']:.2g}, {t['wins']}/{t['n']}")
        lines.append(f"| {opt} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios against the goals:", ""]
    ours = [o for o in optimisers if not o.startswith(PEER_PREFIX)]
    peers = [o for o in optimisers if o.startswith(PEER_PREFIX)]
    rivals = [o for o in optimisers if o != REFERENCE_GA]
    for c in [c for c in ("all", "0.2") if c in columns]:
        best, ga = _best(stats_, c, rivals), stats_["ci"].get((REFERENCE_GA, c), (math.nan,))[0]
        if best and ga > 0:
            ratio = best[1] / ga
            verdict = "goal met" if ratio >= GOALS["best / GA"] else "goal NOT met"
            lines.append(f"- {label[c]}: best {best[0]} {best[1]:.3f} / {REFERENCE_GA} {ga:.3f} = **{ratio:.2f}x** "
                         f"(goal >= {GOALS['best / GA']}x: {verdict})")
    if peers:
        mine, theirs = _best(stats_, "all", ours), _best(stats_, "all", peers)
        if mine and theirs and theirs[1] > 0:
            ratio = mine[1] / theirs[1]
            verdict = "goal met" if ratio >= GOALS["best xdream / best peer"] else "goal NOT met"
            lines.append(f"- all noise: best xdream {mine[0]} {mine[1]:.3f} / best peer {theirs[0]} {theirs[1]:.3f} = "
                         f"**{ratio:.2f}x** (goal >= {GOALS['best xdream / best peer']}x: {verdict})")
    else:
        lines.append("- no peers in these records (install the [peers] extra and run the power preset)")
    failed = {o: v for o, v in stats_["failed"].items() if v}
    if failed:
        lines += ["", "Failed runs (not scored; they count against nobody's mean but are listed here):", ""]
        for opt, errors in failed.items():
            for error, count in sorted(((e, errors.count(e)) for e in set(errors)), key=lambda x: -x[1]):
                lines.append(f"- {opt}: {count} run(s): {error.splitlines()[0]}")  # pycma's messages run on
    return "\n".join(lines) + "\n"


def analyse(sweep_dir: Path, output: Path | None = None, more: tuple[Path, ...] = ()) -> str:
    """Analyse ``sweep_dir`` (and the sweeps in ``more`` with it) into ``output``."""
    output = output or sweep_dir
    output.mkdir(parents=True, exist_ok=True)
    records = normalise([r for d in (sweep_dir, *more) for r in load_records(Path(d))])
    optimisers, noises, means = summarise(records)
    table = (table_markdown(optimisers, noises, means) + statistics_markdown(run_statistics(records))
             + levels_markdown(records, REFERENCE_GA, PEER_PREFIX))
    (output / "table.md").write_text(table)
    write_csv([{k: v for k, v in r.items() if k != "trajectory"} for r in records], output / "records.csv")
    trajectories = [json.dumps({"name": r["name"], "trajectory": r["trajectory"]})
                    for r in records if r.get("trajectory")]
    if trajectories:  # compact: [evaluations, best-so-far clean score] per generation
        (output / TRAJECTORIES).write_text("\n".join(trajectories) + "\n")
    plot(optimisers, noises, means, output / "figure.png")
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("more", type=Path, nargs="*", help="more sweep directories analysed with it")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    print(analyse(args.sweep_dir, args.output, tuple(args.more)))


if __name__ == "__main__":
    main()
