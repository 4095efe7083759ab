"""``xdream rig check ENDPOINT``: does a rig implement ``xdream-rig/1`` (docs/protocol.md)?

A conformance checker a lab runs against its own rig before an animal is in: it connects as a
client and exercises the handshake, presentations (raw and, if the rig takes it, png),
repeats, the idempotent resend, sessions, limits and error codes, deadlines, pings and
malformed input, then prints a pass/fail table in which each failure names the section of the
spec it breaks; the exit status is 0 when nothing failed, 1 otherwise. With
``--restart-command CMD`` it also restarts the rig (CMD is run by the shell) and checks that
greetings are forgotten and the reply cache is not (§5). Every image is presented: run it with
the rig in a test mode, or accept a few dozen presentations.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import uuid
from dataclasses import dataclass

import numpy as np
import zmq

from xdream.core.errors import ConfigError
from xdream.rig.attach import attach, wait_for_peer
from xdream.rig.protocol import PROTOCOL, Limits, ProtocolError, decode, encode, image_frames


@dataclass
class Outcome:
    """One line of the table: the check, its spec section, PASS / FAIL / SKIP and why."""

    name: str
    section: str
    status: str
    detail: str = ""


class CheckFailed(Exception):
    """A check found the rig breaking the spec (the message says how)."""


class Skip(Exception):
    """A check that does not apply to this rig."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Client:
    """A DEALER connection to the rig that sends raw frames and decodes what comes back."""

    def __init__(self, context: zmq.Context, endpoint: str, timeout: float, bind: bool = False):
        self.context, self.endpoint, self.timeout, self.bind = context, endpoint, timeout, bind
        self.session = "check-" + uuid.uuid4().hex[:12]
        self.socket = None
        self.reopen()

    def reopen(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        attach(self.socket, self.endpoint, self.bind)

    def send(self, frames: list) -> None:
        if self.bind:
            _require(wait_for_peer(self.socket, self.timeout), f"no rig dialled in to {self.endpoint} within "
                                                               f"{self.timeout:g} s (§1)")
        self.socket.send_multipart(frames, copy=False)

    def receive(self, timeout: float | None = None):
        """The next message decoded, or None after ``timeout`` seconds of silence. A reply
        that breaks the protocol fails the check that waits for it."""
        if not self.socket.poll(int(1000 * (self.timeout if timeout is None else timeout))):
            return None
        frames = self.socket.recv_multipart()
        try:
            return decode(frames, expect=("welcome", "result", "pong", "error"))
        except ProtocolError as e:
            raise CheckFailed(f"the rig sent a malformed reply: {e} (§2, §4)") from None

    def ask(self, frames: list, rid: str | None, timeout: float | None = None):
        """Send ``frames`` and return the reply naming ``rid`` (errors with a null id count),
        skipping replies to earlier messages; None when none comes within the timeout."""
        self.send(frames)
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while (left := end - time.monotonic()) > 0:
            msg = self.receive(left)
            if msg is None:
                return None
            if msg.request_id == rid or (msg.type == "error" and msg.request_id is None):
                return msg
        return None

    def hello(self, **extra) -> dict:
        rid = _id("h")
        reply = self.ask(encode({"type": "hello", "session": self.session, "request_id": rid, "client": "xdream rig check",
                                 "encodings": ["raw", "png"], "dtypes": ["uint8"], **extra}), rid)
        _require(reply is not None, f"no answer to hello within {self.timeout:g} s (§4.1)")
        _require(reply.type == "welcome", f"hello answered with {_said(reply)}; expected welcome (§4.1)")
        return reply.header

    def close(self) -> None:
        self.socket.close(linger=0)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _said(msg) -> str:
    return f"error {msg.header['code']} ({msg.header['message']})" if msg.type == "error" else repr(msg.type)


def _images(n: int, side: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def _present(session: str, rid: str, images: np.ndarray, *, encoding="raw", repeats=2, ids=None, frames=None,
             **header) -> list:
    ids = ids or [f"c{i}" for i in range(len(images))]
    h = {"type": "present", "session": session, "request_id": rid, "generation": 0, "image_ids": ids,
         "encoding": encoding, "dtype": "uint8", "shape": list(images.shape[1:]), "repeats": repeats,
         "deadline_ms": 60_000, **header}
    return encode(h, image_frames(images, encoding) if frames is None else frames)


class Conformance:
    """The checks, in order; :meth:`run` returns their outcomes."""

    def __init__(self, endpoint: str, timeout: float = 10.0, restart_command: str | None = None, bind: bool = False):
        self.endpoint, self.timeout, self.restart_command = endpoint, timeout, restart_command
        self.context = zmq.Context()
        self.client = Client(self.context, endpoint, timeout, bind)
        self.welcome: dict | None = None
        self.answered: tuple[list, dict] | None = None  # (request frames, result header) of a finished request

    CHECKS = (
        ("handshake", "§4.1"), ("open value sets", "§2"), ("unknown session", "§4.2, §5"),
        ("present/result raw", "§4.2"), ("present/result png", "§4.2"), ("repeats", "§4.2"),
        ("idempotent resend", "§5"), ("resend with another payload", "§5"), ("pings", "§4.3"),
        ("deadline", "§6"), ("limits and error codes", "§3"), ("malformed input", "§2, §4.4"),
        ("restart", "§5"),
    )

    def run(self) -> list[Outcome]:
        outcomes = []
        for name, section in self.CHECKS:
            method = getattr(self, "check_" + name.replace(" ", "_").replace("/", "_").replace("-", "_"))
            try:
                detail = method() or ""
                outcomes.append(Outcome(name, section, "PASS", detail))
            except Skip as e:
                outcomes.append(Outcome(name, section, "SKIP", str(e)))
            except CheckFailed as e:
                outcomes.append(Outcome(name, section, "FAIL", str(e)))
                self.client.reopen()  # a fresh connection for the next check
            if name == "handshake" and outcomes[-1].status == "FAIL":
                outcomes += [Outcome(n, s, "SKIP", "no handshake") for n, s in self.CHECKS[1:]]
                break
        return outcomes

    def close(self) -> None:
        self.client.close()
        self.context.destroy(linger=0)

    # -- helpers ----------------------------------------------------------------------------
    def _result(self, frames: list, rid: str, timeout: float | None = None) -> dict:
        reply = self.client.ask(frames, rid, timeout or self.timeout * 3)
        _require(reply is not None, "no result (nor pong-able progress) within the timeout (§4.2)")
        _require(reply.type == "result", f"present answered with {_said(reply)}; expected result (§4.2)")
        return reply.header

    def _error(self, frames: list, rid: str | None, code: str, what: str) -> None:
        reply = self.client.ask(frames, rid)
        _require(reply is not None, f"{what}: no answer; expected error {code}")
        _require(reply.type == "error" and reply.header["code"] == code,
                 f"{what}: answered {_said(reply)}; expected error {code}")
        if rid is not None and reply.request_id != rid:
            raise CheckFailed(f"{what}: the error names request {reply.request_id!r}; expected {rid!r} (§4.4)")

    def _records_ok(self, result: dict, ids: list[str], repeats: int, complete: bool = True) -> None:
        channels = self.welcome["channels"]
        _require(result["channels"] == channels, f"result channels {result['channels']} differ from the welcome's "
                                                 f"{channels} (§4.2)")
        keys = [(r["image_id"], r["repeat"]) for r in result["records"]]
        _require(len(set(keys)) == len(keys), "a result holds two records for one (image, repeat) (§4.2)")
        _require(all(i in ids and 0 <= k < repeats for i, k in keys), "a record names an image or repeat not in "
                                                                      "the request (§4.2)")
        if complete:
            _require(result["complete"] and set(keys) == {(i, k) for i in ids for k in range(repeats)},
                     f"{len(keys)} records for {len(ids)} images x {repeats} repeats (complete: "
                     f"{result['complete']}); expected one per presentation (§4.2)")

    # -- the checks ---------------------------------------------------------------------------
    def check_handshake(self) -> str:
        self.welcome = self.client.hello()
        _require("raw" in self.welcome["encodings"] and "uint8" in self.welcome["dtypes"],
                 f"the rig takes {self.welcome['encodings']}/{self.welcome['dtypes']}; raw uint8 is required (§4.2)")
        return f"{self.welcome.get('rig', 'a rig')}: channels {self.welcome['channels']}"

    def check_open_value_sets(self) -> None:
        self.client.hello(encodings=["raw", "jpeg"], dtypes=["uint8", "float16"])

    def check_unknown_session(self) -> None:
        rid = _id("u")
        self._error(_present("never-greeted-" + uuid.uuid4().hex[:8], rid, _images(1)), rid, "unknown-session",
                    "a present from a session never greeted")

    def check_present_result_raw(self) -> str:
        images, rid = _images(3), _id("raw")
        frames = _present(self.client.session, rid, images)
        result = self._result(frames, rid)
        self._records_ok(result, ["c0", "c1", "c2"], 2)
        self.answered = (frames, result)
        return f"{len(result['records'])} records"

    def check_present_result_png(self) -> str:
        if "png" not in self.welcome["encodings"]:
            raise Skip("the rig does not take png")
        rid = _id("png")
        self._records_ok(self._result(_present(self.client.session, rid, _images(2, seed=1), encoding="png",
                                               repeats=1), rid), ["c0", "c1"], 1)
        rid = _id("png-size")  # 8x8 in the header, a 4x4 PNG in the frame: refused before anything is shown
        self._error(_present(self.client.session, rid, _images(1), encoding="png",
                             frames=image_frames(_images(1, side=4), "png")), rid, "bad-message",
                    "a png of another size than the header's shape (§4.2)")
        return "2 records; a png of another size refused"

    def check_repeats(self) -> None:
        rid = _id("rep")
        self._records_ok(self._result(_present(self.client.session, rid, _images(2, seed=2), repeats=3), rid),
                         ["c0", "c1"], 3)

    def check_idempotent_resend(self) -> None:
        if self.answered is None:
            raise Skip("no request was answered")
        frames, first = self.answered
        rid = first["request_id"]
        self.client.reopen()  # as a client does after a timeout: another identity
        self.client.hello()
        again = self._result(frames, rid)
        order = lambda h: sorted(json.dumps(r, sort_keys=True) for r in h["records"])  # noqa: E731
        _require(order(again) == order(first), "a resend of an answered request got other records: the rig "
                                               "presented it again (§5: answer from the cache)")

    def check_resend_with_another_payload(self) -> None:
        if self.answered is None:
            raise Skip("no request was answered")
        rid = self.answered[1]["request_id"]
        self._error(_present(self.client.session, rid, _images(2), ids=["other0", "other1"]), rid, "bad-message",
                    "a known request id with other image ids")

    def check_pings(self) -> str:
        rid = _id("p")
        reply = self.client.ask(encode({"type": "ping", "session": self.client.session, "request_id": rid}), rid)
        _require(reply is not None and reply.type == "pong", f"a ping was answered with "
                                                              f"{'nothing' if reply is None else _said(reply)} (§4.3)")
        _require(reply.header["state"] == "unknown", f"a ping for a request never sent is {reply.header['state']!r}; "
                                                     "expected 'unknown' (§4.3)")
        reply = self.client.ask(encode({"type": "ping", "session": "never-greeted", "request_id": rid}), rid)
        _require(reply is not None and reply.type == "pong", "a ping from a session never greeted must get a pong "
                                                              "(§4.3)")
        images, rid = _images(6, seed=3), _id("pp")
        self.client.send(_present(self.client.session, rid, images, repeats=2))
        pongs, result, end = [], None, time.monotonic() + 3 * self.timeout
        while result is None and time.monotonic() < end:
            self.client.send(encode({"type": "ping", "session": self.client.session, "request_id": rid}))
            msg = self.client.receive(self.timeout)
            _require(msg is not None, f"silence for {self.timeout:g} s while presenting: pings must be answered "
                                      "at once (§4.3)")
            if msg.request_id != rid:
                continue
            if msg.type == "pong":
                pongs.append(msg.header["state"])
            elif msg.type == "result":
                result = msg.header
            else:
                raise CheckFailed(f"present answered with {_said(msg)} (§4.2)")
            time.sleep(0.02)
        _require(result is not None, "no result while pinging (§4.2, §4.3)")
        _require(all(s in ("queued", "presenting", "done") for s in pongs),
                 f"pongs during a request said {sorted(set(pongs))}; expected queued, presenting or done (§4.3)")
        reply = self.client.ask(encode({"type": "ping", "session": self.client.session, "request_id": rid}), rid)
        _require(reply is not None and reply.type == "pong" and reply.header["state"] == "done",
                 "a ping for an answered request must get state 'done' (§4.3)")
        return f"{len(pongs)} pongs while presenting"

    def check_deadline(self) -> str:
        images, rid = _images(8, seed=4), _id("d")
        frames = _present(self.client.session, rid, images, repeats=2, deadline_ms=1)
        start = time.monotonic()
        result = self._result(frames, rid, timeout=self.timeout)
        took = time.monotonic() - start
        ids = [f"c{i}" for i in range(8)]
        self._records_ok(result, ids, 2, complete=False)
        _require(result["complete"] == (len(result["records"]) == 16),
                 f"complete is {result['complete']} with {len(result['records'])} of 16 records (§4.2, §6)")
        again = self._result(frames, rid)
        _require(again["records"] == result["records"] and again["complete"] == result["complete"],
                 "a resend after the deadline got another result; a partial result is final (§6)")
        return f"deadline 1 ms: {len(result['records'])}/16 records, answered in {took:.2f} s"

    def check_limits_and_error_codes(self) -> str:
        s, img = self.client.session, _images(1)
        limits = Limits()
        cases = [
            ("repeats 0", _present(s, "lim-r0", img, repeats=0), "lim-r0", "bad-message"),
            ("repeats 101", _present(s, "lim-r101", img, repeats=limits.max_repeats + 1), "lim-r101", "too-large"),
            ("side 4097", _present(s, "lim-side", img, shape=[4097, 8, 3], frames=[b"\0"]), "lim-side", "too-large"),
            ("encoding jpeg", _present(s, "lim-jpeg", img, encoding="jpeg", frames=[b"\0"]), "lim-jpeg", "unsupported"),
            ("a frame too short", _present(s, "lim-short", img, frames=[b"\0" * 10]), "lim-short", "bad-message"),
            ("a frame missing", _present(s, "lim-count", _images(2), frames=[b"\0" * 192]), "lim-count",
             "bad-message"),
            ("an unknown field", _present(s, "lim-field", img, colour="red"), "lim-field", "bad-message"),
            ("another protocol", [json.dumps({"protocol": "xdream-rig/9", "type": "ping", "session": s,
                                              "request_id": "lim-version"}).encode()], "lim-version", "version"),
            ("no protocol", [json.dumps({"type": "ping", "session": s, "request_id": "lim-noproto"}).encode()],
             "lim-noproto", "version"),
        ]
        max_frame = self.welcome.get("max_frame_bytes", limits.max_frame_bytes)
        if max_frame < 1 << 20:  # a rig with a small frame limit: one frame above it must get too-large
            side = int(np.ceil(np.sqrt(max_frame / 3))) + 1
            cases.append(("a frame above max_frame_bytes", _present(s, "lim-frame", _images(1, side=side)),
                          "lim-frame", "too-large"))
        if "png" in self.welcome["encodings"]:
            cases.append(("png decoding to 805 MB", _present(s, "lim-png", img, encoding="png", frames=[b"\0"] * 16,
                                                            ids=[f"c{i}" for i in range(16)], shape=[4096, 4096, 3]),
                          "lim-png", "too-large"))
        for what, frames, rid, code in cases:
            self._error(frames, rid, code, what)
        return f"{len(cases)} refusals with the right code"

    def check_malformed_input(self) -> None:
        for what, frames in (("random bytes", [bytes(range(7, 40))]), ("a JSON list", [b"[1, 2]"]),
                             ("a NaN literal", [b'{"protocol": "xdream-rig/1", "type": "ping", "session": "s", '
                                                b'"request_id": "m1", "x": NaN}']),
                             ("duplicate keys", [b'{"protocol": "xdream-rig/1", "type": "ping", "type": "hello", '
                                                 b'"session": "s", "request_id": "m2"}'])):
            reply = self.client.ask(frames, None)
            _require(reply is not None and reply.type == "error" and reply.header["code"] == "bad-message",
                     f"{what}: answered {'nothing' if reply is None else _said(reply)}; expected error bad-message "
                     "(§2, §4.4)")
        rid = _id("alive")
        reply = self.client.ask(encode({"type": "ping", "session": self.client.session, "request_id": rid}), rid)
        _require(reply is not None and reply.type == "pong", "the rig stopped answering after malformed input")

    def check_restart(self) -> str:
        if self.restart_command is None:
            raise Skip("give --restart-command to check what survives a restart")
        if self.answered is None:
            raise Skip("no request was answered")
        subprocess.run(self.restart_command, shell=True, check=True, timeout=120)
        end, rid = time.monotonic() + 120, _id("back")
        self.client.reopen()
        while True:  # until the restarted rig answers
            reply = self.client.ask(encode({"type": "ping", "session": self.client.session, "request_id": rid}),
                                    rid, timeout=1.0)
            if reply is not None:
                break
            _require(time.monotonic() < end, "the rig did not come back within 120 s of the restart command")
            self.client.reopen()
        frames, first = self.answered
        rid = first["request_id"]
        self._error(frames, rid, "unknown-session", "after a restart, a present from the old session (greetings must "
                                                    "not persist)")
        self.client.hello()
        again = self._result(frames, rid)
        order = lambda h: sorted(json.dumps(r, sort_keys=True) for r in h["records"])  # noqa: E731
        _require(order(again) == order(first), "after a restart, a resend of an answered request got other records: "
                                               "the reply cache must persist (§5)")
        return "greetings forgotten, cache kept"


def format_table(endpoint: str, outcomes: list[Outcome]) -> str:
    width = max(len(o.name) for o in outcomes)
    lines = [f"xdream rig check {endpoint} ({PROTOCOL}, docs/protocol.md)", ""]
    for o in outcomes:
        lines.append(f"{o.status:4}  {o.name:<{width}}  {o.section:<9}  {o.detail}".rstrip())
    failed = sum(o.status == "FAIL" for o in outcomes)
    passed = sum(o.status == "PASS" for o in outcomes)
    skipped = len(outcomes) - failed - passed
    lines += ["", f"{passed} passed, {failed} failed, {skipped} skipped"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``xdream rig check ENDPOINT [--timeout S] [--restart-command CMD]``."""
    parser = argparse.ArgumentParser(prog="xdream rig check", description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="the rig's endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer")
    parser.add_argument("--restart-command", metavar="CMD", help="a shell command that restarts the rig")
    parser.add_argument("--bind", action="store_true",
                        help="bind ENDPOINT and let the rig dial in (a rig behind a firewall that allows outbound only)")
    args = parser.parse_args(argv)
    if not args.endpoint.startswith(("tcp://", "ipc://")):
        raise ConfigError(f"rig endpoint {args.endpoint!r} is not an endpoint; expected tcp://HOST:PORT or ipc://PATH")
    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    checker = Conformance(args.endpoint, args.timeout, args.restart_command, args.bind)
    try:
        outcomes = checker.run()
    finally:
        checker.close()
    print(format_table(args.endpoint, outcomes))
    return 1 if any(o.status == "FAIL" for o in outcomes) else 0
