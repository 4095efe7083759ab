"""The ``xdream-rig/1`` message codec: multipart [JSON header, raw frames], strictly validated.

Every message is a list of ZeroMQ frames: a UTF-8 JSON header, then zero or more data frames
(one per image in a ``present`` request). Nothing is ever unpickled. :func:`decode` checks
sizes before it parses or allocates anything, checks every header field against the schema of
its message type, and raises :class:`ProtocolError` (a typed, one-line error with a ``code``
the other side can be sent) for anything malformed. The spec is ``docs/protocol.md``; this
module has no ZeroMQ dependency, so the codec can be tested and fuzzed on plain bytes.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from xdream.core.errors import XDreamError

PROTOCOL = "xdream-rig/1"
ENCODINGS = ("raw", "png")
DTYPES = {"uint8": np.uint8, "float32": np.float32}
ERROR_CODES = ("bad-message", "version", "too-large", "unsupported", "unknown-session", "busy", "internal")
STATES = ("unknown", "queued", "presenting", "done")
_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}\Z")


class ProtocolError(XDreamError):
    """A message that breaks ``xdream-rig/1``; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, message: str, code: str = "bad-message", request_id: str | None = None):
        super().__init__(message)
        self.code, self.request_id = code, request_id


class RigError(XDreamError):
    """A typed error reply sent by the rig (``code`` from :data:`ERROR_CODES`)."""

    def __init__(self, message: str, code: str, request_id: str | None = None):
        super().__init__(message)
        self.code, self.request_id = code, request_id


@dataclass(frozen=True)
class Limits:
    """Bounds checked before parsing or allocation; both sides advertise theirs in the handshake."""

    max_header_bytes: int = 8 << 20
    max_frame_bytes: int = 16 << 20
    max_images: int = 1024
    max_repeats: int = 100
    max_side: int = 4096


@dataclass
class Message:
    """A decoded message: its ``type``, the validated header and the data frames."""

    type: str
    header: dict
    frames: list = field(default_factory=list)

    @property
    def request_id(self) -> str | None:
        return self.header.get("request_id")


# ---------------------------------------------------------------------------------------------
# field validators: each returns the value or raises ProtocolError


def _fail(name, value, allowed):
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    raise ProtocolError(f"header field {name!r} is {text}; allowed: {allowed}")


def _ident(name, v, limits):
    if not isinstance(v, str) or not _ID.match(v):
        _fail(name, v, "1-64 characters of A-Z a-z 0-9 _ . : -")
    return v


def _text(name, v, limits):
    if not isinstance(v, str) or len(v) > 1000:
        _fail(name, v, "a string of at most 1000 characters")
    return v


def _int_range(lo, hi_attr=None, hi=None):
    def check(name, v, limits):
        top = getattr(limits, hi_attr) if hi_attr else hi
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= top:
            _fail(name, v, f"an integer {lo}..{top}")
        return v

    return check


def _bool(name, v, limits):
    if not isinstance(v, bool):
        _fail(name, v, "true or false")
    return v


def _number(name, v, limits):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        _fail(name, v, "a finite number")
    return float(v)


def _one_of(options):
    def check(name, v, limits):
        if v not in options:
            _fail(name, v, ", ".join(map(str, options)))
        return v

    return check


def _subset(options):
    def check(name, v, limits):
        if not isinstance(v, list) or not v or len(v) > len(options) or any(x not in options for x in v):
            _fail(name, v, f"a non-empty list from {', '.join(options)}")
        return v

    return check


def _id_list(name, v, limits):
    if not isinstance(v, list) or not 1 <= len(v) <= limits.max_images:
        _fail(name, v, f"a list of 1..{limits.max_images} ids")
    for x in v:
        _ident(name, x, limits)
    if len(set(v)) != len(v):
        _fail(name, v, "unique ids")
    return v


def _shape(name, v, limits):
    if (not isinstance(v, list) or len(v) != 3 or any(isinstance(x, bool) or not isinstance(x, int) for x in v)
            or not (1 <= v[0] <= limits.max_side and 1 <= v[1] <= limits.max_side) or v[2] not in (1, 3)):
        _fail(name, v, f"[H, W, C] with H, W in 1..{limits.max_side} and C 1 or 3")
    return v


def _channels(name, v, limits):
    if not isinstance(v, list) or not 1 <= len(v) <= 256:
        _fail(name, v, "a list of 1..256 channel names")
    for x in v:
        _ident(name, x, limits)
    return v


