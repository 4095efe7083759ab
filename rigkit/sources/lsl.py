"""Lab Streaming Layer (https://labstreaminglayer.org, ``pylsl``): a spike stream and a marker
stream, their timestamps mapped onto this machine's LSL clock (``proc_clocksync``: LSL's own
clock-offset estimate per stream).

Spike stream: irregular rate, one ``int32`` channel; each sample is the index of the channel
that spiked, stamped with the spike time (``channels`` names the indices). Marker stream:
irregular rate, one ``string`` channel (e.g. ``"onset g3-7 r0"`` pushed at each flip)."""

from __future__ import annotations

import time

from xdream.core.errors import ConfigError
from rigkit.acquired import Acquired


class LslSource:
    """Inlets on the streams whose ``source_id`` is ``spike_source`` and ``marker_source``."""

    def __init__(self, spike_source: str, marker_source: str | None, channels: list[str], timeout: float = 5.0):
        import pylsl  # optional: pip install 'xdream[lsl]'

        self.channels, self.data = list(channels), Acquired()
        self.inlets = {}
        for role, source in (("spikes", spike_source), ("markers", marker_source)):
            if source is None:
                continue
            found = pylsl.resolve_byprop("source_id", source, timeout=timeout)
            if not found:
                raise ConfigError(f"no LSL stream with source_id {source!r} within {timeout:g} s")
            inlet = pylsl.StreamInlet(found[0], processing_flags=pylsl.proc_clocksync)
            inlet.open_stream(timeout=timeout)
            self.inlets[role] = inlet

    def poll(self, seconds: float) -> Acquired:
        """Read for ``seconds``; returns everything read so far."""
        end = time.monotonic() + seconds
        while True:
            for role, inlet in self.inlets.items():
                samples, stamps = inlet.pull_chunk(timeout=0.0)
                for sample, t in zip(samples, stamps):
                    if role == "spikes":
                        index = int(sample[0])
                        if not 0 <= index < len(self.channels):
                            raise ConfigError(f"LSL spike sample names channel index {index}; "
                                              f"the source has {len(self.channels)} channels")
                        self.data.add_spike(self.channels[index], t)
                    else:
                        self.data.add_marker(t, str(sample[0]))
            if time.monotonic() >= end:
                return self.data
            time.sleep(0.01)

    def close(self) -> None:
        for inlet in self.inlets.values():
            inlet.close_stream()
