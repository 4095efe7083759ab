"""The rig link on loopback, with real sockets and real processes: the `zmq` responder against
`xdream rig simulate` (a subprocess, faults and restarts included) and against an in-thread
simulator and hostile peers."""

import collections
import json
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
import zmq

from responders.rig_sim import Faults, PresentationLog, RigSimulator, ServingThread
from responders.torch_unit import TorchUnit
from responders.torch_units import TorchUnits
from responders.zmq_client import TRIALS_FILE, RigUnavailableError, ZmqResponder
from xdream import Experiment, ExperimentConfig
from xdream.core import registry
from xdream.rig.protocol import ERROR_CODES, decode, encode, image_frames

TARGET = "efficientnet_lite0:_blocks.2:5"
OTHER = "efficientnet_lite0:_blocks.1:3:2:1"  # a second simulated neuron
LOOPBACK = "tcp://127.0.0.1:*"


# -- helpers -----------------------------------------------------------------------------------

class SimProcess:
    """`xdream rig simulate` as a subprocess on an OS-chosen loopback port."""

    def __init__(self, tmp_path, *extra):
        self.log = tmp_path / "rig-log.jsonl"
        self.endpoint_file = tmp_path / "endpoint"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xdream.cli", "rig", "simulate", "--target", TARGET, "--input-size", "64",
             "--endpoint", LOOPBACK, "--endpoint-file", str(self.endpoint_file), "--log", str(self.log),
             "--max-seconds", "240", *extra],
            stderr=open(tmp_path / "rig.err", "w"))
        end = time.monotonic() + 120
        while not self.endpoint_file.exists():
            assert self.proc.poll() is None, (tmp_path / "rig.err").read_text()
            assert time.monotonic() < end, "simulator did not start"
            time.sleep(0.05)
        self.endpoint = self.endpoint_file.read_text()

    def events(self):
        """The log's complete lines: the simulator may be writing the next one as we read."""
        text = self.log.read_text()
        return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def sim_thread():
    """An in-process simulator serving in a thread (real ROUTER socket on loopback)."""
    started = []

    def start(tmp_path, neuron=None, **kwargs):
        neuron = neuron or TorchUnit(TARGET, input_size=64)
        sim = RigSimulator(neuron, endpoint=LOOPBACK, log=tmp_path / "rig-log.jsonl", **kwargs)
        started.append(ServingThread(sim))
        return sim

    yield start
    for serving in started:
        serving.stop()


@pytest.fixture
def scripted_rig():
    """A hand-written rig on loopback: ``start(answer)`` binds a ROUTER socket, calls
    ``answer(router, identity, frames)`` in a thread for every message, returns the endpoint."""
    context, stop, threads = zmq.Context(), threading.Event(), []

    def start(answer):
        router = context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(LOOPBACK)
        endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)

        def loop():
            while not stop.is_set():
                if router.poll(50):
                    identity, *frames = router.recv_multipart()
                    answer(router, identity, frames)

        threads.append(threading.Thread(target=loop, daemon=True))
        threads[-1].start()
        return endpoint

    yield start
    stop.set()
    for thread in threads:
        thread.join(5)
    context.destroy(linger=0)


def welcome(request_id, channels):
    """A scripted rig's answer to ``hello``."""
    return {"type": "welcome", "request_id": request_id, "rig": "scripted", "encodings": ["raw"], "dtypes": ["uint8"],
            "channels": channels, "max_images": 8, "max_frame_bytes": 1 << 20, "heartbeat_ms": 100}


def job(endpoint, **client):
    return {"seed": 3, "generations": 6, "generator": {"name": "pixel", "size": 16},
            "responder": {"name": "zmq", "target": endpoint, **client},
            "optimizer": {"name": "genetic", "population": 8}}


def run(config, path):
    experiment = Experiment(ExperimentConfig.from_dict(config), run_dir=path)
    try:
        experiment.run(progress=False)
    finally:
        experiment.close()
    return experiment


def arrays(path, generations):
    out = []
    for g in range(generations):
        with np.load(path / "generations" / f"gen_{g:04d}.npz") as data:
            out.append({k: data[k] for k in data.files})
    return out


def local_scores(codes):
    """The unit's noise-free response to the images of these codes, computed here."""
    generator = registry.create("generator", "pixel", {"size": 16}, device="cpu")
    with torch.no_grad():
        return TorchUnit(TARGET, input_size=64).respond(generator.decode(codes))


# -- the must-shows -------------------------------------------------------------------------

def test_noise_free_rig_run_equals_local_run(tmp_path):
    sim = SimProcess(tmp_path)
    try:
        run(job(sim.endpoint, dtype="float32"), tmp_path / "rig")
    finally:
        sim.stop()
    local = job("tcp://unused:1")
    local["responder"] = {"name": "torch-unit", "target": TARGET, "input_size": 64}
    run(local, tmp_path / "local")
    for g, (a, b) in enumerate(zip(arrays(tmp_path / "rig", 6), arrays(tmp_path / "local", 6))):
        np.testing.assert_array_equal(a["codes"], b["codes"], err_msg=f"generation {g}")
        np.testing.assert_array_equal(a["scores"], b["scores"], err_msg=f"generation {g}")
    trials = [json.loads(line) for line in (tmp_path / "rig" / TRIALS_FILE).read_text().splitlines()]
    assert len(trials) == 6 * 8 and all(t["valid"] and t["complete"] for t in trials)
    assert sum(e["event"] == "trial" for e in sim.events()) == 6 * 8


