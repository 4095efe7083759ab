"""Deliberately non-conformant rigs for the mutation tests of ``xdream rig check``
(tests/xdream/rig/test_rig_mutants.py) and harmful_defects.py: the minimal rig (rig.py) with
one defect each, chosen by name on the command line.

    python mutants.py DEFECT ENDPOINT [--log FILE] [--trial-ms MS]

Each defect is a small patch of the rig's module (its functions and globals are looked up at
call time), so the rest of the rig stays the reference one. ``none`` is the rig unchanged.
"""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import zmq

RIG = Path(__file__).resolve().parent / "rig.py"


def load_rig():
    spec = importlib.util.spec_from_file_location("rig_minimal", RIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wrap(rig, name, make):
    setattr(rig, name, make(getattr(rig, name)))


def session_keyed_cache(rig):
    """The reply cache keyed by (session, request id): a resumed client's resend is shown again."""
    current = {"session": None}

    class PerSession(dict):
        def __contains__(self, rid):
            return dict.__contains__(self, (current["session"], rid))

        def __getitem__(self, rid):
            return dict.__getitem__(self, (current["session"], rid))

        def setdefault(self, rid, value):
            return dict.setdefault(self, (current["session"], rid), value)

    rig.cache = PerSession()

    def receive(original):
        def patched(sock):
            envelope, h, frames = original(sock)
            if h is not None:
                current["session"] = h["session"]
            return envelope, h, frames
        return patched
    wrap(rig, "receive", receive)


def ids_swapped(rig):
    """Each image's trials recorded under the next image's id."""
    wrap(rig, "present", lambda original: lambda sock, env, h, frames: original(sock, env, h, frames[1:] + frames[:1]))


def large_frames_cut(rig):
    """Reads each frame with one unchecked read of at most 64 KiB into a zeroed image buffer (a short
    read on a TCP bridge): an image above 64 KiB (256 x 256 x 3 is 192 KiB) is shown, and probed,
    with everything past its first 64 KiB black; the checker's 8 x 8 images are whole."""
    def cut(frame):
        frame = bytes(frame)
        return frame[:65536] + bytes(max(0, len(frame) - 65536))
    wrap(rig, "present", lambda original: lambda sock, env, h, frames: original(sock, env, h, [cut(f) for f in frames]))


def cache_by_payload(rig):
    """A new request id with the payload of an answered request (image ids, encoding, dtype, shape,
    repeats) gets that request's result: a cache keyed by image ids, as if they named pixels (a new
    run's g0-0 .. g0-39 is answered with the last run's records, nothing presented)."""
    def receive(original):
        def patched(sock):
            envelope, h, frames = original(sock)
            if h is not None and h["type"] == "present" and h["request_id"] not in rig.cache:
                for entry in list(rig.cache.values()):
                    if entry["result"] and entry["payload"] == rig.payload(h):
                        rig.cache[h["request_id"]] = {**entry, "result": {**entry["result"],
                                                                          "request_id": h["request_id"]}}
                        break
            return envelope, h, frames
        return patched
    wrap(rig, "receive", receive)


def restart_from_first(rig):
    """After a crash during a request, its resend starts over from the first image."""
    def load(original):
        def patched(path):
            original(path)
            for entry in rig.cache.values():
                if entry["result"] is None:
                    entry["records"] = []
        return patched
    wrap(rig, "load", load)


def deadline_ignored(rig):
    wrap(rig, "present", lambda original: lambda sock, env, h, frames: original(
        sock, env, {**h, "deadline_ms": 86_400_000}, frames))


def no_cache(rig):
    """Presents every resend again."""
    def present(original):
        def patched(sock, env, h, frames):
            rig.cache.pop(h["request_id"], None)
            original(sock, env, h, frames)
            rig.cache[h["request_id"]]["result"] = None
        return patched
    wrap(rig, "present", present)


def not_persisted(rig):
    """The cache lives in memory only: a restarted rig forgets everything."""
    rig.options["log"] = None
    rig.load = lambda path: None


def any_session(rig):
    """Presents for sessions it never greeted."""
    class Everyone(set):
        def __contains__(self, item):
            return True
    rig.sessions = Everyone()


def greetings_persisted(rig):
    """Greeted sessions survive a restart (so the old session is not told unknown-session)."""
    def welcome(original):
        def patched(sock, envelope, h):
            rig.persist({"request_id": "hello", "session": h["session"]})
            original(sock, envelope, h)
        return patched
    wrap(rig, "welcome", welcome)

    def load(original):
        def patched(path):
            original(path)
            for line in open(path).read().splitlines() if Path(path).exists() else []:
                event = json.loads(line)
                if "session" in event:
                    rig.sessions.add(event["session"])
            rig.cache.pop("hello", None)
        return patched
    wrap(rig, "load", load)


def no_probe(rig):
    """Does not offer the content probe."""
    def send(original):
        def patched(sock, envelope, **header):
            header.pop("probe", None) if header.get("type") == "welcome" else None
            original(sock, envelope, **header)
        return patched
    wrap(rig, "send", send)


def wrong_probe_rule(rig):
    rig.probe = lambda image: [float(image.astype(float).mean() / 255)] * len(rig.CHANNELS)


def channels_mislabelled(rig):
    """Values in one order, channel names in another."""
    def send(original):
        def patched(sock, envelope, **header):
            if header.get("type") == "result":
                header = {**header, "records": [{**r, "values": r["values"][::-1]} for r in header["records"]]}
            original(sock, envelope, **header)
        return patched
    wrap(rig, "send", send)


def channels_reordered(rig):
    """Conformant: the result lists its channels in another order than the welcome, values with them."""
    def send(original):
        def patched(sock, envelope, **header):
            if header.get("type") == "result":
                header = {**header, "channels": header["channels"][::-1],
                          "records": [{**r, "values": r["values"][::-1]} for r in header["records"]]}
            original(sock, envelope, **header)
        return patched
    wrap(rig, "send", send)


def nan_literal(rig):
    """Writes values as NaN literals (Python's json.dumps default)."""
    def send(sock, envelope, **header):
        if header.get("type") == "result":
            header = {**header, "records": [{**r, "values": [float("nan")] * len(r["values"])}
                                            for r in header["records"]]}
        sock.send_multipart(envelope + [json.dumps({"protocol": rig.PROTOCOL, **header}).encode()])
    rig.send = send


def refusal_code(rig, wrong, right):
    class Patched(rig.Refused):
        def __init__(self, code, message):
            super().__init__(right if code == wrong else code, message)
    rig.Refused = Patched


def too_large_as_bad_message(rig):
    refusal_code(rig, "too-large", "bad-message")


def unsupported_as_bad_message(rig):
    refusal_code(rig, "unsupported", "bad-message")


def version_as_bad_message(rig):
    refusal_code(rig, "version", "bad-message")


def deaf_to_pings(rig):
    def receive(original):
        def patched(sock):
            envelope, h, frames = original(sock)
            return (envelope, None, []) if h is not None and h["type"] == "ping" else (envelope, h, frames)
        return patched
    wrap(rig, "receive", receive)


def silent_on_garbage(rig):
    def send(original):
        def patched(sock, envelope, **header):
            if header.get("type") == "error" and header.get("request_id") is None and header["code"] == "bad-message":
                return
            original(sock, envelope, **header)
        return patched
    wrap(rig, "send", send)


def payload_not_compared(rig):
    rig.payload = lambda h: None


def duplicate_records(rig):
    def send(original):
        def patched(sock, envelope, **header):
            if header.get("type") == "result":
                header = {**header, "records": header["records"] + header["records"][:1]}
            original(sock, envelope, **header)
        return patched
    wrap(rig, "send", send)


def complete_but_short(rig):
    def send(original):
        def patched(sock, envelope, **header):
            if header.get("type") == "result" and header["records"]:
                header = {**header, "records": header["records"][:-1], "complete": True}
            original(sock, envelope, **header)
        return patched
    wrap(rig, "send", send)


def extra_record_field(rig):
    def send(original):
        def patched(sock, envelope, **header):
            if header.get("type") == "result":
                header = {**header, "records": [{**r, "image_index": 0} for r in header["records"]]}
            original(sock, envelope, **header)
        return patched
    wrap(rig, "send", send)


def nan_pixels_taken(rig):
    rig.np = type("NumpyFiniteAlways", (), {"__getattr__": lambda self, name: getattr(np, name),
                                            "isfinite": staticmethod(lambda a: np.ones_like(a, dtype=bool))})()


def long_ids_taken(rig):
    import re

    rig.ID = re.compile(r"[A-Za-z0-9_.:\-]{1,200}\Z")
    rig.is_id = lambda v: isinstance(v, str) and rig.ID.match(v)


def _while_answering_pings(rig, name, make):
    """While the rig answers pings between trials, its ``name`` is ``make(original, request_id)``."""
    def answer_pings(original):
        def patched(sock, envelope, request_id, progress, wait_s=0.0):
            saved = getattr(rig, name)
            setattr(rig, name, make(saved, request_id))
            try:
                return original(sock, envelope, request_id, progress, wait_s)
            finally:
                setattr(rig, name, saved)
        return patched
    wrap(rig, "answer_pings", answer_pings)


def _restart_on_resend(rig, restarts):
    """A resend of the request being presented for which ``restarts(h)`` holds starts it again."""
    def receive(inner, request_id):
        def take(s):
            env, h, frames = inner(s)
            if h is not None and h["type"] == "present" and h["request_id"] == request_id and restarts(h):
                rig.receive = inner
                rig.cache[request_id]["records"] = []
                rig.present(s, env, h, frames)
                return env, None, []
            return env, h, frames
        return take
    _while_answering_pings(rig, "receive", receive)


def resend_restarts(rig):
    """A resend while the request is presented starts it again."""
    _restart_on_resend(rig, lambda h: True)


def new_session_resend_restarts(rig):
    """A resend from another session while the request is presented (a client killed and resumed at
    once) starts it again: the old client is taken for gone and its block for aborted."""
    first = {}

    def restarts(h):
        if h["session"] == first[h["request_id"]]:
            return False
        first[h["request_id"]] = h["session"]
        return True

    _restart_on_resend(rig, restarts)

    def present(original):
        def patched(sock, envelope, h, frames):
            first.setdefault(h["request_id"], h["session"])
            original(sock, envelope, h, frames)
        return patched
    wrap(rig, "present", present)


def cache_expires_for_new_session(rig):
    """A resend of an answered request from another session than the first sender's is presented
    again once the request's deadline has passed (the old client 'gave up'): a client resumed after
    a crash re-presents the generation it had in flight."""
    first = {}

    def receive(original):
        def patched(sock):
            envelope, h, frames = original(sock)
            if h is not None and h["type"] == "present":
                rid = h["request_id"]
                session, at = first.setdefault(rid, (h["session"], rig.time.monotonic()))
                if (rid in rig.cache and rig.cache[rid]["result"] and h["session"] != session
                        and rig.time.monotonic() - at > h.get("deadline_ms", 600_000) / 1000):
                    rig.cache.pop(rid)
                    first[rid] = (h["session"], rig.time.monotonic())
            return envelope, h, frames
        return patched
    wrap(rig, "receive", receive)


def oldest_sender_answered(rig):
    """The result goes to the first sender, never to the newest."""
    def answer_pings(original):
        def patched(sock, envelope, request_id, progress, wait_s=0.0):
            original(sock, envelope, request_id, progress, wait_s)
            return envelope
        return patched
    wrap(rig, "answer_pings", answer_pings)


def payload_not_compared_while_presenting(rig):
    """A resend while the request is presented is taken whatever its payload (other image ids too):
    it only makes its sender the newest, as a true resend does."""
    _while_answering_pings(rig, "payload", lambda original, request_id: lambda h: rig.cache[request_id]["payload"])


def unknown_is_done(rig):
    """Says 'done' for requests it never saw."""
    rig.state_of = lambda rid: "done"


def interrupted_is_presenting(rig):
    """Says 'presenting' for a request it holds without a result: after a crash, one its log holds
    only part of, which it is not presenting (a client still waiting waits for its deadline, not
    resending: a crash costs up to the deadline of animal time)."""
    rig.state_of = lambda rid: "unknown" if rid not in rig.cache else "done" if rig.cache[rid]["result"] else \
        "presenting"


def partial_result_not_final(rig):
    """A resend after the deadline presents what was missing (a partial result is not cached)."""
    class PartialIsNotCached(dict):
        def __getitem__(self, rid):
            entry = dict.__getitem__(self, rid)
            if entry["result"] is not None and not entry["result"]["complete"]:
                return {**entry, "result": None}
            return entry
    rig.cache = PartialIsNotCached(rig.cache)


def header_size_unchecked(rig):
    """Parses a header above 8 MiB instead of refusing it unread."""
    original = rig.receive

    class Replay:
        def __init__(self, frames):
            self.frames = frames

        def recv_multipart(self):
            return self.frames

    def receive(sock):
        frames = sock.recv_multipart()
        frames[1:2] = [frames[1].rstrip()] if len(frames) > 1 else []
        return original(Replay(frames))
    rig.receive = receive


def decoded_size_unchecked(rig):
    """Compares the frame lengths before the decoded size (bad-message where §3 says too-large)."""
    def check(original):
        def patched(h, frames):
            if h.get("type") == "present" and h.get("dtype") in rig.DTYPES and isinstance(h.get("shape"), list):
                size = int(np.prod(h["shape"])) * rig.DTYPES[h["dtype"]].itemsize
                if any(len(f) != size for f in frames):
                    raise rig.Refused("bad-message", f"need frames of {size} bytes")
            original(h, frames)
        return patched
    wrap(rig, "check", check)


def welcome_without_channels(rig):
    def send(original):
        def patched(sock, envelope, **header):
            if header.get("type") == "welcome":
                header.pop("channels")
            original(sock, envelope, **header)
        return patched
    wrap(rig, "send", send)


def busy_to_hello(rig):
    """While presenting, answers a reconnecting client's hello with busy."""
    def welcome(original):
        def patched(sock, envelope, h):
            if rig.presenting["now"]:
                rig.send(sock, envelope, type="error", request_id=h["request_id"], code="busy", message="presenting")
                return
            original(sock, envelope, h)
        return patched
    rig.presenting = {"now": False}

    def present(original):
        def patched(*args):
            rig.presenting["now"] = True
            try:
                original(*args)
            finally:
                rig.presenting["now"] = False
        return patched
    wrap(rig, "welcome", welcome)
    wrap(rig, "present", present)


def rep_socket(rig):
    """Binds REP instead of ROUTER (a DEALER client's messages, without a delimiter, are dropped)."""
    def main(endpoint):
        sock = zmq.Context().socket(zmq.REP)
        sock.bind(endpoint)
        print("rig listening on", sock.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
        while True:
            h = json.loads(sock.recv_multipart()[0])
            sock.send_multipart([json.dumps({"protocol": rig.PROTOCOL, "type": "welcome",
                                             "request_id": h.get("request_id", "x"), "encodings": ["raw"],
                                             "dtypes": ["uint8"], "channels": rig.CHANNELS}).encode()])
    rig.main = main


DEFECTS = {name: f for name, f in dict(globals()).items()
           if callable(f) and getattr(f, "__module__", None) == __name__ and f.__code__.co_argcount == 1
           and name not in ("load_rig",)}
DEFECTS["none"] = lambda rig: None

if __name__ == "__main__":
    defect, argv = sys.argv[1], sys.argv[2:]
    rig = load_rig()
    DEFECTS[defect](rig)
    for flag, key, parse in (("--log", "log", str), ("--trial-ms", "trial_s", lambda v: float(v) / 1000)):
        if flag in argv:
            at = argv.index(flag)
            if not (defect == "not_persisted" and key == "log"):
                rig.options[key] = parse(argv[at + 1])
            del argv[at:at + 2]
    if rig.options["log"]:
        rig.load(rig.options["log"])
    rig.main(argv[0])
