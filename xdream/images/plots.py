"""Matplotlib figures of a run (Agg backend: no screen needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from xdream.runs.rundir import atomic_write


def pyplot():
    """matplotlib.pyplot on the Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path | None) -> bytes:
    """Close a figure and return its PNG, written atomically to ``path`` unless None."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    pyplot().close(fig)
    if path is not None:
        atomic_write(path, buffer.getvalue())
    return buffer.getvalue()


def plain(text: str) -> str:
    """``text`` drawn as written: matplotlib reads the text between two ``$`` as mathtext (a run
    folder named ``gain $x^$`` raised), and draws ``\\$`` as ``$``. Titles and legends name run
    folders, threads, methods and reference files."""
    return text.replace("$", r"\$")


def integer_ticks(ax) -> None:
    """Ticks only at whole numbers on the x axis (generations, steps, evaluations): a short run's
    axis otherwise reads 0.25, 2.5 (matplotlib's MaxNLocator, integer=True)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


TRAJECTORY_LINES = (("best", "best of the generation", "-"), ("mean", "mean of the generation", "--"),
                    ("clean_best", "best (noise-free)", ":"), ("reference_mean", "natural references (mean)", "-."))


def plot_trajectory(history: list[dict], path: str | Path | None, title: str = "") -> bytes:
    """Best and mean score of the evolved images per generation, the noise-free best when
    noise was simulated, and the mean of the natural reference images shown with them; the
    PNG is returned (and written to ``path`` unless None)."""
    gens = np.arange(len(history))
    fig, ax = pyplot().subplots(figsize=(6, 4), dpi=100)
    for key, label, style in TRAJECTORY_LINES:
        if any(key in h for h in history):
            values = [h.get(key, np.nan) for h in history]
            ax.plot(gens, np.array(values, dtype=float), style, label=label)
    ax.set_xlabel("generation")
    integer_ticks(ax)
    ax.set_ylabel("score")
    ax.set_title(plain(title), fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_threads(histories: dict[str, list[dict]], path: str | Path | None, title: str = "") -> bytes:
    """Several threads' best score per generation on one plot, one colour per thread, each with
    the mean of the natural reference images scored on its target (dash-dot, same colour);
    beyond 10 threads the legend is left out. The PNG is returned (and written unless None)."""
    fig, ax = pyplot().subplots(figsize=(7, 4.2), dpi=100)
    colours = pyplot().get_cmap("tab10" if len(histories) <= 10 else "viridis")
    for k, (name, history) in enumerate(histories.items()):
        colour = colours(k if len(histories) <= 10 else k / max(1, len(histories) - 1))
        gens = np.arange(len(history))
        ax.plot(gens, np.array([h.get("best", np.nan) for h in history], dtype=float), "-", color=colour,
                label=plain(name))
        if any("reference_mean" in h for h in history):
            ax.plot(gens, np.array([h.get("reference_mean", np.nan) for h in history], dtype=float), "-.",
                    color=colour, alpha=0.6, label=plain(f"{name}: natural references"))
    ax.set_xlabel("generation")
    integer_ticks(ax)
    ax.set_ylabel("best score of the generation")
    ax.set_title(plain(title), fontsize=9)
    if len(histories) <= 10:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_curves(curves: dict[str, tuple], path: str | Path, *, xlabel: str, ylabel: str = "activation",
                title: str = "", hlines: dict[str, float] | None = None, logx: bool = False) -> None:
    """Several named ``(x, y)`` curves on one plot, with optional labelled horizontal lines
    (e.g. the best natural image); used for gradient and comparison trajectories."""
    fig, ax = pyplot().subplots(figsize=(7, 4.2), dpi=100)
    for label, (x, y) in curves.items():
        ax.plot(np.asarray(x, dtype=float), np.asarray(y, dtype=float), "-", marker="." if len(x) < 40 else None,
                label=plain(label))
    for label, value in (hlines or {}).items():
        ax.axhline(value, color="gray", linestyle=":", label=plain(label))
    if logx:
        ax.set_xscale("log")
    elif all(float(v).is_integer() for x, _ in curves.values() for v in np.asarray(x, dtype=float)):
        integer_ticks(ax)  # steps, evaluations
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(plain(title), fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
