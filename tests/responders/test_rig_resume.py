"""No re-presentation after a client crash: `xdream evolve` killed with SIGKILL mid-generation,
or stopped by a stalled rig, and resumed, against a real `xdream rig simulate` process whose
presentation log is kept. The resumed client resends the request it had in flight under the
same request id (RUN/rig_requests.jsonl), the rig answers from its cache, no image is presented
more than `repeats` times, and the run is bit-identical to an uninterrupted one."""

import collections
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from test_zmq_rig import SimProcess, arrays

GENERATIONS, POPULATION, REPEATS = 5, 8, 2
SIM = ("--noise", "poisson", "--presentation-ms", "25", "--seed", "3")


def config(path, endpoint, **client):
    responder = {"name": "zmq", "target": endpoint, "repeats": REPEATS, "heartbeat": 0.1, **client}
    lines = ["seed = 3", f"generations = {GENERATIONS}", "[generator]", 'name = "pixel"', "size = 16",
             "[optimizer]", 'name = "genetic"', f"population = {POPULATION}", "[responder]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in responder.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def evolve(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "xdream.cli", "evolve", "--quiet", *args],
                            stderr=subprocess.PIPE, text=True, **kwargs)


def trials(sim):
    return [e for e in sim.events() if e["event"] == "trial"]


def wait_for(condition, what, limit=180):
    end = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < end, what
        time.sleep(0.02)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    sim = SimProcess(tmp, *SIM)
    try:
        proc = evolve(str(config(tmp / "job.toml", sim.endpoint)), "--output", str(tmp / "run"))
        assert proc.wait(300) == 0, proc.stderr.read()
    finally:
        sim.stop()
    return arrays(tmp / "run", GENERATIONS), [e["record"]["values"] for e in trials(sim)]


@pytest.mark.parametrize("interruption", ["kill -9", "rig stall"])
def test_resume_presents_nothing_twice_and_is_bit_identical(tmp_path, uninterrupted, interruption):
    sim = SimProcess(tmp_path, *SIM)
    run = tmp_path / "run"
    client = {"liveness": 3, "retries": 1, "timeout": 1.5} if interruption == "rig stall" else {}
    job = config(tmp_path / "job.toml", sim.endpoint, **client)
    try:
        proc = evolve(str(job), "--output", str(run))
        in_generation_2 = lambda: sum(t["generation"] == 2 for t in trials(sim)) >= 3  # noqa: E731
        wait_for(in_generation_2, "the rig never reached generation 2")
        if interruption == "kill -9":
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(60) == -signal.SIGKILL
        else:  # the rig stops answering mid-generation: the run stops with its one-line error
            os.kill(sim.proc.pid, signal.SIGSTOP)
            assert proc.wait(120) == 2
            error = proc.stderr.read()
            assert "generation 2" in error and "resume the run once the rig is back" in error, error
            os.kill(sim.proc.pid, signal.SIGCONT)
        done = sum(1 for _ in (run / "generations").glob("gen_*.npz"))
        assert done == 2  # generation 2 was in flight and is not saved
        resumed = evolve("--resume", str(run))
        assert resumed.wait(300) == 0, resumed.stderr.read()
    finally:
        os.kill(sim.proc.pid, signal.SIGCONT)
        sim.stop()
    shown = collections.Counter((t["generation"], t["record"]["image_id"]) for t in trials(sim))
    assert len(shown) == GENERATIONS * POPULATION and set(shown.values()) == {REPEATS}  # 0 shown more than repeats
    requests = [json.loads(line) for line in (run / "rig_requests.jsonl").read_text().splitlines()]
    assert len(requests) == GENERATIONS  # the resumed run sent generation 2 under its journalled id
    assert len({t["request_id"] for t in trials(sim)}) == GENERATIONS
    expected, values = uninterrupted
    assert [e["record"]["values"] for e in trials(sim)] == values  # the rig saw the same session
    for g, (a, b) in enumerate(zip(arrays(run, GENERATIONS), expected)):
        np.testing.assert_array_equal(a["codes"], b["codes"], err_msg=f"generation {g}")
        np.testing.assert_array_equal(a["scores"], b["scores"], err_msg=f"generation {g}")
    saved = [json.loads(line) for line in (run / "rig_trials.jsonl").read_text().splitlines()]
    assert len(saved) == GENERATIONS * POPULATION * REPEATS  # no duplicate records after the resume


@pytest.mark.parametrize("torn", ['{"generation": 1, "seq": 0, "req', '{"generation": 1, "seq": 0, "request_id": '
                                  '"x", "image_ids": ["g1-0"], "checksum": "c"}'])
def test_a_torn_journal_line_does_not_swallow_the_next_request(tmp_path, torn):
    """A journal whose last append was cut short (a full disk: `cannot write ...; free some
    space, then resume the run`), with or without the line's JSON whole: the resumed run's
    request is journalled on a line of its own, so a second interruption and resume still
    resends it under its id (the rig answers from its cache) instead of presenting it again."""
    from responders.rig_journal import JOURNAL_FILE, RequestJournal
    from responders.zmq_client import TRIALS_FILE

    first = {"generation": 0, "seq": 0, "request_id": "r0", "image_ids": ["g0-0"], "checksum": "00000001"}
    (tmp_path / JOURNAL_FILE).write_text(json.dumps(first) + "\n" + torn)
    RequestJournal(tmp_path, 1, TRIALS_FILE).record(1, 0, "r1", ["g1-0"], "00000002")
    again = RequestJournal(tmp_path, 1, TRIALS_FILE)
    assert again.request_id(1, 0, ["g1-0"], "00000002") == "r1"
    lines = (tmp_path / JOURNAL_FILE).read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["r0", "r1"]
