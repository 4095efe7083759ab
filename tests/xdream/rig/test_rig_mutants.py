"""Mutation tests of `xdream rig check`: the minimal rig with one defect each
(experiments/rig_minimal/mutants.py),
every one failed on the check (and spec section) it breaks, while the unchanged rig and a
conformant variant (channels listed in another order) pass, content verified.

All rigs run at once as subprocesses on their own loopback ports, with a presentation time, a
persisted log and a restart command, and are checked in parallel threads (the checker mostly
waits): one shared session-scoped fixture, so the whole module costs about one slow check.
"""

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from xdream.rig.check import Conformance, format_table, verdict
from xdream.rig.ports import free_loopback_port, free_loopback_ports

MUTANTS = Path(__file__).resolve().parents[3] / "experiments" / "rig_minimal" / "mutants.py"
EXPECTED = {  # defect -> (the check that must fail, its section)
    "session_keyed_cache": ("resend, new session", "§5"),
    "ids_swapped": ("content probe", "§4.5"),
    "restart_from_first": ("restart mid-request", "§5"),
    "deadline_ignored": ("deadline", "§6"),
    "no_cache": ("resend, new session", "§5"),
    "not_persisted": ("restart mid-request", "§5"),
    "any_session": ("unknown session", "§5"),
    "greetings_persisted": ("restart mid-request", "§5"),
    "no_probe": ("content probe", "§4.5"),
    "wrong_probe_rule": ("content probe", "§4.5"),
    "channels_mislabelled": ("content probe", "§4.5"),
    "nan_literal": ("present/result", "§4.2"),
    "too_large_as_bad_message": ("limits and error codes", "§3"),
    "unsupported_as_bad_message": ("limits and error codes", "§3"),
    "version_as_bad_message": ("limits and error codes", "§3"),
    "deaf_to_pings": ("pings", "§4.3"),
    "silent_on_garbage": ("malformed input", "§4.4"),
    "payload_not_compared": ("resend with another payload", "§5"),
    "duplicate_records": ("present/result", "§4.2"),
    "complete_but_short": ("present/result", "§4.2"),
    "extra_record_field": ("present/result", "§4.2"),
    "nan_pixels_taken": ("float32", "§4.2"),
    "long_ids_taken": ("limits and error codes", "§3"),
    "resend_restarts": ("resend while presenting", "§5"),
    "oldest_sender_answered": ("resend while presenting", "§5"),
    "payload_not_compared_while_presenting": ("resend while presenting", "§5"),
    "unknown_is_done": ("pings", "§4.3"),
    "partial_result_not_final": ("deadline", "§6"),
    "header_size_unchecked": ("limits and error codes", "§3"),
    "decoded_size_unchecked": ("limits and error codes", "§3"),
    "welcome_without_channels": ("handshake", "§4.1"),
    "busy_to_hello": ("resend while presenting", "§5"),
    "rep_socket": ("handshake", "§1"),
    "cache_by_payload": ("content probe", "§4.5"),
    "new_session_resend_restarts": ("resend while presenting", "§5"),
    "cache_expires_for_new_session": ("deadline", "§6"),
    "interrupted_is_presenting": ("restart mid-request", "§4.3"),
    "large_frames_cut": ("content probe", "§4.5"),
}
CONFORMANT = ("none", "channels_reordered")



