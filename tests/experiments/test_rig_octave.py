"""experiments/rig_octave: the MATLAB-language rig under GNU Octave (zeromq package) runs a few
generations of `xdream evolve` (raw and png images) with the scores its stand-in neuron computes
from the pixels, passes `xdream rig check` with its png checks, across a restart of the rig, and
advertises png only where imread decodes it. Skipped, saying why, where Octave
or its zeromq package is missing (`make test` installs both where it can: Makefile `octave`)."""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zmq

from xdream.core import registry
from xdream.images.io import to_uint8
from xdream.rig.check import Client, _images, _present
from xdream.rig.ports import free_loopback_port

RIG_DIR = Path(__file__).resolve().parents[2] / "experiments" / "rig_octave"
OCTAVE = shutil.which("octave-cli") or shutil.which("octave")


def _octave_problem():
    if OCTAVE is None:
        return "GNU Octave is not installed (Debian: apt-get install octave octave-zeromq; or `make octave`)"
    out = subprocess.run([OCTAVE, "--no-gui", "--quiet", "--eval", "pkg load zeromq; disp(exist('jsonencode'))"],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        return f"Octave's zeromq package does not load (Debian: octave-zeromq): {out.stderr.strip()[:200]}"
    if out.stdout.strip() not in ("2", "5"):
        return "this Octave has no jsonencode (Octave >= 7 is needed)"
    return None


PROBLEM = _octave_problem()
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=str(PROBLEM))


ROW = re.compile(r"^(PASS|FAIL|SKIP|NOT RUN|WAIVED) +(.+?)  +§")



class OctaveRig:
    """The rig as a background Octave process (a shell script, so a restart command can start it again)."""

    def __init__(self, tmp_path, first=""):
        self.endpoint = f"tcp://127.0.0.1:{free_loopback_port()}"
        self.out, self.pid = tmp_path / "octave.out", tmp_path / "octave.pid"
        self.script, self.cache = tmp_path / "start.sh", tmp_path / "cache.tsv"
        self.script.write_text(f"(cd {RIG_DIR} && exec {OCTAVE} --no-gui --quiet --eval \"{first}rig('{self.endpoint}', "
                               f"'{self.cache}')\") >>{self.out} 2>&1 &\necho $! > {self.pid}\n")
        self.restart_command = f"kill -9 $(cat {self.pid}); sleep 0.5; sh {self.script}"  # a crash
        self.start()

    def start(self):
        lines = self.out.read_text().count("rig listening") if self.out.exists() else 0
        subprocess.run(["sh", str(self.script)], check=True)
        end = time.monotonic() + 120
        while not (self.out.exists() and self.out.read_text().count("rig listening") > lines):
            assert time.monotonic() < end, self.out.read_text() if self.out.exists() else "no output"
            time.sleep(0.1)

    def stop(self):
        subprocess.run(f"kill $(cat {self.pid})", shell=True)

    def kill(self):
        """A crash: kill -9, nothing flushed."""
        subprocess.run(f"kill -9 $(cat {self.pid})", shell=True, check=True)

    def client(self, context):
        """A new client of the rig, greeted."""
        client = Client(context, self.endpoint, timeout=30)
        client.hello()
        return client

    def answer_then_crash(self, context, rid, images):
        """The rig's reply to request ``rid`` of ``images``; then the rig is killed (kill -9)."""
        client = self.client(context)
        reply = client.ask(_present(client.session, rid, images), rid, timeout=60)
        client.close()
        self.kill()
        return reply

    def answer_then_lose_the_result(self, context, rid, images):
        """As :meth:`answer_then_crash`, the crash before the result line reached the cache file
        (its trial lines did); the rig started again. The first reply and a new client."""
        first = self.answer_then_crash(context, rid, images)
        lines = self.cache.read_text().splitlines(keepends=True)
        assert first.type == "result" and "\ttrial\t" not in lines[-1]
        self.cache.write_text("".join(lines[:-1]))
        self.start()
        return first, self.client(context)


@pytest.fixture
def octave_rig(tmp_path):
    print(f"Octave: {OCTAVE}")
    rig = OctaveRig(tmp_path)
    yield rig
    rig.stop()