def _nullable(check):
    def inner(name, v, limits):
        return None if v is None else check(name, v, limits)

    return inner


def _records(name, v, limits):
    top = limits.max_images * limits.max_repeats
    if not isinstance(v, list) or len(v) > top:
        _fail(name, f"<{type(v).__name__} of {len(v) if isinstance(v, list) else '?'}>", f"a list of at most {top} records")
    for r in v:
        _check_fields("record", r, RECORD, limits)
    return v


RECORD = {
    "image_id": _ident,
    "repeat": _int_range(0, "max_repeats"),
    "trial_id": _int_range(0, hi=2**53),
    "onset": _number,
    "values": lambda n, v, l: [_nullable(_number)(n, x, l) for x in _list_of(n, v, 256)],
    "valid": _bool,
}


def _list_of(name, v, most):
    if not isinstance(v, list) or len(v) > most:
        _fail(name, v, f"a list of at most {most} items")
    return v


# message type -> (required fields, optional fields, number of data frames: None = one per image)
SCHEMAS = {
    "hello": ({"session": _ident, "request_id": _ident, "client": _text, "encodings": _subset(ENCODINGS),
               "dtypes": _subset(tuple(DTYPES))}, {}, 0),
    "welcome": ({"request_id": _ident, "rig": _text, "encodings": _subset(ENCODINGS), "dtypes": _subset(tuple(DTYPES)),
                 "channels": _channels, "max_images": _int_range(1, hi=1 << 20),
                 "max_frame_bytes": _int_range(1, hi=1 << 40), "heartbeat_ms": _int_range(1, hi=3_600_000)}, {}, 0),
    "present": ({"session": _ident, "request_id": _ident, "generation": _int_range(0, hi=2**31),
                 "image_ids": _id_list, "encoding": _one_of(ENCODINGS), "dtype": _one_of(tuple(DTYPES)),
                 "shape": _shape, "repeats": _int_range(1, "max_repeats"),
                 "deadline_ms": _int_range(1, hi=86_400_000)}, {}, None),
    "ping": ({"session": _ident, "request_id": _ident}, {}, 0),
    "pong": ({"request_id": _ident, "state": _one_of(STATES), "progress": _int_range(0, hi=2**53)}, {}, 0),
    "result": ({"request_id": _ident, "complete": _bool, "channels": _channels, "records": _records}, {}, 0),
    "error": ({"request_id": _nullable(_ident), "code": _one_of(ERROR_CODES), "message": _text}, {}, 0),
}


def _check_fields(what, header, schema, limits, optional=None):
    if not isinstance(header, dict):
        raise ProtocolError(f"{what} must be a JSON object, got {type(header).__name__}")
    optional = optional or {}
    unknown = set(header) - set(schema) - set(optional) - {"protocol", "type"}
    if unknown:
        raise ProtocolError(f"{what} has unknown field {sorted(unknown)[0]!r}; allowed: {', '.join(schema)}")
    for name, check in schema.items():
        if name not in header:
            raise ProtocolError(f"{what} lacks field {name!r}")
        header[name] = check(name, header[name], limits)
    for name, check in optional.items():
        if name in header:
            header[name] = check(name, header[name], limits)


def _reject_constant(token):
    raise ValueError(f"non-standard JSON constant {token}")


# ---------------------------------------------------------------------------------------------
# encode / decode


def encode(header: dict, frames=()) -> list[bytes]:
    """Frames for a message: the header (``protocol`` added) as compact JSON, then ``frames``."""
    full = {"protocol": PROTOCOL, **header}
    return [json.dumps(full, separators=(",", ":"), allow_nan=False).encode(), *frames]


