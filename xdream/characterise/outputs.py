"""What a characterisation writes: tidy CSVs, tuning-curve plots, the stimulus strip and the
layer summary (fractions of opponent / non-opponent / unresponsive units per layer).

Layout of the run directory::

    RUN/config.toml                 targets, protocol, noise, seed (the resolved settings)
    RUN/stimuli.png                 the stimulus strip: examples of every sweep
    RUN/responses/<unit>.csv        tidy table per unit: one row per presentation
    RUN/responses.npz               all raw responses [P, U] per target, with the stimulus rows
    RUN/classification.csv          one row per unit: class per sweep, preferred (with notes: ties,
                                    range edges) / least preferred
    RUN/layer_summary.csv, .png     fraction of each class per target (layer)
    RUN/plots/<unit>.png            hue curve against the baseline line + orientation x frequency map
    RUN/summary.json                counts, timings, torch threads, the summary table and every unit's verdicts with
                                    its preferred / least preferred stimulus's exact parameters
                                    (what ``evolve --init-from-characterisation`` re-renders)
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import torch

from xdream.images.io import png_bytes
from xdream.images.plots import pyplot, save_figure
from xdream.runs.rundir import RunDir, atomic_write
from xdream.characterise.classify import LABELS
from xdream.characterise.protocol import PARAMETERS, SWEEPS, Protocol, StimulusTable
from xdream.characterise.record import Recording, UnitResult
from xdream.characterise.stimuli import hsl_to_rgb

CATEGORIES = ("opponent", "non-opponent", "unresponsive")
# the layer summary's table columns: (key, terminal heading); the report heads each with its key, '_' as ' '
SUMMARY_COLUMNS = [("spectral_opponent", "spec opp"), ("spectral_non-opponent", "spec non"),
                   ("spectral_unresponsive", "spec unr"), ("spatial_opponent", "spat opp"),
                   ("spatial_non-opponent", "spat non"), ("spatial_unresponsive", "spat unr"),
                   ("double_opponent", "double")]


def safe_name(label: str) -> str:
    """A unit label as a file name: ``efficientnet_lite0:_blocks.1:5`` -> ``efficientnet_lite0-_blocks.1-5``."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", label)


def write_csv(path: Path, header: list[str], rows) -> None:
    """``rows`` under ``header`` as a CSV file (``\\n`` line ends) at ``path``, written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue().encode())


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.8g}"
    return str(value)


def write_unit_tables(folder: Path, recording: Recording) -> None:
    """``folder/<unit>.csv``: unit, presentation, sweep, stimulus, repeat, parameters, response."""
    folder.mkdir(parents=True, exist_ok=True)
    table = recording.table
    fixed = [
        [str(p), table.sweep[i], str(i), str(r), *(_fmt(table.params[k][i]) for k in PARAMETERS)]
        for p, (i, r) in enumerate(zip(recording.stimulus, recording.repeat))
    ]
    header = ["unit", "presentation", "sweep", "stimulus", "repeat", *PARAMETERS, "response"]
    for u, unit in enumerate(recording.units):
        values = recording.responses[:, u]
        write_csv(folder / f"{safe_name(unit)}.csv", header, ([unit, *row, _fmt(v)] for row, v in zip(fixed, values)))


def params_text(params: dict) -> str:
    """A stimulus's parameters, short: ``orientation=90 frequency=4 phase=270 contrast=1``."""
    return " ".join(f"{k}={v:g}" for k, v in params.items() if k != "sweep")


def classification_rows(results: list[UnitResult]) -> tuple[list[str], list[list[str]]]:
    sweeps = [s for s in SWEEPS if any(s in r.sweeps for r in results)]  # no unit has a 'baseline' verdict
    header = ["group", "unit", "baseline", "baseline_sd", "double_opponent"]
    for s in sweeps:
        header += [f"{s}_class", f"{s}_method", f"{s}_preferred", f"{s}_max", f"{s}_least_preferred", f"{s}_min",
                   f"{s}_n_above", f"{s}_n_below", f"{s}_notes"]
    rows = []
    for r in results:
        row = [r.group, r.unit, _fmt(r.baseline), _fmt(r.baseline_sd), "" if r.double_opponent is None else str(r.double_opponent).lower()]
        for s in sweeps:
            v = r.sweeps.get(s)
            row += [""] * 9 if v is None else [
                v.label, v.method, params_text(v.preferred), _fmt(v.max), params_text(v.least_preferred), _fmt(v.min),
                str(v.n_above), str(v.n_below), "; ".join(v.notes)]
        rows.append(row)
    return header, rows


