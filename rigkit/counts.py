"""Spike counts per presentation: the alignment every lab writes between its acquisition system
(spike times per channel, stimulus-onset events) and its stimulus program (which image was
shown in which trial, and whether the trial was aborted).

The response of channel c to a presentation with onset t is the number of spikes in
``[t + latency_c, t + latency_c + width_c)`` (a half-open window, so a spike on a window's end
belongs to the next one); with a baseline window ``[t + b.latency, t + b.latency + b.width)``
(``b.latency`` is usually negative: before the onset) the baseline count, scaled to the response
window's width, may be subtracted. An aborted trial (fixation break) gives a record with
``valid = false`` and no values. The records are those of ``xdream-rig/1`` (docs/protocol.md
§4.2), ready to send in a ``result``.

Onsets come from a photodiode channel (:func:`onsets_from_photodiode`: rising threshold
crossings, with a dead time so a flickering edge counts once) or from event markers
(:func:`onsets_from_markers`); :func:`align` pairs them with the presentations the stimulus
program logged on its own clock and stops, naming the presentation, when an onset is missing or
the clocks disagree by more than allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xdream.core.errors import ConfigError, XDreamError


class AlignmentError(XDreamError):
    """The acquisition system's onsets do not match the presentations."""


class MissingOnsetError(AlignmentError):
    """A presentation has no onset event within the allowed jitter."""


class ClockOffsetError(AlignmentError):
    """The stimulus program's and the acquisition system's clocks disagree by more than allowed."""


@dataclass(frozen=True)
class Window:
    """A counting window in seconds after the onset (``latency`` may be negative: a baseline)."""

    latency: float
    width: float

    def __post_init__(self):
        if not (np.isfinite(self.latency) and np.isfinite(self.width) and self.width > 0):
            raise ConfigError(f"a counting window needs a finite latency and a width > 0 s, "
                              f"got latency {self.latency!r}, width {self.width!r}")


@dataclass(frozen=True)
class Presentation:
    """One trial as the stimulus program logged it: ``time`` is its flip on the stimulus
    program's clock (seconds), ``valid`` false for an aborted trial."""

    image_id: str
    repeat: int
    trial_id: int
    time: float
    valid: bool = True


class SpikeCounter:
    """Counts spikes per channel and presentation. ``windows`` maps each channel name to its
    response :class:`Window` (its latency and width); ``baseline`` is an optional window whose
    count, scaled to each response window's width, is subtracted when ``subtract``."""

    def __init__(self, windows: dict[str, Window], baseline: Window | None = None, subtract: bool = False):
        if not windows:
            raise ConfigError("SpikeCounter needs at least one channel window")
        if subtract and baseline is None:
            raise ConfigError("subtract=True needs a baseline window")
        self.windows, self.baseline, self.subtract = dict(windows), baseline, subtract
        self.channels = list(self.windows)

    def counts(self, spikes: dict[str, np.ndarray], onsets: np.ndarray) -> np.ndarray:
        """``[len(onsets), channels]`` responses: spikes in each channel's window after each
        onset, less the scaled baseline count when ``subtract``."""
        onsets = np.asarray(onsets, dtype=np.float64)
        out = np.zeros((len(onsets), len(self.channels)))
        for c, name in enumerate(self.channels):
            if name not in spikes:
                raise ConfigError(f"no spike times for channel {name!r}; the source has: {', '.join(map(str, spikes))}")
            times = np.sort(np.asarray(spikes[name], dtype=np.float64))
            w = self.windows[name]
            out[:, c] = _in_window(times, onsets, w)
            if self.subtract:
                out[:, c] -= _in_window(times, onsets, self.baseline) * (w.width / self.baseline.width)
        return out

    def records(self, presentations: list[Presentation], onsets: np.ndarray,
                spikes: dict[str, np.ndarray]) -> list[dict]:
        """``xdream-rig/1`` records, one per presentation; ``onsets`` are the presentations'
        onsets on the acquisition clock (from :func:`align`), NaN where there is none (aborted
        trials): those records are invalid with null values."""
        onsets = np.asarray(onsets, dtype=np.float64)
        if len(onsets) != len(presentations):
            raise ConfigError(f"{len(presentations)} presentations but {len(onsets)} onsets")
        usable = np.array([p.valid for p in presentations], dtype=bool) & np.isfinite(onsets)
        values = self.counts(spikes, onsets[usable])
        rows = iter(values)
        records = []
        for p, onset, ok in zip(presentations, onsets, usable):
            row = next(rows) if ok else None
            records.append({"image_id": p.image_id, "repeat": int(p.repeat), "trial_id": int(p.trial_id),
                            "onset": float(onset) if ok else None,
                            "values": [float(v) for v in row] if ok else [None] * len(self.channels),
                            "valid": bool(ok)})
        return records


