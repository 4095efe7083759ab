"""A session of two evolution threads against a real `xdream rig simulate` process with a
different neuron on each channel (issue 12's must-show): one `present` request per generation
holding both threads' images and the references in a seeded shuffle, every image shown exactly
`repeats` times, threads that do not leak into each other, and a SIGKILL mid-run that resumes
bit-identically with nothing presented again."""

import collections
import json
import signal

import numpy as np
import pytest

from test_rig_resume import evolve, trials, wait_for
from test_zmq_rig import SimProcess, arrays

GENERATIONS, REPEATS = 4, 2
POPULATIONS = {"pix": 6, "four": 5}
SECOND = "efficientnet_lite0:_blocks.2:9"  # ch1's neuron (ch0's is test_zmq_rig.TARGET)


def session(path, endpoint, four_optimizer='{ name = "cmaes", population = 5 }', pix_target="ch0"):
    path.write_text(f"""seed = 3
generations = {GENERATIONS}
[responder]
name = "zmq"
target = "{endpoint}"
repeats = {REPEATS}
heartbeat = 0.1
[reference]
per_generation = 1
[[thread]]
name = "pix"
generator = {{ name = "pixel", size = 16 }}
optimizer = {{ name = "genetic", population = {POPULATIONS['pix']} }}
target = "{pix_target}"
[[thread]]
name = "four"
generator = {{ name = "fourier", size = 16, max_frequency = 4 }}
optimizer = {four_optimizer}
target = "ch1"
""")
    return path


def thread(run, name):
    return arrays(run / "threads" / name, GENERATIONS)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("session")
    sim = SimProcess(tmp, "--target", SECOND, "--noise", "poisson", "--presentation-ms", "10", "--seed", "3")
    try:
        proc = evolve(str(session(tmp / "job.toml", sim.endpoint)), "--output", str(tmp / "run"))
        assert proc.wait(300) == 0, proc.stderr.read()
        events = sim.events()
    finally:
        sim.stop()
    return tmp / "run", events


def test_one_request_per_generation_interleaves_both_threads(uninterrupted):
    run, events = uninterrupted
    shown = [e for e in events if e["event"] == "trial"]
    per_request = collections.defaultdict(list)
    for t in shown:
        per_request[t["request_id"]].append(t)
    assert len(per_request) == GENERATIONS  # one present request per generation
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    for g, (rid, block) in enumerate(per_request.items()):
        ids = [t["record"]["image_id"] for t in block if t["record"]["repeat"] == 0]
        assert sum(i.startswith(f"g{g}-pix-") for i in ids) == POPULATIONS["pix"]
        assert sum(i.startswith(f"g{g}-four-") for i in ids) == POPULATIONS["four"]
        assert sum("-ref" in i for i in ids) == 1
        assert ids == log[g]["order"]  # shown in the session's seeded order, threads mixed
        owners = [i.split("-")[1] for i in ids if "-ref" not in i]
        assert owners != sorted(owners) and owners != sorted(owners, reverse=True)
    counts = collections.Counter((t["generation"], t["record"]["image_id"]) for t in shown)
    assert set(counts.values()) == {REPEATS}
    assert len(counts) == GENERATIONS * (sum(POPULATIONS.values()) + 1)
    results = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [(r["name"], r["target"], r["generations"]) for r in results] == \
        [("pix", "ch0", GENERATIONS), ("four", "ch1", GENERATIONS)]


def test_each_thread_is_scored_on_its_own_channel(uninterrupted):
    run, _ = uninterrupted
    records = [json.loads(line) for line in (run / "rig_trials.jsonl").read_text().splitlines()]
    for name, channel in (("pix", 0), ("four", 1)):
        scores = thread(run, name)[0]["scores"]
        for i, score in enumerate(scores):
            values = [r["values"][channel] for r in records if r["image_id"] == f"g0-{name}-{i}" and r["valid"]]
            assert score == pytest.approx(np.mean(values))


def test_sigkill_mid_generation_resumes_bit_identically_showing_nothing_twice(tmp_path, uninterrupted):
    expected_run, expected_events = uninterrupted
    sim = SimProcess(tmp_path, "--target", SECOND, "--noise", "poisson", "--presentation-ms", "10", "--seed", "3")
    run = tmp_path / "run"
    try:
        proc = evolve(str(session(tmp_path / "job.toml", sim.endpoint)), "--output", str(run))
        wait_for(lambda: sum(t["generation"] == 2 for t in trials(sim)) >= 3, "the rig never reached generation 2")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(60) == -signal.SIGKILL
        resumed = evolve("--resume", str(run))
        assert resumed.wait(300) == 0, resumed.stderr.read()
    finally:
        sim.stop()
    shown = collections.Counter((t["generation"], t["record"]["image_id"]) for t in trials(sim))
    assert set(shown.values()) == {REPEATS}  # nothing shown more than `repeats` times
    assert [e["record"]["values"] for e in trials(sim)] == \
        [e["record"]["values"] for e in expected_events if e["event"] == "trial"]
    for name in POPULATIONS:
        for g, (a, b) in enumerate(zip(thread(run, name), thread(expected_run, name))):
            for key in ("codes", "scores", "reference_scores"):
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} generation {g} {key}")


@pytest.fixture(scope="module")
def noise_free_sim(tmp_path_factory):
    """One noise-free simulator (its start costs a torch import) for the tests that only need a
    rig to answer: it keeps no state between sessions that they look at."""
    sim = SimProcess(tmp_path_factory.mktemp("noise_free"), "--target", SECOND)
    yield sim
    sim.stop()


def test_threads_do_not_leak_into_each_other(tmp_path, xdream_main, noise_free_sim):
    """On a noise-free rig, thread pix's codes are identical whatever thread four's options."""
    for run, four in (("a", '{ name = "cmaes", population = 5 }'),
                      ("b", '{ name = "cmaes", population = 5, sigma0 = 0.9 }')):
        result = xdream_main("evolve", "--quiet", session(tmp_path / f"{run}.toml", noise_free_sim.endpoint, four),
                             "--output", tmp_path / run)
        assert result.returncode == 0, result.stderr
    for a, b in zip(thread(tmp_path / "a", "pix"), thread(tmp_path / "b", "pix")):
        np.testing.assert_array_equal(a["codes"], b["codes"])
    assert not np.array_equal(thread(tmp_path / "a", "four")[1]["codes"], thread(tmp_path / "b", "four")[1]["codes"])


def test_a_channel_the_rig_does_not_have_is_one_line_and_writes_nothing(tmp_path, xdream_main, noise_free_sim):
    job = session(tmp_path / "job.toml", noise_free_sim.endpoint, pix_target="ch5")
    proc = xdream_main("evolve", job, "--output", tmp_path / "run")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "thread 'pix': channel 'ch5' is not recorded" in proc.stderr and "ch0, ch1" in proc.stderr
    assert not (tmp_path / "run").exists()