def unit_records(results: list[UnitResult]) -> list[dict]:
    """Every unit's verdicts as JSON-ready dicts; parameters keep full precision."""
    return [
        {"unit": r.unit, "group": r.group, "baseline": r.baseline, "baseline_sd": r.baseline_sd,
         "double_opponent": r.double_opponent,
         "sweeps": {name: {"label": v.label, "category": v.category, "method": v.method, "preferred": v.preferred,
                           "least_preferred": v.least_preferred, "max": v.max, "min": v.min, "notes": v.notes}
                    for name, v in r.sweeps.items()}}
        for r in results
    ]


def layer_summary(results: list[UnitResult]) -> list[dict]:
    """Per group (layer): unit count and the fraction of units in each class per sweep."""
    groups = list(dict.fromkeys(r.group for r in results))
    summary = []
    for g in groups:
        members = [r for r in results if r.group == g]
        row = {"group": g, "units": len(members)}
        for sweep in ("spectral", "spatial"):
            present = [r.sweeps[sweep] for r in members if sweep in r.sweeps]
            for cat in CATEGORIES:
                row[f"{sweep}_{cat}"] = sum(v.category == cat for v in present) / len(present) if present else np.nan
            for label in LABELS[1:3]:
                key = f"{sweep}_{label.split()[-1]}"
                row[key] = sum(v.label == label for v in present) / len(present) if present else np.nan
        doubles = [r.double_opponent for r in members if r.double_opponent is not None]
        row["double_opponent"] = sum(doubles) / len(doubles) if doubles else np.nan
        summary.append(row)
    return summary


def summary_text(summary: list[dict]) -> str:
    """The layer summary as a fixed-width table for the terminal and the report."""
    width = max([len("layer")] + [len(r["group"]) for r in summary])
    lines = [f"{'layer':{width}s} {'units':>5s} " + " ".join(f"{name:>8s}" for _, name in SUMMARY_COLUMNS)]
    for r in summary:
        lines.append(f"{r['group']:{width}s} {r['units']:5d} " + " ".join(f"{r[k]:8.2f}" for k, _ in SUMMARY_COLUMNS))
    return "\n".join(lines)


