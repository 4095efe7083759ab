"""rigkit.sources against simulated streams on loopback that the tests build: a Lab Streaming
Layer spike and marker outlet (pylsl), an Open Ephys Event Broadcaster (a ZeroMQ PUB socket
sending its JSON events) and an Intan RHX spike data port (a TCP server sending its 14-byte
chunks). Each delivers the scenario's spike trains and onsets; the records must carry exactly
the constructed counts (jitter between the stimulus and acquisition clocks and aborted trials
included), and a missing onset, a clock offset or a reset acquisition clock is named."""

import json
import socket
import threading
import time

import numpy as np
import pytest
import zmq

from rigkit.counts import ClockOffsetError, MissingOnsetError, SpikeCounter, align, onsets_from_markers, \
    onsets_from_photodiode
from rigkit.sources.intan import CHUNK, MAGIC, IntanSpikeSource
from rigkit.sources.openephys import OpenEphysSource
from spike_scenario import BASELINE, WINDOWS, build, expected_values

RATE = 30000.0  # samples/s of the simulated acquisition systems


def _records(s, onsets, spikes, subtract=True):
    return SpikeCounter(WINDOWS, BASELINE, subtract=subtract).records(s.presentations, onsets, spikes)



def test_lsl_spikes_and_markers():
    pylsl = pytest.importorskip("pylsl", reason="pylsl is installed by `make install` (pyproject extra 'lsl')")
    from rigkit.sources.lsl import LslSource

    tag = f"xdream-test-{time.monotonic_ns()}"
    spike_out = pylsl.StreamOutlet(pylsl.StreamInfo("spikes", "Spikes", 1, pylsl.IRREGULAR_RATE, "int32", tag + "-s"))
    marker_out = pylsl.StreamOutlet(pylsl.StreamInfo("markers", "Markers", 1, pylsl.IRREGULAR_RATE, "string",
                                                     tag + "-m"))
    source = LslSource(tag + "-s", tag + "-m", channels=list(WINDOWS))
    try:
        time.sleep(0.5)  # the inlets are connected before anything is pushed
        base = pylsl.local_clock()
        s = build(seed=4, offset=0.0)
        events = [(t, i) for i, name in enumerate(WINDOWS) for t in s.spikes[name]]
        for t, i in sorted(events):
            spike_out.push_sample([i], base + t)
        for k, t in enumerate(s.onsets):
            marker_out.push_sample([f"onset {s.presentations[k].image_id}"], base + t)
        marker_out.push_sample(["reward"], base + s.onsets[-1] + 0.1)
        data = source.poll(1.0)
        while sum(map(len, data.spikes.values())) < len(events) or len(data.markers) < len(s.onsets) + 1:
            data = source.poll(0.5)  # until every sample is in (bounded by the test's own timeout)
    finally:
        source.close()
    shifted = [type(p)(p.image_id, p.repeat, p.trial_id, base + p.time, p.valid) for p in s.presentations]
    s.presentations = shifted
    onsets, offset = align(shifted, onsets_from_markers(data.markers, "onset"), jitter=0.005, max_offset=0.01)
    spikes = data.spike_times(list(WINDOWS))
    assert [r["values"] for r in _records(s, onsets, spikes)] == expected_values(s, subtract=True)
    # a marker source stamping with another clock (LSL's correction bypassed): 300 ms off
    with pytest.raises(ClockOffsetError, match=r"\+300\.\d ms off"):
        align(shifted, onsets_from_markers(data.markers, "onset") + 0.3, jitter=0.005, max_offset=0.01)


