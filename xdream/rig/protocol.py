"""The ``xdream-rig/1`` message codec: multipart [JSON header, raw frames], strictly validated.

Every message is a list of ZeroMQ frames: a UTF-8 JSON header, then zero or more data frames
(one per image in a ``present`` request). Nothing is ever unpickled. :func:`decode` checks
sizes before it parses or allocates anything, checks every header against the published JSON
Schema of its message type (:mod:`xdream.rig.schema`) and the receiver's limits, and raises
:class:`ProtocolError` (a typed, one-line error with a ``code`` the other side can be sent)
for anything malformed. The spec is ``docs/protocol.md``; this module has no ZeroMQ
dependency, so the codec can be tested and fuzzed on plain bytes.
"""

from __future__ import annotations

import io
import json
import re
import struct
import sys
import zlib
from dataclasses import dataclass, field

import numpy as np

from xdream.core.errors import XDreamError
from xdream.rig.schema import SchemaViolation, validate_header

PROTOCOL = "xdream-rig/1"
ENCODINGS = ("raw", "png")  # the ones this codec decodes; the protocol's set is open
DTYPES = {"uint8": np.uint8, "float32": np.float32}
ERROR_CODES = ("bad-message", "version", "too-large", "unsupported", "unknown-session", "busy", "internal")
MAX_RESULT_VALUES = 1 << 20  # images x repeats x channels of one result (§3): its header stays below 64 MiB
MAX_RESULT_HEADER_BYTES = 64 << 20  # the header limit for a result (other headers: 8 MiB)
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
    max_message_bytes: int = 256 << 20  # all frames together, and a request's decoded pixels
    max_images: int = 1024
    max_repeats: int = 100
    max_side: int = 4096

    def within(self, welcome: dict) -> "Limits":
        """These limits lowered to what a rig advertised in its ``welcome``."""
        pick = {name: min(getattr(self, name), welcome[name])
                for name in ("max_images", "max_frame_bytes", "max_message_bytes") if name in welcome}
        return Limits(**{**self.__dict__, **pick})


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
# encode / decode


def encode(header: dict, frames=()) -> list[bytes]:
    """Frames for a message: the header (``protocol`` added) as compact JSON, then ``frames``."""
    full = {"protocol": PROTOCOL, **header}
    return [json.dumps(full, separators=(",", ":"), allow_nan=False).encode(), *frames]