def test_drops_delays_duplicates_corruption_and_two_restarts(tmp_path):
    sim = SimProcess(tmp_path, "--drop", "0.15", "--delay", "0.15", "--delay-s", "0.4", "--duplicate", "0.25",
                     "--corrupt", "0.1", "--presentation-ms", "3", "--crash-at", "30", "--crash-at", "70",
                     "--restart", "--seed", "5")
    try:
        experiment = run(job(sim.endpoint, dtype="float32", repeats=2, heartbeat=0.1, liveness=3, retries=20, timeout=90),
                         tmp_path / "rig")
    finally:
        sim.stop()
    stats = experiment.responder.stats
    log = [json.loads(line) for line in (tmp_path / "rig" / "log.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in log] == list(range(6))  # every generation completed
    gens = arrays(tmp_path / "rig", 6)
    for g in gens:  # every score is its own image's response (noise off): matched to its image id
        np.testing.assert_array_equal(g["scores"], local_scores(g["codes"]))
    events = sim.events()
    assert sum(e["event"] == "boot" for e in events) == 3  # two crashes, two restarts
    trials = [(e["request_id"], e["record"]["image_id"], e["record"]["repeat"]) for e in events if e["event"] == "trial"]
    assert len(trials) == len(set(trials)) == 6 * 8 * 2  # zero re-presentations
    assert stats["resends"] > 0 and stats["requests"] == 6  # faults hit, and retries recovered
    saved = [json.loads(line) for line in (tmp_path / "rig" / TRIALS_FILE).read_text().splitlines()]
    assert sorted((t["request_id"], t["image_id"], t["repeat"]) for t in saved) == sorted(trials)
    for t in saved:
        assert t["image_id"] == f"g{t['generation']}-{t['image_index']}"
        assert t["score"] == gens[t["generation"]]["scores"][t["image_index"]]


def test_hostile_clients_get_typed_errors_and_the_rig_survives(tmp_path, sim_thread):
    sim = sim_thread(tmp_path)
    rng = np.random.default_rng(0)
    context = zmq.Context()
    try:
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(sim.endpoint)
        valid = json.loads(encode({"type": "hello", "session": "s", "request_id": "h", "client": "fuzz",
                                   "encodings": ["raw"], "dtypes": ["uint8"]})[0])
        sent = 0
        for i in range(3000):
            if i % 3 == 0:  # random bytes
                frames = [rng.bytes(int(rng.integers(0, 200))) for _ in range(int(rng.integers(1, 5)))]
            else:  # a valid header with one field broken
                header = dict(valid)
                key = list(header)[int(rng.integers(len(header)))]
                header[key] = [None, -1, "x" * 100, {"a": [1]}, 1e308, True][int(rng.integers(6))]
                frames = [json.dumps(header).encode()] + [b"\0"] * int(rng.integers(0, 3))
            sock.send_multipart(frames)
            sent += 1
        replies = errors = 0
        while sock.poll(5000):
            frames = sock.recv_multipart()
            msg = decode(frames[1:] if frames[0] == b"" else frames)  # (a REQ-style delimiter is echoed)
            assert msg.type == "error" and msg.header["code"] in ERROR_CODES or msg.type == "welcome"
            replies += 1
            errors += msg.type == "error"
            if replies == sent:
                break
        assert replies == sent and errors >= 1000  # a typed error for each malformed message (a
        # mutation may leave a hello valid, e.g. a 100-character client name: that one is welcomed)
        big = context.socket(zmq.DEALER)
        big.setsockopt(zmq.LINGER, 0)
        big.connect(sim.endpoint)
        big.send_multipart([b"{}", b"\0" * ((16 << 20) + 1)])  # over the frame limit: dropped unread
        assert not big.poll(1000)
        big.close()
        with ZmqResponder(sim.endpoint, heartbeat=0.2) as client:  # and a real client still works
            assert np.isfinite(client.respond(torch.rand(2, 3, 16, 16))).all()
    finally:
        context.destroy(linger=0)


def test_hostile_rig_gives_a_typed_error_not_a_hang(tmp_path, scripted_rig):
    rng = np.random.default_rng(1)

    def junk(router, identity, body):
        if not body[0]:
            return  # the client's delimited hello, asking whether this is a REP rig: no answer
        rid = json.loads(body[0])["request_id"]
        for frames in ([rng.bytes(50)], encode({"type": "welcome", "request_id": "other", "rig": "x",
                       "encodings": ["raw"], "dtypes": ["uint8"], "channels": ["c"], "max_images": 1,
                       "max_frame_bytes": 1, "heartbeat_ms": 1}),
                       encode({"type": "welcome", "request_id": rid, "rig": 5})):
            router.send_multipart([identity, *frames])

    endpoint = scripted_rig(junk)
    with pytest.raises(RigUnavailableError, match="no rig answers"):
        ZmqResponder(endpoint, heartbeat=0.05, liveness=2, timeout=0.5)


# -- client behaviour on an in-thread simulator ----------------------------------------------

def test_channels_repeats_and_aggregation(tmp_path, sim_thread):
    noise = registry.create("noise", "gaussian", {"level": 0.3})
    sim = sim_thread(tmp_path, noise=noise, channels=3, seed=1)
    images = torch.rand(5, 3, 16, 16)
    clean = TorchUnit(TARGET, input_size=64).respond(images)
    for aggregate, agg in (("mean", np.mean), ("median", np.median)):
        with ZmqResponder(sim.endpoint, repeats=3, channels=["ch0", "ch2"], aggregate=aggregate,
                          encoding="png", heartbeat=0.2) as client:
            scores = client.respond(images)
            records = client.last_records
        assert len(records) == 15
        for i in range(5):  # from the records the rig sent: channels 0 and 2 averaged, repeats aggregated
            mine = [np.mean([r["values"][0], r["values"][2]]) for r in records if r["image_index"] == i]
            assert scores[i] == pytest.approx(agg(mine))
        assert not np.allclose(scores, clean) and np.corrcoef(scores, clean)[0, 1] > 0.5
    from xdream.core.errors import ConfigError
    with pytest.raises(ConfigError, match="channel 'ch7' not on the rig; valid: ch0, ch1, ch2"):
        ZmqResponder(sim.endpoint, channels=["ch7"], heartbeat=0.2)


def test_partial_replies_and_invalid_trials_score_nan(tmp_path, sim_thread):
    sim = sim_thread(tmp_path, presentation_ms=100, faults=Faults(invalid=0.3), seed=2)
    images = torch.rand(8, 3, 16, 16)
    with ZmqResponder(sim.endpoint, deadline=0.45, timeout=5, heartbeat=0.1) as client:
        client.prepare(tmp_path, 4)
        scores = client.respond(images)
    saved = [json.loads(line) for line in (tmp_path / TRIALS_FILE).read_text().splitlines()]
    assert 1 <= len(saved) < 8 and not any(t["complete"] for t in saved)  # stopped at the deadline
    scored = {t["image_index"] for t in saved if t["valid"]}
    assert set(np.flatnonzero(np.isfinite(scores))) == scored
    assert np.isnan(scores[len(saved):]).all() and all(t["generation"] == 4 for t in saved)


def test_a_log_line_torn_by_a_crash_keeps_the_events_written_after_it(tmp_path):
    """rig simulate --log after a crash mid-write: the torn line is ended, so the events of the
    restarted rig start lines of their own and a second restart still finds them (its answered
    requests are answered from the cache, never presented again)."""
    path = tmp_path / "rig.jsonl"
    path.write_text(json.dumps({"event": "trial", "request_id": "r0", "record": {"image_id": "a"}}) + "\n"
                    + '{"event": "trial", "requ')
    log = PresentationLog(path)
    log.write({"event": "request", "request_id": "r1", "payload": {"image_ids": ["b"]}})
    log.write({"event": "done", "request_id": "r1", "records": []})
    again = PresentationLog(path)
    assert list(again.trials) == ["r0"] and list(again.done) == ["r1"] and list(again.payloads) == ["r1"]


def test_resent_request_is_answered_from_the_cache(tmp_path, sim_thread):
    sim = sim_thread(tmp_path)
    with ZmqResponder(sim.endpoint, heartbeat=0.2) as client:
        client.respond(torch.rand(3, 3, 16, 16))
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.connect(sim.endpoint)
    sock.setsockopt(zmq.LINGER, 0)
    hello = encode({"type": "hello", "session": "s1", "request_id": "h1", "client": "t", "encodings": ["raw"],
                    "dtypes": ["uint8"]})
    sock.send_multipart(hello)
    assert decode(sock.recv_multipart()).type == "welcome"
    rng = np.random.default_rng(0)
    frames = encode({"type": "present", "session": "s1", "request_id": "r1", "generation": 0,
                     "image_ids": ["a", "b"], "encoding": "raw", "dtype": "uint8", "shape": [8, 8, 3],
                     "repeats": 1, "deadline_ms": 5000},
                    image_frames(rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)))
    replies = []
    for _ in range(3):  # the same request id three times
        sock.send_multipart(frames)
        assert sock.poll(10000)
        replies.append(decode(sock.recv_multipart()).header)
    context.destroy(linger=0)
    assert replies[0] == replies[1] == replies[2] and replies[0]["type"] == "result"
    trials = [json.loads(line) for line in (tmp_path / "rig-log.jsonl").read_text().splitlines()]
    assert sum(t["event"] == "trial" and t["request_id"] == "r1" for t in trials) == 2


def test_bad_options_and_no_rig(tmp_path, xdream_cmd, xdream_main):
    from xdream.core.errors import ConfigError
    with pytest.raises(ConfigError, match="not an endpoint"):
        ZmqResponder("localhost:5555")
    with pytest.raises(ConfigError, match="png"):
        ZmqResponder("tcp://127.0.0.1:1", encoding="png", dtype="float32")
    with pytest.raises(RigUnavailableError, match="no rig answers at tcp://127.0.0.1:1"):
        ZmqResponder("tcp://127.0.0.1:1", heartbeat=0.05, liveness=2, timeout=0.3)
    out = xdream_main("evolve", "--set", 'responder.name="zmq"', "--set", 'responder.target="tcp://127.0.0.1:1"',
                      "--set", "responder.heartbeat=0.05", "--set", "responder.timeout=0.3", "--output", tmp_path / "run")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no rig answers" in out.stderr
    assert not (tmp_path / "run").exists()
    out = xdream_main("rig", "simulate", "--target", "efficientnet_lite0:_blocks.2:999", "--endpoint", LOOPBACK,
                      "--log", tmp_path / "log")
    assert out.returncode == 2 and "channel 999 out of range" in out.stderr
    # a rig that cannot bind (its port is taken) writes no log into the current folder (a process
    # with a timeout: were the bind to succeed, the rig would serve)
    import socket

    (tmp_path / "cwd").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        out = subprocess.run([*xdream_cmd, "rig", "simulate", "--target", "efficientnet_lite0:_blocks.2:5",
                              "--endpoint", f"tcp://127.0.0.1:{taken.getsockname()[1]}"], capture_output=True,
                             text=True, timeout=120, cwd=tmp_path / "cwd")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "cannot bind" in out.stderr, out.stderr
    assert list((tmp_path / "cwd").iterdir()) == []


def test_stale_duplicate_and_odd_records_are_dropped(tmp_path, scripted_rig):
    """A scripted rig: before the real result it sends a late result of another request and a
    corrupt frame; the result itself holds a record for an unknown image, a second record for
    the same (image, repeat), an invalid trial and a missing value; then a duplicate result."""

    def rec(image_id, value, valid=True, repeat=0):
        return {"image_id": image_id, "repeat": repeat, "trial_id": 1, "onset": 0.0,
                "values": [value, 1.0], "valid": valid}

    def rig(router, identity, frames):
        h = json.loads(frames[0])
        if h["type"] == "hello":
            router.send_multipart([identity, *encode(welcome(h["request_id"], ["a", "b"]))])
        elif h["type"] == "present":
            late = {"type": "result", "request_id": "earlier", "complete": True, "channels": ["a", "b"],
                    "records": [rec("g0-0", 100.0)]}
            result = {"type": "result", "request_id": h["request_id"], "complete": False, "channels": ["a", "b"],
                      "records": [rec("g0-0", 3.0), rec("g0-0", 50.0), rec("nope", 9.0), rec("g0-1", 4.0, False),
                                  rec("g0-2", None), rec("g0-3", 5.0, repeat=7)]}
            for reply in (encode(late), [b"{corrupt"], encode(result), encode(result)):
                router.send_multipart([identity, *reply])

    with ZmqResponder(scripted_rig(rig), channels=["a"], heartbeat=0.1) as client:
        scores = client.respond(torch.rand(4, 3, 8, 8))
        assert client.stats["stale"] == 1 and client.stats["malformed"] == 1
        np.testing.assert_array_equal(scores, [3.0, np.nan, np.nan, np.nan])
        scores = client.respond(torch.rand(4, 3, 8, 8))  # the duplicate of the first result is dropped
        assert client.stats["stale"] == 3 and client.stats["requests"] == 2
        np.testing.assert_array_equal(scores, [3.0, np.nan, np.nan, np.nan])


# -- every channel at once: respond_units, several simulated neurons ----------------------------

def test_respond_units_aggregates_each_channel_from_the_one_request(tmp_path, sim_thread):
    """Two neurons on two channels each, noisy: one present request per call; per channel, the
    aggregate of that image's repeats on it; the saved trial records are respond's."""
    noise = registry.create("noise", "gaussian", {"level": 0.3})
    sim = sim_thread(tmp_path, neuron=TorchUnits([TARGET, OTHER], input_size=64), noise=noise, channels=2, seed=4)
    images = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert sim.channels == ["ch0", "ch1", "ch2", "ch3"]
    boot = json.loads((tmp_path / "rig-log.jsonl").read_text().splitlines()[0])
    assert boot["channels"] == {"ch0": TARGET, "ch1": TARGET, "ch2": OTHER, "ch3": OTHER}
    for aggregate, agg in (("mean", np.mean), ("median", np.median)):
        (tmp_path / aggregate).mkdir()
        with ZmqResponder(sim.endpoint, repeats=3, aggregate=aggregate, heartbeat=0.2) as client:
            assert client.unit_labels() == sim.channels and client.unit_noun == "channel"
            client.prepare(tmp_path / aggregate, 2)
            units = client.respond_units(images)
            records = client.last_records
            assert client.stats["requests"] == 1 and units.shape == (5, 4) and units.dtype == np.float64
        saved = [json.loads(line) for line in (tmp_path / aggregate / TRIALS_FILE).read_text().splitlines()]
        assert len(saved) == 15 and all(t["score"] == pytest.approx(np.mean(t["values"])) for t in saved)
        for i in range(5):
            for c in range(4):
                assert units[i, c] == pytest.approx(agg([r["values"][c] for r in records if r["image_index"] == i]))
        assert len(np.unique(units[:, :2])) == 10  # independent noise per channel per trial
    with ZmqResponder(sim.endpoint, channels=["ch3", "ch0"], heartbeat=0.2) as client:
        assert client.unit_labels() == ["ch3", "ch0"]
        units = client.respond_units(images)
        record = client.last_records[0]
        assert units[record["image_index"]].tolist() == [record["values"][3], record["values"][0]]
        assert record["score"] == pytest.approx((record["values"][3] + record["values"][0]) / 2)


def test_respond_units_is_nan_where_a_channel_has_no_valid_repeat(scripted_rig):
    """A scripted rig: a value missing on one channel spoils only that channel's column (and
    respond's score, the mean over both); an invalid trial spoils every column."""

    def rec(image_id, values, valid=True, repeat=0):
        return {"image_id": image_id, "repeat": repeat, "trial_id": 1, "onset": 0.0, "values": values, "valid": valid}

    def rig(router, identity, frames):
        h = json.loads(frames[0])
        if h["type"] == "hello":
            router.send_multipart([identity, *encode(welcome(h["request_id"], ["a", "b"]))])
        elif h["type"] == "present":
            records = [rec("g0-0", [1.0, None]), rec("g0-0", [3.0, 2.0], repeat=1), rec("g0-1", [5.0, None]),
                       rec("g0-2", [7.0, 8.0], valid=False)]
            router.send_multipart([identity, *encode({"type": "result", "request_id": h["request_id"],
                                                      "complete": True, "channels": ["a", "b"], "records": records})])

    with ZmqResponder(scripted_rig(rig), repeats=2, heartbeat=0.1) as client:
        units = client.respond_units(torch.rand(3, 3, 8, 8))
        np.testing.assert_array_equal(units, [[2.0, 2.0], [5.0, np.nan], [np.nan, np.nan]])
        np.testing.assert_array_equal(client.respond(torch.rand(3, 3, 8, 8)), [2.5, np.nan, np.nan])
        assert client.stats["requests"] == 2


def test_rig_simulate_with_several_targets_scores_each_on_its_channel(tmp_path, xdream_main):
    """`xdream rig simulate --target A --target B`, noise-free, float32 images: channel k is
    exactly neuron k's response, as computed here by torch-unit alone."""
    sim = SimProcess(tmp_path, "--target", OTHER)
    try:
        images = torch.rand(4, 3, 20, 20, generator=torch.Generator().manual_seed(2))
        with ZmqResponder(sim.endpoint, dtype="float32", heartbeat=0.2) as client:
            assert client.unit_labels() == ["ch0", "ch1"]
            units = client.respond_units(images)
        for k, target in enumerate((TARGET, OTHER)):
            np.testing.assert_allclose(units[:, k], TorchUnit(target, input_size=64).respond(images), rtol=1e-5)
        assert sim.events()[0]["channels"] == {"ch0": TARGET, "ch1": OTHER}
    finally:
        sim.stop()
    out = xdream_main("rig", "simulate", "--target", TARGET, "--target", "alexnet:features.3:1", "--endpoint", LOOPBACK,
                      "--log", tmp_path / "two-models.jsonl")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "targets name 2 models" in out.stderr, out.stderr
    assert not (tmp_path / "two-models.jsonl").exists()


# -- partial replies under the run's unscored policy, natural references in the same request ------

def photo_folder(path, n):
    from PIL import Image

    rng = np.random.default_rng(0)
    path.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(path / f"p{i}.png")
    return path


def trials_by_image(events):
    """Sim log trial records per (generation, image id), in presentation order."""
    out = {}
    for e in events:
        if e["event"] == "trial":
            key = (e["generation"], e["record"]["image_id"])
            out.setdefault(key, []).append({**e["record"], "rid": e["request_id"]})
    return out


def test_reshow_scores_every_image_through_a_faulty_rig(tmp_path):
    """Invalid trials make partial replies; drops, delays and duplicates make resends. Under
    unscored = reshow every evolved image ends up scored with its own response, and the rig log
    shows each image again only while it had no valid trial, never because of a retry."""
    from xdream.config import ReferenceConfig
    from xdream.evolve.reference import ReferenceCycle

    photos = photo_folder(tmp_path / "photos", 3)
    sim = SimProcess(tmp_path, "--invalid", "0.3", "--drop", "0.1", "--delay", "0.1", "--delay-s", "0.3",
                     "--duplicate", "0.2", "--seed", "7")
    config = job(sim.endpoint, dtype="float32", heartbeat=0.1, liveness=3, retries=30, timeout=60)
    config.update(generations=4, unscored="reshow", reshow_attempts=10,
                  reference={"folder": str(photos), "per_generation": 2})
    try:
        experiment = run(config, tmp_path / "rig")
    finally:
        sim.stop()
    gens = arrays(tmp_path / "rig", 4)
    log = [json.loads(line) for line in (tmp_path / "rig" / "log.jsonl").read_text().splitlines()]
    trials = trials_by_image(sim.events())
    references = ReferenceCycle.load(ReferenceConfig(str(photos), 2), size=16)
    batches = 0
    for g, arr in enumerate(gens):
        # all scored, each with its own image's response (a re-shown image is scored in a smaller
        # batch: equal to float32 rounding, far from any other image's score)
        np.testing.assert_allclose(arr["scores"], local_scores(arr["codes"]), rtol=1e-5, atol=1e-5)
        assert log[g]["n_nan"] == 0 and log[g]["reshown"] == int(arr["shown"].sum()) - 8
        for i, shown in enumerate(arr["shown"]):
            seen = trials[(g, f"g{g}-{i}")]
            assert 1 <= len(seen) == shown <= 11  # once per batch it was in, at most 1 + reshow_attempts
            assert [t["valid"] for t in seen] == [False] * (shown - 1) + [True]  # shown again only while unscored
            assert len({t["rid"] for t in seen}) == shown  # each showing in its own request
        ref_ids = [f"g{g}-ref{k}" for k in arr["reference_index"]]
        assert arr["reference_index"].tolist() == [(2 * g) % 3, (2 * g + 1) % 3]
        assert [len(trials[(g, r)]) for r in ref_ids] == [1, 1]  # references: never re-shown
        assert trials[(g, ref_ids[0])][0]["rid"] == trials[(g, f"g{g}-0")][0]["rid"]  # same request as evolved
        valid = np.array([trials[(g, r)][0]["valid"] for r in ref_ids])
        assert np.isnan(arr["reference_scores"]).tolist() == (~valid).tolist()
        np.testing.assert_allclose(arr["reference_scores"][valid],
                                   TorchUnit(TARGET, input_size=64).respond(
                                       references.images[arr["reference_index"]])[valid], rtol=1e-5, atol=1e-6)
        batches += int(arr["shown"].max())
    assert sum(r["reshown"] for r in log) > 0  # the faults did leave images unscored
    assert experiment.responder.stats["requests"] == batches and experiment.responder.stats["resends"] > 0
    keys = [(t["rid"], t["image_id"], t["repeat"]) for ts in trials.values() for t in ts]
    assert len(keys) == len(set(keys))  # zero re-presentations caused by retries
    saved = [json.loads(line) for line in (tmp_path / "rig" / TRIALS_FILE).read_text().splitlines()]
    assert sorted((t["request_id"], t["image_id"], t["repeat"]) for t in saved) == sorted(keys)
    for t in saved:
        if t["valid"] and "ref" not in t["image_id"]:
            g, i = (int(x) for x in t["image_id"][1:].split("-"))
            assert t["score"] == gens[g]["scores"][i]  # the very value the optimiser was told


@pytest.mark.parametrize("policy", ["reshow", "nan-policy"])
def test_generations_cut_off_at_the_rig_deadline(tmp_path, sim_thread, policy):
    """Replies cut off at the rig's deadline (complete = false): under reshow the images the
    rig did not reach go again in the same generation and each image is shown exactly once;
    under nan-policy they stay NaN for the optimiser."""
    sim = sim_thread(tmp_path, presentation_ms=50)
    config = job(sim.endpoint, dtype="float32", deadline=0.3, heartbeat=0.1, timeout=5)
    config.update(generations=2, unscored=policy, reshow_attempts=10)
    experiment = run(config, tmp_path / "rig")
    gens = arrays(tmp_path / "rig", 2)
    trials = trials_by_image([json.loads(line) for line in (tmp_path / "rig-log.jsonl").read_text().splitlines()])
    saved = [json.loads(line) for line in (tmp_path / "rig" / TRIALS_FILE).read_text().splitlines()]
    assert any(not t["complete"] for t in saved)  # partial replies happened
    assert all(len(ts) == 1 for ts in trials.values())  # no image was ever presented twice
    if policy == "reshow":
        for arr in gens:
            np.testing.assert_allclose(arr["scores"], local_scores(arr["codes"]), rtol=1e-5, atol=1e-5)
        assert experiment.responder.stats["requests"] == sum(int(a["shown"].max()) for a in gens) > 2
    else:
        assert all(np.isnan(a["scores"]).any() for a in gens) and experiment.responder.stats["requests"] == 2
        assert len(trials) == sum(np.isfinite(a["scores"]).sum() for a in gens)


def test_a_lost_result_is_fetched_again_when_the_rig_says_done(tmp_path, scripted_rig):
    """A scripted rig loses the first result and then answers pings with state "done": the
    client resends the same request at once (no reconnect, no waiting out the deadline) and
    the rig answers it from its cache."""
    presents = []

    def rig(router, identity, frames):
        h = json.loads(frames[0])
        reply = None
        if h["type"] == "hello":
            reply = welcome(h["request_id"], ["a"])
        elif h["type"] == "ping":
            reply = {"type": "pong", "request_id": h["request_id"], "state": "done", "progress": 2}
        elif h["type"] == "present":
            presents.append(h["request_id"])
            if len(presents) > 1:  # the first result is lost on the way
                reply = {"type": "result", "request_id": h["request_id"], "complete": True, "channels": ["a"],
                         "records": [{"image_id": i, "repeat": 0, "trial_id": k, "onset": 0.0,
                                      "values": [float(k)], "valid": True} for k, i in enumerate(h["image_ids"])]}
        if reply is not None:
            router.send_multipart([identity, *encode(reply)])

    with ZmqResponder(scripted_rig(rig), heartbeat=0.05, deadline=60, timeout=60) as client:
        np.testing.assert_array_equal(client.respond(torch.rand(2, 3, 8, 8)), [0.0, 1.0])
        assert client.stats["resends"] == 1 and client.stats["reconnects"] == 0
    assert len(presents) == 2 and presents[0] == presents[1]  # the same request id, sent twice


def test_each_request_starts_its_pong_accounting_afresh(scripted_rig):
    """A rig deaf to pings through the first request (about ten pings unanswered), then restarted
    twice during the second (its first two sends lost, pings answered "unknown"): the client
    resends after one "unknown" pong each time. It took the next ten for answers to the first
    request's pings, waiting ten heartbeats before its second resend."""
    messages = []

    def rig(router, identity, frames):
        h = json.loads(frames[0])
        messages.append((h["type"], h["request_id"]))
        presents = [rid for kind, rid in messages if kind == "present"]
        reply = None
        if h["type"] == "hello":
            reply = welcome(h["request_id"], ["a"])
        elif h["type"] == "ping" and h["request_id"] != presents[0]:
            reply = {"type": "pong", "request_id": h["request_id"], "state": "unknown", "progress": 0}
        elif h["type"] == "present" and len(presents) not in (2, 3):  # the 2nd and 3rd sends are lost
            time.sleep(1.0 if len(presents) == 1 else 0)  # presenting, deaf to pings
            reply = {"type": "result", "request_id": h["request_id"], "complete": True, "channels": ["a"],
                     "records": [{"image_id": i, "repeat": 0, "trial_id": k, "onset": 0.0, "values": [1.0],
                                  "valid": True} for k, i in enumerate(h["image_ids"])]}
        if reply is not None:
            router.send_multipart([identity, *encode(reply)])

    with ZmqResponder(scripted_rig(rig), heartbeat=0.1, liveness=20, timeout=30) as client:
        for _ in range(2):
            np.testing.assert_array_equal(client.respond(torch.rand(2, 3, 8, 8)), [1.0, 1.0])
        assert client.stats["resends"] == 2 and client.stats["reconnects"] == 0
    sends = [i for i, (kind, _) in enumerate(messages) if kind == "present"]
    assert len(sends) == 4 and messages[sends[1]][1] == messages[sends[3]][1]
    assert sum(kind == "ping" for kind, _ in messages[:sends[1]]) >= 5  # the first request's, unanswered
    assert sum(kind == "ping" for kind, _ in messages[sends[2]:sends[3]]) <= 2, messages


# -- what a rig author meets: open value sets, limits, malformed replies (docs/protocol.md §2-§4, §7) --

def records_for(h, value=1.0):
    return [{"image_id": i, "repeat": k, "trial_id": n, "onset": None, "values": [value, value], "valid": True}
            for n, (k, i) in enumerate((k, i) for k in range(h["repeats"]) for i in h["image_ids"])]


def test_open_encodings_and_free_text_channel_names_are_accepted(scripted_rig):
    def rig(router, identity, frames):
        h = json.loads(frames[0])
        if h["type"] == "hello":
            reply = {**welcome(h["request_id"], ["V4 e1", "V4 e2"]), "encodings": ["raw", "png", "jpeg"]}
        elif h["type"] == "present":
            reply = {"type": "result", "request_id": h["request_id"], "complete": True, "channels": ["V4 e1", "V4 e2"],
                     "records": records_for(h, 4.0)}
        else:
            return
        router.send_multipart([identity, *encode(reply)])

    with ZmqResponder(scripted_rig(rig), channels=["V4 e2"], heartbeat=0.1) as client:
        np.testing.assert_array_equal(client.respond(torch.rand(3, 3, 8, 8)), [4.0] * 3)


def test_a_rig_limit_is_named_in_the_one_line_error(tmp_path, scripted_rig, xdream_main):
    """A rig that refuses a request before parsing it (null request id) and one that advertises
    a smaller frame limit: either way the user's one-line error names the limit."""
    def refusing(router, identity, frames):
        h = json.loads(frames[0])
        if h["type"] == "hello":
            reply = {**welcome(h["request_id"], ["a"]), "max_images": 1024, "max_frame_bytes": 16 << 20}
        elif h["type"] == "present":
            reply = {"type": "error", "request_id": None, "code": "too-large",
                     "message": "frame 1 of 768 bytes exceeds the limit of 512 (max_frame_bytes)"}
        else:
            return
        router.send_multipart([identity, *encode(reply)])

    def small(router, identity, frames):
        h = json.loads(frames[0])
        if h["type"] == "hello":
            router.send_multipart([identity, *encode({**welcome(h["request_id"], ["a"]), "max_frame_bytes": 512})])

    for rig, expected in ((refusing, "rig refused the request for generation 0: too-large: frame 1 of 768 bytes "
                                     "exceeds the limit of 512 \\(max_frame_bytes\\)"),
                          (small, "generation 0 needs 768 bytes where the rig at .* allows 512 \\(max_frame_bytes\\)")):
        out = xdream_main("evolve", "--set", 'responder.name="zmq"', "--set", f'responder.target="{scripted_rig(rig)}"',
                          "--set", "responder.heartbeat=0.1", "--set", "responder.timeout=5", "--generator", "pixel",
                          "--set", "generator.size=16", "--set", "optimizer.population=4",
                          "--output", tmp_path / rig.__name__)
        errors = [line for line in out.stderr.splitlines() if line.startswith("xdream: error:")]
        assert out.returncode == 2 and len(errors) == 1 and out.stderr.endswith(errors[0] + "\n"), out.stderr
        assert re.search(expected, errors[0]), out.stderr


def test_malformed_results_are_counted_by_kind_in_the_final_error(scripted_rig):
    """A rig that answers every present with a NaN literal (Python's json.dumps default)."""
    sent = []

    def rig(router, identity, frames):
        h = json.loads(frames[0])
        if h["type"] == "hello":
            router.send_multipart([identity, *encode(welcome(h["request_id"], ["a", "b"]))])
        elif h["type"] == "present":
            result = {"protocol": "xdream-rig/1", "type": "result", "request_id": h["request_id"], "complete": True,
                      "channels": ["a", "b"], "records": records_for(h, float("nan"))}
            sent.append(h["request_id"])
            router.send_multipart([identity, json.dumps(result).encode()])

    with ZmqResponder(scripted_rig(rig), heartbeat=0.05, liveness=2, retries=2, timeout=5) as client:
        with pytest.raises(RigUnavailableError, match="gave no result for generation 0 after 3 tries; the rig sent "
                                                      "3 malformed replies: 3 result with NaN/Infinity literal"):
            client.respond(torch.rand(2, 3, 8, 8))
    assert len(sent) == 3


def test_a_result_with_a_number_beyond_a_double_is_malformed_not_scored(scripted_rig):
    """A rig whose values read as 1e400 (infinity to Python's json): the replies are dropped and
    counted like NaN literals; the client scored them inf before."""
    def rig(router, identity, frames):
        h = json.loads(frames[0])
        if h["type"] == "hello":
            router.send_multipart([identity, *encode(welcome(h["request_id"], ["a", "b"]))])
        elif h["type"] == "present":
            result = encode({"type": "result", "request_id": h["request_id"], "complete": True,
                             "channels": ["a", "b"], "records": records_for(h, 7.0)})
            router.send_multipart([identity, result[0].replace(b"7.0", b"1e400")])

    with ZmqResponder(scripted_rig(rig), heartbeat=0.05, liveness=2, retries=1, timeout=5) as client:
        with pytest.raises(RigUnavailableError, match="after 2 tries; the rig sent 2 malformed replies: 2 result "
                                                      "with out-of-range number"):
            client.respond(torch.rand(2, 3, 8, 8))


def test_the_rigs_heartbeat_ms_lengthens_the_liveness_window(scripted_rig):
    """A rig that says it may take 1.5 s to answer (heartbeat_ms) and is silent for 1 s before
    its result: the client, which alone would call 0.2 s of silence dead, waits instead of
    reconnecting and resending (docs/protocol.md §4.1)."""
    presents = []

    def rig(router, identity, frames):
        h = json.loads(frames[0])
        if h["type"] == "hello":
            router.send_multipart([identity, *encode({**welcome(h["request_id"], ["a", "b"]), "heartbeat_ms": 1500})])
        elif h["type"] == "present":
            presents.append(h["request_id"])
            time.sleep(1.0)  # presenting, deaf to pings
            router.send_multipart([identity, *encode({"type": "result", "request_id": h["request_id"],
                                                      "complete": True, "channels": ["a", "b"],
                                                      "records": records_for(h, 2.0)})])

    with ZmqResponder(scripted_rig(rig), heartbeat=0.1, liveness=2, timeout=10) as client:
        np.testing.assert_array_equal(client.respond(torch.rand(2, 3, 8, 8)), [2.0, 2.0])
        assert client.stats["resends"] == 0 and client.stats["reconnects"] == 0
    assert len(presents) == 1


def test_a_malformed_welcome_is_not_blamed_on_a_rep_socket(scripted_rig):
    """A ROUTER rig that also takes REQ clients (it strips their delimiter, as the reference rig
    does: §1) but whose welcome breaks the schema: the client heard it, so the one-line error
    names the malformed welcome and does not claim the rig binds REP."""
    def rig(router, identity, frames):
        if frames and frames[0] == b"":
            identity, frames = [identity, b""], frames[1:]
        else:
            identity = [identity]
        h = json.loads(frames[0])
        if h["type"] == "hello":
            router.send_multipart([*identity, *encode({**welcome(h["request_id"], ["a"]), "heartbeat_ms": 0})])

    with pytest.raises(RigUnavailableError) as error:
        ZmqResponder(scripted_rig(rig), heartbeat=0.05, liveness=2, timeout=0.5)
    assert "malformed repl" in str(error.value) and "heartbeat_ms" in str(error.value)
    assert "REP" not in str(error.value), error.value


def test_a_channel_missing_from_the_result_leaves_the_score_unusable(scripted_rig):
    """A rig that welcomes channels a and b but leaves b out of its result: a score is the mean
    over every selected channel, so a record lacking one is unusable like a null value (NaN),
    as in respond_units; it was the mean over the channels that happened to be there."""
    def rig(router, identity, frames):
        h = json.loads(frames[0])
        if h["type"] == "hello":
            router.send_multipart([identity, *encode(welcome(h["request_id"], ["a", "b"]))])
        elif h["type"] == "present":
            records = [{"image_id": i, "repeat": 0, "trial_id": k, "onset": None, "values": [5.0], "valid": True}
                       for k, i in enumerate(h["image_ids"])]
            router.send_multipart([identity, *encode({"type": "result", "request_id": h["request_id"],
                                                      "complete": True, "channels": ["a"], "records": records})])

    endpoint = scripted_rig(rig)
    for channels in (None, ["a", "b"]):
        with ZmqResponder(endpoint, channels=channels, heartbeat=0.1) as client:
            np.testing.assert_array_equal(client.respond_units(torch.rand(2, 3, 8, 8)), [[5.0, np.nan]] * 2)
            np.testing.assert_array_equal(client.respond(torch.rand(2, 3, 8, 8)), [np.nan, np.nan])
    with ZmqResponder(endpoint, channels=["a"], heartbeat=0.1) as client:
        np.testing.assert_array_equal(client.respond(torch.rand(2, 3, 8, 8)), [5.0, 5.0])


@pytest.mark.parametrize("option, value, expected", [("repeats", 101, "100, got 101"), ("deadline", 86401, "86400")])
def test_a_value_above_the_protocol_maximum_is_refused_before_the_run_starts(tmp_path, sim_thread, xdream_main,
                                                                             option, value, expected):
    """repeats is 1..100 and deadline_ms 1..86400000 (docs/protocol.md §3): a value beyond is one
    line naming the option and its range, before the run folder is made; it used to start the run
    and stop at generation 0 with the rig's refusal."""
    sim = sim_thread(tmp_path)
    out = xdream_main("evolve", "--set", 'responder.name="zmq"', "--set", f'responder.target="{sim.endpoint}"',
                      "--set", f"responder.{option}={value}", "--generator", "pixel", "--set", "generator.size=16",
                      "--set", "optimizer.population=4", "--output", tmp_path / "run")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"zmq option '{option}' must be" in out.stderr and expected in out.stderr, out.stderr
    assert not (tmp_path / "run").exists()
    assert not any(json.loads(line)["event"] == "request" for line in sim.log.path.read_text().splitlines())


def test_an_empty_channel_list_is_refused(tmp_path, sim_thread):
    """channels = [] selects nothing to score: one line saying what is allowed, not a run in
    which every image scores NaN."""
    from xdream.core.errors import ConfigError
    sim = sim_thread(tmp_path)
    with pytest.raises(ConfigError, match="zmq option 'channels' is empty; .*leave it out for all"):
        ZmqResponder(sim.endpoint, channels=[], heartbeat=0.1).close()


@pytest.mark.parametrize("option", ["--log", "--endpoint-file"])
def test_rig_simulate_with_a_file_it_cannot_write_is_one_line(tmp_path, xdream_main, option):
    """`xdream rig simulate --log` or `--endpoint-file` in a folder that does not exist: one
    line naming the option's file (it was a FileNotFoundError traceback)."""
    missing = tmp_path / "no-such-folder" / "file"
    files = {"--log": tmp_path / "log", "--endpoint-file": tmp_path / "endpoint", option: missing}
    out = xdream_main("rig", "simulate", "--target", TARGET, "--input-size", "64", "--endpoint", LOOPBACK,
                      "--max-seconds", "0", *(a for name, path in files.items() for a in (name, path)))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("xdream: error: cannot write") and repr(str(missing)) in out.stderr, out.stderr
    assert not missing.parent.exists()


@pytest.mark.parametrize("option", [("--channels", "257"), ("--target", OTHER, "--channels", "129")])
def test_rig_simulate_refuses_more_channels_than_the_protocol_allows(tmp_path, xdream_main, option):
    """A welcome lists 1..256 channels (docs/protocol.md §3): a simulated rig with more was
    started, and every client's hello got a welcome it must drop as malformed."""
    out = xdream_main("rig", "simulate", "--target", TARGET, "--input-size", "64", "--endpoint", LOOPBACK,
                      "--max-seconds", "0", "--log", tmp_path / "log", *option)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "256" in out.stderr and "channels" in out.stderr and not (tmp_path / "log").exists()


@pytest.mark.parametrize("option", [("--presentation-ms", "nan"), ("--presentation-ms", "inf"),
                                    ("--delay-s", "nan"), ("--delay-s", "inf")])
def test_rig_simulate_refuses_times_that_are_not_finite(tmp_path, xdream_main, option):
    """A NaN or infinite presentation time made the rig present one image and then nothing
    until the deadline; a NaN or infinite --delay-s held every delayed reply for ever."""
    out = xdream_main("rig", "simulate", "--target", TARGET, "--input-size", "64", "--endpoint", LOOPBACK,
                      "--max-seconds", "0", "--log", tmp_path / "log", *option)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert option[1] in out.stderr and not (tmp_path / "log").exists()


@pytest.mark.parametrize("option", [("--crash-at", "0"), ("--crash-at", "-3"), ("--max-seconds", "nan"),
                                    ("--max-seconds", "-1"), ("--seed", "-1"), ("--input-size", "0")])
def test_rig_simulate_refuses_counts_and_times_out_of_range(tmp_path, xdream_main, option):
    """--crash-at 0 or below never crashed (presentations count from 1); --max-seconds nan or
    below 0 started a rig that stopped at once; --seed -1 was a ValueError traceback; and
    --input-size 0 ran at the model's own size. Each is one line naming the value."""
    out = xdream_main("rig", "simulate", "--target", TARGET, "--input-size", "64", "--endpoint", LOOPBACK,
                      "--max-seconds", "0", "--log", tmp_path / "log", *option)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert option[0].strip("-").replace("-", "_") in out.stderr.replace("-", "_"), out.stderr
    assert f"got {option[1]}" in out.stderr and not (tmp_path / "log").exists(), out.stderr


def test_rig_simulate_refuses_noise_options_without_a_noise_model(tmp_path, xdream_main):
    """`--noise-set level=0.5` without `--noise NAME` started a noise-free rig: the option was
    silently dropped. It is one line, as `xdream characterise --set noise.KEY` without --noise."""
    out = xdream_main("rig", "simulate", "--target", TARGET, "--input-size", "64", "--endpoint", LOOPBACK,
                      "--max-seconds", "0", "--log", tmp_path / "log", "--noise-set", "level=0.5")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "--noise-set" in out.stderr and "--noise" in out.stderr and not (tmp_path / "log").exists()


FULL_WHILE_SERVING = ('mount -t tmpfs -o size=8k tmpfs "$0" && head -c 4096 /dev/zero > "$0/fill" && "$@"; '
                      'echo "rc=$?"; cp "$0/log" "$0.log"')


def present_frames(request_id, images, repeats):
    rng = np.random.default_rng(0)
    return encode({"type": "present", "session": "s1", "request_id": request_id, "generation": 0,
                   "image_ids": [f"i{k}" for k in range(images)], "encoding": "raw", "dtype": "uint8",
                   "shape": [8, 8, 3], "repeats": repeats, "deadline_ms": 60000},
                  image_frames(rng.integers(0, 256, (images, 8, 8, 3), dtype=np.uint8)))


def test_rig_simulate_log_on_a_disk_that_fills_while_serving_stops_in_one_line(private_tmpfs, tmp_path, xdream_cmd):
    """`rig simulate --log` whose disk fills while it presents (a tiny tmpfs in a private mount
    namespace) was an OSError traceback out of the serving loop (exit 1); it is one line naming
    the log, exit 2, no result is sent for trials the log lacks, and a rig restarted on that log
    (space freed) presents only the trials the log lacks."""
    disk = tmp_path / "disk"
    disk.mkdir()
    endpoint_file = tmp_path / "endpoint"
    proc = subprocess.Popen(["unshare", "-m", "sh", "-c", FULL_WHILE_SERVING, str(disk), *xdream_cmd, "rig",
                             "simulate", "--target", TARGET, "--input-size", "64", "--endpoint", LOOPBACK,
                             "--endpoint-file", str(endpoint_file), "--log", str(disk / "log"),
                             "--max-seconds", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 120
    while not endpoint_file.exists():
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.05)
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint_file.read_text())
    sock.send_multipart(encode({"type": "hello", "session": "s1", "request_id": "h1", "client": "t",
                                "encodings": ["raw"], "dtypes": ["uint8"]}))
    assert decode(sock.recv_multipart()).type == "welcome"
    sock.send_multipart(present_frames("r1", 8, 6))  # 48 trials: more than the 4 KiB left hold
    replies = [decode(sock.recv_multipart()).header for _ in range(5) if sock.poll(3000)]
    context.destroy(linger=0)
    out, err = proc.communicate(timeout=60)
    assert out.splitlines()[-1:] == ["rc=2"], (out, err)
    err = err.splitlines()[1:]  # after 'rig simulator listening on ...'
    assert len(err) == 1 and err[0].startswith(f"xdream: error: cannot write {disk}/log: No space left on device"), err
    assert not [r for r in replies if r["type"] == "result"], replies  # nothing answered that is not logged
    log = tmp_path / "disk.log"
    lines = log.read_text().split("\n")
    logged = {(e["record"]["image_id"], e["record"]["repeat"]) for e in map(json.loads, lines[:-1])
              if e["event"] == "trial"}
    assert 0 < len(logged) < 48
    sim = RigSimulator(TorchUnit(TARGET, input_size=64), endpoint=LOOPBACK, log=log)  # restarted, space freed
    serving = ServingThread(sim)
    try:
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(sim.endpoint)
        sock.send_multipart(encode({"type": "hello", "session": "s1", "request_id": "h2", "client": "t",
                                    "encodings": ["raw"], "dtypes": ["uint8"]}))
        assert decode(sock.recv_multipart()).type == "welcome"
        sock.send_multipart(present_frames("r1", 8, 6))  # the client resends its request
        assert sock.poll(30000)
        result = decode(sock.recv_multipart()).header
        context.destroy(linger=0)
    finally:
        serving.stop()
    assert result["type"] == "result" and result["complete"], result
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith('{"event": "trial"')
              and line.endswith("}")]
    shown = collections.Counter((e["record"]["image_id"], e["record"]["repeat"]) for e in events)
    assert len(shown) == 48 and set(shown.values()) == {1}, shown
