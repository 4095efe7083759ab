"""experiments/rig_psychopy, headless (no window: PsychoPy itself is not installed here): the
rig presents each request's images with its flip timing, announces every onset as a marker on
its LSL outlet, reads back a spike stream that a simulated neuron (this test) writes in answer
to those markers, counts each image's spikes with rigkit and answers xdream's `zmq` client:
the scores are exactly the constructed counts (spikes outside the response window included in
the stream and left out of the counts)."""

import contextlib
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import zmq

from responders.zmq_client import ZmqResponder
from xdream.images.io import to_uint8
from xdream.rig.check import Client, Conformance, _images, _present

pylsl = pytest.importorskip("pylsl", reason="pylsl is installed by `make install` (pyproject extra 'lsl')")
RIG = Path(__file__).resolve().parents[2] / "experiments" / "rig_psychopy" / "rig.py"


class Neuron(threading.Thread):
    """Answers each onset marker "onset g0-I rR" with COUNTS[I] spikes inside the response
    window [5, 45) ms after it and two just after the window."""

    def __init__(self, marker_id: str, outlet, counts, rng):
        super().__init__(daemon=True)
        self.marker_id, self.outlet, self.counts, self.rng = marker_id, outlet, counts, rng
        self.stop, self.ready, self.answered = threading.Event(), threading.Event(), 0

    def run(self):
        found = []
        while not found and not self.stop.is_set():
            found = pylsl.resolve_byprop("source_id", self.marker_id, timeout=0.5)
        if self.stop.is_set():
            return
        inlet = pylsl.StreamInlet(found[0], processing_flags=pylsl.proc_clocksync)
        inlet.open_stream(timeout=5)
        self.ready.set()
        while not self.stop.is_set():
            markers, stamps = inlet.pull_chunk(timeout=0.005)
            for (text,), t in zip(markers, stamps):
                image = int(text.split()[1].split("-")[1])
                inside = self.rng.uniform(t + 0.006, t + 0.044, self.counts[image])
                outside = self.rng.uniform(t + 0.046, t + 0.049, 2)
                for s in np.sort(np.concatenate([inside, outside])):
                    self.outlet.push_sample([0], float(s))
                self.answered += 1


def test_headless_psychopy_rig_answers_spike_counts_over_lsl():
    tag = uuid.uuid4().hex[:8]
    spike_id, marker_id = f"test-spikes-{tag}", f"test-markers-{tag}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo("spikes", "Spikes", 1, pylsl.IRREGULAR_RATE, "int32", spike_id))
    images = torch.rand(5, 3, 16, 16)
    pixels = to_uint8(images).astype(np.float64)
    counts = np.round(pixels[:, 4:12, 4:12].mean(axis=(1, 2, 3)) / 16).astype(int)  # a stand-in tuning
    neuron = Neuron(marker_id, outlet, counts, np.random.default_rng(0))
    neuron.start()
    rig = subprocess.Popen([sys.executable, str(RIG), "tcp://127.0.0.1:*", "--spike-source", spike_id,
                            "--marker-id", marker_id, "--headless", "--on-ms", "20", "--off-ms", "30",
                            "--latency-ms", "5", "--window-ms", "40"], stdout=subprocess.PIPE, text=True)
    try:
        endpoint = rig.stdout.readline().split()[-1]
        assert neuron.ready.wait(60), "the neuron never found the rig's marker outlet"
        time.sleep(0.5)  # its inlet's connection is up before the first marker
        with ZmqResponder(endpoint, repeats=2, heartbeat=0.5) as client:
            scores = client.respond(images)
            records = client.last_records
    finally:
        rig.kill()
        rig.wait()
        neuron.stop.set()
        neuron.join()
    np.testing.assert_array_equal(scores, counts)
    assert len(records) == 10 and all(r["valid"] for r in records) and neuron.answered == 10
    assert all(r["onset"] is not None for r in records)