def decode(frames, limits: Limits = Limits(), expect=None) -> Message:
    """Validate and decode a received multipart message; ``expect`` restricts the type.

    Sizes are checked before anything is parsed or allocated (the header frame first, then,
    with the header's request id known so the error reply can name it, the frame count, each
    frame and the whole message)."""
    if not isinstance(frames, (list, tuple)) or not frames:
        raise ProtocolError("empty message; expected [JSON header, data frames...]")
    if len(frames[0]) > limits.max_header_bytes:
        raise ProtocolError(f"header of {len(frames[0])} bytes exceeds the limit of {limits.max_header_bytes}",
                            "too-large")
    try:
        header = json.loads(bytes(frames[0]).decode("utf-8"), parse_constant=_reject_constant,
                            parse_float=_finite(float), parse_int=_finite(int), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ProtocolError(f"header is not UTF-8 JSON ({e if isinstance(e, (DuplicateKey, NonStandardConstant)) else type(e).__name__})") \
            from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header must be a JSON object, got {type(header).__name__}")
    rid = header.get("request_id")
    rid = rid if isinstance(rid, str) and _ID.match(rid) else None  # echoed in error replies: must be valid
    _check_sizes(frames, limits, rid)
    if header.get("protocol") != PROTOCOL:
        raise ProtocolError(f"protocol {header.get('protocol')!r} not supported; allowed: {PROTOCOL}", "version", rid)
    kind = header.get("type")
    allowed = tuple(expect) if expect else MESSAGE_TYPES
    if not isinstance(kind, str) or kind not in allowed:
        text = repr(kind) if len(repr(kind)) <= 60 else repr(kind)[:57] + "..."
        raise ProtocolError(f"header field 'type' is {text}; allowed: {', '.join(allowed)}", "bad-message", rid)
    try:
        validate_header(header, kind)
    except SchemaViolation as e:
        raise ProtocolError(str(e), e.code, rid) from None
    data = list(frames[1:])
    expected = len(header["image_ids"]) if kind == "present" else 0
    if len(data) != expected:
        raise ProtocolError(f"{kind} message has {len(data)} data frames; expected {expected}", "bad-message", rid)
    if kind == "present":
        _check_present(header, data, limits, rid)
    elif kind == "result":
        _check_result(header, limits, rid)
    return Message(kind, header, data)


MESSAGE_TYPES = ("hello", "welcome", "present", "ping", "pong", "result", "error")


class DuplicateKey(ValueError):
    pass


class NonStandardConstant(ValueError):
    pass


def _reject_constant(token):
    raise NonStandardConstant(f"non-standard JSON constant {token}")


def _finite(parse):
    """``parse`` (float or int) refusing a number beyond the range of a double: Python reads
    ``1e400`` as infinity, and a 400-digit integer cannot become a float."""
    def number(token):
        value = parse(token)
        if not abs(value) <= sys.float_info.max:  # exact for ints, false for infinity
            raise NonStandardConstant(f"number {token if len(token) <= 40 else token[:37] + '...'} beyond the "
                                      "range of a double")
        return value
    return number


def _no_duplicates(pairs):
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        name = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise DuplicateKey(f"duplicate key {name[:40]!r}")
    return out


def _check_sizes(frames, limits: Limits, rid):
    if len(frames) > limits.max_images + 1:
        raise ProtocolError(f"message has {len(frames)} frames; at most {limits.max_images + 1} allowed "
                            f"(max_images {limits.max_images})", "too-large", rid)
    total = 0
    for i, f in enumerate(frames):
        if len(f) > limits.max_frame_bytes:
            raise ProtocolError(f"frame {i} of {len(f)} bytes exceeds the limit of {limits.max_frame_bytes} "
                                "(max_frame_bytes)", "too-large", rid)
        total += len(f)
    if total > limits.max_message_bytes:
        raise ProtocolError(f"message of {total} bytes exceeds the limit of {limits.max_message_bytes} "
                            "(max_message_bytes)", "too-large", rid)


def _check_present(header, data, limits, rid):
    n, (h, w, c) = len(header["image_ids"]), header["shape"]
    for name, value, top in (("image_ids", n, limits.max_images), ("repeats", header["repeats"], limits.max_repeats),
                             ("shape", max(h, w), limits.max_side)):
        if value > top:
            raise ProtocolError(f"header field {name!r} is {value if name != 'image_ids' else f'{n} ids'} "
                                f"above this rig's limit {top}", "too-large", rid)
    if header["encoding"] not in ENCODINGS or header["dtype"] not in DTYPES:
        raise ProtocolError(f"encoding {header['encoding']!r} / dtype {header['dtype']!r} not taken; allowed: "
                            f"encodings {', '.join(ENCODINGS)}, dtypes {', '.join(DTYPES)}", "unsupported", rid)
    if header["encoding"] == "png" and header["dtype"] != "uint8":
        raise ProtocolError("png encoding carries uint8 images only; use dtype uint8", "unsupported", rid)
    size = h * w * c * np.dtype(DTYPES[header["dtype"]]).itemsize
    if n * size > limits.max_message_bytes:
        raise ProtocolError(f"{n} images of shape {[h, w, c]} {header['dtype']} are {n * size} bytes decoded; "
                            f"the limit is {limits.max_message_bytes} (max_message_bytes)", "too-large", rid)
    if header["encoding"] == "raw":
        if size > limits.max_frame_bytes:
            raise ProtocolError(f"images of shape {[h, w, c]} exceed the frame limit {limits.max_frame_bytes} "
                                "(max_frame_bytes)", "too-large", rid)
        for i, f in enumerate(data):
            if len(f) != size:
                raise ProtocolError(f"image frame {i} has {len(f)} bytes; shape {[h, w, c]} {header['dtype']} "
                                    f"needs {size}", "bad-message", rid)


def _check_result(header, limits, rid):
    n = len(header["channels"])
    if len(header["records"]) > limits.max_images * limits.max_repeats:
        raise ProtocolError(f"result has {len(header['records'])} records; at most "
                            f"{limits.max_images * limits.max_repeats} allowed", "too-large", rid)
    for i, r in enumerate(header["records"]):
        if len(r["values"]) != n:
            raise ProtocolError(f"header field 'records[{i}].values' has {len(r['values'])} values; allowed: one "
                                f"per channel ({n})", "bad-message", rid)


# ---------------------------------------------------------------------------------------------
# images


def image_frames(images: np.ndarray, encoding: str = "raw") -> list[bytes]:
    """Frames for images ``[N, H, W, C]`` (uint8, or float32 for raw), row-major, C-order."""
    if encoding == "raw":  # zero-copy views of a C-contiguous batch
        images = np.ascontiguousarray(images)
        return [memoryview(im).cast("B") for im in images]
    from PIL import Image

    out = []
    for im in images:
        buffer = io.BytesIO()
        Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(buffer, format="PNG", compress_level=1)
        out.append(buffer.getvalue())
    return out


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_integrity_problem(frame) -> str | None:
    """Why a PNG file is not whole (§4.2: every chunk's CRC correct, IEND last, nothing after
    it), or None. Walks the chunk headers only: no pixel is decoded."""
    data = memoryview(frame)
    if bytes(data[:8]) != PNG_SIGNATURE:
        return "no PNG signature"
    at = 8
    while at + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        end = at + 12 + length
        if end > len(data):
            return f"chunk {kind!r} cut short"
        if zlib.crc32(data[at + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            return f"chunk {kind.decode('latin-1')} has a wrong CRC"
        if kind == b"IEND":
            return None if end == len(data) else "data after IEND"
        at = end
    return "no IEND chunk (the file is cut short)"


def iter_images(message: Message):
    """The images ``[H, W, C]`` of a validated ``present`` message, one at a time: raw frames
    as zero-copy views, PNG files decoded each into a buffer of the checked size (the size and
    mode are read from the PNG header before any pixel is decoded), so a rig holds at most one
    decoded PNG beside the compressed frames. float32 pixels must be finite."""
    h = message.header
    shape, dtype, rid = tuple(h["shape"]), DTYPES[h["dtype"]], h["request_id"]
    if h["encoding"] == "raw":
        for i, f in enumerate(message.frames):
            image = np.frombuffer(f, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
            if dtype is np.float32 and not np.isfinite(image).all():
                raise ProtocolError(f"image frame {i} has NaN or infinite pixels; allowed: finite float32",
                                    "bad-message", rid)
            yield image
        return
    from PIL import Image

    mode = "RGB" if shape[2] == 3 else "L"
    colour_type = 2 if shape[2] == 3 else 0  # PNG IHDR: truecolour / greyscale
    for i, f in enumerate(message.frames):
        problem = png_integrity_problem(f)
        if problem:
            raise ProtocolError(f"png image {i} is not a whole PNG file: {problem}; allowed: a PNG with every "
                                "chunk's CRC correct and IEND last", "bad-message", rid)
        head = bytes(f[:26])
        if len(head) == 26 and head[12:16] == b"IHDR" and (head[24] != 8 or head[25] != colour_type):
            raise ProtocolError(f"png image {i} has bit depth {head[24]} and colour type {head[25]}; allowed: 8-bit "
                                f"{mode} (colour type {colour_type}), no alpha, palette or 16-bit", "bad-message", rid)
        try:
            with Image.open(io.BytesIO(f), formats=["PNG"]) as im:
                if im.size != (shape[1], shape[0]) or im.mode != mode:
                    raise ProtocolError(f"png image {i} is {im.mode} {im.size[0]}x{im.size[1]}; the header says "
                                        f"8-bit {mode} {shape[1]}x{shape[0]}", "bad-message", rid)
                pixels = im.tobytes()
        except ProtocolError:
            raise
        except Exception as e:
            raise ProtocolError(f"png image {i} cannot be decoded ({type(e).__name__})", "bad-message", rid) from None
        yield np.frombuffer(pixels, dtype=np.uint8).reshape(shape)
        del pixels  # the caller holds the image; this generator keeps nothing between images


def decode_images(message: Message) -> np.ndarray:
    """All images ``[N, H, W, C]`` of a validated ``present`` message (:func:`iter_images`)."""
    return np.stack(list(iter_images(message)))


def error_reply(request_id: str | None, code: str, message: str) -> list[bytes]:
    """Frames of a typed ``error`` reply (the message cut to one line of at most 1000 chars)."""
    line = message.splitlines()[0] if message else code
    return encode({"type": "error", "request_id": request_id, "code": code, "message": line[:1000]})
