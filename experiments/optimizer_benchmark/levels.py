"""Evaluations to a level: how many images a run needed to reach a given quality, against the GA.

What a lab wants to know is how many trials it takes to reach a given image quality, not a
ratio of normalised best scores (which saturates near 1). Evaluations (images told to the
optimiser) are its trials here: the presets show each image once, with no references; on a rig
with repeats, trials are evaluations x repeats. From each run's trajectory (its
best-so-far noise-free score after each generation, ``[[evaluations, best], ...]``):

- levels: fractions 0.5, 0.8 and 0.9 of the unit's best-ever clean score (over every run of
  the records on that unit), and the GA's final score on the same unit, seed and noise level
  ("GA final": the paired XDREAM GA run's best noise-free score at the end of its budget);
- a run's evaluations to a level: the evaluations done when its best-so-far first reached the
  level; a run that never reached it is **censored** (it would need more than its budget):
  never counted as its budget;
- per optimiser, each run is paired with the reference's run on the same unit, seed and noise
  level, and the ratio of their evaluations taken. A censored pair keeps its order: the
  optimiser censored and the reference not is ``+inf`` (slower than any observed ratio), the
  reference censored and the optimiser not is ``0`` (faster than any), both censored is left
  out and counted. The median of the ratios and its 95% bootstrap interval (percentile,
  resampling pairs) are reported; a median or bound that falls on a censored pair is shown as
  ``cens.``, i.e. it is beyond the budget, or as ``0 (ref. cens.)`` on a pair censored for the
  reference (of an even count, a middle pair that is censored is the median, never averaged).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

LEVELS = (("0.5 of best", 0.5, "unit"), ("0.8 of best", 0.8, "unit"), ("0.9 of best", 0.9, "unit"),
          ("GA final", 1.0, "reference"))
BOOTSTRAP = 2000  # resamples for the median's interval
DECISION = {"noise": "0.2", "level": "GA final", "vs GA": 0.5, "vs best peer": 1.25}


def evaluations_to(trajectory, target: float) -> float | None:
    """Evaluations when ``trajectory``'s best-so-far first reached ``target``; None: never
    (censored)."""
    for evaluations, best in trajectory:
        if best is not None and best >= target:
            return float(evaluations)
    return None


def _key(r: dict) -> tuple:
    return r["unit"], str(r.get("seed", "0")), str(r.get("noise", "0"))


def level_evaluations(records: list[dict], reference: str) -> dict:
    """``(optimiser, unit, seed, noise, level) -> evaluations or None`` for every record with a
    trajectory (``unit`` as :func:`analyse.normalise` sets it)."""
    unit_best = defaultdict(lambda: -math.inf)
    for r in records:
        if r.get("clean_best") is not None:
            unit_best[r["unit"]] = max(unit_best[r["unit"]], r["clean_best"])
    ref_final = {_key(r): r["clean_best"] for r in records
                 if r["optimizer"] == reference and r.get("clean_best") is not None}
    out = {}
    for r in records:
        if not r.get("trajectory"):
            continue
        for name, fraction, base in LEVELS:
            top = unit_best[r["unit"]] if base == "unit" else ref_final.get(_key(r))
            if top is None or not math.isfinite(top):
                continue
            out[(r["optimizer"], *_key(r), name)] = evaluations_to(r["trajectory"], fraction * top)
    return out


def paired_ratios(evals: dict, arm: str, reference: str, level: str, noise: str | None = None):
    """Ratios arm / reference of paired evaluations to ``level`` (at ``noise``, or all):
    ``(ratios, arm censored, reference censored, both censored)``; censored pairs as in the
    module doc (``inf`` / ``0``, both left out)."""
    ratios, arm_cens, ref_cens, both = [], 0, 0, 0
    for (opt, unit, seed, nz, lv), value in evals.items():
        if opt != arm or lv != level or (noise is not None and nz != noise):
            continue
        if (reference, unit, seed, nz, lv) not in evals:
            continue
        ref = evals[(reference, unit, seed, nz, lv)]
        if value is None and ref is None:
            both += 1
        elif value is None:
            arm_cens += 1
            ratios.append(math.inf)
        elif ref is None:
            ref_cens += 1
            ratios.append(0.0)
        else:
            ratios.append(value / ref)
    return np.asarray(ratios, dtype=np.float64), arm_cens, ref_cens, both


def _median(values: np.ndarray) -> np.ndarray:
    """Median along the last axis; of an even count the middle two averaged, except that a
    censored one decides: inf (the optimiser censored) over 0 (the reference censored), since
    either stands for an order, not a ratio, and half of a ratio is neither."""
    x = np.sort(values, axis=-1)
    low, high = x[..., (x.shape[-1] - 1) // 2], x[..., x.shape[-1] // 2]
    return np.where((low == 0) & np.isfinite(high), 0.0, (low + high) / 2)  # (0 + inf) / 2 = inf


def median_ci(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Median and its 95% percentile-bootstrap interval over the pairs (NaN when empty); an inf
    value (censored) makes a median that depends on it inf (beyond the budget), a 0 (the
    reference censored) makes it 0 (:func:`_median`)."""
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    median = float(_median(values))
    draws = values[np.random.default_rng(seed).integers(0, len(values), (BOOTSTRAP, len(values)))]
    medians = _median(draws)
    return median, float(np.quantile(medians, 0.025, method="lower")), float(np.quantile(medians, 0.975,
                                                                                           method="higher"))


