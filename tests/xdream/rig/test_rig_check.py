"""`xdream rig check`: it passes against the reference rigs (`xdream rig simulate`, restarted by
the checker, and experiments/rig_minimal) and fails on the right line, naming the spec
section, against deliberately broken rigs (the simulator with one behaviour broken)."""

import contextlib
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from responders.rig_sim import RigSimulator
from responders.torch_unit import TorchUnit
from xdream.rig.check import CheckFailed, Conformance, format_table
from xdream.rig.ports import free_loopback_port
from xdream.rig.protocol import Limits, ProtocolError, decode, error_reply

ROOT = Path(__file__).resolve().parents[3]
TARGET = "efficientnet_lite0:_blocks.2:5"



ROW = re.compile(r"^(PASS|FAIL|SKIP|NOT RUN|WAIVED) +(.+?)  +§")


def check_cli(xdream_main, endpoint, *extra):
    """``xdream rig check ENDPOINT --timeout 5 EXTRA`` in this process: (result, rows by check)."""
    out = xdream_main("rig", "check", endpoint, "--timeout", "5", *extra)
    rows = {m.group(2).strip(): m.group(1) for m in map(ROW.match, out.stdout.splitlines()) if m}
    return out, rows


@contextlib.contextmanager
def serving(sim):
    """``sim`` answering on a thread for the block, closed after it."""
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [sim.serve(0.1) for _ in iter(stop.is_set, True)], daemon=True)
    thread.start()
    try:
        yield sim
    finally:
        stop.set()
        thread.join(10)
        sim.close()


def against(sim, action, **options):
    """What ``action(checker)`` returns for a checker of ``sim`` (served on a thread) made with ``options``."""
    with serving(sim):
        checker = Conformance(sim.endpoint, **options)
        try:
            return action(checker)
        finally:
            checker.close()


def greeted(check: str):
    """The action: the handshake, then ``Conformance.<check>`` alone."""
    def action(checker):
        checker.welcome = checker.client.hello()
        return getattr(checker, check)()
    return action


def all_checks(checker) -> dict:
    return {o.name: o for o in checker.run()}


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


def test_the_simulator_passes_every_check_across_a_crash_mid_request(tmp_path, xdream_main):
    endpoint = f"tcp://127.0.0.1:{free_loopback_port()}"
    start = tmp_path / "start.sh"
    start.write_text(f"{sys.executable} -m xdream.cli rig simulate --target {TARGET} --input-size 64 --endpoint "
                     f"{endpoint} --log {tmp_path / 'log.jsonl'} --channels 2 --presentation-ms 5 --max-seconds 300 "
                     f">/dev/null 2>&1 &\necho $! > {tmp_path / 'pid'}\n")
    restart = f"kill -9 $(cat {tmp_path / 'pid'}); sleep 0.3; sh {start}"
    subprocess.run(["sh", str(start)], check=True)
    try:
        wait_for_answer(endpoint)
        out, rows = check_cli(xdream_main, endpoint, "--restart-command", restart)
        print(out.stdout)
        assert out.returncode == 0, out.stdout + out.stderr
        assert set(rows.values()) == {"PASS"} and len(rows) == len(Conformance.CHECKS)
        assert "raw/float32/C1, png/uint8/C3, png/uint8/C1" in out.stdout  # every kind it advertises
        assert re.search(r"killed at \d+/128; resumed from a new session: 0 re-presented, cache kept", out.stdout)
        assert "verdict: PASS (every MUST checked, content verified)" in out.stdout
    finally:
        subprocess.run(f"kill $(cat {tmp_path / 'pid'})", shell=True)


def test_without_a_restart_command_the_verdict_is_incomplete(xdream_main):
    proc = subprocess.Popen([sys.executable, str(ROOT / "experiments" / "rig_minimal" / "rig.py"), "tcp://127.0.0.1:*",
                             "--trial-ms", "5"], stdout=subprocess.PIPE, text=True)
    try:
        endpoint = proc.stdout.readline().split()[-1]
        out, rows = check_cli(xdream_main, endpoint)
        print(out.stdout)
        assert out.returncode == 3, out.stdout
        assert rows.pop("restart mid-request") == "NOT RUN" and rows.pop("png") == "SKIP"
        assert set(rows.values()) == {"PASS"}
        assert "verdict: INCOMPLETE (1 MUST not run). To complete: restart mid-request: give --restart-command CMD" \
            in out.stdout
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
    (NoCache, "resend, new session", "§5"),
    (WelcomeWithoutChannels, "handshake", "§4"),
    (NoSessions, "unknown session", "§4.2, §5"),
    (NaNValues, "present/result", "§2"),
    (WrongLimitCode, "limits and error codes", "§3"),
    (DeafToPings, "pings", "§4.3"),
    (SilentOnGarbage, "malformed input", "§2, §4.4"),
    (PngSizeUnchecked, "png", "§4.2"),
])
def test_a_broken_rig_fails_on_the_right_check(tmp_path, rig, failing, section):
    sim = rig(TorchUnit(TARGET, input_size=64), endpoint="tcp://127.0.0.1:*", log=tmp_path / "log.jsonl")
    outcomes = against(sim, all_checks, timeout=1.0)
    table = format_table(sim.endpoint, list(outcomes.values()))
    print(table)
    assert outcomes[failing].status == "FAIL", table
    assert section in outcomes[failing].section or section in outcomes[failing].detail
    assert re.search(rf"^FAIL +{re.escape(failing)}  ", table, flags=re.M)
    if rig is not WelcomeWithoutChannels:  # (without a handshake nothing else can be checked)
        assert outcomes["handshake"].status == "PASS"


