"""``xdream rig simulate``: a reference rig server for ``xdream-rig/1`` with a simulated neuron.

The neurons are ``torch-unit`` targets (``--target``, repeatable: one simulated neuron per
target, all of one model, scored together by one ``torch-units`` responder in one forward pass
per batch), optionally with Poisson or Gaussian trial noise drawn per channel per trial. Each
neuron is recorded on ``--channels N`` channels (default 1; N copies with independent noise),
named ``ch0, ch1, ...`` in target order: target k's copies are ``ch{k*N} .. ch{k*N+N-1}``.
The presentation log's ``boot`` event maps every channel to its target. Presentations take
``presentation_ms`` each and run one at a time while the server keeps answering pings, so the
client can tell a slow rig from a dead one.

The presentation log (JSON lines, flushed after every trial) is also the reply cache, keyed by
request id and kept across client sessions (docs/protocol.md §5): a request id seen again is
answered from the log (from any session: a resumed client resends the request it had in
flight), a request interrupted by a crash resumes with the presentations still missing, so a
retry, a restart or a client crash never shows an image twice. Images are decoded one at a
time and scored in bounded chunks, so a request's memory is bounded by the protocol's limits.
With CURVE every refused client handshake is reported on stderr and in the log.

Fault injection for tests: each outgoing message may be dropped, delayed, duplicated or
corrupted with given probabilities, trials may be marked invalid, and the process can exit
abruptly after given numbers of presentations (``--crash-at``); ``--restart`` supervises it and
starts it again on the same endpoint and log.
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import zmq

from xdream.core import registry
from xdream.core.errors import ConfigError, RunDirError
from xdream.core.responder import NoiseModel, Responder
from xdream.rig.keys import secure_server
from xdream.core.seeding import check_seed, derive_rngs
from xdream.rig.probe import probe_values
from xdream.rig.schema import load_schema
from xdream.rig.usage import OneLineParser
from xdream.runs.rundir import append_line
from xdream.rig.protocol import (DTYPES, ENCODINGS, MAX_RESULT_VALUES, Limits, ProtocolError, decode, encode,
                                 error_reply, iter_images)

CRASH_EXIT = 75  # exit status of an injected crash; the supervisor restarts on it
MAX_QUEUE = 16
DEFAULT_DEADLINE_MS = 600_000  # docs/protocol.md §4.2
CHUNK_BYTES = 64 << 20  # the most float32 pixels the neuron sees at once
PAYLOAD = ("image_ids", "encoding", "dtype", "shape", "repeats", "probe")  # a resend must match these (§5)


@dataclass
class Faults:
    """Probabilities per outgoing message (drop, delay, duplicate, corrupt), per trial
    (invalid), a delay in seconds, and presentation counts at which the process crashes."""

    drop: float = 0.0
    delay: float = 0.0
    delay_s: float = 0.5
    duplicate: float = 0.0
    corrupt: float = 0.0
    invalid: float = 0.0
    crash_at: list = field(default_factory=list)

    def __post_init__(self):
        for name in ("drop", "delay", "duplicate", "corrupt", "invalid"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"fault probability {name} must be in 0..1, got {value}")
        if not 0 <= self.delay_s < math.inf:
            raise ConfigError(f"fault delay must be a finite number >= 0 seconds, got {self.delay_s}")
        if any(n < 1 for n in self.crash_at):  # (presentations count from 1: a crash at 0 never came)
            raise ConfigError(f"fault crash_at (--crash-at N) must be a presentation count >= 1, "
                              f"got {min(self.crash_at)}")


class PresentationLog:
    """The append-only presentation log, loaded back on start: trials per request id and the
    requests already answered (the reply cache). Each event is appended and fsynced by the run
    folder's writer; one it cannot write (a full disk) is a one-line :class:`RunDirError` naming
    the log, which stops the rig before it presents or answers anything the log lacks."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.trials: dict[str, list[dict]] = collections.defaultdict(list)
        self.done: dict[str, dict] = {}
        self.payloads: dict[str, dict] = {}
        self.count = 0
        self._lock = threading.Lock()  # the CURVE authenticator thread writes refusals
        text = self.path.read_text() if self.path.exists() else ""
        if text:
            for line in text.splitlines():
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a crash
                if event["event"] == "trial":
                    self.trials[event["request_id"]].append(event["record"])
                    self.count += 1
                elif event["event"] == "done":
                    self.done[event["request_id"]] = event
                elif event["event"] == "request":
                    self.payloads[event["request_id"]] = event["payload"]
        with open(self.path, "a") as f:
            if text and not text.endswith("\n"):
                f.write("\n")  # ends the torn line, so the next event starts a line of its own

    def write(self, event: dict) -> None:
        with self._lock:
            append_line(self.path, json.dumps(event) + "\n")