class MutantRig:
    """One mutant as a background process restartable by a shell command (kill -9, start again)."""

    def __init__(self, defect: str, folder: Path, content: bool = True, port: int | None = None):
        self.content = content
        folder.mkdir()
        self.endpoint = f"tcp://127.0.0.1:{port or free_loopback_port()}"
        self.pid, self.out = folder / "pid", folder / "out"
        start = folder / "start.sh"
        start.write_text(f"{sys.executable} {MUTANTS} {defect} {self.endpoint} --log {folder / 'log'} "
                         f"--trial-ms 5 >>{self.out} 2>&1 &\necho $! > {self.pid}\n")
        self.restart = f"kill -9 $(cat {self.pid}); sleep 0.2; sh {start}"
        subprocess.run(["sh", str(start)], check=True)

    def wait(self) -> None:
        end = time.monotonic() + 60
        while not (self.out.exists() and "rig listening" in self.out.read_text()):
            assert time.monotonic() < end, self.out.read_text() if self.out.exists() else "no output"
            time.sleep(0.05)

    def check(self):
        self.wait()
        checker = Conformance(self.endpoint, timeout=2.0, restart_command=self.restart, content=self.content)
        try:
            return checker.run()
        finally:
            checker.close()

    def stop(self) -> None:
        subprocess.run(f"kill -9 $(cat {self.pid})", shell=True, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """Every rig checked once: defect -> (outcomes by check name, the printed table)."""
    root = tmp_path_factory.mktemp("mutants")
    defects = (*CONFORMANT, *EXPECTED)
    ports = free_loopback_ports(len(defects) + 1)  # distinct: the rigs start before any of them binds
    rigs = {d: MutantRig(d, root / d, port=port) for d, port in zip(defects, ports)}
    rigs["no_probe --no-content"] = MutantRig("no_probe", root / "no_probe_waived", content=False, port=ports[-1])
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            outcomes = dict(zip(rigs, pool.map(lambda rig: rig.check(), rigs.values())))
    finally:
        for rig in rigs.values():
            rig.stop()
    print(f"{len(rigs)} rigs checked in {time.monotonic() - started:.1f} s")
    return {d: ({o.name: o for o in out}, format_table(rigs[d].endpoint, out)) for d, out in outcomes.items()}


@pytest.mark.parametrize("defect", CONFORMANT)
def test_a_conformant_rig_passes_with_content_verified(verdicts, defect):
    outcomes, table = verdicts[defect]
    print(table)
    assert verdict(list(outcomes.values()))[0] == 0, table
    assert {o.status for o in outcomes.values()} == {"PASS", "SKIP"} and outcomes["png"].status == "SKIP"
    assert "PASS (every MUST checked, content verified)" in table
    assert "killed at" in outcomes["restart mid-request"].detail


def test_no_content_waives_the_probe_and_the_verdict_says_so(verdicts):
    outcomes, table = verdicts["no_probe --no-content"]
    print(table)
    assert outcomes["content probe"].status == "WAIVED"
    assert {o.status for name, o in outcomes.items() if name != "content probe"} == {"PASS", "SKIP"}
    assert verdict(list(outcomes.values())) == (0, "verdict: PASS WITHOUT CONTENT PROBE (--no-content: records were "
                                                   "not checked to belong to the images they name)")


@pytest.mark.parametrize("defect", sorted(EXPECTED))
def test_a_broken_rig_fails_on_the_section_it_breaks(verdicts, defect):
    outcomes, table = verdicts[defect]
    print(table)
    name, section = EXPECTED[defect]
    assert outcomes[name].status == "FAIL", table
    assert section in outcomes[name].section or section in outcomes[name].detail, table
    assert verdict(list(outcomes.values()))[0] == 1 and "verdict: FAIL" in table


@pytest.mark.parametrize("defect", sorted(d for d, (name, _) in EXPECTED.items() if name == "resend while presenting"))
def test_a_request_a_failed_row_left_presenting_fails_no_later_row(verdicts, defect):
    """The rig is still presenting the request of the failed resend-while-presenting row: the rows after
    it wait until the rig is idle, so the report names that one failure, not a cascade of 'busy'."""
    outcomes, table = verdicts[defect]
    print(table)
    assert [name for name, o in outcomes.items() if o.status == "FAIL"] == ["resend while presenting"], table


def test_the_client_names_a_rep_rig(tmp_path):
    """The `zmq` responder's handshake error says that a REP rig must bind ROUTER (§1)."""
    from responders.zmq_client import RigUnavailableError, ZmqResponder

    rig = MutantRig("rep_socket", tmp_path / "rep")
    try:
        rig.wait()
        with pytest.raises(RigUnavailableError, match="the rig binds a REP socket.*bind a ROUTER socket"):
            ZmqResponder(rig.endpoint, heartbeat=0.1, liveness=2, timeout=1.0)
    finally:
        rig.stop()