def stand_in_neuron(images):
    """The Octave rig's show_and_record(): the mean of the image centre, from the uint8 pixels."""
    pixels = to_uint8(images).astype(np.float64)
    h, w = pixels.shape[1:3]
    return pixels[:, h // 4: 3 * h // 4, w // 4: 3 * w // 4].mean(axis=(1, 2, 3))


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_evolution_against_the_octave_rig(tmp_path, octave_rig, xdream_main, encoding):
    out = xdream_main("evolve", "--quiet", "--generator", "pixel", "--set", "generator.size=16",
                      "--optimizer", "genetic", "--population", "8", "--generations", "3", "--seed", "4",
                      "--set", 'responder.name="zmq"', "--set", f'responder.target="{octave_rig.endpoint}"',
                      "--set", f'responder.encoding="{encoding}"',
                      "--set", "responder.repeats=2", "--set", "responder.heartbeat=0.2", "--output", tmp_path / "run")
    assert out.returncode == 0, out.stderr
    generator = registry.create("generator", "pixel", {"size": 16}, device="cpu")
    for g in range(3):
        with np.load(tmp_path / "run" / "generations" / f"gen_{g:04d}.npz") as data:
            with torch.no_grad():
                images = generator.decode(data["codes"])
            np.testing.assert_allclose(data["scores"], stand_in_neuron(images), rtol=1e-12)
    trials = (tmp_path / "run" / "rig_trials.jsonl").read_text().splitlines()
    assert len(trials) == 3 * 8 * 2


def test_rig_check_passes_against_the_octave_rig(octave_rig, xdream_main):
    out = xdream_main("rig", "check", octave_rig.endpoint, "--timeout", "10", "--restart-command",
                      octave_rig.restart_command)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {m.group(2).strip(): m.group(1) for m in map(ROW.match, out.stdout.splitlines()) if m}
    assert set(rows.values()) == {"PASS"} and len(rows) == 16, out.stdout
    assert "verdict: PASS (every MUST checked, content verified)" in out.stdout
    assert "raw/uint8/C3, raw/uint8/C1, png/uint8/C3, png/uint8/C1" in out.stdout  # the content probe (§4.5)
    assert re.search(r"killed at \d+/128; resumed from a new session: 0 re-presented, cache kept", out.stdout)
    assert "7 broken pngs refused" in out.stdout


def test_trial_ids_stay_unique_across_a_rig_crash(tmp_path, octave_rig):
    """trial_id is the rig's trial number (docs/protocol.md §4.2: records sharing one were shown in
    one trial). Killed mid-request and restarted, the rig continues the request from its cache
    file; its count of trials used to start again at 0, so the resumed request's result gave two
    different images (one shown before the crash, one after) the same trial_id."""
    context = zmq.Context()
    cache = tmp_path / "cache.tsv"
    try:
        client = octave_rig.client(context)
        rid, images = "crash-1", _images(40, side=4)
        client.send(_present(client.session, rid, images, repeats=20))
        end = time.monotonic() + 60
        while not (cache.exists() and cache.read_text().count("\ttrial\t") >= 5):
            assert time.monotonic() < end, "no trial recorded"
            time.sleep(0.01)
        octave_rig.kill()
        before = cache.read_text().count("\ttrial\t")
        assert before < 800, "the request finished before the crash"
        octave_rig.start()
        client.close()
        client = octave_rig.client(context)
        reply = client.ask(_present(client.session, rid, images, repeats=20), rid, timeout=120)
        client.close()
    finally:
        context.destroy(linger=0)
    records = reply.header["records"]
    assert reply.type == "result" and len(records) == 800
    assert len({r["trial_id"] for r in records}) == 800, "two records of one request share a trial_id"


def test_png_is_advertised_only_where_imread_decodes_it(tmp_path):
    broken = tmp_path / "no_png"
    broken.mkdir()
    (broken / "imread.m").write_text("function varargout = imread(varargin)\n  error('no PNG decoder here');\nend\n")
    rig = OctaveRig(tmp_path, first=f"addpath('{broken}'); ")
    context = zmq.Context()
    try:
        welcome = Client(context, rig.endpoint, timeout=30).hello()
    finally:
        context.destroy(linger=0)
        rig.stop()
    assert welcome["encodings"] == ["raw"]
    assert "png off: imread cannot decode PNG (no PNG decoder here)" in rig.out.read_text()


def _kill_and_restart(rig):
    rig.kill()
    time.sleep(0.5)
    rig.start()


def test_a_result_line_torn_by_a_crash_is_not_an_answer(tmp_path, octave_rig):
    """A crash while the rig appends a request's result to its cache file leaves a torn last line
    (docs/protocol.md §5: the request is then in the log, not answered). The restarted rig used
    to take the torn text for the cached result and send it on every resend: the client counted
    each reply malformed and gave up. The request is now continued from its trials (nothing
    presented again) and answered whole, and the rig's next line starts a line of its own, so
    the answer survives another restart."""
    context = zmq.Context()
    cache = tmp_path / "cache.tsv"
    rid, images = "torn-1", _images(3, side=4)
    try:
        first = octave_rig.answer_then_crash(context, rid, images)
        assert first.type == "result" and len(first.header["records"]) == 6
        text = cache.read_text()
        result_line = text.rstrip("\n").rsplit("\n", 1)[-1]
        assert result_line.startswith(f"{rid}\t") and "\ttrial\t" not in result_line
        torn = result_line[: len(result_line) // 2]  # torn in the middle of the result
        cache.write_text(text[: len(text) - 1 - len(result_line)] + torn)
        octave_rig.start()
        replies = []
        for restart in (True, False):  # the resend, then again after one more restart
            client = octave_rig.client(context)
            replies.append(client.ask(_present(client.session, rid, images), rid, timeout=60))
            client.close()
            if restart:
                _kill_and_restart(octave_rig)
    finally:
        context.destroy(linger=0)
    for reply in replies:
        assert reply.type == "result" and reply.header["complete"]
        assert reply.header["records"] == first.header["records"]  # nothing presented again
    lines = cache.read_text().splitlines()  # 6 trials, the torn line, the answer on a line of its own (once)
    assert sum("\ttrial\t" in line for line in lines) == 6 and lines[-2] == torn
    answer = lines[-1].split("\t")
    assert len(answer) == 3 and answer[0] == rid and len(json.loads(answer[2])["records"]) == 6


def test_a_result_rebuilt_from_trials_after_a_crash_is_bit_identical(tmp_path, octave_rig):
    """A request whose result line a crash kept out of the cache file is answered again from its
    trial lines. Octave's jsondecode reads about one double in six a unit in the last place off
    (jsonencode writes them exactly), so the onsets and values of the rebuilt result differed in
    their last digit from those first sent; they are now read back exactly."""
    context = zmq.Context()
    rid, images = "exact-1", _images(20, side=4)
    try:
        first, client = octave_rig.answer_then_lose_the_result(context, rid, images)
        again = client.ask(_present(client.session, rid, images), rid, timeout=60)
        client.close()
    finally:
        context.destroy(linger=0)
    assert again.type == "result" and again.header["records"] == first.header["records"]  # float64 ==: bit-identical


def test_pongs_count_the_presentations_of_answered_and_interrupted_requests(tmp_path, octave_rig):
    """docs/protocol.md §4.3: a pong's progress is the presentations of the request so far, those
    before a rig crash included. The rig answered 0 for an answered request (`done`) and for one
    a crash interrupted (`unknown`: its trials in the cache file, its result not)."""
    context = zmq.Context()
    cache = tmp_path / "cache.tsv"
    rid, images = "counted-1", _images(3, side=4)
    try:
        client = octave_rig.client(context)
        assert client.ask(_present(client.session, rid, images), rid, timeout=60).type == "result"
        done = client.ping(rid).header
        client.close()
        octave_rig.kill()
        lines = cache.read_text().splitlines(keepends=True)
        assert lines[-1].startswith(f"{rid}\t{{") and "\ttrial\t" in lines[-2]
        cache.write_text("".join(lines[:-1]))  # the crash came before the result was written
        octave_rig.start()
        client = octave_rig.client(context)
        interrupted = client.ping(rid).header
        client.close()
    finally:
        context.destroy(linger=0)
    assert (done["state"], done["progress"]) == ("done", 6)
    assert (interrupted["state"], interrupted["progress"]) == ("unknown", 6)


def test_a_resend_of_an_interrupted_request_with_another_payload_is_bad_message(tmp_path, octave_rig):
    """docs/protocol.md §5: a resend whose payload differs from the cached one is `bad-message`;
    the cache keeps each request's payload, answered or not. The rig wrote a request's payload
    only with its result, so after a crash mid-request a resend of its id with other images (here
    another shape) was presented and answered beside the trials of the images shown before the
    crash."""
    context = zmq.Context()
    rid, images = "interrupted-1", _images(3, side=4)
    try:
        first, client = octave_rig.answer_then_lose_the_result(context, rid, images)
        other = client.ask(_present(client.session, rid, _images(3, side=8)), rid, timeout=60)
        same = client.ask(_present(client.session, rid, images), rid, timeout=60)
        client.close()
    finally:
        context.destroy(linger=0)
    assert (other.type, other.header.get("code")) == ("error", "bad-message")
    assert same.type == "result" and [r["trial_id"] for r in same.header["records"]] == list(range(6))