@pytest.mark.parametrize("limits,noted", [
    (Limits(max_message_bytes=1 << 20), "; a frame of exactly max_frame_bytes (16777216) not sent (with its header "
                                        "it is above max_message_bytes 1048576)"),
    (Limits(max_images=16, max_message_bytes=64 << 20), "; a whole message above 67108864 bytes not sent (the "
                                                        "decoded-size row covers it)"),
])
def test_a_rig_that_advertises_lower_limits_passes_the_limit_checks(tmp_path, limits, noted):
    """The limits a rig advertises in its welcome (§4.1) are kept: a check of one limit does not
    send a message that another one refuses (the reference simulator, its limits lowered)."""
    sim = RigSimulator(TorchUnit(TARGET, input_size=64), endpoint="tcp://127.0.0.1:*", log=tmp_path / "log.jsonl",
                       limits=limits)
    detail = against(sim, greeted("check_limits_and_error_codes"), timeout=2.0)
    assert detail.endswith(" refusals with the right code" + noted), detail


def test_a_rig_that_takes_few_images_per_request_is_sent_no_more(tmp_path):
    """A rig that advertises ``max_images`` 5 (§3: a client never sends more) passes every check
    that runs without a restart command: the long requests (pings, deadline, resend while
    presenting) show fewer images more often, never a request it must refuse."""
    sim = RigSimulator(TorchUnit(TARGET, input_size=64), endpoint="tcp://127.0.0.1:*", log=tmp_path / "log.jsonl",
                       limits=Limits(max_images=5), presentation_ms=5)
    outcomes = against(sim, all_checks, timeout=2.0)
    assert outcomes.pop("restart mid-request").status == "NOT RUN"
    assert {name: o.status for name, o in outcomes.items() if o.status != "PASS"} == {}, outcomes
    assert "/80 records" in outcomes["deadline"].detail  # 5 images shown 16 times: the 80 presentations of 40 x 2


class RefusesLongRequests(RigSimulator):
    """Answers a present of more than 16 images with an error (its limit not advertised)."""

    def _on_present(self, msg, envelope):
        if len(msg.header["image_ids"]) > 16:
            raise ProtocolError("cannot show more than 16 images in a block", "internal", msg.request_id)
        super()._on_present(msg, envelope)


@pytest.mark.parametrize("check", ["check_resend_while_presenting", "check_restart_mid_request"])
def test_a_check_waiting_for_presenting_names_the_error_the_request_got(tmp_path, check):
    """A check that waits for a pong saying 'presenting' fails at once on an error reply to its
    request, and names it (not: no pong said 'presenting')."""
    sim = RefusesLongRequests(TorchUnit(TARGET, input_size=64), endpoint="tcp://127.0.0.1:*",
                              log=tmp_path / "log.jsonl", presentation_ms=5)
    with pytest.raises(CheckFailed) as failure:
        against(sim, greeted(check), timeout=2.0, restart_command="exit 1")
    assert str(failure.value) == ("present answered with error internal (cannot show more than 16 images in a "
                                  "block) (§4.2)")


def test_no_rig_fails_the_handshake_and_bad_input_is_a_one_line_error(xdream_main):
    out, rows = check_cli(xdream_main, f"tcp://127.0.0.1:{free_loopback_port()}", "--timeout", "0.5")
    assert out.returncode == 1 and rows.pop("handshake") == "FAIL" and set(rows.values()) == {"NOT RUN"}
    assert "no answer to hello within 0.5 s (§4.1)" in out.stdout
    for argv, words in ((["localhost:5555"], "is not an endpoint"), (["tcp://127.0.0.1:99999"], "port 1..65535"),
                        (["tcp://127.0.0.1:5555", "--timeout"], "expected one argument"),
                        (["tcp://127.0.0.1:5555", "--bogus"], "unrecognized arguments: --bogus")):
        started = time.monotonic()
        out = xdream_main("rig", "check", *argv)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and words in out.stderr, out.stderr
        assert out.stdout == "" and time.monotonic() - started < 60


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e300"])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_a_one_line_error(xdream_main, value):
    out = xdream_main("rig", "check", f"tcp://127.0.0.1:{free_loopback_port()}", "--timeout", value)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"--timeout must be a positive number of seconds (at most 86400), got {float(value)}" in out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize("command", ["", "  "], ids=["empty", "blank"])
