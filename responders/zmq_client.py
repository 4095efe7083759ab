"""The ``zmq`` responder: scores come from a lab rig over ``xdream-rig/1`` (docs/protocol.md).

A DEALER socket talks to the rig's ROUTER. Each generation is one ``present`` request with a
fresh request id (the idempotency key); while it waits the client pings every ``heartbeat``
seconds, so a slow rig (it answers pongs) is told from a dead one (silence for ``liveness``
heartbeats). A dead or restarted rig gets the *same* request again on a fresh socket, up to
``retries`` times; the rig answers a resent request from its reply cache and never presents it
twice. Replies whose request id is not the one awaited (duplicates, late replies) and
malformed messages are dropped. Images with no valid record score NaN; the run's ``unscored``
policy then acts (the optimiser's NaN policy, or a re-show within the generation:
:mod:`xdream.evolve.presentation`). Image ids are the ones the experiment gives :meth:`prepare`
(``g{generation}-{i}``, ``g{generation}-ref{k}`` for natural reference images), by default
``g{generation}-{i}``. Every trial record is appended to ``RUN/rig_trials.jsonl``; every
request is journalled in ``RUN/rig_requests.jsonl`` before it is sent, so a resumed run sends
the request it had in flight again under the same id (:mod:`responders.rig_journal`).
"""

from __future__ import annotations

import collections
import json
import math
import time
import uuid
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import zmq
from zlib_ng import zlib_ng

from responders.noise import MultiplicativeGaussianNoise
from responders.rig_sim import Faults, RigSimulator, ServingThread
from responders.torch_unit import TorchUnit
from xdream.core.errors import ConfigError, XDreamError
from xdream.images.io import to_uint8
from xdream.core.responder import Responder
from xdream.rig.attach import attach, wait_for_peer
from xdream.rig.keys import greeted_mechanism, handshake_failure, load_keypair, load_public, secure_client
from xdream.rig.protocol import (MAX_RESULT_HEADER_BYTES, MAX_RESULT_VALUES, Limits, ProtocolError, RigError, decode,
                                 encode, image_frames)
from xdream.runs.rundir import append_line

from .rig_journal import RequestJournal

TRIALS_FILE = "rig_trials.jsonl"
MAX_DEADLINE_MS = 86_400_000  # the protocol's maximum deadline_ms (docs/protocol.md §3)
REPLIES = ("welcome", "pong", "result", "error")


def _combine(how, values: list) -> float:
    """``how`` (np.mean, np.median) of ``values``; one value is itself, without numpy's cost
    (a generation has one such call per record and image)."""
    return float(values[0]) if len(values) == 1 else float(how(values))


class RigUnavailableError(XDreamError):
    """The rig did not answer within the timeouts after every retry."""


