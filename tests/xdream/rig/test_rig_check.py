"""`xdream rig check`: it passes against the reference rigs (`xdream rig simulate`, restarted by
the checker, and experiments/rig_minimal) and fails on the right line, naming the spec
section, against deliberately broken rigs (the simulator with one behaviour broken)."""

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from responders.rig_sim import RigSimulator
from responders.torch_unit import TorchUnit
from xdream.rig.check import Conformance, format_table
from xdream.rig.protocol import ProtocolError, decode, error_reply

ROOT = Path(__file__).resolve().parents[3]
TARGET = "efficientnet_lite0:_blocks.2:5"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_cli(xdream_cmd, endpoint, *extra):
    out = subprocess.run([*xdream_cmd, "rig", "check", endpoint, "--timeout", "5", *extra], capture_output=True,
                         text=True, timeout=600)
    rows = {line[6:].split("  ")[0].strip(): line[:4] for line in out.stdout.splitlines()
            if line[:4] in ("PASS", "FAIL", "SKIP")}
    return out, rows


def wait_for_answer(endpoint):
    import zmq

    context = zmq.Context()
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            sock.send_multipart([json.dumps({"protocol": "xdream-rig/1", "type": "ping", "session": "w",
                                             "request_id": "w"}).encode()])
            if sock.poll(500):
                return
            sock.close()
        raise AssertionError(f"no rig at {endpoint}")
    finally:
        context.destroy(linger=0)


def test_the_simulator_passes_every_check_across_a_restart(tmp_path, xdream_cmd):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    start = tmp_path / "start.sh"
    start.write_text(f"{sys.executable} -m xdream.cli rig simulate --target {TARGET} --input-size 64 --endpoint "
                     f"{endpoint} --log {tmp_path / 'log.jsonl'} --channels 2 --max-seconds 300 "
                     f">/dev/null 2>&1 &\necho $! > {tmp_path / 'pid'}\n")
    restart = f"kill $(cat {tmp_path / 'pid'}); sleep 1; sh {start}"
    subprocess.run(["sh", str(start)], check=True)
    try:
        wait_for_answer(endpoint)
        out, rows = check_cli(xdream_cmd, endpoint, "--restart-command", restart)
        print(out.stdout)
        assert out.returncode == 0, out.stdout + out.stderr
        assert set(rows.values()) == {"PASS"} and len(rows) == len(Conformance.CHECKS)
        assert "greetings forgotten, cache kept" in out.stdout
    finally:
        subprocess.run(f"kill $(cat {tmp_path / 'pid'})", shell=True)


def test_the_minimal_rig_passes(xdream_cmd):
    proc = subprocess.Popen([sys.executable, str(ROOT / "experiments" / "rig_minimal" / "rig.py"), "tcp://127.0.0.1:*"],
                            stdout=subprocess.PIPE, text=True)
    try:
        endpoint = proc.stdout.readline().split()[-1]
        out, rows = check_cli(xdream_cmd, endpoint)
        print(out.stdout)
        assert out.returncode == 0, out.stdout
        assert rows["present/result png"] == "SKIP" and rows["restart"] == "SKIP"  # raw only, cache in memory
        assert set(rows.values()) == {"PASS", "SKIP"} and list(rows.values()).count("PASS") == len(rows) - 2
    finally:
        proc.terminate()
        proc.wait(10)


# -- broken rigs: the reference simulator with one behaviour broken each -----------------------

class NoCache(RigSimulator):
    """Presents a resent request again."""

    def _on_present(self, msg, envelope):
        self.log.done.pop(msg.request_id, None)
        self.log.payloads.pop(msg.request_id, None)
        self.log.trials.pop(msg.request_id, None)
        super()._on_present(msg, envelope)


class WelcomeWithoutChannels(RigSimulator):
    def _send(self, envelope, header):
        super()._send(envelope, {k: v for k, v in header.items() if not (header["type"] == "welcome" and k == "channels")})