def test_an_empty_restart_command_is_a_one_line_error(xdream_main, command):
    """An empty command would run nothing and then fail the restart check as a rig that kept its sessions."""
    out = xdream_main("rig", "check", f"tcp://127.0.0.1:{free_loopback_port()}", "--timeout", "0.5",
                      "--restart-command", command)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"--restart-command is empty (got {command!r})" in out.stderr
    assert out.stdout == ""


def restart_check_failure(tmp_path, restart_command):
    """What the restart check raises against the simulator with ``restart_command``."""
    sim = RigSimulator(TorchUnit(TARGET, input_size=64), endpoint="tcp://127.0.0.1:*", log=tmp_path / "log.jsonl",
                       presentation_ms=5)
    try:
        against(sim, greeted("check_restart_mid_request"), timeout=2.0, restart_command=restart_command)
    except Exception as e:
        return e


def test_a_failing_restart_command_is_a_fail_row(tmp_path):
    failure = restart_check_failure(tmp_path, "echo cannot restart >&2; exit 7")
    assert type(failure).__name__ == "CheckFailed"
    assert str(failure) == "the restart command exited with status 7: cannot restart"


def test_a_restart_command_is_done_when_its_shell_exits_though_what_it_started_runs_on(tmp_path):
    """A restart command that starts the rig in the background without redirecting its output
    (docs/protocol.md §15: ``'kill -9 PID; python rig.py ... &'``) is over when its shell exits:
    the rig it started holds no pipe that the checker waits to be closed."""
    pid = tmp_path / "pid"
    started = time.monotonic()
    try:
        failure = restart_check_failure(tmp_path, f"sleep 300 & echo $! > {pid}; echo cannot restart >&2; exit 7")
    finally:
        subprocess.run(f"kill $(cat {pid})", shell=True)
    assert str(failure) == "the restart command exited with status 7: cannot restart"
    assert time.monotonic() - started < 60


def test_a_bound_checker_waits_for_a_restarted_rig_to_dial_in_again(tmp_path):
    """With --bind, the restart check waits up to 120 s for the restarted rig to dial in again, as
    it waits for a rig it connects to, not --timeout: a rig takes longer to start than to answer."""
    endpoint = f"tcp://127.0.0.1:{free_loopback_port()}"
    sim = RigSimulator(TorchUnit(TARGET, input_size=64), endpoint="tcp://127.0.0.1:*", log=tmp_path / "log.jsonl")
    sim.socket.unbind(sim.endpoint)  # the rig dials in (rigs.md, who binds)
    checker = Conformance(endpoint, timeout=0.5, bind=True)
    stop = threading.Event()

    def start_and_serve():
        time.sleep(2)  # the rig starting up again
        sim.socket.connect(endpoint)
        while not stop.is_set():
            sim.serve(0.1)

    thread = threading.Thread(target=start_and_serve, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        checker._wait_for_rig()
    finally:
        checker.close()
        stop.set()
        thread.join(10)
        sim.close()
    assert time.monotonic() - started > 1.5


def test_the_simulator_takes_a_present_without_generation(tmp_path):
    """`generation` is optional (§4.2): the simulator presents such a request and stays up."""
    import zmq

    from xdream.rig.check import Client, _images, _present
    from xdream.rig.protocol import encode

    sim = RigSimulator(TorchUnit(TARGET, input_size=64), endpoint="tcp://127.0.0.1:*", log=tmp_path / "log.jsonl")
    context = zmq.Context()
    with serving(sim):
        try:
            client = Client(context, sim.endpoint, timeout=10)
            client.hello()
            frames = _present(client.session, "no-generation", _images(2))
            header = json.loads(frames[0])
            del header["generation"]
            request = encode({k: v for k, v in header.items() if k != "protocol"}, frames[1:])
            reply = client.ask(request, "no-generation")
            assert reply.type == "result" and len(reply.header["records"]) == 4
            assert client.ping("after").type == "pong"
            logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
            assert {e["generation"] for e in logged if e["event"] == "trial"} == {None}
        finally:
            context.destroy(linger=0)
