"""Matplotlib figures of a run (Agg backend: no screen needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .rundir import atomic_write


def plot_trajectory(history: list[dict], path: str | Path, title: str = "") -> None:
    """Best and mean score per generation (and the noise-free best when noise was simulated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = np.arange(len(history))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for key, label, style in (("best", "best", "-"), ("mean", "mean", "--"), ("clean_best", "best (noise-free)", ":")):
        if any(key in h for h in history):
            values = [h.get(key, np.nan) for h in history]
            ax.plot(gens, np.array(values, dtype=float), style, label=label)
    ax.set_xlabel("generation")
    ax.set_ylabel("score")
    ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