def decode(frames, limits: Limits = Limits(), expect=None) -> Message:
    """Validate and decode a received multipart message; ``expect`` restricts the type."""
    if not isinstance(frames, (list, tuple)) or not frames:
        raise ProtocolError("empty message; expected [JSON header, data frames...]")
    if len(frames) > limits.max_images + 1:
        raise ProtocolError(f"message has {len(frames)} frames; at most {limits.max_images + 1} allowed", "too-large")
    for f in frames:
        if len(f) > limits.max_frame_bytes:
            raise ProtocolError(f"frame of {len(f)} bytes exceeds the limit of {limits.max_frame_bytes}", "too-large")
    raw = bytes(frames[0])
    if len(raw) > limits.max_header_bytes:
        raise ProtocolError(f"header of {len(raw)} bytes exceeds the limit of {limits.max_header_bytes}", "too-large")
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ProtocolError(f"header is not UTF-8 JSON ({type(e).__name__})") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header must be a JSON object, got {type(header).__name__}")
    rid = header.get("request_id")
    rid = rid if isinstance(rid, str) and _ID.match(rid) else None  # echoed in error replies: must be valid
    if header.get("protocol") != PROTOCOL:
        raise ProtocolError(f"protocol {header.get('protocol')!r} not supported; allowed: {PROTOCOL}", "version", rid)
    kind = header.get("type")
    allowed = tuple(expect) if expect else tuple(SCHEMAS)
    if kind not in allowed:
        _fail_typed("type", kind, ", ".join(allowed), rid)
    required, optional, n_frames = SCHEMAS[kind]
    try:
        _check_fields(f"{kind} header", header, required, limits, optional)
    except ProtocolError as e:
        raise ProtocolError(str(e), e.code, rid) from None
    data = list(frames[1:])
    expected = len(header["image_ids"]) if n_frames is None else n_frames
    if len(data) != expected:
        raise ProtocolError(f"{kind} message has {len(data)} data frames; expected {expected}", "bad-message", rid)
    if kind == "present":
        _check_present(header, data, limits, rid)
    return Message(kind, header, data)


def _fail_typed(name, value, allowed, rid):
    try:
        _fail(name, value, allowed)
    except ProtocolError as e:
        raise ProtocolError(str(e), "bad-message", rid) from None


def _check_present(header, data, limits, rid):
    h, w, c = header["shape"]
    if header["encoding"] == "png" and header["dtype"] != "uint8":
        raise ProtocolError("png encoding carries uint8 images only; use dtype uint8", "unsupported", rid)
    if header["encoding"] == "raw":
        size = h * w * c * np.dtype(DTYPES[header["dtype"]]).itemsize
        if size > limits.max_frame_bytes:
            raise ProtocolError(f"images of shape {[h, w, c]} exceed the frame limit {limits.max_frame_bytes}",
                                "too-large", rid)
        for i, f in enumerate(data):
            if len(f) != size:
                raise ProtocolError(f"image frame {i} has {len(f)} bytes; shape {[h, w, c]} {header['dtype']} "
                                    f"needs {size}", "bad-message", rid)


# ---------------------------------------------------------------------------------------------
# images


def image_frames(images: np.ndarray, encoding: str = "raw") -> list[bytes]:
    """Frames for images ``[N, H, W, C]`` (uint8, or float32 for raw), row-major, C-order."""
    if encoding == "raw":
        return [np.ascontiguousarray(im).tobytes() for im in images]
    from PIL import Image

    out = []
    for im in images:
        buffer = io.BytesIO()
        Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(buffer, format="PNG", compress_level=1)
        out.append(buffer.getvalue())
    return out


def decode_images(message: Message) -> np.ndarray:
    """Images ``[N, H, W, C]`` of a validated ``present`` message; PNG sizes are checked from
    the file header before any pixel is decoded."""
    h = message.header
    shape, dtype, rid = tuple(h["shape"]), DTYPES[h["dtype"]], h["request_id"]
    if h["encoding"] == "raw":
        return np.stack([np.frombuffer(f, dtype=dtype).reshape(shape) for f in message.frames])
    from PIL import Image

    out = np.empty((len(message.frames), *shape), dtype=np.uint8)
    mode = "RGB" if shape[2] == 3 else "L"
    for i, f in enumerate(message.frames):
        try:
            with Image.open(io.BytesIO(bytes(f)), formats=["PNG"]) as im:
                if im.size != (shape[1], shape[0]) or im.mode != mode:
                    raise ProtocolError(f"png image {i} is {im.mode} {im.size[0]}x{im.size[1]}; the header says "
                                        f"{mode} {shape[1]}x{shape[0]}", "bad-message", rid)
                out[i] = np.asarray(im).reshape(shape)
        except ProtocolError:
            raise
        except Exception as e:
            raise ProtocolError(f"png image {i} cannot be decoded ({type(e).__name__})", "bad-message", rid) from None
    return out


def error_reply(request_id: str | None, code: str, message: str) -> list[bytes]:
    """Frames of a typed ``error`` reply (the message cut to one line of at most 1000 chars)."""
    line = message.splitlines()[0] if message else code
    return encode({"type": "error", "request_id": request_id, "code": code, "message": line[:1000]})
