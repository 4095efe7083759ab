"""A minimal xdream-rig/1 rig (docs/protocol.md) using only pyzmq and numpy: port it to MATLAB,
C# or your rig's language. Replace show_and_record() with your stimulus and recording code.
It passes `xdream rig check`, content probe (§4.5) and restart included when given a log.

    python rig.py [ENDPOINT] [--log FILE] [--trial-ms MS]

--log FILE persists the reply cache (one JSON line per request, trial and result, each flushed),
so a restarted rig neither presents a request again nor forgets it (§5); --trial-ms paces the
trials like a real rig (test mode for `xdream rig check`, whose resend and restart checks need
a request still being presented).
"""
import json
import re
import sys
import time

import numpy as np
import zmq

PROTOCOL, MAX_FRAME, CHANNELS = "xdream-rig/1", 16 << 20, ["ch0", "ch1"]
ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}\Z")
FIELDS = {"hello": {"session", "request_id", "client", "encodings", "dtypes"}, "ping": {"session", "request_id"},
          "present": {"session", "request_id", "generation", "image_ids", "encoding", "dtype", "shape", "repeats",
                      "deadline_ms", "probe"}}
DTYPES = {"uint8": np.dtype("u1"), "float32": np.dtype("<f4")}
cache = {}  # request id -> {"payload", "records", "result"}: a resent request is never shown again
sessions = set()  # greetings are not persisted: a restarted rig answers unknown-session (§5)
options = {"log": None, "trial_s": 0.0}
t0 = time.monotonic()


class Refused(Exception):
    """A message to answer with a typed error: (code, message)."""