@dataclass
class Job:
    """A ``present`` request being worked on: who to answer, what is left to present."""

    header: dict
    envelope: list
    clean: np.ndarray  # the neurons' noise-free responses to each image [images, neurons] (probe: [images, channels])
    deadline: float
    pending: list = field(default_factory=list)
    next_at: float = 0.0
    probe: bool = False  # answer with the content probe's values (docs/protocol.md §4.5)


class RigSimulator:
    """The rig server; :meth:`serve` runs it until ``max_seconds`` or a stop flag file.

    ``neuron`` is any responder: one with a single unit is one neuron (its ``respond``), one
    with several units (``unit_labels``) is one neuron per unit (its ``respond_units``, one
    call for all). Each neuron is recorded on ``channels`` channels (independent noise each),
    named ``ch0, ch1, ...``, neuron by neuron."""

    def __init__(self, neuron: Responder, *, endpoint: str = "tcp://127.0.0.1:*", log: str | Path = "rig-log.jsonl",
                 noise: NoiseModel | None = None, channels: int = 1, presentation_ms: float = 0.0, seed: int = 0,
                 faults: Faults | None = None, heartbeat_ms: int = 1000, limits: Limits = Limits(),
                 curve_secret: str | Path | None = None, allow_dir: str | Path | None = None):
        if channels < 1:
            raise ConfigError(f"channels must be >= 1, got {channels}")
        units = list(neuron.unit_labels())
        most = load_schema()["$defs"]["channels"]["maxItems"]  # what a welcome may list (docs/protocol.md §3)
        if len(units) * channels > most:
            raise ConfigError(f"{len(units)} neuron(s) x {channels} channels each are {len(units) * channels} "
                              f"channels; a rig has at most {most}")
        if not 0 <= presentation_ms < math.inf:
            raise ConfigError(f"presentation time must be a finite number >= 0 ms, got {presentation_ms}")
        check_seed(seed)
        self.neuron, self.noise, self.limits = neuron, noise, limits
        self.units = units
        self.copies = channels
        self.channels = [f"ch{i}" for i in range(len(self.units) * channels)]
        self.presentation_s, self.heartbeat_ms = presentation_ms / 1000, heartbeat_ms
        self.faults = faults or Faults()
        rngs = derive_rngs(seed)
        self.noise_rng, self.fault_rng = rngs["noise"], rngs["responder"]
        self.sessions: set[str] = set()
        self.queue: collections.deque[Job] = collections.deque()
        self.current: Job | None = None
        self.outbox: list[tuple[float, list]] = []
        self.t0 = time.monotonic()
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, limits.max_frame_bytes)  # larger frames: peer dropped unread
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.auth = None
        try:
            if (curve_secret is None) != (allow_dir is None):
                raise ConfigError("CURVE needs both the rig's secret key file and an allow-list directory")
            if curve_secret is not None:
                self.auth = secure_server(self.context, self.socket, curve_secret, allow_dir, self._refused)
            self.socket.bind(endpoint)
        except BaseException:
            self._close_socket()
            raise
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        # The log is opened last: a rig that fails to start leaves no file behind.
        try:
            self.log = PresentationLog(log)
            self.log.write({"event": "boot", "pid": os.getpid(), "time": time.time(),
                            "channels": {c: self.units[i // channels] for i, c in enumerate(self.channels)}})
        except OSError as e:
            self._close_socket()
            raise ConfigError(f"cannot write the presentation log {str(log)!r}: {e.strerror or e}") from None
        except RunDirError:
            self._close_socket()
            raise

    # -- the loop ---------------------------------------------------------------------------
    def serve(self, max_seconds: float = float("inf")) -> None:
        end = time.monotonic() + max_seconds
        while time.monotonic() < end:
            now = time.monotonic()
            wake = [end, now + 0.2]
            if self.current is not None:
                wake.append(self.current.next_at)
            wake += [due for due, _ in self.outbox]
            timeout = max(0, int((min(wake) - now) * 1000))
            if self.socket.poll(timeout, zmq.POLLIN):
                # zero-copy: each frame a view of the received buffer, not a copy of the pixels
                self._receive([f.buffer for f in self.socket.recv_multipart(copy=False)])
            self._flush_outbox()
            self._advance()

    def close(self) -> None:
        self._close_socket()

    def _close_socket(self) -> None:
        self.socket.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        self.context.term()

    def _refused(self, key: str, reason: str) -> None:
        """A client's CURVE handshake was refused (called by the authenticator thread)."""
        print(f"xdream rig simulate: refused a CURVE client with public key {key}: {reason} (not in the "
              "allow-list?)", file=sys.stderr, flush=True)
        self.log.write({"event": "refused", "peer": key, "reason": reason, "time": time.time()})

    # -- incoming ---------------------------------------------------------------------------
    def _receive(self, frames: list) -> None:
        """Answer one message; ``frames`` are buffers (zero-copy views of the received frames)."""
        envelope, body = frames[:1], frames[1:]
        if body and body[0] == b"":  # a REQ client's delimiter
            envelope, body = frames[:2], frames[2:]
        try:
            msg = decode(body, self.limits, expect=("hello", "present", "ping"))
            getattr(self, "_on_" + msg.type)(msg, envelope)
        except ProtocolError as e:
            self.socket.send_multipart(envelope + error_reply(e.request_id, e.code, str(e)))
        except RunDirError:
            raise  # the log cannot be written (a full disk): the rig stops, one line naming the log
        except Exception as e:  # a bug must not take the rig down; the client gets a typed error
            self.socket.send_multipart(envelope + error_reply(None, "internal", f"{type(e).__name__}: {e}"))

    def _on_hello(self, msg, envelope) -> None:
        self.sessions.add(msg.header["session"])
        self._send(envelope, {"type": "welcome", "request_id": msg.request_id, "rig": "xdream rig simulate",
                              "encodings": list(ENCODINGS), "dtypes": list(DTYPES), "channels": self.channels,
                              "max_images": self.limits.max_images, "max_frame_bytes": self.limits.max_frame_bytes,
                              "max_message_bytes": self.limits.max_message_bytes,
                              "heartbeat_ms": self.heartbeat_ms, "probe": True})

    def _on_ping(self, msg, envelope) -> None:
        rid = msg.request_id
        job = self._job(rid)
        if job is not None:
            job.envelope = envelope  # the client may have reconnected under a new identity
        state = ("done" if rid in self.log.done else "presenting" if job is self.current and job
                 else "queued" if job else "unknown")
        self._send(envelope, {"type": "pong", "request_id": rid, "state": state,
                              "progress": len(self.log.trials.get(rid, ()))})

    def _on_present(self, msg, envelope) -> None:
        h, rid, received = msg.header, msg.request_id, time.monotonic()
        if h["session"] not in self.sessions:
            raise ProtocolError(f"session {h['session']!r} unknown to this rig; send hello first",
                                "unknown-session", rid)
        payload = {k: h.get(k, False) for k in PAYLOAD}
        known = {"probe": False, **self.log.payloads.get(rid, payload)}  # logs written before the probe lack it
        if known != payload:
            raise ProtocolError(f"request id {rid!r} was used for another request (other "
                                f"{', '.join(k for k in PAYLOAD if known[k] != payload[k])}); "
                                "a new request needs a new id", "bad-message", rid)
        if rid in self.log.done:  # a resend: answer from the cache, present nothing
            self._send(envelope, self._result(rid, self.log.done[rid]))
            return
        job = self._job(rid)
        if job is not None:  # already queued or presenting: just answer the newest socket
            job.envelope = envelope
            return
        if len(self.queue) >= MAX_QUEUE:
            raise ProtocolError(f"rig queue full ({MAX_QUEUE} requests)", "busy", rid)
        values = len(h["image_ids"]) * h["repeats"] * len(self.channels)
        if values > MAX_RESULT_VALUES:
            raise ProtocolError(f"{len(h['image_ids'])} images x {h['repeats']} repeats x {len(self.channels)} channels "
                                f"are {values} values; the limit is {MAX_RESULT_VALUES} per result", "too-large", rid)
        probe = bool(h.get("probe"))
        if probe:  # validates every image too, one at a time
            clean = np.array([probe_values(image, len(self.channels)) for image in iter_images(msg)])
        else:
            clean = self._clean_responses(msg)
        if rid not in self.log.payloads:
            self.log.payloads[rid] = payload
            self.log.write({"event": "request", "request_id": rid, "payload": payload})
        shown = {(r["image_id"], r["repeat"]) for r in self.log.trials.get(rid, ())}
        pending = [(i, k) for k in range(h["repeats"]) for i in range(len(h["image_ids"]))
                   if (h["image_ids"][i], k) not in shown]  # resumed after a crash: only what is missing
        deadline = received + h.get("deadline_ms", DEFAULT_DEADLINE_MS) / 1000  # from this receipt
        self.queue.append(Job(h, envelope, clean, deadline, pending, probe=probe))

    def _job(self, rid: str) -> Job | None:
        for job in ([self.current] if self.current else []) + list(self.queue):
            if job.header["request_id"] == rid:
                return job
        return None

    # -- presenting -------------------------------------------------------------------------
    def _advance(self) -> None:
        """Present the current job's next trial when it is due; finish jobs; start the next."""
        now = time.monotonic()
        if self.current is None:
            if not self.queue:
                return
            self.current = job = self.queue.popleft()
            job.next_at = now
        job = self.current
        while job.pending and now >= job.next_at and now < job.deadline:
            self._present(job, *job.pending.pop(0))
            job.next_at += self.presentation_s
            if self.presentation_s > 0:
                break
        if not job.pending or time.monotonic() >= job.deadline:
            self._finish(job)

    def _clean_responses(self, msg) -> np.ndarray:
        """The neurons' responses ``[images, neurons]``, the images decoded one at a time (PNG) and
        scored in chunks of at most CHUNK_BYTES of float32 pixels: nothing else is kept."""
        h, w, _ = msg.header["shape"]
        per_chunk = max(1, CHUNK_BYTES // (h * w * 3 * 4))
        out, chunk = [], []
        for image in iter_images(msg):  # validates every image before anything is presented
            chunk.append(image)
            if len(chunk) == per_chunk:
                out.append(self._respond(chunk, msg.header["dtype"]))
                chunk = []
        if chunk:
            out.append(self._respond(chunk, msg.header["dtype"]))
        return np.concatenate(out)

    def _respond(self, images: list, dtype: str) -> np.ndarray:
        # one float copy of the chunk, made in place: [N, C, H, W] contiguous, then scaled (the
        # model's own resizing follows); a 4096x4096 PNG costs its float32 pixels, not 4 copies
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().float()
        if dtype == "uint8":
            x.div_(255)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1).contiguous()
        with torch.no_grad():
            if len(self.units) > 1:
                return np.asarray(self.neuron.respond_units(x), dtype=np.float64)
            return np.asarray(self.neuron.respond(x), dtype=np.float64)[:, None]

    def _present(self, job: Job, index: int, repeat: int) -> None:
        h = job.header
        if job.probe:  # the probe's exact values, every trial valid (§4.5)
            values, valid = job.clean[index], True
        else:
            clean = np.repeat(job.clean[index], self.copies)  # neuron by neuron, each on its channels
            values = self.noise(clean, self.noise_rng) if self.noise is not None else clean
            valid = bool(self.fault_rng.random() >= self.faults.invalid) if self.faults.invalid else True
        record = {"image_id": h["image_ids"][index], "repeat": repeat, "trial_id": self.log.count,
                  "onset": round(time.monotonic() - self.t0, 6),
                  "values": [float(v) if np.isfinite(v) else None for v in values], "valid": valid}
        self.log.write({"event": "trial", "request_id": h["request_id"], "generation": h.get("generation"),
                        "record": record})
        self.log.trials[h["request_id"]].append(record)
        self.log.count += 1
        if self.log.count in self.faults.crash_at:
            os._exit(CRASH_EXIT)  # an abrupt crash: no reply, no cleanup

    def _finish(self, job: Job) -> None:
        rid = job.header["request_id"]
        done = {"event": "done", "request_id": rid, "complete": not job.pending}
        self.log.write(done)
        self.log.done[rid] = done
        self.current = None
        self._send(job.envelope, self._result(rid, done))

    def _result(self, rid: str, done: dict) -> dict:
        return {"type": "result", "request_id": rid, "complete": done["complete"], "channels": self.channels,
                "records": self.log.trials.get(rid, [])}

    # -- outgoing, with faults ----------------------------------------------------------------
    def _send(self, envelope: list, header: dict) -> None:
        frames = envelope + encode(header)
        f, rng = self.faults, self.fault_rng
        if f.drop and rng.random() < f.drop:
            return
        if f.corrupt and rng.random() < f.corrupt:
            body = bytearray(frames[-1])
            cut = int(rng.integers(0, len(body)))
            body[cut:cut + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
            frames[-1] = bytes(body)
        copies = 2 if f.duplicate and rng.random() < f.duplicate else 1
        due = time.monotonic() + (f.delay_s if f.delay and rng.random() < f.delay else 0.0)
        self.outbox += [(due, frames)] * copies
        self._flush_outbox()

    def _flush_outbox(self) -> None:
        now, keep = time.monotonic(), []
        for due, frames in self.outbox:
            if due <= now:
                try:
                    self.socket.send_multipart(frames, flags=zmq.NOBLOCK)
                except zmq.Again:
                    pass  # the peer is gone or slow; the client resends if it still waits
            else:
                keep.append((due, frames))
        self.outbox = keep


class ServingThread:
    """A :class:`RigSimulator` serving in a daemon thread of this process (real sockets on
    loopback), for in-process rigs: tests and the ``zmq`` responder's contract-test example.
    :meth:`stop` ends the thread and closes the server; calling it again does nothing."""

    def __init__(self, sim: RigSimulator):
        self.sim = sim
        self._stop = threading.Event()
        self._thread: threading.Thread | None = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sim.serve(0.1)

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(10)
        self._thread = None
        self.sim.close()


# ---------------------------------------------------------------------------------------------
# command line


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="xdream rig simulate",
                                description="A simulated rig speaking xdream-rig/1 (docs/protocol.md).")
    p.add_argument("--target", required=True, action="append", metavar="MODEL:LAYER:CHANNEL[:Y:X]",
                   help="a simulated neuron (a torch-unit target); repeat for several neurons of one model, "
                        "scored in one forward pass, one channel each (ch0, ch1, ... in this order)")
    p.add_argument("--target-weights", "--weights", dest="weights", metavar="FILE",
                   help="the target network's local weights file (a torchvision state dict, caffenet.pt)")
    p.add_argument("--readout", default="center", help="center or mean (default center)")
    p.add_argument("--input-size", type=int, help="model input size (default the model's)")
    p.add_argument("--noise", help="trial noise: poisson or gaussian")
    p.add_argument("--noise-set", action="append", default=[], metavar="KEY=VALUE",
                   help="noise option of --noise, e.g. level=0.5")
    p.add_argument("--channels", type=int, default=1, metavar="N",
                   help="channels per neuron (copies with independent noise); with several --target, target k "
                        "is on ch{k*N} .. ch{k*N+N-1}")
    p.add_argument("--presentation-ms", type=float, default=0.0, help="time per presentation (default 0)")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5555",
                   help="bind address (default tcp://127.0.0.1:5555; tcp://127.0.0.1:* picks a port)")
    p.add_argument("--endpoint-file", help="write the bound endpoint to this file once listening")
    p.add_argument("--log", default="rig-log.jsonl",
                   help="presentation log, also the reply cache (default rig-log.jsonl)")
    p.add_argument("--seed", type=int, default=0, help="seed of the trial noise and the faults (default 0)")
    p.add_argument("--max-seconds", type=float, default=float("inf"), help="stop after this long")
    for name in ("drop", "delay", "duplicate", "corrupt", "invalid"):
        p.add_argument(f"--{name}", type=float, default=0.0, help=f"fault: probability to {name} a "
                       + ("trial (mark it invalid)" if name == "invalid" else "message"))
    p.add_argument("--delay-s", type=float, default=0.5, help="fault: how long a delayed message waits")
    p.add_argument("--crash-at", type=int, action="append", default=[], metavar="N",
                   help="fault: exit abruptly after the N-th presentation (repeatable)")
    p.add_argument("--curve-secret", metavar="FILE", help="CURVE: the rig's NAME.key_secret (xdream rig keygen)")
    p.add_argument("--allow", metavar="DIR", help="CURVE: directory of the public keys of clients allowed in")
    p.add_argument("--restart", action="store_true", help="start the server again on the same endpoint after a crash")
    return p


def _noise(args) -> NoiseModel | None:
    if args.noise is None:
        if args.noise_set:
            raise ConfigError(f"--noise-set {args.noise_set[0]} given without --noise NAME "
                              f"({', '.join(registry.available('noise'))}); "
                              "give the noise model, or drop --noise-set")
        return None
    options = {}
    for item in args.noise_set:
        key, sep, value = item.partition("=")
        try:
            options[key.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--noise-set needs KEY=NUMBER, got {item!r}") from None
    return registry.create("noise", args.noise, options)


def _warn_if_public(endpoint: str) -> None:
    host = endpoint.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    try:
        public = not ipaddress.ip_address(host).is_loopback
    except ValueError:
        public = host not in ("localhost",) and not endpoint.startswith(("ipc://", "inproc://"))
    if public:
        print(f"xdream rig simulate: warning: {endpoint} is reachable beyond this machine and the link is "
              "not encrypted", file=sys.stderr)


def main(argv: list[str]) -> int:
    """Entry point of ``xdream rig simulate``; with ``--restart``, a supervisor of itself."""
    args = build_parser().parse_args(argv)
    if not args.max_seconds >= 0:  # (NaN: a rig that stops at once)
        raise ConfigError(f"--max-seconds must be a number >= 0 (inf: until stopped), got {args.max_seconds}")
    if args.restart:
        return _supervise(args, argv)
    noise = _noise(args)
    options = {"readout": args.readout, "weights": args.weights, "input_size": args.input_size}
    if len(args.target) == 1:
        neuron = registry.create("responder", "torch-unit", {"target": args.target[0], **options}, device="cpu")
    else:
        neuron = registry.create("responder", "torch-units", {"targets": args.target, **options}, device="cpu")
    faults = Faults(args.drop, args.delay, args.delay_s, args.duplicate, args.corrupt, args.invalid, args.crash_at)
    if args.curve_secret is None:
        _warn_if_public(args.endpoint)
    try:
        sim = RigSimulator(neuron, endpoint=args.endpoint, log=args.log, noise=noise, channels=args.channels,
                           presentation_ms=args.presentation_ms, seed=args.seed, faults=faults,
                           curve_secret=args.curve_secret, allow_dir=args.allow)
    except zmq.ZMQError as e:
        raise ConfigError(f"cannot bind {args.endpoint!r}: {e}") from None
    if args.endpoint_file:
        tmp = Path(args.endpoint_file + ".tmp")
        try:
            tmp.write_text(sim.endpoint)
            os.replace(tmp, args.endpoint_file)
        except OSError as e:
            sim.close()
            if tmp.exists():
                tmp.unlink()
            raise ConfigError(f"cannot write the endpoint file {args.endpoint_file!r}: {e.strerror or e}") from None
    print(f"rig simulator listening on {sim.endpoint}", file=sys.stderr, flush=True)
    try:
        sim.serve(args.max_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
    return 0


def _supervise(args, argv: list[str]) -> int:
    """Run the server in a child process and start it again (same endpoint, same log) after
    an injected crash, until it exits any other way."""
    child_argv = [a for a in argv if a != "--restart"]
    endpoint_file = args.endpoint_file or str(Path(args.log).with_suffix(".endpoint"))
    if not args.endpoint_file:
        child_argv += ["--endpoint-file", endpoint_file]
    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    while True:
        child = subprocess.Popen([sys.executable, "-m", "responders.rig_sim", *child_argv])
        try:
            code = child.wait()
        except KeyboardInterrupt:
            child.terminate()
            child.wait()
            return 0
        if code != CRASH_EXIT:
            return code
        bound = Path(endpoint_file).read_text().strip()
        child_argv = _replace_option(child_argv, "--endpoint", bound)
        print(f"rig simulator crashed; restarting on {bound}", file=sys.stderr, flush=True)


def _replace_option(argv: list[str], option: str, value: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == option:
            skip = True
            continue
        if not a.startswith(option + "="):
            out.append(a)
    return out + [option, value]


if __name__ == "__main__":
    from xdream.core.errors import XDreamError

    try:
        sys.exit(main(sys.argv[1:]))
    except XDreamError as e:
        print(f"xdream rig simulate: error: {e}", file=sys.stderr)
        sys.exit(2)
