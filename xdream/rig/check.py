"""``xdream rig check ENDPOINT``: does a rig implement ``xdream-rig/1`` (docs/protocol.md)?

A conformance checker a lab runs against its own rig before an animal is in. It connects as a
client and exercises every MUST it can reach from outside: the handshake, presentations, the
content probe (§4.5: every record carries the values computed from the pixels of the image
whose id it names, in every encoding and dtype the rig takes, and at a generator's image size),
repeats, idempotent resends from a new session and while presenting, the deadline, every row of the limits table, PNG
integrity, malformed input and, with ``--restart-command``, a restart *during* a request
resumed from a new session (nothing presented again, the cached answer kept).

The verdict is honest: exit 0 only when every MUST passed; 1 when one failed; 3 ("incomplete")
when one could not be run (no ``--restart-command``, a rig too fast to be caught presenting),
with a line saying how to complete the run. ``--no-content`` accepts a rig without the probe,
and the verdict says so. Every image is presented: run it with the rig in a test mode.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import tempfile
import time
import uuid
import zlib
from dataclasses import dataclass

import numpy as np
import zmq

from xdream.core.errors import ConfigError
from xdream.rig.attach import attach, wait_for_peer
from xdream.rig.probe import matches, probe_values
from xdream.rig.protocol import PROTOCOL, Limits, ProtocolError, decode, encode, image_frames
from xdream.rig.usage import OneLineParser

EXIT_PASS, EXIT_FAIL, EXIT_INCOMPLETE = 0, 1, 3
RESULT_LIMITS = Limits(max_header_bytes=64 << 20)  # a result header may reach 64 MiB (§3)
STATUSES = ("PASS", "FAIL", "SKIP", "NOT RUN", "WAIVED")


@dataclass
class Outcome:
    """One line of the table: the check, its spec section, its status and why."""

    name: str
    section: str
    status: str
    detail: str = ""


class CheckFailed(Exception):
    """A check found the rig breaking the spec (the message says how)."""


class Skip(Exception):
    """A check that does not apply to this rig (e.g. png checks for a rig that takes no png)."""


class NotRun(Exception):
    """A MUST that could not be checked; the message says how to make it run."""


class Waived(Exception):
    """A MUST the user chose not to check (``--no-content``)."""


STATUS_OF = {CheckFailed: "FAIL", Skip: "SKIP", NotRun: "NOT RUN", Waived: "WAIVED"}  # a check's exception: its status


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Client:
    """A DEALER connection to the rig, in one client session, that sends raw frames and decodes
    what comes back."""

    def __init__(self, context: zmq.Context, endpoint: str, timeout: float, session: str | None = None,
                 bind: bool = False):
        self.context, self.endpoint, self.timeout, self.bind = context, endpoint, timeout, bind
        self.session = session or "check-" + uuid.uuid4().hex[:12]
        self.socket = None
        self.reopen()

    def reopen(self) -> None:
        """A new socket (a new identity at the rig), as a client does after a timeout."""
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
        if frames and frames[0] == b"" and len(frames) > 1:
            raise CheckFailed("the rig's reply starts with an empty delimiter frame: its socket is REP (or it echoes "
                              "a REQ envelope to a DEALER); xdream-rig/1 rigs bind ROUTER (§1)")
        try:
            return decode(frames, RESULT_LIMITS, expect=("welcome", "result", "pong", "error"))
        except ProtocolError as e:
            raise CheckFailed(f"the rig sent a malformed reply: {e} (§2, §4)") from None

    def ask(self, frames: list, rid: str | None, timeout: float | None = None):
        """Send ``frames`` and return the reply naming ``rid`` (errors with a null id count),
        skipping replies to earlier messages; None when none comes within the timeout."""
        self.send(frames)
        return self.wait(rid, timeout)

    def wait(self, rid: str | None, timeout: float | None = None):
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while (left := end - time.monotonic()) > 0:
            msg = self.receive(left)
            if msg is None:
                return None
            if msg.request_id == rid or (msg.type == "error" and msg.request_id is None):
                return msg
        return None

    def hello_frames(self, rid: str, **extra) -> list:
        return encode({"type": "hello", "session": self.session, "request_id": rid, "client": "xdream rig check",
                       "encodings": ["raw", "png"], "dtypes": ["uint8", "float32"], **extra})

    def hello(self, **extra) -> dict:
        rid = _id("h")
        reply = self.ask(self.hello_frames(rid, **extra), rid)
        _require(reply is not None, f"no answer to hello within {self.timeout:g} s (§4.1)")
        _require(reply.type == "welcome", f"hello answered with {_said(reply)}; expected welcome (§4.1)")
        return reply.header

    def ping(self, rid: str):
        return self.ask(encode({"type": "ping", "session": self.session, "request_id": rid}), rid)

    def close(self) -> None:
        self.socket.close(linger=0)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _said(msg) -> str:
    return f"error {msg.header['code']} ({msg.header['message']})" if msg.type == "error" else repr(msg.type)


def _images(n: int, side: int = 8, seed: int = 0, channels: int = 3, dtype: str = "uint8") -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        return rng.random((n, side, side, channels), dtype=np.float32)
    return rng.integers(0, 256, (n, side, side, channels), dtype=np.uint8)


def _present(session: str, rid: str, images: np.ndarray, *, encoding="raw", repeats=2, ids=None, frames=None,
             **header) -> list:
    ids = ids or [f"c{i}" for i in range(len(images))]
    dtype = "float32" if images.dtype == np.float32 else "uint8"
    h = {"type": "present", "session": session, "request_id": rid, "generation": 0, "image_ids": ids,
         "encoding": encoding, "dtype": dtype, "shape": list(images.shape[1:]), "repeats": repeats,
         "deadline_ms": 60_000, **header}
    return encode(h, image_frames(images, encoding) if frames is None else frames)


def _png(array: np.ndarray, convert: str | None = None) -> bytes:
    """A PNG of ``array``, converted to the PIL mode ``convert`` first if given ("P": a palette png)."""
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(array)
    (image.convert(convert) if convert else image).save(buffer, format="PNG")
    return buffer.getvalue()


def _order(header: dict) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in header["records"])


class Conformance:
    """The checks, in order; :meth:`run` returns their outcomes."""

    def __init__(self, endpoint: str, timeout: float = 10.0, restart_command: str | None = None,
                 content: bool = True, bind: bool = False):
        self.endpoint, self.timeout, self.restart_command, self.content = endpoint, timeout, restart_command, content
        self.bind = bind  # the checker binds ENDPOINT and the rig dials in (xdream.rig.attach)
        self.context = zmq.Context()
        self.client = Client(self.context, endpoint, timeout, bind=bind)
        self.welcome: dict | None = None
        self.answered: tuple[list, dict] | None = None  # (request frames, result header) of a finished request
        self.pace = 0.0  # the rig's seconds per presentation, measured

    CHECKS = (
        ("handshake", "§1, §4.1"), ("open value sets", "§2"), ("unknown session", "§4.2, §5"),
        ("present/result", "§4.2"), ("content probe", "§4.5"), ("repeats", "§4.2"),
        ("resend, new session", "§5"), ("resend with another payload", "§5"), ("pings", "§4.3"),
        ("resend while presenting", "§5"), ("deadline", "§6"), ("limits and error codes", "§3"),
        ("png", "§4.2"), ("float32", "§4.2"), ("malformed input", "§2, §4.4"),
        ("restart mid-request", "§5, §6"),
    )

    def run(self) -> list[Outcome]:
        outcomes = []
        for name, section in self.CHECKS:
            method = getattr(self, "check_" + re.sub(r"\W+", "_", name).strip("_"))
            try:
                outcomes.append(Outcome(name, section, "PASS", method() or ""))
            except (Skip, NotRun, Waived, CheckFailed) as e:
                outcomes.append(Outcome(name, section, STATUS_OF[type(e)], str(e)))
                if isinstance(e, CheckFailed):
                    self.client.reopen()  # a fresh connection for the next check
                    if name != "handshake":
                        self._wait_until_idle()
            if name == "handshake" and outcomes[-1].status == "FAIL":
                outcomes += [Outcome(n, s, "NOT RUN", "no handshake") for n, s in self.CHECKS[1:]]
                break
        return outcomes

    def close(self) -> None:
        self.client.close()
        self.context.destroy(linger=0)

    def _another_client(self, session: str | None = None) -> Client:
        """A second client: a resumed one (new session) or a newer identity of this session. This
        client's socket is closed first, as a client that restarts or reconnects closes its old one
        (xdream's does, LINGER 0): a rig needs to serve one connection at a time (a rig on a
        one-connection TCP link, experiments/rig_matlab; a bound checker, ``--bind``, whose
        endpoint the rig dials). :meth:`_done_with` reopens it and greets again."""
        self.client.close()
        return Client(self.context, self.endpoint, self.timeout, session, bind=self.bind)

    def _done_with(self, other: Client) -> None:
        other.close()
        self.client.reopen()
        self.client.hello()

    # -- helpers ----------------------------------------------------------------------------
    def _wait_until_idle(self) -> None:
        """After a failed row: wait until the rig takes a request again (one image shown once; at most the
        60 s deadline of the checker's requests), so a request that row left presenting does not fail the
        next rows as well ('busy'). A rig that answers it otherwise, or not at all, is left to the next row."""
        rid, end = _id("idle"), time.monotonic() + 60 + 3 * self.timeout
        frames = _present(self.client.session, rid, _images(1), repeats=1)
        with contextlib.suppress(CheckFailed):
            while time.monotonic() < end and (reply := self.client.ask(frames, rid)) is not None:
                if reply.type != "pong" and not (reply.type == "error" and reply.header["code"] == "busy"):
                    return
                time.sleep(0.05)  # busy, or taken and queued or presenting: resent, as a client does (§4.4, §5)

    def _sized(self, n: int, repeats: int) -> tuple[int, int]:
        """``n`` images shown ``repeats`` times, or for a rig that takes fewer images per request
        (its ``max_images``, which a client never exceeds, §3) as many as it takes, shown more
        often (up to the protocol's 100 repeats): about as many presentations either way."""
        most = self.welcome.get("max_images", n)
        return (n, repeats) if n <= most else (most, min(-(-n * repeats // most), Limits().max_repeats))

    def _result(self, frames: list, rid: str, client: Client | None = None) -> dict:
        client = client or self.client
        reply = client.ask(frames, rid, self.timeout * 3)
        while reply is not None and reply.type == "pong":  # a late answer to an earlier ping
            reply = client.wait(rid, self.timeout * 3)
        _require(reply is not None, "no result within the timeout (§4.2)")
        _require(reply.type == "result", f"present answered with {_said(reply)}; expected result (§4.2)")
        return reply.header

    def _error(self, frames: list, rid: str | None, code: str, what: str, section: str = "§3") -> None:
        reply = self.client.ask(frames, rid)
        _require(reply is not None, f"{what}: no answer; expected error {code} ({section})")
        _require(reply.type == "error" and reply.header["code"] == code,
                 f"{what}: answered {_said(reply)}; expected error {code} ({section})")
        if rid is not None and reply.request_id != rid:
            raise CheckFailed(f"{what}: the error names request {reply.request_id!r}; expected {rid!r} (§4.4)")

    def _records_ok(self, result: dict, ids: list[str], repeats: int, complete: bool = True) -> None:
        channels = self.welcome["channels"]
        _require(sorted(result["channels"]) == sorted(channels),
                 f"result channels {result['channels']} are not the welcome's {channels} (§4.2)")
        keys = [(r["image_id"], r["repeat"]) for r in result["records"]]
        _require(len(set(keys)) == len(keys), "a result holds two records for one (image, repeat) (§4.2)")
        _require(all(i in ids and 0 <= k < repeats for i, k in keys), "a record names an image or repeat not in "
                                                                      "the request (§4.2)")
        if complete:
            _require(result["complete"] and set(keys) == {(i, k) for i in ids for k in range(repeats)},
                     f"{len(keys)} records for {len(ids)} images x {repeats} repeats (complete: "
                     f"{result['complete']}); expected one per presentation (§4.2)")

    def _content_ok(self, result: dict, ids: list[str], images) -> int:
        """Every record's values are the probe of the image its id names (§4.5); the number of
        records verified. A record carrying another image's values is named as such."""
        order = self.welcome["channels"]
        expected = {i: probe_values(im, len(order)) for i, im in zip(ids, images)}
        column = [result["channels"].index(c) for c in order]  # the rig's order, mapped by name
        wrong, swapped = 0, []
        for r in result["records"]:
            values = [r["values"][c] for c in column]
            if not r["valid"] or not matches(values, expected[r["image_id"]]):
                wrong += 1
                other = [i for i in ids if i != r["image_id"] and matches(values, expected[i])]
                if other:
                    swapped.append(f"{r['image_id']} carries {other[0]}'s")
        _require(not wrong, f"{wrong} of {len(result['records'])} records do not carry the probe values of their "
                            f"image{' (' + ', '.join(swapped[:3]) + ')' if swapped else ''}: the rig scores images "
                            "under the wrong id or from the wrong pixels (§4.5)")
        return len(result["records"])

    def _probe(self) -> bool:
        return bool(self.welcome.get("probe")) and self.content

    def _track(self, client: Client, rid: str, limit: float) -> tuple[list[dict], dict | None]:
        """Ping ``rid`` until its result arrives on ``client``: the pongs' headers and the result."""
        pongs, end = [], time.monotonic() + limit
        while time.monotonic() < end:
            client.send(encode({"type": "ping", "session": client.session, "request_id": rid}))
            msg = client.receive(self.timeout)
            _require(msg is not None, f"silence for {self.timeout:g} s while presenting: pings must be answered at "
                                      "once (§4.3)")
            if msg.request_id != rid:
                continue
            if msg.type == "result":
                return pongs, msg.header
            _require(msg.type == "pong", f"present answered with {_said(msg)} (§4.2)")
            pongs.append(msg.header)
            time.sleep(0.01)
        return pongs, None

    # -- the checks ---------------------------------------------------------------------------
    def check_handshake(self) -> str:
        rid = _id("h")
        if self.client.ask(self.client.hello_frames(rid), rid) is None:  # silence: is it a REP socket?
            self.client.reopen()
            self.client.send([b"", *self.client.hello_frames(rid)])
            if self.client.socket.poll(int(1000 * min(self.timeout, 2.0))):
                frames = self.client.socket.recv_multipart()
                if frames and frames[0] == b"":
                    raise CheckFailed("the rig answers only messages that start with an empty delimiter frame: its "
                                      "socket is REP, which drops every message of a DEALER client; bind a ROUTER "
                                      "socket (§1)")
            self.client.reopen()
        self.welcome = self.client.hello()
        _require("raw" in self.welcome["encodings"] and "uint8" in self.welcome["dtypes"],
                 f"the rig takes {self.welcome['encodings']}/{self.welcome['dtypes']}; raw uint8 is required (§4.2)")
        return f"{self.welcome.get('rig', 'a rig')}: channels {self.welcome['channels']}" + (
            ", content probe" if self.welcome.get("probe") else "")

    def check_open_value_sets(self) -> None:
        self.client.hello(encodings=["raw", "jpeg"], dtypes=["uint8", "float16"])

    def check_unknown_session(self) -> None:
        rid = _id("u")
        self._error(_present("never-greeted-" + uuid.uuid4().hex[:8], rid, _images(1)), rid, "unknown-session",
                    "a present from a session never greeted", "§5")

    def check_present_result(self) -> str:
        images, rid = _images(3), _id("raw")
        frames = _present(self.client.session, rid, images, **({"probe": True} if self._probe() else {}))
        result = self._result(frames, rid)
        self._records_ok(result, ["c0", "c1", "c2"], 2)
        if self._probe():
            self._content_ok(result, ["c0", "c1", "c2"], images)
        self.answered = (frames, result)
        return f"{len(result['records'])} records"

    def check_content_probe(self) -> str:
        if not self.content:
            raise Waived("content not verified (--no-content): nothing shows that records carry the right image")
        _require(bool(self.welcome.get("probe")), "the rig does not offer the content probe (welcome without "
                                                  "\"probe\": true), so nothing shows that each record belongs to "
                                                  "the image it names; implement §4.5, or pass --no-content")
        kinds = [("raw", "uint8", 3, 8), ("raw", "uint8", 1, 8)]
        if "float32" in self.welcome["dtypes"]:
            kinds += [("raw", "float32", 3, 8), ("raw", "float32", 1, 8)]
        if "png" in self.welcome["encodings"]:
            kinds += [("png", "uint8", 3, 8), ("png", "uint8", 1, 8)]
        # and raw uint8 of a generator's image size (256 x 256 x 3: a frame of 192 KiB, above a 64 or 128 KiB
        # receive buffer), within the rig's limits: a rig that loses the bytes of a large frame scores 8 x 8 right
        most = min(self.welcome.get("max_frame_bytes", Limits().max_frame_bytes),
                   self.welcome.get("max_message_bytes", Limits().max_message_bytes) // 5)
        large = ("raw", "uint8", 3, max(1, min(256, int(np.sqrt(most // 3)))))
        verified = 0
        # the first kind once more: the payload of an answered request (ids, encoding, dtype, shape, repeats)
        # under a new request id, other pixels; a rig that caches by payload answers it unpresented (§5)
        for seed, (encoding, dtype, c, side) in enumerate(kinds + kinds[:1] + [large]):
            images, ids = _images(4, side=side, seed=10 + seed, channels=c, dtype=dtype), ["p0", "p1", "p2", "p3"]
            rid = _id("probe")
            result = self._result(_present(self.client.session, rid, images, encoding=encoding, ids=ids, probe=True),
                                  rid)
            try:
                self._records_ok(result, ids, 2)
                verified += self._content_ok(result, ids, images)
            except CheckFailed as e:
                again = " (the payload of an answered request, new request id and pixels)" if seed == len(kinds) else ""
                size = f" {side}x{side}" if seed > len(kinds) else ""
                raise CheckFailed(f"{encoding} {dtype} C={c}{size}{again}: {e}") from None
        return f"{verified} records verified: " + ", ".join(f"{e}/{d}/C{c}" for e, d, c, _ in kinds) + (
            f", raw/uint8/C3 {large[3]}x{large[3]}")

    def check_repeats(self) -> None:
        rid = _id("rep")
        self._records_ok(self._result(_present(self.client.session, rid, _images(2, seed=2), repeats=3), rid),
                         ["c0", "c1"], 3)

    def check_resend_new_session(self) -> str:
        if self.answered is None:
            raise Skip("no request was answered")
        frames, first = self.answered
        rid = first["request_id"]
        other = self._another_client()  # a resumed client: new session, new identity
        try:
            other.hello()
            header = json.loads(frames[0])
            again = self._result(encode({**header, "session": other.session}, frames[1:]), rid, client=other)
        finally:
            self._done_with(other)
        _require(_order(again) == _order(first), "a resend from a new session got other records: the rig presented "
                                                 "it again (§5: the cache is keyed by request id alone and answers "
                                                 "any session)")
        return "answered from the cache"

    def check_resend_with_another_payload(self) -> None:
        if self.answered is None:
            raise Skip("no request was answered")
        rid = self.answered[1]["request_id"]
        self._error(_present(self.client.session, rid, _images(2), ids=["other0", "other1"]), rid, "bad-message",
                    "a known request id with other image ids", "§5")

    def check_pings(self) -> str:
        rid = _id("p")
        reply = self.client.ping(rid)
        _require(reply is not None and reply.type == "pong", f"a ping was answered with "
                                                              f"{'nothing' if reply is None else _said(reply)} (§4.3)")
        _require(reply.header["state"] == "unknown", f"a ping for a request never sent is {reply.header['state']!r}; "
                                                     "expected 'unknown' (§4.3)")
        reply = self.client.ask(encode({"type": "ping", "session": "never-greeted", "request_id": rid}), rid)
        _require(reply is not None and reply.type == "pong", "a ping from a session never greeted must get a pong "
                                                              "(§4.3)")
        (n, repeats), rid = self._sized(6, 2), _id("pp")
        start = time.monotonic()
        self.client.send(_present(self.client.session, rid, _images(n, seed=3), repeats=repeats))
        pongs, result = self._track(self.client, rid, 3 * self.timeout)
        self.pace = (time.monotonic() - start) / (n * repeats)
        _require(result is not None, "no result while pinging (§4.2, §4.3)")
        states = {p["state"] for p in pongs}
        _require(states <= {"queued", "presenting", "done"}, f"pongs during a request said {sorted(states)}; expected "
                                                             "queued, presenting or done (§4.3)")
        reply = self.client.ping(rid)
        _require(reply is not None and reply.type == "pong" and reply.header["state"] == "done",
                 "a ping for an answered request must get state 'done' (§4.3)")
        return f"{len(pongs)} pongs while presenting"

    def check_resend_while_presenting(self) -> str:
        n, repeats = self._sized(32, 2)
        images, rid, total = _images(n, seed=5), _id("rwp"), n * repeats
        frames = _present(self.client.session, rid, images, repeats=repeats)
        start = time.monotonic()
        self.client.send(frames)
        first = None
        while first is None and time.monotonic() - start < 3 * self.timeout:
            reply = self.client.ping(rid)
            _require(reply is not None, "a ping while presenting was not answered (§4.3)")
            _require(reply.type != "error", f"present answered with {_said(reply)} (§4.2)")
            if reply.type == "result":
                raise NotRun(f"the rig answered {total} presentations in {time.monotonic() - start:.2f} s, before a "
                             "resend could reach it; give it a presentation time in its test mode (e.g. 10 ms)")
            if reply.type == "pong" and reply.header["state"] == "presenting" and reply.header["progress"] >= 1:
                first = reply.header["progress"]
        _require(first is not None, "no pong said 'presenting' with progress during a request (§4.3)")
        # a resend with other image ids under this request id is another request, also while it is presented
        # (§5: bad-message); the request goes on unharmed (what follows checks its result)
        self._error(_present(self.client.session, rid, images, repeats=repeats, ids=[f"x{i}" for i in range(n)]),
                    rid, "bad-message", "a resend with other image ids while the request is presented", "§5")
        newer = self._another_client(self.client.session)  # same session, new identity
        try:
            newer.hello()
            newer.send(frames)
            # then a resumed client (a new session: one killed and restarted at once) resends it while presented,
            # once the pongs show it far enough in that starting over would show
            said = []
            while (reply := newer.ping(rid)) is not None and reply.type == "pong" and reply.header["state"] in (
                    "queued", "presenting") and time.monotonic() - start < 3 * self.timeout:
                said.append(reply.header)
                if reply.header["progress"] >= max(first + 2, total // 8):
                    break
                time.sleep(0.005)
            _require(reply is not None, "a ping while presenting was not answered (§4.3)")
            newer.close()
            newer = Client(self.context, self.endpoint, self.timeout, bind=self.bind)
            newer.hello()
            newer.send(encode({**json.loads(frames[0]), "session": newer.session}, frames[1:]))
            pongs, result = self._track(newer, rid, 3 * self.timeout + total * max(self.pace, 0.01) * 2)
            pongs = said + pongs
            _require(result is not None, "a resend while presenting: the newest sender got no result (§5: the rig "
                                         "answers the newest sender)")
            progress = [first] + [p["progress"] for p in pongs if p["state"] in ("presenting", "queued")]
            back = next((i for i in range(1, len(progress)) if progress[i] < progress[i - 1]), 4)
            _require(all(b >= a for a, b in zip(progress, progress[1:])) and max(progress) <= total,
                     "a resend while presenting restarted the request: progress went "
                     f"{progress[max(back - 4, 0):][:8]} (of {total}); "
                     "a request being presented is never started twice (§5)")
            self._records_ok(result, [f"c{i}" for i in range(n)], repeats)
            # trial_id is "the rig's trial number" (§4.2): a trial may show several images (a
            # MonkeyLogic userloop shows a few per fixation), so records may share one; one
            # trial recording the same image twice is a presentation counted twice
            shown = [(r["trial_id"], r["image_id"]) for r in result["records"]]
            _require(len(set(shown)) == len(shown), "the result records one image twice in one trial (the same "
                                                    "trial_id): a presentation counted twice (§4.2, §5)")
            # a restart the pongs did not show (it overtook them on a loaded machine) is still under
            # way, or has left a second result in the cache: either way asking again gets other records
            _require(self._result(frames, rid, client=newer)["records"] == result["records"],
                     "a resend of the answered request got other records: the request was presented again "
                     "(§5: a request being presented is never started twice; its result is final)")
        finally:
            self._done_with(newer)
        self.pace = max(self.pace, (time.monotonic() - start) / total)
        return f"caught at {first}/{total} presentations; one presentation each; another payload refused"

    def check_deadline(self) -> str:
        (n, repeats), deadline_ms = self._sized(40, 2), 100
        images, rid = _images(n, seed=4), _id("d")
        frames = _present(self.client.session, rid, images, repeats=repeats, deadline_ms=deadline_ms)
        start = time.monotonic()
        self.client.send(frames)
        after, result, end = None, None, start + 3 * self.timeout + n * repeats * max(self.pace, 0.01) * 2
        known = None  # when a pong first showed the rig had the request: its deadline is over D later
        while result is None and time.monotonic() < end:  # the rig's progress once the deadline has passed:
            sent = time.monotonic()  # one ping at a time, so a pong answers a ping sent at `sent`
            msg = self.client.ping(rid)
            _require(msg is not None, f"silence for {self.timeout:g} s while presenting (§4.3)")
            if msg.type == "result":
                result = msg.header
            elif msg.type == "pong":
                if known is None and msg.header["state"] in ("queued", "presenting"):
                    known = time.monotonic()
                if after is None and known is not None and sent >= known + deadline_ms / 1000:
                    after = msg.header["progress"]
                time.sleep(0.005)
            else:
                raise CheckFailed(f"present answered with {_said(msg)} (§4.2)")
        took = time.monotonic() - start
        _require(result is not None, "no result within the timeout (§4.2, §6)")
        self._records_ok(result, [f"c{i}" for i in range(n)], repeats, complete=False)
        count = len(result["records"])
        _require(result["complete"] == (count == n * repeats),
                 f"complete is {result['complete']} with {count} of {n * repeats} records (§4.2, §6)")
        # a rig that keeps the deadline begins every trial before it, so the onsets (on the rig's
        # clock, whatever this machine's load) span at most the deadline and a frame's lag
        onsets = [r["onset"] for r in result["records"] if r["onset"] is not None]
        span = max(onsets) - min(onsets) if onsets else 0.0
        if span > 1.5 * deadline_ms / 1000 + 0.05:
            raise CheckFailed(f"deadline {deadline_ms} ms ignored: the rig's onsets span {span:.2f} s over {count} "
                              "records (§6: at the deadline the rig stops and sends what it has)")
        if after is not None and count > after + 2:
            raise CheckFailed(f"deadline {deadline_ms} ms ignored: the rig had presented {after} when it was over and "
                              f"went on to {count}, answered after {took:.2f} s (§6: at the deadline the rig stops "
                              "and sends what it has)")
        _require(took <= deadline_ms / 1000 + self.timeout, f"deadline {deadline_ms} ms ignored: answered after "
                                                           f"{took:.2f} s (§6)")
        again = self._result(frames, rid)
        _require(again["records"] == result["records"] and again["complete"] == result["complete"],
                 "a resend after the deadline got another result; a partial result is final (§6)")
        resumed = self._another_client()  # a resumed client (a new session) resends it too, the deadline long over
        try:
            resumed.hello()
            again = self._result(encode({**json.loads(frames[0]), "session": resumed.session}, frames[1:]), rid,
                                 client=resumed)
        finally:
            self._done_with(resumed)
        _require(again["records"] == result["records"] and again["complete"] == result["complete"],
                 "a resend from a new session after the deadline got another result: the rig presented it again "
                 "(§5: answered from the cache, from any session; §6: a partial result is final)")
        return f"deadline {deadline_ms} ms: {count}/{n * repeats} records in {took:.2f} s"

    def check_limits_and_error_codes(self) -> str:
        s, img, limits = self.client.session, _images(1), Limits()
        long_id = "x" * 65
        cases = [
            ("repeats 0", _present(s, "lim-r0", img, repeats=0), "lim-r0", "bad-message"),
            ("repeats 101", _present(s, "lim-r101", img, repeats=limits.max_repeats + 1), "lim-r101", "too-large"),
            ("side 4097", _present(s, "lim-side", img, shape=[4097, 8, 3], frames=[b"\0"]), "lim-side", "too-large"),
            ("side 0", _present(s, "lim-side0", img, shape=[0, 8, 3], frames=[b"\0"]), "lim-side0", "bad-message"),
            ("2 colour channels", _present(s, "lim-c2", img, shape=[8, 8, 2], frames=[b"\0" * 128]), "lim-c2",
             "bad-message"),
            ("deadline_ms 0", _present(s, "lim-d0", img, deadline_ms=0), "lim-d0", "bad-message"),
            ("deadline_ms 86400001", _present(s, "lim-dmax", img, deadline_ms=86_400_001), "lim-dmax", "too-large"),
            ("a 65-character request id", _present(s, long_id, img), None, "too-large"),
            ("a 65-character image id", _present(s, "lim-imid", img, ids=[long_id]), "lim-imid", "too-large"),
            ("a 1001-character client text", self.client.hello_frames("lim-text", client="x" * 1001), "lim-text",
             "too-large"),
            ("1025 images", _present(s, "lim-n", _images(1025, side=1)), "lim-n", "too-large"),
            ("a request decoding to 855 MB", _present(s, "lim-dec", _images(17, side=1), shape=[4096, 4096, 3],
                                                      frames=[b"\0"] * 17), "lim-dec", "too-large"),
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
        header = encode({"type": "ping", "session": s, "request_id": "lim-head"})[0]
        if max_frame > limits.max_header_bytes:  # else the rig's MAXMSGSIZE may drop it unread
            cases.append(("a header above 8 MiB", [header + b" " * limits.max_header_bytes], None, "too-large"))
        max_message = self.welcome.get("max_message_bytes", limits.max_message_bytes)
        noted = ""
        # a frame of exactly the advertised limit is read (here: the wrong length for its shape), unless
        # the whole message would then be above the rig's max_message_bytes (and rightly too-large)
        at_limit = _present(s, "lim-at", img, frames=[bytes(max_frame)])
        if sum(map(len, at_limit)) <= max_message:
            cases.append((f"a frame of exactly max_frame_bytes ({max_frame})", at_limit, "lim-at", "bad-message"))
        else:
            noted = (f"; a frame of exactly max_frame_bytes ({max_frame}) not sent (with its header it is above "
                     f"max_message_bytes {max_message})")
        side = max(1, int(np.sqrt(min(max_frame, 1 << 20) // 3)))  # (1: a max_frame_bytes below 3)
        n = max_message // (side * side * 3) + 1
        if max_message <= 64 << 20 and n <= self.welcome.get("max_images", 1024):
            cases.append((f"a message above max_message_bytes ({max_message})",
                          _present(s, "lim-msg", _images(n, side=side)), "lim-msg", "too-large"))
        else:  # above 64 MiB, or more images than the rig takes (their count would be refused first)
            noted += f"; a whole message above {max_message} bytes not sent (the decoded-size row covers it)"
        for what, frames, rid, code in cases:
            self._error(frames, rid, code, what)
        reply = self.client.ping(_id("alive"))
        _require(reply is not None, "the rig stopped answering after the limit checks (§3)")
        return f"{len(cases)} refusals with the right code{noted}"

    def check_png(self) -> str:
        if "png" not in self.welcome["encodings"]:
            raise Skip("the rig does not take png")
        s, rgb = self.client.session, _images(1, seed=7)[0]
        whole = _png(rgb)
        cut = whole[:-12]  # IEND missing
        crc = bytearray(whole)
        crc[40] ^= 0xFF  # a byte inside IHDR/IDAT: its CRC no longer matches
        grey16 = _png(np.full((8, 8), 40000, dtype=np.uint16))
        cases = [
            ("a png of another size than the header's", [_png(_images(1, side=4)[0])]),
            ("an RGBA png", [_png(np.dstack([rgb, rgb[..., :1]]))]),
            ("a palette png", [_png(rgb, "P")]),
            ("a 16-bit png", [grey16]),
            ("a png cut before IEND", [cut]),
            ("a png with a wrong CRC", [bytes(crc)]),
            ("a greyscale png for C=3", [_png(rgb[..., 0])]),
        ]
        for what, frames in cases:
            rid = _id("png")
            shape = [8, 8, 1] if what == "a 16-bit png" else [8, 8, 3]
            self._error(_present(s, rid, _images(1), encoding="png", frames=frames, shape=shape), rid, "bad-message",
                        what, "§4.2")
        rid = _id("png-ok")
        images = _images(2, seed=8)
        interlaced = [_interlaced(im) for im in images]
        self._records_ok(self._result(_present(s, rid, images, encoding="png", frames=interlaced, repeats=1), rid),
                         ["c0", "c1"], 1)
        return f"{len(cases)} broken pngs refused; interlaced RGB taken"

    def check_float32(self) -> str:
        s, rid = self.client.session, _id("f32")
        images = _images(1, dtype="float32")
        if "float32" not in self.welcome["dtypes"]:
            self._error(_present(s, rid, images), rid, "unsupported", "a float32 request to a rig without float32",
                        "§4.2")
            return "refused as unsupported"
        images[0, 0, 0, 0] = np.nan
        self._error(_present(s, rid, images), rid, "bad-message", "a float32 image with a NaN pixel", "§4.2")
        rid = _id("f32")
        wide = _images(2, seed=9, dtype="float32") * 3 - 1  # values outside 0..1 are allowed
        self._records_ok(self._result(_present(s, rid, wide, repeats=1), rid), ["c0", "c1"], 1)
        return "NaN refused; values outside 0..1 taken"

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
        reply = self.client.ping(_id("alive"))
        _require(reply is not None and reply.type == "pong", "the rig stopped answering after malformed input")

    def check_restart_mid_request(self) -> str:
        if self.restart_command is None:
            raise NotRun("give --restart-command CMD (a shell command that kills and restarts the rig) to check "
                         "what survives a crash")
        n, repeats = self._sized(32, 4)
        total, ids = n * repeats, [f"c{i}" for i in range(n)]
        images, rid = _images(n, seed=6), _id("crash")
        probe = {"probe": True} if self._probe() else {}
        frames = _present(self.client.session, rid, images, repeats=repeats, **probe)
        self.client.send(frames)
        before, caught, end = 0, False, time.monotonic() + 3 * self.timeout
        while not caught:
            _require(time.monotonic() < end, f"no pong said 'presenting' with progress within {3 * self.timeout:g} s "
                                             "of a request (§4.3)")
            reply = self.client.ping(rid)
            _require(reply is not None, "a ping while presenting was not answered (§4.3)")
            _require(reply.type != "error", f"present answered with {_said(reply)} (§4.2)")
            if reply.type == "result":
                break
            if reply.type == "pong" and reply.header["state"] == "presenting" and reply.header["progress"] >= total // 8:
                before, caught = reply.header["progress"], True  # far enough in that starting over shows
        # its stderr goes to a file, not a pipe: a rig it starts in the background ('... rig.py &') inherits
        # it and would hold a pipe open, and the checker would wait for the rig to exit, not the command
        with tempfile.TemporaryFile() as stderr:
            try:
                run = subprocess.run(self.restart_command, shell=True, timeout=120, stdout=subprocess.DEVNULL,
                                     stderr=stderr)
            except subprocess.TimeoutExpired:
                raise CheckFailed("the restart command did not finish within 120 s") from None
            stderr.seek(0)
            said = stderr.read().decode(errors="replace")
        if run.returncode != 0:
            last = (said.strip().splitlines() or ["no output"])[-1][:200]
            raise CheckFailed(f"the restart command exited with status {run.returncode}: {last}")
        finished = caught and self.client.wait(rid, 0.2) is not None  # it answered before it was killed
        self._wait_for_rig()
        if caught and not finished:  # its log holds part of it, and nobody has resent it: nothing presents it
            reply = self.client.ping(rid)
            said = "nothing" if reply is None else _said(reply) if reply.type != "pong" else repr(reply.header["state"])
            _require(reply is not None and reply.type == "pong" and reply.header["state"] == "unknown",
                     f"after a restart, a ping for the request interrupted at {before}/{total} was answered {said}; "
                     "expected 'unknown' (§4.3: the rig is not presenting it and has no result; a client still "
                     "waiting resends only then, and one told 'presenting' waits for its deadline)")
        self._error(frames, rid, "unknown-session", "after a restart, a present from the old session (greetings "
                                                    "must not persist)", "§5")
        resumed = self._another_client()  # a resumed client: a new session
        try:
            resumed.hello()
            resend = encode({**json.loads(frames[0]), "session": resumed.session}, frames[1:])
            resumed.send(resend)
            pongs, result = self._track(resumed, rid, 3 * self.timeout + total * max(self.pace, 0.01) * 2)
            _require(result is not None, "after a restart, the resumed request got no result (§5)")
            self._records_ok(result, ids, repeats)
            if probe:
                self._content_ok(result, ids, images)
            progress = [p["progress"] for p in pongs]
            back = [p for p in progress if p < before]
            if back:
                raise CheckFailed(f"after a crash at {before}/{total} presentations the resumed request reported "
                                  f"progress {back[0]}: the rig started it over (§5: a resend continues with the "
                                  "presentations still missing)")
            final = resumed.ping(rid)
            _require(final is not None and final.type == "pong" and final.header["state"] == "done",
                     "after the resumed result, a ping must say 'done' (§4.3)")
            extra = final.header["progress"] - total
            _require(extra <= 0, f"the rig presented {final.header['progress']} times for {total} presentations: "
                                 f"{extra} re-presented after the crash (§5)")
            if self.answered is not None:
                old_frames, first = self.answered
                again = self._result(encode({**json.loads(old_frames[0]), "session": resumed.session},
                                            old_frames[1:]), first["request_id"], client=resumed)
                _require(_order(again) == _order(first), "after a restart, a resend of an answered request got "
                                                         "other records: the reply cache must persist (§5)")
        finally:
            self._done_with(resumed)
        if not caught or finished:
            raise NotRun(f"the rig answered all {total} presentations before the restart; cache and sessions passed, "
                         "but a crash during a request was not tested: give the rig a presentation time (e.g. 10 ms)")
        return f"killed at {before}/{total}; resumed from a new session: 0 re-presented, cache kept"

    def _wait_for_rig(self) -> None:
        end, rid = time.monotonic() + 120, _id("back")
        self.client.reopen()
        probe = encode({"type": "hello", "session": "check-wait-" + uuid.uuid4().hex[:8], "request_id": rid})
        while True:  # until the restarted rig answers (a hello from another session: this one stays ungreeted)
            dialled = not self.bind or wait_for_peer(self.client.socket, 1.0)  # (else a send gives up after timeout)
            if dialled and self.client.ask(probe, rid, timeout=1.0) is not None:
                return
            _require(time.monotonic() < end, "the rig did not come back within 120 s of the restart command")
            self.client.reopen()


def _interlaced(image: np.ndarray) -> bytes:
    """An Adam7-interlaced 8-bit PNG of ``image`` (PIL writes none): written by hand, zlib only."""
    h, w, c = image.shape
    passes = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1))
    raw = b"".join(b"".join(b"\0" + image[y, x0::dx].tobytes() for y in range(y0, h, dy))
                   for y0, x0, dy, dx in passes if x0 < w and y0 < h)
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2 if c == 3 else 0, 0, 0, 1])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def format_table(endpoint: str, outcomes: list[Outcome]) -> str:
    width = max(len(o.name) for o in outcomes)
    lines = [f"xdream rig check {endpoint} ({PROTOCOL}, docs/protocol.md)", ""]
    for o in outcomes:
        lines.append(f"{o.status:<7}  {o.name:<{width}}  {o.section:<8}  {o.detail}".rstrip())
    count = {s: sum(o.status == s for o in outcomes) for s in STATUSES}
    lines += ["", ", ".join(f"{n} {s.lower()}" for s, n in count.items() if n or s in ("PASS", "FAIL"))]
    lines.append(verdict(outcomes)[1])
    return "\n".join(lines)


def verdict(outcomes: list[Outcome]) -> tuple[int, str]:
    """(exit status, verdict line): FAIL wins, then NOT RUN (incomplete, with how to complete it)."""
    failed = [o.name for o in outcomes if o.status == "FAIL"]
    if failed:
        return EXIT_FAIL, f"verdict: FAIL ({', '.join(failed)}): this rig breaks xdream-rig/1"
    missing = [o for o in outcomes if o.status == "NOT RUN"]
    if missing:
        how = "; ".join(f"{o.name}: {o.detail}" for o in missing)
        return EXIT_INCOMPLETE, f"verdict: INCOMPLETE ({len(missing)} MUST not run). To complete: {how}"
    waived = [o.name for o in outcomes if o.status == "WAIVED"]
    if waived:
        return EXIT_PASS, (f"verdict: PASS WITHOUT {', '.join(waived).upper()} (--no-content: records were not "
                           "checked to belong to the images they name)")
    return EXIT_PASS, "verdict: PASS (every MUST checked, content verified)"


def check_endpoint(endpoint: str) -> None:
    """A one-line error now for an endpoint ZeroMQ cannot connect to."""
    m = re.fullmatch(r"tcp://(\[[0-9A-Fa-f:.]+\]|[^:/\s]+):(\d+)", endpoint)
    if endpoint.startswith("ipc://") and len(endpoint) > 6:
        return
    if m is None or not 1 <= int(m.group(2)) <= 65535:
        raise ConfigError(f"rig endpoint {endpoint!r} is not an endpoint; expected tcp://HOST:PORT (port 1..65535) "
                          "or ipc://PATH")


def main(argv: list[str]) -> int:
    """``xdream rig check ENDPOINT [--timeout S] [--restart-command CMD] [--no-content] [--bind]``."""
    parser = OneLineParser(prog="xdream rig check", description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="the rig's endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer (default 10)")
    parser.add_argument("--restart-command", metavar="CMD", help="a shell command that kills and restarts the rig "
                        "(run while a request is being presented)")
    parser.add_argument("--no-content", action="store_true", help="accept a rig without the content probe (§4.5); "
                        "the verdict says that content was not verified")
    parser.add_argument("--bind", action="store_true",
                        help="bind ENDPOINT and let the rig dial in (a rig behind a firewall that allows outbound only)")
    args = parser.parse_args(argv)
    check_endpoint(args.endpoint)
    if not 0 < args.timeout <= 86400:  # (infinity or 1e300 seconds: no poll takes them)
        raise ConfigError(f"--timeout must be a positive number of seconds (at most 86400), got {args.timeout}")
    if args.restart_command is not None and not args.restart_command.strip():
        raise ConfigError(f"--restart-command is empty (got {args.restart_command!r}); give a shell command that kills "
                          "and restarts the rig, or leave the option out")
    try:
        checker = Conformance(args.endpoint, args.timeout, args.restart_command, content=not args.no_content,
                              bind=args.bind)
    except zmq.ZMQError as e:
        raise ConfigError(f"rig endpoint {args.endpoint!r} cannot be connected to: {e}") from None
    try:
        outcomes = checker.run()
    finally:
        checker.close()
    print(format_table(args.endpoint, outcomes))
    return verdict(outcomes)[0]