def _fmt(x: float) -> str:
    """A ratio; ``cens.``: the optimiser never reached the level; ``0 (ref. cens.)``: the
    reference never did and the optimiser did."""
    return "cens." if x == math.inf else "0 (ref. cens.)" if x == 0 else f"{x:.2f}"


def levels_markdown(records: list[dict], reference: str, peer_prefix: str) -> str:
    """The evaluations-to-level section of ``table.md`` (empty when no record has a trajectory)."""
    evals = level_evaluations(records, reference)
    if not evals:
        return ("\n## Evaluations to a level\n\nNo run trajectories in these records (the run directories "
                "are not here): re-run the preset to measure evaluations to a level.\n")
    optimisers = list(dict.fromkeys(k[0] for k in evals))
    noises = sorted({k[3] for k in evals}, key=float)
    columns = [*noises, None]
    head = "| optimiser | " + " | ".join(f"noise {c}" if c else "all noise" for c in columns) + " |"
    rule = "|---" * (len(columns) + 1) + "|"
    lines = ["", "## Evaluations to a level", "",
             f"Median ratio of evaluations to the level, optimiser / {reference}, paired on unit, seed and noise, "
             "[95% bootstrap CI over the pairs]; `cens.`: the median or bound falls on a run that never reached "
             "the level within its budget (censored, never counted as its budget); `0 (ref. cens.)`: on a pair "
             f"where the optimiser reached it and {reference} did not; n = pairs, and the pairs "
             f"censored for the optimiser / for {reference} / for both (left out; `neither reached it`: every pair "
             "was). Below 1: fewer images than the GA.",
             ""]
    summary = {}
    for level, _, _ in LEVELS:
        lines += [f"**{level}**", "", head, rule]
        for opt in optimisers:
            if opt == reference:
                continue
            cells = []
            for c in columns:
                ratios, a, r, both = paired_ratios(evals, opt, reference, level, c)
                median, lo, hi = median_ci(ratios)
                summary[(opt, level, c)] = median
                counts = f"(n={len(ratios) + both}; cens. {a}/{r}/{both})"
                cells.append("no pairs" if len(ratios) + both == 0 else f"neither reached it {counts}" if
                             len(ratios) == 0 else f"{_fmt(median)} [{_fmt(lo)}, {_fmt(hi)}] {counts}")
            lines.append(f"| {opt} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Runs that reached each level (all noise levels):", "",
              "| optimiser | " + " | ".join(level for level, _, _ in LEVELS) + " |", "|---" * (len(LEVELS) + 1) + "|"]
    for opt in optimisers:
        cells = []
        for level, _, _ in LEVELS:
            values = [v for k, v in evals.items() if k[0] == opt and k[4] == level]
            cells.append(f"{sum(v is not None for v in values)}/{len(values)}")
        lines.append(f"| {opt} | " + " | ".join(cells) + " |")
    lines += ["", *decision_lines(evals, optimisers, reference, peer_prefix)]
    return "\n".join(lines) + "\n"


def decision_lines(evals: dict, optimisers: list[str], reference: str, peer_prefix: str) -> list[str]:
    """Issue 23's rule, per optimiser that is neither the reference nor a peer: median ratio to
    the GA's evaluations to the GA's final score at noise 0.2 <= 0.5, and the best peer's
    evaluations to that level >= 1.25x the optimiser's (paired median ratio optimiser / peer
    <= 1 / 1.25); the best peer is the one with the lowest median ratio to the GA there, among
    the peers with pairs there."""
    noise, level = DECISION["noise"], DECISION["level"]
    peers = [o for o in optimisers if o.startswith(peer_prefix)]
    ours = [o for o in optimisers if o != reference and not o.startswith(peer_prefix)]
    lines = [f"Decision rule (issue 23), at noise {noise}, level '{level}': median ratio to {reference} "
             f"<= {DECISION['vs GA']} and the best peer needing >= {DECISION['vs best peer']}x the optimiser's "
             "evaluations (paired median ratio optimiser / peer <= 0.8):", ""]
    if not any(k[3] == noise for k in evals):
        return lines + [f"- no runs at noise {noise}"]
    by_peer = {p: median_ci(paired_ratios(evals, p, reference, level, noise)[0])[0] for p in peers}
    by_peer = {p: m for p, m in by_peer.items() if not math.isnan(m)}  # NaN: no pairs at this noise
    best_peer = min(by_peer, key=lambda p: by_peer[p]) if by_peer else None
    for opt in ours:
        vs_ga = median_ci(paired_ratios(evals, opt, reference, level, noise)[0])
        text = f"- {opt}: {_fmt(vs_ga[0])} of the GA's evaluations [{_fmt(vs_ga[1])}, {_fmt(vs_ga[2])}]"
        ok = vs_ga[0] <= DECISION["vs GA"]
        if best_peer is None:
            text += "; no peer in these records"
            ok = False
        else:
            vs_peer = median_ci(paired_ratios(evals, opt, best_peer, level, noise)[0])
            gain = (f"{1 / vs_peer[0]:.2f}x" if 0 < vs_peer[0] < math.inf else
                    "the peer never reached it" if vs_peer[0] == 0 else "the optimiser never reached it")
            text += (f"; vs the best peer {best_peer}: ratio {_fmt(vs_peer[0])} [{_fmt(vs_peer[1])}, "
                     f"{_fmt(vs_peer[2])}] ({gain} in the median pair)")
            ok = ok and vs_peer[0] <= 1 / DECISION["vs best peer"]
        lines.append(text + (": **rule met**" if ok else ": rule NOT met"))
    return lines