class NoSessions(RigSimulator):
    """Answers presents from sessions it never greeted."""

    def _on_present(self, msg, envelope):
        self.sessions.add(msg.header["session"])
        super()._on_present(msg, envelope)


class NaNValues(RigSimulator):
    """Writes missing values as NaN literals (Python's json.dumps default)."""

    def _send(self, envelope, header):
        if header["type"] == "result":
            header = {**header, "records": [{**r, "values": [float("nan")] * len(r["values"])}
                                            for r in header["records"]]}
        self.socket.send_multipart(envelope + [json.dumps({"protocol": "xdream-rig/1", **header}).encode()])


class WrongLimitCode(RigSimulator):
    """Answers every limit with bad-message instead of too-large."""

    def _receive(self, frames):
        envelope, body = frames[:1], frames[1:]
        try:
            msg = decode(body, self.limits, expect=("hello", "present", "ping"))
            getattr(self, "_on_" + msg.type)(msg, envelope)
        except ProtocolError as e:
            code = "bad-message" if e.code == "too-large" else e.code
            self.socket.send_multipart(envelope + error_reply(e.request_id, code, str(e)))


class DeafToPings(RigSimulator):
    def _on_ping(self, msg, envelope):
        pass


class SilentOnGarbage(RigSimulator):
    """Ignores messages it cannot parse instead of answering bad-message."""

    def _receive(self, frames):
        try:
            json.loads(bytes(frames[1]))
        except ValueError:
            return
        super()._receive(frames)


class PngSizeUnchecked(RigSimulator):
    """Scores PNG images without decoding them, so a PNG of another size than the header's passes."""

    def _clean_responses(self, msg):
        if msg.header["encoding"] == "png":
            return np.zeros(len(msg.frames))
        return super()._clean_responses(msg)


@pytest.mark.parametrize("rig,failing,section", [
    (NoCache, "idempotent resend", "§5"),
    (WelcomeWithoutChannels, "handshake", "§4"),
    (NoSessions, "unknown session", "§4.2, §5"),
    (NaNValues, "present/result raw", "§2"),
    (WrongLimitCode, "limits and error codes", "§3"),
    (DeafToPings, "pings", "§4.3"),
    (SilentOnGarbage, "malformed input", "§2, §4.4"),
    (PngSizeUnchecked, "present/result png", "§4.2"),
])
def test_a_broken_rig_fails_on_the_right_check(tmp_path, rig, failing, section):
    sim = rig(TorchUnit(TARGET, input_size=64), endpoint="tcp://127.0.0.1:*", log=tmp_path / "log.jsonl")
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [sim.serve(0.1) for _ in iter(stop.is_set, True)], daemon=True)
    thread.start()
    checker = Conformance(sim.endpoint, timeout=1.0)
    try:
        outcomes = {o.name: o for o in checker.run()}
    finally:
        checker.close()
        stop.set()
        thread.join(10)
        sim.close()
    table = format_table(sim.endpoint, list(outcomes.values()))
    print(table)
    assert outcomes[failing].status == "FAIL", table
    assert section in outcomes[failing].section or section in outcomes[failing].detail
    assert re.search(rf"^FAIL  {re.escape(failing)} ", table, flags=re.M)
    if rig is not WelcomeWithoutChannels:  # (without a handshake nothing else can be checked)
        assert outcomes["handshake"].status == "PASS"


def test_no_rig_fails_the_handshake_and_a_bad_endpoint_is_a_one_line_error(xdream_cmd):
    out, rows = check_cli(xdream_cmd, f"tcp://127.0.0.1:{free_port()}", "--timeout", "0.5")
    assert out.returncode == 1 and rows.pop("handshake") == "FAIL" and set(rows.values()) == {"SKIP"}
    assert "no answer to hello within 0.5 s (§4.1)" in out.stdout
    out = subprocess.run([*xdream_cmd, "rig", "check", "localhost:5555"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "is not an endpoint" in out.stderr