@pytest.fixture
def headless_rig_and_spikes():
    """The headless rig on a free loopback port, with an LSL spike stream that carries no spikes
    unless the test pushes some (every count is 0): its endpoint and the spike stream's outlet."""
    tag = uuid.uuid4().hex[:8]
    spike_id = f"test-spikes-{tag}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo("spikes", "Spikes", 1, pylsl.IRREGULAR_RATE, "int32", spike_id))
    rig = subprocess.Popen([sys.executable, str(RIG), "tcp://127.0.0.1:*", "--spike-source", spike_id, "--marker-id",
                            f"test-markers-{tag}", "--headless", "--on-ms", "2", "--off-ms", "2", "--latency-ms", "1",
                            "--window-ms", "2"], stdout=subprocess.PIPE, text=True)
    try:
        yield rig.stdout.readline().split()[-1], outlet
    finally:
        rig.kill()
        rig.wait()
        del outlet


@pytest.fixture
def headless_rig(headless_rig_and_spikes):
    """The headless rig of headless_rig_and_spikes, its spike stream empty: its endpoint."""
    return headless_rig_and_spikes[0]


def test_a_float32_request_is_refused_as_unsupported(headless_rig):
    """The rig takes uint8 only (its welcome says so, and PsychoPyScreen scales pixels from
    0..255): a float32 request is `unsupported` (docs/protocol.md §4.2). It used to be presented,
    its 0..1 pixels drawn as a black image, and answered as if it were the image."""
    check = Conformance(headless_rig, timeout=5)
    try:
        check.check_handshake()
        assert check.welcome["dtypes"] == ["uint8"]
        assert check.check_float32() == "refused as unsupported"
    finally:
        check.close()


def test_the_content_probe_is_offered_and_carries_each_image_s_values(headless_rig):
    """docs/protocol.md §4.5 (a MUST; docs/rigs.md: every path ends in a passing `xdream rig
    check`): the welcome offers the probe and every record of a probe request carries the probe
    values of the image its id names. The rig used to offer none, so the check failed."""
    check = Conformance(headless_rig, timeout=5)
    try:
        assert "content probe" in check.check_handshake()
        assert check.check_content_probe() == ("48 records verified: raw/uint8/C3, raw/uint8/C1, png/uint8/C3, "
                                               "png/uint8/C1, raw/uint8/C3 256x256")
    finally:
        check.close()


@contextlib.contextmanager
def _client(endpoint, timeout):
    """A greeted client of the rig at ``endpoint`` (its context destroyed after)."""
    context = zmq.Context()
    try:
        client = Client(context, endpoint, timeout=timeout)
        client.hello()
        yield client
    finally:
        context.destroy(linger=0)


def test_a_pong_for_an_answered_request_counts_its_presentations(headless_rig):
    """docs/protocol.md §4.3: a pong's progress is the presentations of the request so far. The
    rig answered `done` with progress 0 for a request it had answered with 4 records."""
    with _client(headless_rig, timeout=30) as client:
        rid = "counted-1"
        result = client.ask(_present(client.session, rid, _images(2, side=4)), rid)
        pong = client.ping(rid)
    assert result.type == "result" and len(result.header["records"]) == 4
    assert (pong.header["state"], pong.header["progress"]) == ("done", 4)


def test_a_resend_with_another_shape_or_encoding_is_bad_message(headless_rig):
    """docs/protocol.md §5: a resend under a known request id whose payload differs (image ids,
    shape, encoding, dtype, repeats, probe) is `bad-message`. The rig compared only the image
    ids, repeats and probe, so the same ids at another size or in png got the cached result of
    other images."""
    with _client(headless_rig, timeout=30) as client:
        rid = "payload-1"
        first = client.ask(_present(client.session, rid, _images(2, side=4)), rid)
        resized = client.ask(_present(client.session, rid, _images(2, side=8)), rid)
        png = client.ask(_present(client.session, rid, _images(2, side=4), encoding="png"), rid)
        same = client.ask(_present(client.session, rid, _images(2, side=4)), rid)
    assert first.type == "result" and same.header == first.header
    for reply in (resized, png):
        assert (reply.type, reply.header["code"]) == ("error", "bad-message")


def test_a_resend_with_other_image_ids_while_presenting_is_bad_message(headless_rig):
    """docs/protocol.md §5: a request id names one payload, also while the request is presented.
    A resend with other image ids under the id of the request being presented got no answer and
    only made its sender the one the result went to; it is `bad-message` now, and the request
    goes on unharmed (one presentation each, the newest true sender answered)."""
    check = Conformance(headless_rig, timeout=5)
    try:
        check.check_handshake()
        check.check_pings()
        assert check.check_resend_while_presenting().endswith("one presentation each; another payload refused")
    finally:
        check.close()


