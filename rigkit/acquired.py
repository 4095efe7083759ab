"""What a source has read from the acquisition system: spike times per channel and event
markers, all on the acquisition clock (seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rigkit.counts import ClockOffsetError


@dataclass
class Acquired:
    """Spike times by channel and ``(time, text)`` event markers. A time more than
    ``max_backstep`` s before the latest one of its kind (spikes, markers) means the acquisition clock was reset (the
    acquisition restarted): :class:`~rigkit.counts.ClockOffsetError`, since counts against
    onsets of the old clock would be wrong."""

    max_backstep: float = 1.0
    spikes: dict[str, list[float]] = field(default_factory=dict)
    markers: list[tuple[float, str]] = field(default_factory=list)
    latest: dict[str, float] = field(default_factory=dict)

    def _see(self, kind: str, t: float) -> None:
        latest = self.latest.get(kind, -np.inf)
        if t < latest - self.max_backstep:
            raise ClockOffsetError(f"the acquisition clock went back from {latest:.3f} s to {t:.3f} s ({kind}): the "
                                   "acquisition restarted; counts against onsets of the old clock would be wrong")
        self.latest[kind] = max(latest, t)

    def add_spike(self, channel: str, t: float) -> None:
        self._see("spikes", t)
        self.spikes.setdefault(channel, []).append(float(t))

    def add_marker(self, t: float, text: str) -> None:
        self._see("markers", t)
        self.markers.append((float(t), text))

    def spike_times(self, channels: list[str] | None = None) -> dict[str, np.ndarray]:
        """Sorted spike times per channel (``channels``: also those that had no spike)."""
        names = list(self.spikes) if channels is None else channels
        return {c: np.sort(np.asarray(self.spikes.get(c, []), dtype=np.float64)) for c in names}
