"""A minimal xdream-rig/1 rig (docs/protocol.md) using only pyzmq and numpy: port it to MATLAB,
C# or your rig's language. Replace show_and_record() with your stimulus and recording code.

    python rig.py [tcp://127.0.0.1:5555]
"""
import json
import sys
import time

import numpy as np
import zmq

PROTOCOL, MAX_FRAME = "xdream-rig/1", 16 << 20
cache = {}  # request id -> result header: a resent request is answered, never shown again
sessions = set()
t0 = time.monotonic()


def show_and_record(image):
    """Show one image [H, W, 3] uint8 and return (onset seconds, spike count, valid).
    This stand-in 'neuron' fires for bright centres."""
    h, w = image.shape[:2]
    centre = image[h // 4: 3 * h // 4, w // 4: 3 * w // 4].astype(float)
    return time.monotonic() - t0, float(np.round(centre.mean() / 8)), True


def send(sock, envelope, **header):
    sock.send_multipart(envelope + [json.dumps({"protocol": PROTOCOL, **header}).encode()])


def error(sock, envelope, request_id, code, message):
    send(sock, envelope, type="error", request_id=request_id, code=code, message=message)


def present(sock, envelope, h, frames):
    shape = h["shape"]
    if h["encoding"] != "raw" or h["dtype"] != "uint8" or len(shape) != 3:
        return error(sock, envelope, h["request_id"], "unsupported", "this rig takes raw uint8 [H, W, C] only")
    size = int(np.prod(shape))
    if len(frames) != len(h["image_ids"]) or any(len(f) != size for f in frames):
        return error(sock, envelope, h["request_id"], "bad-message", f"need one frame of {size} bytes per image")
    records, deadline = [], time.monotonic() + h["deadline_ms"] / 1000
    for repeat in range(h["repeats"]):
        for image_id, frame in zip(h["image_ids"], frames):
            if time.monotonic() > deadline:
                break
            onset, value, valid = show_and_record(np.frombuffer(frame, np.uint8).reshape(shape))
            records.append({"image_id": image_id, "repeat": repeat, "trial_id": len(records), "onset": onset,
                            "values": [value], "valid": valid})
            envelope = answer_pings(sock, envelope, h["request_id"], len(records))
    cache[h["request_id"]] = dict(type="result", request_id=h["request_id"], channels=["ch0"], records=records,
                                  complete=len(records) == h["repeats"] * len(frames))
    send(sock, envelope, **cache[h["request_id"]])


def answer_pings(sock, envelope, request_id, progress):
    """Between presentations: pong pings so the client knows this rig is slow, not dead."""
    while sock.poll(0):
        env, h, frames = receive(sock)
        if h is None:
            continue
        if h.get("request_id") == request_id:  # a ping for, or a resend of, this request
            envelope = env
            send(sock, env, type="pong", request_id=request_id, state="presenting", progress=progress)
        else:
            error(sock, env, h.get("request_id"), "busy", "presenting another request")
    return envelope


def receive(sock):
    """(envelope, header, data frames); header None after an error reply to a bad message."""
    msg = sock.recv_multipart()
    n = 2 if len(msg) > 1 and msg[1] == b"" else 1  # a REQ client adds an empty delimiter
    envelope, body = msg[:n], msg[n:]
    try:
        h = json.loads(body[0])
        assert isinstance(h, dict) and isinstance(h.get("request_id"), str)
    except Exception:
        error(sock, envelope, None, "bad-message", "frame 0 must be a JSON object with a request_id")
        return envelope, None, []
    if h.get("protocol") != PROTOCOL:
        error(sock, envelope, h["request_id"], "version", f"this rig speaks {PROTOCOL}")
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
        rid, kind = h["request_id"], h.get("type")
        try:
            if kind == "hello":
                sessions.add(h["session"])
                send(sock, envelope, type="welcome", request_id=rid, rig="rig_minimal", encodings=["raw"],
                     dtypes=["uint8"], channels=["ch0"], max_images=1024, max_frame_bytes=MAX_FRAME,
                     heartbeat_ms=1000)
            elif kind == "ping":
                send(sock, envelope, type="pong", request_id=rid, state="done" if rid in cache else "unknown",
                     progress=len(cache[rid]["records"]) if rid in cache else 0)
            elif kind == "present" and h["session"] not in sessions:
                error(sock, envelope, rid, "unknown-session", "send hello first")
            elif kind == "present":
                send(sock, envelope, **cache[rid]) if rid in cache else present(sock, envelope, h, frames)
            else:
                error(sock, envelope, rid, "bad-message", f"unknown message type {kind!r}")
        except (KeyError, TypeError, ValueError) as e:
            error(sock, envelope, rid, "bad-message", f"malformed {kind}: {type(e).__name__} {e}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555")