class ZmqResponder(Responder):
    """A neuron on a lab rig, reached at ``target`` (``tcp://HOST:PORT``).

    ``channels`` names the rig channels averaged into the score (None: all), which are also
    the columns of :meth:`respond_units` (one per channel, for sessions of several threads);
    ``aggregate`` combines an image's valid repeats. ``heartbeat`` (s) is the ping interval, ``liveness``
    the missed heartbeats that mean a dead rig, ``deadline`` (s) the rig's time per generation
    (at most 86400, one day: the protocol's ``deadline_ms`` limit), ``timeout`` (s) how long a
    silent rig is waited for (handshake, restart) and ``retries`` how often one request is resent
    before the run stops. ``server_key`` (the rig's public
    ``NAME.key``) and ``client_key`` (this client's ``NAME.key_secret``) turn on CURVE. ``dtype = "float32"`` sends the generator's exact
    floats (in-silico rigs); rigs showing images on a screen want ``uint8``."""

    name = "zmq"
    unit_noun = "channel"
    _example_rig: ServingThread | None = None  # the in-process rig of :meth:`example`, stopped by close()

    @classmethod
    def example(cls, workdir: Path, seed: int = 0) -> "ZmqResponder":
        """A client of a real ``xdream rig simulate`` server (:class:`~responders.rig_sim.RigSimulator`)
        serving on loopback in a thread of this process: the ``torch-unit`` example neuron with
        multiplicative Gaussian trial noise and a quarter of the trials invalid (so some images
        score NaN), all drawn from ``seed``. :meth:`close` stops the server too."""
        sim = RigSimulator(TorchUnit.example(workdir), endpoint="tcp://127.0.0.1:*", log=Path(workdir) / "rig-log.jsonl",
                           noise=MultiplicativeGaussianNoise(0.2), seed=seed, faults=Faults(invalid=0.25))
        rig = ServingThread(sim)
        try:
            client = cls(sim.endpoint)
        except BaseException:
            rig.stop()
            raise
        client._example_rig = rig
        return client

    def __init__(
        self,
        target: str,
        repeats: int = 1,
        aggregate: Literal["mean", "median"] = "mean",
        channels: list | None = None,
        encoding: Literal["raw", "png"] = "raw",
        dtype: Literal["uint8", "float32"] = "uint8",
        heartbeat: float = 1.0,
        liveness: int = 5,
        deadline: float = 600.0,
        timeout: float = 30.0,
        retries: int = 5,
        server_key: str | None = None,
        client_key: str | None = None,
        device: str = "cpu",
        bind: bool = False,
    ):
        self.bind = bool(bind)  # xdream binds ``target`` and the rig dials in (xdream.rig.attach)
        if not isinstance(target, str) or not target.startswith(("tcp://", "ipc://")) or ":" not in target[6:]:
            raise ConfigError(f"zmq target {target!r} is not an endpoint; expected tcp://HOST:PORT or ipc://PATH")
        for name, value, low in (("repeats", repeats, 1), ("liveness", liveness, 1), ("retries", retries, 0)):
            if value < low:
                raise ConfigError(f"zmq option {name!r} must be >= {low}, got {value}")
        if repeats > Limits.max_repeats:  # the protocol's maximum (§3): refused here, before the run starts
            raise ConfigError(f"zmq option 'repeats' must be <= {Limits.max_repeats}, got {repeats}")
        for name, value in (("heartbeat", heartbeat), ("deadline", deadline), ("timeout", timeout)):
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"zmq option {name!r} must be a positive number of seconds, got {value}")
        if int(deadline * 1000) > MAX_DEADLINE_MS:  # sent as deadline_ms (§3): refused here, not by the rig
            raise ConfigError(f"zmq option 'deadline' must be <= {MAX_DEADLINE_MS // 1000} seconds (one day), "
                              f"got {deadline}")
        if channels is not None and not len(channels):
            raise ConfigError("zmq option 'channels' is empty; allowed: a list of the rig's channel names, or leave "
                              "it out for all")
        if (server_key is None) != (client_key is None):
            raise ConfigError("zmq CURVE needs both server_key (the rig's NAME.key) and client_key "
                              f"(your NAME.key_secret), got server_key={server_key!r}, client_key={client_key!r}")
        if server_key is not None:  # checked now, so a bad key file fails before the run starts
            load_keypair(client_key, "client key"), load_public(server_key, "rig public key")
        self.server_key, self.client_key = server_key, client_key
        if encoding == "png" and dtype != "uint8":
            raise ConfigError("zmq encoding 'png' carries uint8 images only; set dtype = 'uint8'")
        self.target, self.repeats, self.aggregate, self.wanted = target, repeats, aggregate, channels
        self.encoding, self.dtype = encoding, dtype
        self.heartbeat, self.liveness, self.deadline, self.timeout, self.retries = (
            heartbeat, liveness, deadline, timeout, retries)
        self.limits = Limits(max_header_bytes=MAX_RESULT_HEADER_BYTES)  # a result header may reach 64 MiB (§3)
        self.session = uuid.uuid4().hex
        self.stats = {"requests": 0, "resends": 0, "reconnects": 0, "stale": 0, "malformed": 0, "resumed": 0}
        self.malformed_kinds: collections.Counter = collections.Counter()  # of the request in flight
        self.run_dir: Path | None = None
        self._journal: RequestJournal | None = None
        self._seq = 0  # requests sent in this generation so far
        self.generation = 0
        self.image_ids: list[str] | None = None  # for the next respond() only
        self.last_records: list[dict] = []
        self._context = zmq.Context()
        self._socket = None
        self._monitor = None  # the socket's handshake events, for a precise error when the rig is silent
        self.welcome: dict | None = None
        self.send_limits = self.limits  # lowered to the rig's advertised limits by the handshake
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    # -- connection -------------------------------------------------------------------------
    def _connect(self) -> None:
        """A fresh DEALER socket and a hello/welcome handshake (retried like any request)."""
        if self._socket is not None:
            self._close_socket()
            self.stats["reconnects"] += 1
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.limits.max_header_bytes)
        if self.server_key is not None:
            secure_client(sock, self.client_key, self.server_key)
        self._monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                                | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        attach(sock, self.target, self.bind)
        self._socket = sock
        self._pings_out = self._stale_pongs = 0  # pings of the request unanswered on this socket; pongs known stale
        rid = uuid.uuid4().hex
        hello = encode({"type": "hello", "session": self.session, "request_id": rid, "client": "xdream",
                        "encodings": [self.encoding], "dtypes": [self.dtype]})
        give_up = time.monotonic() + self.timeout
        while True:  # a restarting rig may take a while: greet it again every liveness period
            self._send(hello)
            reply = self._await(rid, self._silence(), ping=False, give_up=give_up)
            if reply is not None:
                break
            if time.monotonic() >= give_up:
                raise RigUnavailableError(f"no rig answers at {self.target} (hello unanswered for {self.timeout:g} s"
                                          f"{self._malformed_note()}){self._curve_hint() or self._rep_hint(hello)}")
        if reply.type == "error":
            raise RigError(f"rig at {self.target} refused the handshake: {reply.header['message']}",
                           reply.header["code"], rid)
        if reply.type != "welcome":
            raise ProtocolError(f"rig answered hello with {reply.type!r}; expected 'welcome'")
        w = reply.header
        if self.encoding not in w["encodings"] or self.dtype not in w["dtypes"]:
            raise RigError(f"rig at {self.target} takes encodings {w['encodings']} and dtypes {w['dtypes']}; "
                           f"this client sends {self.encoding}/{self.dtype}", "unsupported")
        if self.wanted is not None:
            unknown = [str(c) for c in self.wanted if str(c) not in w["channels"]]
            if unknown:
                raise ConfigError(f"zmq channel {unknown[0]!r} not on the rig; valid: {', '.join(w['channels'])}")
        self.welcome = w
        self.send_limits = self.limits.within(w)

    def _silence(self) -> float:
        """Seconds of silence that mean a dead rig: ``liveness`` heartbeats, or twice the
        longest the rig said it may take to answer a ping (``heartbeat_ms``)."""
        rig = 2 * self.welcome["heartbeat_ms"] / 1000 if self.welcome and "heartbeat_ms" in self.welcome else 0
        return max(self.heartbeat * self.liveness, rig)

    def _rep_hint(self, hello: list) -> str:
        """A REP rig drops a DEALER's messages (no empty delimiter frame) but answers a
        delimited one: try one, so the error can say what is wrong (docs/protocol.md §1). A rig
        that sent replies (malformed ones) heard this client: it is not REP, and not asked."""
        if self.malformed_kinds:
            return ""
        self._send([b"", *hello])
        if self._socket.poll(500, zmq.POLLIN) and self._socket.recv_multipart()[0] == b"":
            return ("; it answers only messages with an empty delimiter frame: the rig binds a REP socket, which "
                    "xdream-rig/1 does not allow - bind a ROUTER socket (docs/protocol.md §1)")
        return ""

    def _curve_hint(self) -> str:
        """Why the handshake failed, when the rig's greeting or libzmq says (see
        :func:`xdream.rig.keys.handshake_failure`); a rig that dials in cannot be greeted."""
        reason = None if self._monitor is None else handshake_failure(
            self._monitor, self.server_key is not None, 0.5, None if self.bind else greeted_mechanism(self.target))
        if reason is not None:
            return f": {reason}"
        if self.server_key is None:
            return ""
        return ("; the link is encrypted (CURVE): the rig may have refused this client's key - check the rig's "
                "log for a refused handshake and that this client's public NAME.key is in the rig's allow-list")

    def _malformed_note(self) -> str:
        if not self.malformed_kinds:
            return ""
        total = sum(self.malformed_kinds.values())
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.malformed_kinds.most_common())
        return f"; the rig sent {total} malformed repl{'y' if total == 1 else 'ies'}: {kinds}"

    def _count_malformed(self, frames: list, error: ProtocolError) -> None:
        """Count a reply that failed validation, by kind (message type and reason)."""
        self.stats["malformed"] += 1
        try:
            kind = json.loads(frames[0]).get("type")  # tolerant: NaN literals parse here
        except Exception:
            kind = None
        text = str(error)
        for marker, reason in (("non-standard JSON constant", "NaN/Infinity literal"), ("duplicate key", "duplicate key"),
                               ("range of a double", "out-of-range number"),
                               ("not UTF-8 JSON", "not JSON"), ("lacks field", "missing field"),
                               ("unknown field", "unknown field"), ("exceeds the limit", "too large")):
            if marker in text:
                break
        else:
            reason = text.split(";")[0][:60]
        self.malformed_kinds[f"{kind} with {reason}" if isinstance(kind, str) else reason] += 1

    def _send(self, frames: list) -> None:
        """Send without blocking: with no rig to take it (a refused CURVE handshake leaves the
        socket mute) the message is dropped and the silence is handled like any other. Bound
        (``bind``), it first waits up to a heartbeat for a rig to dial in."""
        if self.bind:
            wait_for_peer(self._socket, self.heartbeat)
        try:
            self._socket.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass

    def _await(self, rid: str, silence: float, ping: bool, give_up: float = math.inf):
        """The next valid reply for ``rid``, or None after ``silence`` seconds with no sign of
        life or at ``give_up``; pings every heartbeat while waiting when ``ping`` is set."""
        last_heard = time.monotonic()
        next_ping = last_heard + self.heartbeat
        while True:
            now = time.monotonic()
            if now - last_heard > silence or now > give_up:
                return None
            wait = min(last_heard + silence, give_up, next_ping if ping else math.inf) - now
            if self._socket.poll(max(0, int(wait * 1000) + 1), zmq.POLLIN):
                frames = self._socket.recv_multipart(copy=True)
                try:
                    msg = decode(frames, self.limits, expect=REPLIES)
                except ProtocolError as e:
                    self._count_malformed(frames, e)
                    continue
                if msg.type == "error" and msg.request_id is None:
                    return msg  # about the one message this client has outstanding (docs/protocol.md §4.4)
                if msg.request_id != rid:
                    self.stats["stale"] += 1  # a duplicate or a late reply to an earlier request
                    continue
                last_heard = time.monotonic()
                if msg.type != "pong":
                    return msg
                self._pings_out = max(0, self._pings_out - 1)
                if msg.header["state"] in ("unknown", "done"):  # the rig lost the request (a restart), or
                    if self._stale_pongs:  # (an answer to a ping sent before the last resend: already acted on)
                        self._stale_pongs -= 1
                        continue
                    return msg  # answered it and the result was lost: resend, answered from its cache
            elif ping and time.monotonic() >= next_ping:
                self._send(encode({"type": "ping", "session": self.session, "request_id": rid}))
                self._pings_out += 1
                next_ping = time.monotonic() + self.heartbeat

    # -- requests ---------------------------------------------------------------------------
    def prepare(self, run_dir: Path, generation: int, image_ids: list[str] | None = None) -> None:
        if self._journal is None or Path(run_dir) != self.run_dir:  # this process's first request in the run
            self._journal = RequestJournal(run_dir, generation, TRIALS_FILE)
        if generation != self.generation or Path(run_dir) != self.run_dir:
            self._seq = 0
        self.run_dir, self.generation, self.image_ids = Path(run_dir), generation, image_ids

    def respond(self, images: torch.Tensor) -> np.ndarray:
        """One score per image from the rig's trial records: the ``aggregate`` of its valid
        repeats, each the mean over ``channels`` (NaN where none is valid)."""
        records, n = self._present(images)
        return self._aggregate(records, n, [[r["score"]] for r in records], 1)[:, 0]

    def respond_units(self, images: torch.Tensor) -> np.ndarray:
        """Float64 ``[B, C]``, one column per channel of :meth:`unit_labels`: per image, the
        ``aggregate`` of its valid repeats on that channel (NaN where none). The same one
        ``present`` request, and the same trial records, as :meth:`respond`."""
        records, n = self._present(images)
        labels = self.unit_labels()
        values = []
        for r in records:
            column = {name: i for i, name in enumerate(r["channels"])}
            row = [r["values"][column[c]] if c in column and column[c] < len(r["values"]) else None for c in labels]
            values.append([v if r["valid"] and v is not None else math.nan for v in row])
        return self._aggregate(records, n, values, len(labels))

    def unit_labels(self) -> list[str]:
        """The rig's channel names from its welcome, or the ``channels`` option when given."""
        return [str(c) for c in self.wanted] if self.wanted is not None else list(self.welcome["channels"])

    def _present(self, images: torch.Tensor) -> tuple[list[dict], int]:
        """One ``present`` request for ``images`` (journalled, resent until answered): the
        trial records kept (saved to RUN/rig_trials.jsonl) and the number of images."""
        images = torch.as_tensor(images).detach()  # on its device: converted there, then copied
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got {list(images.shape)}")
        if self.dtype == "float32":
            arrays = images.float().permute(0, 2, 3, 1).contiguous().cpu().numpy()
        else:
            arrays = to_uint8(images)  # on a GPU: uint8 there, a quarter of the bytes copied; C-contiguous
        ids, self.image_ids = self.image_ids, None
        if ids is None:
            ids = [f"g{self.generation}-{i}" for i in range(len(images))]
        elif len(ids) != len(images) or len(set(ids)) != len(ids):
            raise ValueError(f"prepare() gave {len(ids)} image ids ({len(set(ids))} distinct) for {len(images)} images")
        header = {"type": "present", "session": self.session, "request_id": "", "generation": self.generation,
                  "image_ids": ids, "encoding": self.encoding, "dtype": self.dtype, "shape": list(arrays.shape[1:]),
                  "repeats": self.repeats, "deadline_ms": max(1, int(self.deadline * 1000))}
        frames = image_frames(arrays, self.encoding)
        self._check_limits(len(ids), frames, arrays[0].nbytes)
        rid = self._request_id(header, frames)
        request = encode({**header, "request_id": rid}, frames)
        self.stats["requests"] += 1
        result = self._exchange(rid, request)
        return self._records(result, ids, rid), len(ids)

    def _check_limits(self, n: int, frames: list, image_bytes: int) -> None:
        """Refuse, before sending, a request above the limits the rig advertised (§3, §4.1):
        images, each frame, the whole message and the decoded size of the images."""
        limits, sizes = self.send_limits, [len(f) for f in frames]
        values = n * self.repeats * len(self.welcome["channels"])
        if values > MAX_RESULT_VALUES:
            raise RigError(f"generation {self.generation} asks for {n} images x {self.repeats} repeats x "
                           f"{len(self.welcome['channels'])} rig channels = {values} values in one result; the limit is "
                           f"{MAX_RESULT_VALUES} (docs/protocol.md §3): use fewer images or repeats", "too-large")
        for name, value, top in (("max_images", n, limits.max_images),
                                 ("max_frame_bytes", max(sizes), limits.max_frame_bytes),
                                 ("max_message_bytes", max(sum(sizes), n * image_bytes), limits.max_message_bytes)):
            if value > top:
                raise RigError(f"generation {self.generation} needs {value} "
                               f"{'images' if name == 'max_images' else 'bytes'} where the rig at {self.target} "
                               f"allows {top} ({name}); use fewer or smaller images", "too-large")

    def _request_id(self, header: dict, frames: list) -> str:
        """A fresh request id, or the one this request had before a crash (the journal), which
        is recorded durably before the request is sent."""
        checksum = zlib_ng.adler32(json.dumps({k: header[k] for k in ("encoding", "dtype", "shape", "repeats")}).encode())
        for f in frames:
            checksum = zlib_ng.adler32(f, checksum)  # zlib's value; 0.1 ms for 7.9 MB (zlib's own: 2.3)
        checksum = f"{checksum:08x}"
        seq, self._seq = self._seq, self._seq + 1
        if self._journal is None:
            return uuid.uuid4().hex
        rid = self._journal.request_id(self.generation, seq, header["image_ids"], checksum)
        if rid is not None:
            self.stats["resumed"] += 1
            return rid
        rid = uuid.uuid4().hex
        self._journal.record(self.generation, seq, rid, header["image_ids"], checksum)
        return rid

    def _exchange(self, rid: str, request: list[bytes]):
        """Send ``request`` until its result arrives; reconnect and resend the same request id
        when the rig falls silent, restarts or forgets the session."""
        self.malformed_kinds.clear()
        self._pings_out = self._stale_pongs = 0  # the pongs of earlier requests carry their ids: dropped as stale
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["resends"] += 1
            self._send(request)
            reply = self._await(rid, self._silence(), ping=True,
                                give_up=time.monotonic() + self.deadline + self.timeout)
            if reply is None:  # silent: a fresh socket (lazy pirate), then the same request again
                self._reconnect()
                continue
            if reply.type == "result":
                return reply
            if reply.type == "pong":  # state unknown (rig restarted) or done (result lost): resend. The pings
                # still unanswered were sent before that resend, so their pongs (ZeroMQ keeps the order on a
                # connection) say the same and must not each cost a retry (queued while the rig was down)
                self._stale_pongs = self._pings_out
                continue
            if reply.header["code"] == "unknown-session":
                self._reconnect()
                continue
            if reply.header["code"] == "busy":
                time.sleep(self.heartbeat)
                continue
            raise RigError(f"rig refused the request for generation {self.generation}: {reply.header['code']}: "
                           f"{reply.header['message']}", reply.header["code"], rid)
        raise RigUnavailableError(f"rig at {self.target} gave no result for generation {self.generation} after "
                                  f"{self.retries + 1} tries{self._malformed_note()}; resume the run once the rig "
                                  "is back")

    def _reconnect(self) -> None:
        try:
            self._connect()
        except RigUnavailableError as e:
            raise RigUnavailableError(f"{e}; generation {self.generation} was in flight: resume the run once the "
                                      "rig is back") from None

    def _records(self, result, ids: list[str], rid: str) -> list[dict]:
        """The result's trial records for this request's images, each repeat once, with its
        ``score`` (the mean over ``channels``; NaN when invalid), saved to the run."""
        channels = result.header["channels"]
        picked = list(range(len(channels))) if self.wanted is None else [channels.index(str(c)) for c in self.wanted
                                                                          if str(c) in channels]
        lacking = [c for c in self.unit_labels() if c not in channels]  # a selected channel left out: as null
        index = {image_id: i for i, image_id in enumerate(ids)}
        seen, records = set(), []
        for r in result.header["records"]:
            key = (r["image_id"], r["repeat"])
            if r["image_id"] not in index or r["repeat"] >= self.repeats or key in seen:
                continue  # a record for no image of this request, or a repeat already counted
            seen.add(key)
            values = [r["values"][c] if c < len(r["values"]) else None for c in picked]
            usable = r["valid"] and picked and not lacking and all(v is not None for v in values)
            score = _combine(np.mean, values) if usable else math.nan
            records.append({"generation": self.generation, "request_id": rid, "image_index": index[r["image_id"]],
                            **r, "channels": channels, "score": score})
        self.last_records = records
        self._save(records, result.header["complete"])
        return records

    def _aggregate(self, records: list[dict], n: int, values: list[list[float]], width: int) -> np.ndarray:
        """Float64 ``[n, width]``: per image, the ``aggregate`` over repeats of its records'
        ``values`` (one row of ``width`` per record, NaN where not valid); NaN where none is."""
        agg = np.median if self.aggregate == "median" else np.mean
        cells: list[list[list[float]]] = [[[] for _ in range(width)] for _ in range(n)]
        for r, row in zip(records, values):
            for cell, v in zip(cells[r["image_index"]], row):
                if not math.isnan(v):
                    cell.append(v)  # in record order, as the repeats came
        out = [[_combine(agg, cell) if cell else math.nan for cell in image] for image in cells]
        return np.array(out, dtype=np.float64).reshape(n, width)

    def _save(self, records: list[dict], complete: bool) -> None:
        """Append every trial record to RUN/rig_trials.jsonl (flushed and synced)."""
        if self.run_dir is None:
            return
        lines = "".join(json.dumps({**r, "complete": complete, "score": None if math.isnan(r["score"]) else r["score"]})
                        + "\n" for r in records)
        append_line(self.run_dir / TRIALS_FILE, lines)  # the run folder's writer: a full disk is one line

    def _close_socket(self) -> None:
        if self._monitor is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        self._socket.close(linger=0)
        self._socket = None

    def close(self) -> None:
        if self._socket is not None:
            self._close_socket()
        if not self._context.closed:
            self._context.term()
        if self._example_rig is not None:
            self._example_rig.stop()
            self._example_rig = None

    def __repr__(self) -> str:
        return f"ZmqResponder({self.target!r}, repeats={self.repeats}, {self.encoding}/{self.dtype})"