def plot_unit(path: Path, recording: Recording, unit: int, result: UnitResult) -> None:
    """Hue tuning curve (mean +- sd per hue) against the baseline line and its +-sd band, and
    the grating responses as an orientation x frequency map (the best phase of each cell)."""
    plt = pyplot()
    table, stats = recording.table, recording.stats(unit)
    panels = [s for s in ("spectral", "spatial") if s in result.sweeps]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.2 * max(1, len(panels)), 3.8), dpi=90, squeeze=False)
    for ax, sweep in zip(axes[0], panels):
        rows = table.rows(sweep)
        verdict = result.sweeps[sweep]
        if sweep == "spectral":
            hue = table.params["hue"][rows]
            order = np.argsort(hue)
            sd = np.sqrt(np.nan_to_num(stats.var[rows]))[order]
            ax.errorbar(hue[order], stats.mean[rows][order], yerr=sd if sd.any() else None, fmt="o-", ms=3, color="k", lw=1)
            ax.scatter(hue[order], stats.mean[rows][order], c=hsl_to_rgb(hue[order], 1.0, 0.5), s=30, zorder=3)
            ax.axhline(result.baseline, color="tab:blue", ls="--", label="baseline")
            if result.baseline_sd > 0:
                ax.axhspan(result.baseline - result.baseline_sd, result.baseline + result.baseline_sd, color="tab:blue", alpha=0.15)
            ax.set_xlabel("hue (deg)")
            ax.set_ylabel("response")
            ax.legend(fontsize=7)
        else:
            o, f, values = _orientation_frequency(table, rows, stats.mean[rows])
            im = ax.imshow(values, aspect="auto", origin="lower", cmap="RdBu_r",
                           norm=_centred(values, result.baseline))
            ax.set_xticks(range(len(f)), [f"{v:g}" for v in f], fontsize=6)
            ax.set_yticks(range(len(o)), [f"{v:g}" for v in o], fontsize=6)
            ax.set_xlabel("frequency (cycles/image)")
            ax.set_ylabel("orientation (deg)")
            fig.colorbar(im, ax=ax, label="response at best phase (baseline = white)")
        ax.set_title(f"{sweep}: {verdict.label}", fontsize=9)
    fig.suptitle(result.unit, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def _orientation_frequency(table: StimulusTable, rows: np.ndarray, means: np.ndarray):
    """Max over phase of the mean response, as [orientation, frequency]."""
    o_all, f_all = table.params["orientation"][rows], table.params["frequency"][rows]
    o, f = np.unique(o_all), np.unique(f_all)
    values = np.full((len(o), len(f)), -np.inf)
    np.maximum.at(values, (np.searchsorted(o, o_all), np.searchsorted(f, f_all)), np.nan_to_num(means, nan=-np.inf))
    return o, f, np.where(np.isinf(values), np.nan, values)


def _centred(values: np.ndarray, centre: float):
    from matplotlib.colors import TwoSlopeNorm

    finite = values[np.isfinite(values)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (centre - 1, centre + 1)
    lo, hi = min(lo, centre - 1e-9), max(hi, centre + 1e-9)
    return TwoSlopeNorm(vcenter=centre, vmin=lo, vmax=hi)


def plot_layer_summary(path: Path, summary: list[dict]) -> None:
    """Stacked bars per layer: fraction opponent / non-opponent / unresponsive, per sweep."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=90, sharey=True)
    names = [r["group"].split(":", 1)[-1] for r in summary]
    colours = {"opponent": "tab:red", "non-opponent": "tab:green", "unresponsive": "tab:gray"}
    for ax, sweep in zip(axes, ("spectral", "spatial")):
        bottom = np.zeros(len(summary))
        for cat in CATEGORIES:
            values = np.nan_to_num([r[f"{sweep}_{cat}"] for r in summary])
            ax.bar(range(len(summary)), values, bottom=bottom, color=colours[cat], label=cat)
            bottom += values
        ax.set_xticks(range(len(summary)), names, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{sweep} sweep", fontsize=9)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("fraction of units")
    axes[1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save_figure(fig, path)


def write_stimulus_strip(path: Path, table: StimulusTable, size: int = 64, per_sweep: int = 12) -> None:
    """``path``: a PNG with one row per sweep of up to ``per_sweep`` evenly spaced example stimuli."""
    from torchvision.utils import make_grid

    tiles = []
    for sweep in table.sweeps():
        rows = table.rows(sweep)
        pick = rows[np.linspace(0, len(rows) - 1, min(per_sweep, len(rows))).round().astype(int)]
        images = table.render(pick, size)
        pad = torch.full((per_sweep - len(pick), 3, size, size), 0.25)
        tiles.append(torch.cat([images, pad]))
    atomic_write(path, png_bytes(make_grid(torch.cat(tiles), nrow=per_sweep, padding=2, pad_value=0.25)))


def write_summary(run: Path, protocol: Protocol, results: list[UnitResult], extra: dict) -> list[dict]:
    """classification.csv, layer_summary.csv/.png and summary.json; returns the layer summary."""
    header, rows = classification_rows(results)
    write_csv(run / "classification.csv", header, rows)
    summary = layer_summary(results)
    keys = list(summary[0]) if summary else ["group"]
    write_csv(run / "layer_summary.csv", keys, ([_fmt(r[k]) for k in keys] for r in summary))
    plot_layer_summary(run / "layer_summary.png", summary)
    data = {"protocol": protocol.to_dict(), "units": len(results), "layers": summary,
            "table": summary_text(summary), "unit_results": unit_records(results), **extra}
    RunDir(run).write_json("summary.json", data)
    return summary