def test_an_acquisition_clock_that_went_back_is_an_internal_error(headless_rig_and_spikes):
    """rigkit raises ClockOffsetError while reading when the acquisition clock goes back (the
    acquisition restarted; docs/rigs.md). The rig read the spike stream outside the block that
    turns such errors into an `internal` error (README: a missing marker or a clock offset stops
    the request with one), so the rig died with a traceback and the client heard nothing."""
    endpoint, outlet = headless_rig_and_spikes
    now = pylsl.local_clock()
    outlet.push_sample([0], now + 10.0)
    outlet.push_sample([0], now)  # 10 s back
    with _client(endpoint, timeout=20) as client:
        rid = "clock-1"
        reply = client.ask(_present(client.session, rid, _images(2, side=4)), rid)
        pong = client.ping("another")
    assert reply is not None and (reply.type, reply.header["code"]) == ("error", "internal")
    assert "the acquisition clock went back" in reply.header["message"]
    assert pong is not None and pong.type == "pong"  # the rig goes on


def test_a_spike_on_a_channel_index_beyond_channels_is_an_internal_error(headless_rig_and_spikes):
    """A spike sample naming a channel index the rig was not given (--channels lists fewer
    channels than the sorter publishes: a misconfigured channel list; the LSL spike stream has
    one int32 channel of indices, so its stream info cannot tell the count at start) made
    rigkit's LslSource raise ConfigError, which is no AlignmentError: the rig died with a
    traceback and the client heard nothing. The request now ends in an `internal` error naming
    the index, and the rig goes on: the next request is answered."""
    endpoint, outlet = headless_rig_and_spikes
    outlet.push_sample([3], pylsl.local_clock())  # the rig has one channel (index 0)
    with _client(endpoint, timeout=20) as client:
        reply = client.ask(_present(client.session, "index-1", _images(2, side=4)), "index-1")
        after = client.ask(_present(client.session, "index-2", _images(2, side=4)), "index-2")
    assert reply is not None and (reply.type, reply.header["code"]) == ("error", "internal")
    assert "channel index 3" in reply.header["message"]
    assert after is not None and after.type == "result" and len(after.header["records"]) == 4


def test_a_resend_of_a_request_that_ended_in_an_error_gets_the_error_again(headless_rig_and_spikes):
    """docs/protocol.md §5, §9: a resend under the same request id never presents anything again
    (a resumed run resends its request in flight). The rig cached results only: after an
    `internal` error (its images shown, their spike counts unusable) a resend presented the
    images again and answered a result. It now gets the same error, and a ping says `done`
    with the presentations made."""
    endpoint, outlet = headless_rig_and_spikes
    now = pylsl.local_clock()
    outlet.push_sample([0], now + 10.0)
    outlet.push_sample([0], now)  # the acquisition clock goes back: the request ends in an internal error
    with _client(endpoint, timeout=20) as client:
        rid, images = "failed-1", _images(2, side=4)
        first = client.ask(_present(client.session, rid, images), rid)
        pong = client.ping(rid)
        client.reopen()
        client.hello()
        again = client.ask(_present(client.session, rid, images), rid)
    assert (first.type, first.header["code"]) == ("error", "internal")
    assert again is not None and again.type == "error" and again.header == first.header
    assert (pong.header["state"], pong.header["progress"]) == ("done", 4)


def test_the_deadline_runs_from_the_receipt_of_the_request(headless_rig):
    """docs/protocol.md §6 (decision 32): the deadline runs from the rig's receipt of the request;
    decoding the images counts against it. The rig started it after decoding, so a request whose
    png images took longer to decode than its deadline still had an image presented."""
    with _client(headless_rig, timeout=30) as client:
        rid = "deadline-1"
        reply = client.ask(_present(client.session, rid, _images(200, side=64), encoding="png", repeats=1,
                                    deadline_ms=1), rid)
    assert reply.type == "result" and not reply.header["complete"]
    assert reply.header["records"] == []
