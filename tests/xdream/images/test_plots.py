"""The run's figures: generation, step and evaluation axes tick only at whole numbers (a
3-generation run's axis read 0.25, 0.5, ... 2.5)."""

from __future__ import annotations

import pytest

from xdream.images import plots


@pytest.fixture
def drawn_ticks(monkeypatch):
    """The x ticks inside the axis of each figure the plot functions draw (instead of saving it)."""
    ticks = []

    def capture(fig, path):
        ax = fig.axes[0]
        lo, hi = ax.get_xlim()
        ticks.append([t for t in ax.get_xticks() if lo <= t <= hi])
        plots.pyplot().close(fig)
        return b""

    monkeypatch.setattr(plots, "save_figure", capture)
    return ticks


HISTORY = [{"best": 1.0 + g, "mean": 0.5 + g, "reference_mean": 1.2} for g in range(3)]


@pytest.mark.parametrize("draw", [
    lambda: plots.plot_trajectory(HISTORY, None),
    lambda: plots.plot_threads({"a": HISTORY, "b": HISTORY[:2]}, None),
    lambda: plots.plot_curves({"adam": ([0, 1, 2], [1.0, 2.0, 3.0])}, "unused.png", xlabel="step"),
], ids=["trajectory", "threads", "curves"])
def test_short_runs_tick_whole_generations(drawn_ticks, draw):
    draw()
    (ticks,) = drawn_ticks
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_fractional_x_values_keep_fractional_ticks(drawn_ticks):
    plots.plot_curves({"a": ([0.0, 0.25, 0.5], [1.0, 2.0, 3.0])}, "unused.png", xlabel="seconds")
    assert any(not float(t).is_integer() for t in drawn_ticks[0])


@pytest.mark.parametrize("draw", [
    lambda name: plots.plot_trajectory(HISTORY, None, title=name),
    lambda name: plots.plot_threads({name: HISTORY}, None, title=name),
    lambda name: plots.plot_curves({name: ([0, 1, 2], [1.0, 2.0, 3.0])}, None, xlabel="step", title=name,
                                   hlines={f"best natural image ({name})": 2.5}),
], ids=["trajectory", "threads", "curves"])
def test_names_with_dollar_signs_are_drawn_as_written(draw):
    """Titles and legends name run folders, threads, methods and reference files, which may hold
    ``$``: matplotlib read ``gain $x^$`` as mathtext and raised (a compare --from-session of a
    run so named, or of a reference file so named, ended in a traceback)."""
    draw("gain $x^$ of a$b$c")