def _in_window(times: np.ndarray, onsets: np.ndarray, window: Window) -> np.ndarray:
    start = onsets + window.latency
    return (np.searchsorted(times, start + window.width, side="left")
            - np.searchsorted(times, start, side="left")).astype(np.float64)


def onsets_from_photodiode(signal: np.ndarray, times: np.ndarray, threshold: float, dead_time: float = 0.05) -> np.ndarray:
    """Onset times from a sampled photodiode trace: the first sample at or above ``threshold``
    after one below it; crossings within ``dead_time`` seconds of an onset (a flickering
    edge, the frame's own refresh) are the same onset."""
    signal, times = np.asarray(signal, dtype=np.float64), np.asarray(times, dtype=np.float64)
    if signal.shape != times.shape:
        raise ConfigError(f"photodiode samples {signal.shape} and their times {times.shape} differ in shape")
    above = signal >= threshold
    rising = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    onsets: list[float] = []
    for t in times[rising]:
        if not onsets or t - onsets[-1] >= dead_time:
            onsets.append(float(t))
    return np.asarray(onsets)


def onsets_from_markers(markers: list[tuple[float, str]], label: str) -> np.ndarray:
    """Onset times of the event markers ``(time, text)`` whose text is ``label`` or starts
    with ``label`` and a space (``"onset g3-7 r1"``), in time order."""
    return np.sort(np.asarray([t for t, text in markers if text == label or text.startswith(label + " ")],
                              dtype=np.float64))


