"""Presenting a protocol through a responder, and classifying what it recorded.

Every stimulus is presented its number of repeats, in an order shuffled by the given RNG (as
on a rig, so slow drifts do not line up with one sweep), in batches rendered on the fly;
``respond_units`` records every unit of the responder at once (one unit, or a whole layer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from xdream.core.errors import ConfigError
from xdream.core.responder import Responder
from xdream.characterise.classify import Stats, classify_sweep
from xdream.characterise.protocol import Protocol, StimulusTable


@dataclass
class Recording:
    """Responses ``[P, U]`` of U units to P presentations of the table's stimuli."""

    table: StimulusTable
    stimulus: np.ndarray  # int64 [P]: row of the table shown
    repeat: np.ndarray  # int64 [P]: how many times that stimulus had been shown before
    responses: np.ndarray  # float64 [P, U]
    units: list[str]
    clean: np.ndarray | None = None  # noise-free responses [P, U] when noise was simulated

    def stats(self, unit: int) -> Stats:
        return Stats.from_presentations(self.stimulus, self.responses[:, unit], len(self.table))


def presentation_order(repeats: np.ndarray, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus rows and repeat numbers of all presentations, shuffled when ``rng`` is given."""
    stimulus = np.repeat(np.arange(len(repeats)), repeats)
    if rng is not None:
        stimulus = stimulus[rng.permutation(len(stimulus))]
    repeat = np.zeros(len(stimulus), dtype=np.int64)
    seen = np.zeros(len(repeats), dtype=np.int64)
    for i, s in enumerate(stimulus):
        repeat[i], seen[s] = seen[s], seen[s] + 1
    return stimulus, repeat


def present(responder: Responder, protocol: Protocol, size: int, *, batch_size: int = 64,
            rng: np.random.Generator | None = None, progress: Callable[[int], None] | None = None) -> Recording:
    """Show every presentation of ``protocol`` to ``responder`` at ``size`` px; record all units."""
    if size < 1:
        raise ConfigError(f"stimulus size must be >= 1 px, got {size}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    table = protocol.table()
    stimulus, repeat = presentation_order(protocol.repeats_of(table), rng)
    units = list(responder.unit_labels())
    responses = np.empty((len(stimulus), len(units)))
    clean = None
    for start in range(0, len(stimulus), batch_size):
        rows = stimulus[start : start + batch_size]
        out = np.asarray(responder.respond_units(table.render(rows, size)), dtype=np.float64)
        if out.shape != (len(rows), len(units)):
            raise ValueError(f"{responder.name}.respond_units returned {out.shape}, expected {(len(rows), len(units))}")
        responses[start : start + len(rows)] = out
        last_clean = responder.last_clean  # noise-free scores when the responder simulates noise
        if last_clean is not None:
            clean = np.empty_like(responses) if clean is None else clean
            clean[start : start + len(rows)] = last_clean
        if progress is not None:
            progress(len(rows))
    return Recording(table, stimulus, repeat, responses, units, clean)


@dataclass
class SweepResult:
    """One unit's verdict on one sweep, with its preferred and least preferred stimulus."""

    label: str
    category: str
    method: str
    preferred: dict
    least_preferred: dict
    max: float
    min: float
    n_above: int
    n_below: int
    curve: np.ndarray = field(repr=False)  # mean response per stimulus of the sweep
    notes: list[str] = field(default_factory=list)  # why the preferred stimulus may mislead (preference_notes)


@dataclass
class UnitResult:
    unit: str
    group: str
    baseline: float  # mean response to the baseline field
    baseline_sd: float
    sweeps: dict[str, SweepResult]

    @property
    def double_opponent(self) -> bool | None:
        """Opponent in both the spectral and the spatial sweep (None if one was not run)."""
        if "spectral" not in self.sweeps or "spatial" not in self.sweeps:
            return None
        return self.sweeps["spectral"].category == "opponent" and self.sweeps["spatial"].category == "opponent"


def classify_recording(recording: Recording, protocol: Protocol, group: str, *, method: str = "auto",
                       alpha: float = 0.05) -> list[UnitResult]:
    """Classify every unit of a recording, sweep by sweep, against the protocol's baseline."""
    table = recording.table
    base_row = table.rows("baseline")[table.params["level"][table.rows("baseline")] == protocol.baseline_level][:1]
    results = []
    for u, unit in enumerate(recording.units):
        stats = recording.stats(u)
        baseline = stats.take(base_row)
        sweeps = {}
        for sweep in table.sweeps():
            if sweep == "baseline":
                continue
            rows = table.rows(sweep)
            part = stats.take(rows)
            verdict = classify_sweep(part, baseline, method=method, alpha=alpha)
            finite = np.isfinite(part.mean)
            best = rows[np.nanargmax(part.mean)] if finite.any() else rows[0]
            worst = rows[np.nanargmin(part.mean)] if finite.any() else rows[0]
            sweeps[sweep] = SweepResult(
                verdict.label, verdict.category, verdict.method, table.describe(best), table.describe(worst),
                float(np.nanmax(part.mean)) if finite.any() else np.nan,
                float(np.nanmin(part.mean)) if finite.any() else np.nan,
                int(verdict.above.sum()), int(verdict.below.sum()), part.mean,
                preference_notes(table, rows, part.mean, best) if finite.any() else [],
            )
        sd = float(np.sqrt(baseline.var[0])) if np.isfinite(baseline.var[0]) else 0.0
        results.append(UnitResult(unit, group, float(baseline.mean[0]), sd, sweeps))
    return results


#: Parameters with an open range: a preference at the edge of the tested values may lie beyond
#: them (hue, orientation and phase are circular; a frequency of 0 has nothing below it).
OPEN_RANGE = ("frequency", "sigma", "surround")


def preference_notes(table, rows: np.ndarray, means: np.ndarray, best: int) -> list[str]:
    """What a reader of the preferred stimulus ``best`` should know: that it is one pick among
    stimuli tied at the maximum mean (under Poisson noise many stimuli can all be 0), and that a
    parameter of it is the highest (or lowest) value tested, so the optimum may lie beyond."""
    notes = []
    top = np.nanmax(means)
    tied = int(np.isclose(means, top, rtol=1e-9, atol=1e-12).sum())
    if tied > 1:
        notes.append(f"tied: {tied} stimuli share the maximum mean {top:.4g}; this one is an arbitrary pick among them")
    for name in OPEN_RANGE:
        tested = table.params[name][rows]
        tested = np.unique(tested[np.isfinite(tested)])
        value = table.params[name][best]
        if len(tested) < 2 or not np.isfinite(value):
            continue
        if value == tested[-1]:
            notes.append(f"{name} {value:g} is the highest tested: the optimum may lie above the tested range")
        elif value == tested[0] and value > 0:
            notes.append(f"{name} {value:g} is the lowest tested: the optimum may lie below the tested range")
    return notes
