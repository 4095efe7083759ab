"""A session built with known answers: presentations (some aborted), onsets on the acquisition
clock (the stimulus clock shifted by an offset, with jitter), and spike trains per channel whose
counts in each window are chosen first and then placed, so every expected count is exact."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rigkit.counts import Presentation, Window

WINDOWS = {"e1": Window(0.05, 0.10), "e2": Window(0.07, 0.15)}
BASELINE = Window(-0.10, 0.10)
SPACING = 0.4  # s between flips; each window ends by 0.22 s, the next baseline starts 0.3 s after


@dataclass
class Scenario:
    presentations: list[Presentation]
    onsets: np.ndarray  # acquisition clock, one per presentation (aborted ones too: the flip happened)
    spikes: dict[str, np.ndarray]
    counts: np.ndarray  # [presentations, channels] spikes in each channel's response window
    baseline: np.ndarray  # [presentations] spikes in the baseline window (the same train as each channel's)
    offset: float


def build(seed: int = 0, n_images: int = 6, repeats: int = 2, offset: float = 12.5, jitter: float = 0.002,
          start: float = 3.0, aborted: tuple = (3, 8)) -> Scenario:
    rng = np.random.default_rng(seed)
    order = [(i, r) for r in range(repeats) for i in rng.permutation(n_images)]
    presentations, onsets = [], []
    for k, (i, r) in enumerate(order):
        stim = start + k * SPACING
        presentations.append(Presentation(f"g0-{i}", r, 100 + k, stim, valid=k not in aborted))
        onsets.append(round(stim + offset + rng.uniform(-jitter, jitter), 3))  # whole ms: a 1 kHz photodiode sees it
    onsets = np.asarray(onsets)
    counts = rng.integers(0, 8, (len(order), len(WINDOWS))).astype(float)
    baseline = rng.integers(0, 4, len(order)).astype(float)
    spikes = {}
    for c, (name, w) in enumerate(WINDOWS.items()):
        times = []
        for k, t in enumerate(onsets):
            lo = t + w.latency
            times += list(rng.uniform(lo + 0.001, lo + w.width - 0.001, int(counts[k, c])))
            times += list(rng.uniform(t - 0.099, t - 0.001, int(baseline[k])))  # in the baseline window
            times += list(rng.uniform(t + 0.23, t + 0.29, 3))  # after every response window, before the next baseline
        spikes[name] = np.sort(np.asarray(times))
    return Scenario(presentations, onsets, spikes, counts, baseline, offset)


def expected_values(s: Scenario, subtract: bool = False) -> list:
    """The values each record must carry: None for aborted trials."""
    out = []
    for k, p in enumerate(s.presentations):
        if not p.valid:
            out.append([None, None])
            continue
        row = s.counts[k].copy()
        if subtract:
            row -= s.baseline[k] * np.array([w.width / BASELINE.width for w in WINDOWS.values()])
        out.append([float(v) for v in row])
    return out
