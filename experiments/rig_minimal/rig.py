"""A minimal xdream-rig/1 rig (docs/protocol.md) using only pyzmq and numpy: port it to MATLAB,
C# or your rig's language. Replace show_and_record() with your stimulus and recording code.
It passes `xdream rig check` (its cache lives in memory: persist it if your rig may restart).

    python rig.py [tcp://127.0.0.1:5555]
"""
import json
import re
import sys
import time

import numpy as np
import zmq

PROTOCOL, MAX_FRAME = "xdream-rig/1", 16 << 20
ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}\Z")
FIELDS = {"hello": {"session", "request_id", "client", "encodings", "dtypes"}, "ping": {"session", "request_id"},
          "present": {"session", "request_id", "generation", "image_ids", "encoding", "dtype", "shape", "repeats",
                      "deadline_ms"}}
cache = {}  # request id -> (payload, result header): a resent request is answered, never shown again
sessions = set()
t0 = time.monotonic()


class Refused(Exception):
    """A message to answer with a typed error: (code, message)."""


def show_and_record(image):
    """Show one image [H, W, 3] uint8 and return (onset seconds, spike count, valid).
    This stand-in 'neuron' fires for bright centres."""
    h, w = image.shape[:2]
    centre = image[h // 4: 3 * h // 4, w // 4: 3 * w // 4].astype(float)
    return time.monotonic() - t0, float(np.round(centre.mean() / 8)), True


def send(sock, envelope, **header):
    sock.send_multipart(envelope + [json.dumps({"protocol": PROTOCOL, **header}, allow_nan=False).encode()])


def strict(pairs):
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate key")
    return dict(pairs)


def no_nan(token):
    raise ValueError(f"{token} is not JSON")


def integer(h, name, low, high, default=None):
    v = h.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise Refused("bad-message", f"{name} must be an integer {low}..{high}")
    if v > high:
        raise Refused("too-large", f"{name} {v} is above {high}")
    return v


def check(h, frames):
    """Validate a header against docs/protocol.md §2-§4 (the fields this rig reads)."""
    kind = h.get("type")
    if kind not in FIELDS:
        raise Refused("bad-message", f"unknown message type {kind!r}")
    if set(h) - FIELDS[kind] - {"protocol", "type"}:
        raise Refused("bad-message", f"unknown field {sorted(set(h) - FIELDS[kind] - {'protocol', 'type'})[0]!r}")
    for name in ("session", "request_id"):
        if not isinstance(h.get(name), str) or not ID.match(h[name]):
            raise Refused("bad-message", f"{name} must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    if kind != "present":
        return
    ids, shape = h.get("image_ids"), h.get("shape")
    if not isinstance(ids, list) or not ids or any(not isinstance(i, str) or not ID.match(i) for i in ids) \
            or len(set(ids)) != len(ids):
        raise Refused("bad-message", "image_ids must be a list of unique ids")
    if len(ids) > 1024:
        raise Refused("too-large", "at most 1024 images")
    integer(h, "repeats", 1, 100), integer(h, "deadline_ms", 1, 86_400_000, 600_000)
    if not isinstance(shape, list) or len(shape) != 3:
        raise Refused("bad-message", "shape must be [H, W, C]")
    integer(dict(H=shape[0]), "H", 1, 4096), integer(dict(W=shape[1]), "W", 1, 4096)
    if shape[2] not in (1, 3) or isinstance(shape[2], bool):
        raise Refused("bad-message", "C must be 1 or 3")
    if h.get("encoding") != "raw" or h.get("dtype") != "uint8":
        raise Refused("unsupported", "this rig takes raw uint8 only")
    if len(frames) != len(ids) or any(len(f) != int(np.prod(shape)) for f in frames):
        raise Refused("bad-message", f"need one frame of {int(np.prod(shape))} bytes per image")


def present(sock, envelope, h, frames):
    shape = h["shape"]
    records, deadline = [], time.monotonic() + h.get("deadline_ms", 600_000) / 1000
    for repeat in range(h["repeats"]):
        for image_id, frame in zip(h["image_ids"], frames):
            if time.monotonic() > deadline:
                break
            onset, value, valid = show_and_record(np.frombuffer(frame, np.uint8).reshape(shape))
            records.append({"image_id": image_id, "repeat": repeat, "trial_id": len(records), "onset": onset,
                            "values": [value], "valid": valid})
            envelope = answer_pings(sock, envelope, h["request_id"], len(records))
    result = dict(type="result", request_id=h["request_id"], channels=["ch0"], records=records,
                  complete=len(records) == h["repeats"] * len(frames))
    cache[h["request_id"]] = (payload(h), result)
    send(sock, envelope, **result)


def payload(h):
    return [h[k] for k in ("image_ids", "encoding", "dtype", "shape", "repeats")]


def answer_pings(sock, envelope, request_id, progress):
    """Between presentations: pong pings so the client knows this rig is slow, not dead."""
    while sock.poll(0):
        env, h, frames = receive(sock)
        if h is None:
            continue
        if h.get("request_id") == request_id:  # a ping for, or a resend of, this request
            envelope = env
            send(sock, env, type="pong", request_id=request_id, state="presenting", progress=progress)
        elif h.get("type") == "ping":
            send(sock, env, type="pong", request_id=h["request_id"], state="unknown", progress=0)
        else:
            send(sock, env, type="error", request_id=h["request_id"], code="busy", message="presenting")
    return envelope


def receive(sock):
    """(envelope, header, data frames); header None after an error reply to a bad message."""
    msg = sock.recv_multipart()
    n = 2 if len(msg) > 1 and msg[1] == b"" else 1  # a REQ client adds an empty delimiter
    envelope, body, rid = msg[:n], msg[n:], None
    try:
        try:
            h = json.loads(body[0], object_pairs_hook=strict, parse_constant=no_nan)
            assert isinstance(h, dict)
        except Exception:
            raise Refused("bad-message", "frame 0 must be a strict JSON object (no NaN, no duplicate keys)")
        rid = h.get("request_id") if isinstance(h.get("request_id"), str) and ID.match(h["request_id"]) else None
        if h.get("protocol") != PROTOCOL:
            raise Refused("version", f"this rig speaks {PROTOCOL}")
        check(h, body[1:])
    except Refused as e:
        send(sock, envelope, type="error", request_id=rid, code=e.args[0], message=e.args[1])
        return envelope, None, []
    return envelope, h, body[1:]


def main(endpoint):
    sock = zmq.Context().socket(zmq.ROUTER)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)  # a larger frame drops its sender, unread
    sock.bind(endpoint)
    print("rig listening on", sock.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    while True:
        envelope, h, frames = receive(sock)
        if h is None:
            continue
        rid, kind = h["request_id"], h["type"]
        if kind == "hello":
            sessions.add(h["session"])
            send(sock, envelope, type="welcome", request_id=rid, rig="rig_minimal", encodings=["raw"],
                 dtypes=["uint8"], channels=["ch0"], max_images=1024, max_frame_bytes=MAX_FRAME, heartbeat_ms=1000)
        elif kind == "ping":
            send(sock, envelope, type="pong", request_id=rid, state="done" if rid in cache else "unknown",
                 progress=len(cache[rid][1]["records"]) if rid in cache else 0)
        elif h["session"] not in sessions:
            send(sock, envelope, type="error", request_id=rid, code="unknown-session", message="send hello first")
        elif rid in cache and cache[rid][0] != payload(h):
            send(sock, envelope, type="error", request_id=rid, code="bad-message", message="request id reused")
        else:
            send(sock, envelope, **cache[rid][1]) if rid in cache else present(sock, envelope, h, frames)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555")