def show_and_record(image):
    """Show one image [H, W, C] and return (onset seconds, one value per channel, valid).
    This stand-in 'neuron' fires for bright centres (ch0) and for the whole image (ch1)."""
    h, w = image.shape[:2]
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    centre = image[h // 4: 3 * h // 4, w // 4: 3 * w // 4].astype(float) / scale
    return time.monotonic() - t0, [float(np.round(centre.mean() * 32)), float(image.mean() / scale)], True


def probe(image):
    """The content probe (§4.5): per channel k, mean of x_i * (((i + 3k) mod 7) - 3)."""
    x = image.reshape(-1).astype(float) / (255.0 if image.dtype == np.uint8 else 1.0)
    i = np.arange(x.size)
    return [float(x @ ((i + 3 * k) % 7 - 3)) / x.size for k in range(len(CHANNELS))]


def send(sock, envelope, **header):
    sock.send_multipart(envelope + [json.dumps({"protocol": PROTOCOL, **header}, allow_nan=False).encode()])


def persist(event):
    if options["log"]:
        with open(options["log"], "a") as f:
            f.write(json.dumps(event) + "\n")


def load(path):
    try:
        text = open(path).read()
    except FileNotFoundError:
        return
    lines = text.splitlines()
    if text and not text.endswith("\n"):
        persist({})  # end the torn line of a crash, so the next event starts a line of its own
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        entry = cache.setdefault(e["request_id"], {"payload": e.get("payload"), "records": [], "result": None})
        if "record" in e:
            entry["records"].append(e["record"])
        elif "result" in e:
            entry["result"] = e["result"]


def strict(pairs):
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate key")
    return dict(pairs)


def no_nan(token):
    raise ValueError(f"{token} is not JSON")


def integer(h, name, low, high, default=None):
    v = h.get(name, default)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v != int(v) or v < low:
        raise Refused("bad-message", f"{name} must be an integer {low}..{high}")
    if v > high:
        raise Refused("too-large", f"{name} {v} is above {high}")
    return int(v)


def is_id(v):
    if isinstance(v, str) and len(v) > 64:
        raise Refused("too-large", "an id has at most 64 characters")
    return isinstance(v, str) and ID.match(v)


def check(h, frames):
    """Validate a header and its frames against docs/protocol.md §2-§4 (the fields this rig reads)."""
    kind = h.get("type")
    if kind not in FIELDS:
        raise Refused("bad-message", f"unknown message type {kind!r}")
    if set(h) - FIELDS[kind] - {"protocol", "type"}:
        raise Refused("bad-message", f"unknown field {sorted(set(h) - FIELDS[kind] - {'protocol', 'type'})[0]!r}")
    for name in ("session", "request_id"):
        if not is_id(h.get(name)):
            raise Refused("bad-message", f"{name} must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    if kind != "present":
        return
    ids, shape = h.get("image_ids"), h.get("shape")
    if not isinstance(ids, list) or not ids or any(not is_id(i) for i in ids) or len(set(ids)) != len(ids):
        raise Refused("bad-message", "image_ids must be a list of unique ids")
    if len(ids) > 1024:
        raise Refused("too-large", "at most 1024 images")
    integer(h, "repeats", 1, 100), integer(h, "deadline_ms", 1, 86_400_000, 600_000)
    integer(h, "generation", 0, 2 ** 31, 0)
    if not isinstance(h.get("probe", False), bool):
        raise Refused("bad-message", "probe must be true or false")
    if not isinstance(shape, list) or len(shape) != 3:
        raise Refused("bad-message", "shape must be [H, W, C]")
    integer(dict(H=shape[0]), "H", 1, 4096), integer(dict(W=shape[1]), "W", 1, 4096)
    if shape[2] not in (1, 3) or isinstance(shape[2], bool):
        raise Refused("bad-message", "C must be 1 or 3")
    if h.get("encoding") != "raw" or h.get("dtype") not in DTYPES:
        raise Refused("unsupported", "this rig takes raw uint8 and float32 only")
    size = int(np.prod(shape)) * DTYPES[h["dtype"]].itemsize
    if len(ids) * size > 256 << 20:
        raise Refused("too-large", f"{len(ids)} images of {size} bytes exceed 268435456 bytes decoded")
    if len(frames) != len(ids) or any(len(f) != size for f in frames):
        raise Refused("bad-message", f"need one frame of {size} bytes per image")
    if h["dtype"] == "float32" and not all(np.isfinite(np.frombuffer(f, DTYPES["float32"])).all() for f in frames):
        raise Refused("bad-message", "float32 pixels must be finite")


def present(sock, envelope, h, frames):
    """Present what is missing of a request (all of it, unless a crash interrupted it), pacing
    the trials and answering pings between them; the result goes to the newest sender."""
    rid, shape, dtype = h["request_id"], [int(s) for s in h["shape"]], DTYPES[h["dtype"]]
    entry = cache.setdefault(rid, {"payload": payload(h), "records": [], "result": None})
    if not entry["records"]:
        persist({"request_id": rid, "payload": entry["payload"]})
    records, deadline = entry["records"], time.monotonic() + h.get("deadline_ms", 600_000) / 1000
    shown = {(r["image_id"], r["repeat"]) for r in records}
    for repeat in range(int(h["repeats"])):
        for image_id, frame in zip(h["image_ids"], frames):
            if (image_id, repeat) in shown or time.monotonic() > deadline:
                continue
            envelope = answer_pings(sock, envelope, rid, len(records), options["trial_s"])
            image = np.frombuffer(frame, dtype).reshape(shape)
            onset, values, valid = show_and_record(image)
            if h.get("probe"):
                values, valid = probe(image), True
            records.append({"image_id": image_id, "repeat": repeat, "trial_id": len(records), "onset": onset,
                            "values": values, "valid": valid})
            persist({"request_id": rid, "record": records[-1]})
    result = dict(type="result", request_id=rid, channels=CHANNELS, records=records,
                  complete=len(records) == h["repeats"] * len(frames))
    entry["result"] = result
    persist({"request_id": rid, "result": result})
    send(sock, envelope, **result)


def payload(h):
    return [h[k] for k in ("image_ids", "encoding", "dtype", "shape", "repeats")] + [h.get("probe", False)]


def answer_pings(sock, envelope, request_id, progress, wait_s=0.0):
    """For wait_s seconds (at least one poll): pong pings so the client knows this rig is slow,
    not dead. A resend of this request only makes its sender the newest; one with another payload
    is bad-message (§5)."""
    end = time.monotonic() + wait_s
    while sock.poll(max(0, int((end - time.monotonic()) * 1000))):
        env, h, frames = receive(sock)
        if h is None:
            continue
        if h["request_id"] == request_id and h["type"] == "present" and cache[request_id]["payload"] != payload(h):
            send(sock, env, type="error", request_id=request_id, code="bad-message", message="request id reused")
        elif h["request_id"] == request_id:  # a ping for, or a resend of, this request
            envelope = env
            send(sock, env, type="pong", request_id=request_id, state="presenting", progress=progress)
        elif h["type"] == "hello":  # a client reconnecting while this rig presents
            welcome(sock, env, h)
        elif h["type"] == "ping":
            send(sock, env, type="pong", request_id=h["request_id"], state=state_of(h["request_id"]),
                 progress=len(cache[h["request_id"]]["records"]) if h["request_id"] in cache else 0)
        else:
            send(sock, env, type="error", request_id=h["request_id"], code="busy", message="presenting")
    return envelope


def welcome(sock, envelope, h):
    sessions.add(h["session"])
    send(sock, envelope, type="welcome", request_id=h["request_id"], rig="rig_minimal", encodings=["raw"],
         dtypes=list(DTYPES), channels=CHANNELS, max_images=1024, max_frame_bytes=MAX_FRAME, heartbeat_ms=1000,
         probe=True)


def state_of(rid):
    return "done" if rid in cache and cache[rid]["result"] else "unknown"


def receive(sock):
    """(envelope, header, data frames); header None after an error reply to a bad message."""
    msg = sock.recv_multipart()
    n = 2 if len(msg) > 1 and msg[1] == b"" else 1  # a REQ client adds an empty delimiter
    envelope, body, rid = msg[:n], msg[n:], None
    try:
        if len(body[0]) > 8 << 20:
            raise Refused("too-large", "a header has at most 8 MiB")
        try:
            h = json.loads(body[0], object_pairs_hook=strict, parse_constant=no_nan)
            assert isinstance(h, dict)
        except Exception:
            raise Refused("bad-message", "frame 0 must be a strict JSON object (no NaN, no duplicate keys)")
        rid = h.get("request_id") if isinstance(h.get("request_id"), str) and ID.match(h["request_id"]) else None
        if len(body) > 1025:
            raise Refused("too-large", "at most 1024 images")
        if h.get("protocol") != PROTOCOL:
            raise Refused("version", f"this rig speaks {PROTOCOL}")
        for key in ("client",):
            if isinstance(h.get(key), str) and len(h[key]) > 1000:
                raise Refused("too-large", f"{key} has at most 1000 characters")
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
            welcome(sock, envelope, h)
        elif kind == "ping":
            send(sock, envelope, type="pong", request_id=rid, state=state_of(rid),
                 progress=len(cache[rid]["records"]) if rid in cache else 0)
        elif h["session"] not in sessions:
            send(sock, envelope, type="error", request_id=rid, code="unknown-session", message="send hello first")
        elif rid in cache and cache[rid]["payload"] != payload(h):
            send(sock, envelope, type="error", request_id=rid, code="bad-message", message="request id reused")
        elif rid in cache and cache[rid]["result"]:
            send(sock, envelope, **cache[rid]["result"])
        else:
            present(sock, envelope, h, frames)


if __name__ == "__main__":
    args = sys.argv[1:]
    for flag, key, parse in (("--log", "log", str), ("--trial-ms", "trial_s", lambda v: float(v) / 1000)):
        if flag in args:
            at = args.index(flag)
            options[key] = parse(args.pop(at + 1))
            args.pop(at)
    if options["log"]:
        load(options["log"])
    main(args[0] if args else "tcp://127.0.0.1:5555")