def test_open_ephys_event_broadcaster():
    s = build(seed=5)
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    source = OpenEphysSource(f"tcp://127.0.0.1:{port}")
    try:
        time.sleep(0.5)  # the subscription reaches the publisher
        events = [(t, {"event_type": "spike", "stream": "example", "source_node": 102, "electrode": name,
                       "num_channels": 4, "sorted_id": 0, "amp1": 0.0, "amp2": 0.0, "amp3": 0.0, "amp4": 0.0})
                  for name in WINDOWS for t in s.spikes[name]]
        events += [(t, {"event_type": "ttl", "line": 1, "state": 1}) for t in s.onsets]
        events += [(t + 0.05, {"event_type": "ttl", "line": 1, "state": 0}) for t in s.onsets]
        events += [(t + 0.01, {"event_type": "ttl", "line": 2, "state": 1}) for t in s.onsets[:3]]  # another line
        for t, event in sorted(events, key=lambda e: e[0]):
            event.update(sample_number=int(round(t * RATE)), sample_rate=RATE, stream="example", source_node=102,
                         channel_name="TTL")
            pub.send_multipart([b"ttl" if event["event_type"] == "ttl" else b"spike", json.dumps(event).encode()])
        pub.send_multipart([b"junk", b"not json"])
        data = source.poll(1.0)
    finally:
        source.close()
        pub.close()
        context.term()
    assert source.skipped == 1
    onsets = onsets_from_markers(data.markers, "ttl 1")
    assert len(onsets) == len(s.onsets)
    aligned, offset = align(s.presentations, onsets, jitter=0.005)
    assert offset == pytest.approx(s.offset, abs=0.005)
    spikes = data.spike_times(list(WINDOWS))
    assert [r["values"] for r in _records(s, aligned, spikes)] == expected_values(s, subtract=True)
    assert [r["values"] for r in _records(s, aligned, spikes, subtract=False)] == expected_values(s)
    dropped = 6  # a TTL lost on the way: the presentation is named
    p = s.presentations[dropped]
    with pytest.raises(MissingOnsetError, match=f"trial {p.trial_id} \\(image {p.image_id}, repeat {p.repeat}"):
        align(s.presentations, np.delete(onsets, dropped), jitter=0.005)


class RhxSpikePort:
    """A TCP server sending RHX spike chunks to the one client that connects."""

    def __init__(self, chunks: bytes):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, args=(chunks,), daemon=True)
        self.thread.start()

    def _serve(self, chunks):
        conn, _ = self.server.accept()
        with conn:
            for k in range(0, len(chunks), 1000):  # in pieces that split chunks
                conn.sendall(chunks[k:k + 1000])
                time.sleep(0.001)
        self.server.close()


def _rhx_chunks(spikes: dict) -> bytes:
    events = sorted((t, name) for name, times in spikes.items() for t in times)
    return b"".join(CHUNK.pack(MAGIC, name.encode(), int(round(t * RATE)), 1) for t, name in events)


def test_intan_rhx_spike_port_with_photodiode_onsets():
    s = build(seed=6)
    names = {"e1": "A-000", "e2": "A-001"}  # RHX's native channel names
    port = RhxSpikePort(_rhx_chunks({names[c]: s.spikes[c] for c in WINDOWS}))
    source = IntanSpikeSource("127.0.0.1", port.port, RATE)
    try:
        data = source.poll(2.0)
    finally:
        source.close()
    spikes = {c: data.spike_times([names[c]])[names[c]] for c in WINDOWS}
    assert sum(map(len, spikes.values())) == sum(map(len, s.spikes.values()))
    times = np.arange(0, s.onsets[-1] + 1, 0.001)  # a 1 kHz photodiode trace, white for 50 ms per flip
    trace = np.zeros_like(times)
    for t in s.onsets:
        trace[(times >= t - 1e-9) & (times < t + 0.05)] = 1.0
    onsets = onsets_from_photodiode(trace, times, threshold=0.5)
    aligned, _ = align(s.presentations, onsets, jitter=0.005)
    assert [r["values"] for r in _records(s, aligned, spikes)] == expected_values(s, subtract=True)
    # the photodiode missed a flip (a valid trial): named
    k = 7
    trace[(times >= s.onsets[k] - 1e-9) & (times < s.onsets[k] + 0.05)] = 0.0
    with pytest.raises(MissingOnsetError, match=f"trial {s.presentations[k].trial_id} "):
        align(s.presentations, onsets_from_photodiode(trace, times, threshold=0.5), jitter=0.005)


def test_intan_clock_reset_is_named():
    chunks = b"".join(CHUNK.pack(MAGIC, b"A-000", stamp, 0) for stamp in (90000, 120000, 300))  # RHX restarted
    port = RhxSpikePort(chunks)
    source = IntanSpikeSource("127.0.0.1", port.port, RATE)
    try:
        with pytest.raises(ClockOffsetError, match="went back from 4.000 s to 0.010 s"):
            source.poll(2.0)
    finally:
        source.close()