def align(presentations: list[Presentation], onsets: np.ndarray, jitter: float = 0.005,
          max_offset: float | None = None) -> tuple[np.ndarray, float]:
    """Pair each valid presentation with its onset; returns the onsets in presentation order
    (NaN for aborted trials) and the clock offset (acquisition minus stimulus clock, s).

    Aborted trials need no onset (one found near them is used, not required), and onsets of
    no presentation (test flashes, a restarted program's) are left out. The offset is
    the one under which most onsets have a presentation within ``jitter`` s; every valid
    presentation must then have one (:class:`MissingOnsetError` names the first that has
    not), and, where the two clocks should agree (``max_offset`` s, e.g. LSL's corrected
    timestamps), the offset must be within it (:class:`ClockOffsetError`). Where another offset
    (within ``max_offset``) also gives every valid presentation an onset, the pairing is
    ambiguous (evenly spaced trials, an onset of no presentation at an end) and an
    :class:`AlignmentError` says so rather than score images with their neighbours' responses."""
    onsets = np.sort(np.asarray(onsets, dtype=np.float64))
    stim = np.array([p.time for p in presentations], dtype=np.float64)
    valid = np.array([p.valid for p in presentations], dtype=bool)
    if not valid.any():
        return np.full(len(presentations), np.nan), 0.0
    if len(onsets) == 0:
        first = presentations[int(np.flatnonzero(valid)[0])]
        raise MissingOnsetError(f"no onset events at all; the first valid presentation is trial {first.trial_id} "
                                f"(image {first.image_id}, repeat {first.repeat})")
    # candidate offsets: every onset against the first k presentations (onsets before the program's first one: test
    # flashes, a restarted program) and the first k onsets against every presentation (the acquisition started late),
    # each tried on the first and last k presentations and onsets (one shifted by whole trials leaves an end unmatched,
    # 2 * jitter: both times jitter); those within k // 2 of the best fit are counted in full
    k = min(8, len(stim))
    candidates = np.r_[(onsets[:, None] - stim[None, :k]).ravel(), (onsets[:k, None] - stim[None, :]).ravel()]
    fit = (_near(np.r_[stim[:k], stim[-k:]] + candidates[:, None], onsets, 2 * jitter).sum(axis=1)
           + _near(np.r_[onsets[:k], onsets[-k:]] - candidates[:, None], np.sort(stim), 2 * jitter).sum(axis=1))
    best = np.unique(candidates[fit >= fit.max() - k // 2])
    offset = max(best, key=lambda o: (_matched(stim + o, onsets, jitter), -abs(o)))
    nearest = _nearest(stim + offset, onsets)
    hit = np.abs(onsets[nearest] - (stim + offset)) <= jitter
    matched = hit & valid if (hit & valid).any() else hit  # (onsets only near aborted trials: theirs)
    offset = float(np.median(onsets[nearest[matched]] - stim[matched]))  # refined on the matches
    if max_offset is not None and abs(offset) > max_offset:
        raise ClockOffsetError(f"the acquisition clock is {offset * 1000:+.1f} ms off the stimulus clock "
                               f"(allowed: {max_offset * 1000:g} ms): check the clock synchronisation "
                               "(LSL time correction, a shared sync pulse)")
    nearest = _nearest(stim + offset, onsets)
    hit = np.abs(onsets[nearest] - (stim + offset)) <= jitter
    missing = np.flatnonzero(valid & ~hit)
    if len(missing):
        p = presentations[int(missing[0])]
        raise MissingOnsetError(f"no onset within {jitter * 1000:g} ms of trial {p.trial_id} (image {p.image_id}, "
                                f"repeat {p.repeat}; expected at {p.time + offset:.4f} s on the acquisition clock); "
                                f"{len(missing)} valid presentation(s) lack an onset")
    for other in best[np.abs(best - offset) > 2 * jitter]:  # another pairing that gives every valid one an onset
        rival = _refined(stim, valid, onsets, other, jitter)
        if rival is not None and abs(rival - offset) > 2 * jitter and (max_offset is None or abs(rival) <= max_offset):
            raise AlignmentError(f"the onsets fit two pairings with the presentations: clock offsets {offset:.4f} s "
                                 f"and {rival:.4f} s each give every valid presentation an onset (evenly spaced "
                                 "trials and an onset of no presentation at an end: a test flash, an extra or missed "
                                 "flip), so which image an onset belongs to cannot be told; remove the onsets of no "
                                 "presentation, or take onsets from markers that name the trial")
    used = nearest[valid]
    if len(np.unique(used)) < len(used):
        raise AlignmentError(f"two presentations fall on one onset event: presentations closer than the jitter "
                             f"({jitter * 1000:g} ms)")
    return np.where(hit, onsets[nearest], np.nan), offset


def _refined(stim: np.ndarray, valid: np.ndarray, onsets: np.ndarray, offset: float, jitter: float) -> float | None:
    """``offset`` refined on the onsets it pairs (within twice ``jitter``: both times jitter), if
    every valid presentation then has one within ``jitter``; else None."""
    nearest = _nearest(stim + offset, onsets)
    close = np.abs(onsets[nearest] - (stim + offset)) <= 2 * jitter
    if not close[valid].all():
        return None
    refined = float(np.median(onsets[nearest[close]] - stim[close]))
    return refined if _near(stim[valid] + refined, onsets, jitter).all() else None


def _nearest(expected: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    right = np.clip(np.searchsorted(onsets, expected), 0, len(onsets) - 1)
    left = np.clip(right - 1, 0, len(onsets) - 1)
    return np.where(np.abs(onsets[left] - expected) <= np.abs(onsets[right] - expected), left, right)


def _near(expected: np.ndarray, events: np.ndarray, jitter: float) -> np.ndarray:
    """Whether each expected time has one of the (sorted) ``events`` within ``jitter``."""
    return np.abs(events[_nearest(expected, events)] - expected) <= jitter


def _matched(expected: np.ndarray, onsets: np.ndarray, jitter: float) -> int:
    """Onsets that some presentation (aborted ones too: their flip happened) falls on. Counting
    onsets, not presentations, tells the true offset from one shifted by a whole trial when
    trials are evenly spaced: the shifted one leaves an onset at the end unmatched."""
    nearest = _nearest(expected, onsets)
    return len(np.unique(nearest[np.abs(onsets[nearest] - expected) <= jitter]))
