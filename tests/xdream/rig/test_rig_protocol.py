"""The xdream-rig/1 codec: every message type round-trips, every malformed message is a typed
ProtocolError (never another exception), sizes are checked before parsing."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdream.core.errors import XDreamError
from xdream.rig.protocol import (ERROR_CODES, PROTOCOL, Limits, ProtocolError, decode, decode_images, encode,
                                 error_reply, image_frames, iter_images)

SMALL = Limits(max_header_bytes=2048, max_frame_bytes=4096, max_images=8, max_repeats=5, max_side=64)


def present(n=3, shape=(4, 5, 3), dtype="uint8", encoding="raw", **extra):
    rng = np.random.default_rng(0)
    images = (rng.random((n, *shape)) * (255 if dtype == "uint8" else 1)).astype(dtype)
    header = {"type": "present", "session": "s1", "request_id": "r1", "generation": 0,
              "image_ids": [f"i{k}" for k in range(n)], "encoding": encoding, "dtype": dtype,
              "shape": list(shape), "repeats": 2, "deadline_ms": 1000, **extra}
    return images, encode(header, image_frames(images, encoding))


VALID = {
    "hello": {"type": "hello", "session": "s", "request_id": "h", "client": "x", "encodings": ["raw"],
              "dtypes": ["uint8"]},
    "welcome": {"type": "welcome", "request_id": "h", "rig": "r", "encodings": ["raw", "png"], "dtypes": ["uint8"],
                "channels": ["ch0"], "max_images": 8, "max_frame_bytes": 100, "heartbeat_ms": 100},
    "ping": {"type": "ping", "session": "s", "request_id": "r"},
    "pong": {"type": "pong", "request_id": "r", "state": "presenting", "progress": 3},
    "result": {"type": "result", "request_id": "r", "complete": False, "channels": ["a", "b"],
               "records": [{"image_id": "i0", "repeat": 0, "trial_id": 7, "onset": 1.5, "values": [2.0, None],
                            "valid": True}]},
    "error": {"type": "error", "request_id": None, "code": "busy", "message": "queue full"},
}


@pytest.mark.parametrize("kind", sorted(VALID))
def test_header_messages_round_trip(kind):
    msg = decode(encode(VALID[kind]), SMALL)
    assert msg.type == kind and msg.frames == []
    assert msg.header == {"protocol": PROTOCOL, **VALID[kind]}


@pytest.mark.parametrize("encoding,dtype", [("raw", "uint8"), ("raw", "float32"), ("png", "uint8")])
def test_present_round_trips_images(encoding, dtype):
    images, frames = present(dtype=dtype, encoding=encoding)
    msg = decode(frames, SMALL)
    out = decode_images(msg)
    assert out.dtype == images.dtype and out.shape == images.shape
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("kind,field,value", [
    ("hello", "session", "has space"), ("hello", "encodings", []), ("hello", "dtypes", ["has space"]),
    ("ping", "request_id", "x" * 65), ("pong", "state", "sleeping"), ("pong", "progress", -1),
    ("result", "complete", 1), ("result", "channels", []), ("error", "code", "oops"),
    ("welcome", "heartbeat_ms", 0), ("result", "records", [{"image_id": "i0"}]),
    ("result", "records", [{**VALID["result"]["records"][0], "onset": "soon"}]),
])
def test_bad_fields_name_the_field(kind, field, value):
    with pytest.raises(ProtocolError, match=f"'{field}" if field != "records" else "field") as info:
        decode(encode({**VALID[kind], field: value}), SMALL)
    assert info.value.code in ERROR_CODES and isinstance(info.value, XDreamError)


@pytest.mark.parametrize("change,code", [
    (lambda h: h.update(protocol="xdream-rig/2"), "version"),
    (lambda h: h.update(type="shutdown"), "bad-message"),
    (lambda h: h.update(extra=1), "bad-message"),
    (lambda h: h.pop("shape"), "bad-message"),
    (lambda h: h.update(repeats=6), "too-large"),  # above a maximum: too-large
    (lambda h: h.update(repeats=0), "bad-message"),  # below a minimum: bad-message
    (lambda h: h.update(shape=[4, 5, 4]), "bad-message"),
    (lambda h: h.update(shape=[65, 5, 3]), "too-large"),
    (lambda h: h.update(encoding="jpeg"), "unsupported"),
    (lambda h: h.pop("generation"), None),  # optional fields may be left out
    (lambda h: h.pop("deadline_ms"), None),
    (lambda h: h.update(image_ids=["i0", "i0", "i2"]), "bad-message"),
    (lambda h: h.update(encoding="png", dtype="float32"), "unsupported"),
])
def test_bad_present_headers_are_typed(change, code):
    _, frames = present()
    header = json.loads(frames[0])
    change(header)
    if code is None:
        assert decode([json.dumps(header).encode(), *frames[1:]], SMALL).type == "present"
        return
    with pytest.raises(ProtocolError) as info:
        decode([json.dumps(header).encode(), *frames[1:]], SMALL)
    assert info.value.code == code
    if "request_id" in header:
        assert info.value.request_id == "r1"  # so the rig's error reply names the request


def test_frame_counts_and_sizes_are_checked_before_parsing():
    _, frames = present()
    with pytest.raises(ProtocolError, match="data frames"):
        decode(frames[:-1], SMALL)
    with pytest.raises(ProtocolError, match="needs 60"):
        decode([*frames[:-1], frames[-1][:-1]], SMALL)
    with pytest.raises(ProtocolError) as info:
        decode([*frames[:-1], b"\0" * 5000], SMALL)
    assert info.value.code == "too-large"
    with pytest.raises(ProtocolError, match="header of 3000 bytes") as info:
        decode([b" " * 3000], SMALL)
    assert info.value.code == "too-large"
    with pytest.raises(ProtocolError, match="frames"):
        decode([frames[0]] + [b""] * 20, SMALL)
    with pytest.raises(ProtocolError, match="not UTF-8 JSON"):
        decode([b"[" * 1500], SMALL)  # deep nesting is refused, not a RecursionError
    with pytest.raises(ProtocolError, match="not UTF-8 JSON"):
        decode([b'{"protocol": NaN}'], SMALL)


@pytest.mark.parametrize("kind,field,literal", [
    ("result", "onset", "1e400"), ("result", "values", "[-1e400, 2.0]"), ("pong", "progress", "1e400"),
    ("result", "onset", "1" + "0" * 400),  # an integer no double holds
])
def test_numbers_beyond_a_double_are_refused_like_nan(kind, field, literal):
    """Python's json reads 1e400 as infinity: refused where NaN literals are (§2), not scored."""
    header = {"protocol": PROTOCOL, **VALID[kind]}
    if kind == "result":
        header["records"] = [{**header["records"][0], field: "HERE"}]
    else:
        header[field] = "HERE"
    with pytest.raises(ProtocolError, match="beyond the range of a double") as info:
        decode([json.dumps(header).replace('"HERE"', literal).encode()], SMALL)
    assert info.value.code == "bad-message"


def test_png_of_the_wrong_size_is_refused_before_decoding():
    images, frames = present(encoding="png")
    _, other = present(shape=(5, 4, 3), encoding="png")
    msg = decode([frames[0], frames[1], other[2], frames[3]], SMALL)
    with pytest.raises(ProtocolError, match="png image 1 is RGB 4x5"):
        decode_images(msg)
    msg = decode([frames[0], frames[1], b"\x89PNG garbage", frames[3]], SMALL)
    with pytest.raises(ProtocolError, match="png image 1 is not a whole PNG file: no PNG signature"):
        decode_images(msg)


@pytest.mark.parametrize("damage,words", [
    (lambda png: png[:-12], "no IEND chunk"),  # cut before IEND (the simulator's old failure)
    (lambda png: png[:-20], "cut short"),
    (lambda png: png[:30] + bytes([png[30] ^ 0xFF]) + png[31:], "wrong CRC"),
    (lambda png: png + b"junk", "data after IEND"),
])
def test_a_png_must_be_whole(damage, words):
    _, frames = present(encoding="png")
    msg = decode([frames[0], frames[1], damage(bytes(frames[2])), frames[3]], SMALL)
    with pytest.raises(ProtocolError, match=f"png image 1 is not a whole PNG file: .*{words}") as info:
        decode_images(msg)
    assert info.value.code == "bad-message"


def test_the_content_probe_rule():
    """docs/protocol.md §4.5 computed by hand for a 1x2x3 image, and told apart per image and channel."""
    from xdream.rig.probe import matches, probe_values

    image = np.array([[[0, 51, 102], [153, 204, 255]]], dtype=np.uint8)  # x = 0, .2, .4, .6, .8, 1
    x = np.array([0, .2, .4, .6, .8, 1.0])
    for k in range(3):
        weights = [((i + 3 * k) % 7) - 3 for i in range(6)]
        assert probe_values(image, 3)[k] == pytest.approx(float(x @ weights) / 6, abs=1e-15)
    assert probe_values(image.astype(np.float32) / 255, 2) == pytest.approx(probe_values(image, 2), abs=1e-7)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    assert matches(probe_values(a, 2), probe_values(a, 2)) and not matches(probe_values(b, 2), probe_values(a, 2))
    assert not matches(probe_values(a, 2)[::-1], probe_values(a, 2)) and not matches([None, 0.0], [0.0, 0.0])


def test_error_reply_is_one_valid_line():
    msg = decode(error_reply("r9", "internal", "boom\ntraceback..."), SMALL)
    assert msg.header["message"] == "boom" and msg.header["code"] == "internal"


# -- hostile input: thousands of malformed frames and headers --------------------------------------

def _decode_or_typed(frames, limits=SMALL):
    try:
        msg = decode(frames, limits)
    except ProtocolError as e:
        assert e.code in ERROR_CODES and "\n" not in str(e)
        return None
    if msg.type == "present":
        try:
            decode_images(msg)
        except ProtocolError:
            return None
    return msg


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), min_size=0, max_size=12))
def test_random_frames_only_raise_protocol_errors(frames):
    _decode_or_typed(frames)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(VALID) + ["present"]), field=st.text(max_size=12), value=json_values,
       n_frames=st.integers(0, 5))
def test_mutated_headers_only_raise_protocol_errors(kind, field, value, n_frames):
    base = VALID[kind] if kind != "present" else json.loads(present()[1][0])
    header = dict(base)
    key = field if field and kind != "present" else sorted(header)[len(field) % len(header)]
    header[key] = value
    frames = [json.dumps(header).encode()] + [b"\0" * 60] * n_frames
    msg = _decode_or_typed(frames)
    if msg is not None:  # whatever passed is a message that matches its schema
        assert msg.header["protocol"] == PROTOCOL and msg.type == header["type"]


# -- the decisions of docs/protocol.md that the codec enforces ----------------------------------

def test_open_value_sets_and_free_text_channel_names_are_accepted():
    welcome = {**VALID["welcome"], "encodings": ["raw", "png", "jpeg"], "dtypes": ["uint8", "float16"],
               "channels": ["V4 e1", "IT/unit 3"]}
    assert decode(encode(welcome), SMALL).header["channels"] == ["V4 e1", "IT/unit 3"]
    hello = {k: v for k, v in VALID["hello"].items() if k not in ("client", "encodings", "dtypes")}
    assert decode(encode(hello), SMALL).type == "hello"  # the optional fields may be left out
    for bad in (["tab\there"], ["x" * 65], ["a", "a"]):
        with pytest.raises(ProtocolError, match="channels"):
            decode(encode({**welcome, "channels": bad}), SMALL)


def test_duplicate_keys_are_refused():
    with pytest.raises(ProtocolError, match="duplicate key 'type'") as info:
        decode([b'{"protocol": "xdream-rig/1", "type": "ping", "type": "hello", "session": "s", "request_id": "r"}'])
    assert info.value.code == "bad-message"


def test_nullable_onset_and_one_value_per_channel():
    record = {**VALID["result"]["records"][0], "onset": None}
    assert decode(encode({**VALID["result"], "records": [record]}), SMALL).header["records"][0]["onset"] is None
    with pytest.raises(ProtocolError, match="one per channel") as info:
        decode(encode({**VALID["result"], "records": [{**record, "values": [1.0]}]}), SMALL)
    assert info.value.request_id == "r"


def test_whole_message_limit_names_the_request():
    limits = Limits(max_frame_bytes=4096, max_message_bytes=10_000, max_images=8)
    _, frames = present(n=4, shape=(30, 30, 3))  # 4 x 2700 bytes = 10800 > 10000
    with pytest.raises(ProtocolError, match="max_message_bytes") as info:
        decode(frames, limits)
    assert info.value.code == "too-large" and info.value.request_id == "r1"
    header = json.loads(frames[0])  # small PNG files, too many pixels decoded
    frames = encode({**header, "encoding": "png"}, image_frames(np.zeros((4, 30, 30, 3), np.uint8), "png"))
    with pytest.raises(ProtocolError, match="bytes decoded") as info:
        decode(frames, limits)
    assert info.value.code == "too-large" and info.value.request_id == "r1"


def test_float32_pixels_must_be_finite():
    images, frames = present(dtype="float32")
    images[1, 0, 0, 0] = np.nan
    msg = decode([frames[0], *image_frames(images)], SMALL)
    with pytest.raises(ProtocolError, match="image frame 1 has NaN"):
        decode_images(msg)


def test_png_images_are_decoded_one_at_a_time_and_16_bit_is_refused():
    import io
    import tracemalloc

    from PIL import Image

    side, n = 1024, 4
    limits = Limits(max_side=side, max_message_bytes=64 << 20)
    _, frames = present(n=n, shape=(side, side, 3), encoding="png")
    msg = decode(frames, limits)
    tracemalloc.start()
    for image in iter_images(msg):
        assert image.shape == (side, side, 3)
        del image
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2.5 * side * side * 3  # one decoded image (and the decoder's copy) at a time, not all four
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((5, 4), dtype=np.uint16)).save(buffer, format="PNG")
    _, frames = present(n=1, shape=(5, 4, 1), encoding="png")
    with pytest.raises(ProtocolError, match="bit depth 16 and colour type 0; allowed: 8-bit L"):
        decode_images(decode([frames[0], buffer.getvalue()], SMALL))


def test_png_with_alpha_or_a_palette_is_refused_from_its_header():
    import io

    from PIL import Image

    _, frames = present(n=1, shape=(5, 4, 3), encoding="png")
    for image in (Image.new("RGBA", (4, 5)), Image.new("P", (4, 5))):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        with pytest.raises(ProtocolError, match="colour type [36]; allowed: 8-bit RGB"):
            decode_images(decode([frames[0], buffer.getvalue()], SMALL))


def test_a_png_is_decoded_within_about_its_decoded_size(tmp_path):
    """A 2048x2048 RGB PNG of ~60 KB: decoding it raises the peak memory by about its 12 MB of
    pixels (one buffer of the checked size), measured in a fresh process."""
    script = tmp_path / "peak.py"
    script.write_text(
        "import resource, numpy as np\n"
        "from xdream.rig.protocol import decode, encode, image_frames, iter_images\n"
        "img = np.zeros((1, 2048, 2048, 3), np.uint8); img[0, ::7, ::5] = 200\n"
        "frames = image_frames(img, 'png'); del img\n"
        "msg = decode(encode({'type': 'present', 'session': 's', 'request_id': 'r', 'image_ids': ['a'],"
        " 'encoding': 'png', 'dtype': 'uint8', 'shape': [2048, 2048, 3], 'repeats': 1}, frames))\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "images = [im.sum() for im in iter_images(msg)]\n"
        "print(len(frames[0]), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)\n")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True)
    png_bytes, rise = map(int, out.stdout.split())
    decoded = 2048 * 2048 * 3
    assert png_bytes < decoded / 50 and rise < 1.5 * decoded, (png_bytes, rise)


def test_a_large_result_within_every_limit_reaches_the_client():
    """4000 records x 256 channels (the issue's 11.6 MB result) is below the 64 MiB a result
    header may take (§3) and below 2^20 values; the 8 MiB of other headers would refuse it."""
    from xdream.rig.protocol import MAX_RESULT_HEADER_BYTES, MAX_RESULT_VALUES

    channels = [f"ch{i}" for i in range(256)]
    records = [{"image_id": f"g0-{i % 1000}", "repeat": i // 1000, "trial_id": i, "onset": 1234.567891 + i,
                "values": [12.345678 + k for k in range(256)], "valid": True} for i in range(4000)]
    frames = encode({"type": "result", "request_id": "r1", "complete": True, "channels": channels,
                     "records": records})
    assert 8 << 20 < len(frames[0]) < MAX_RESULT_HEADER_BYTES and 4000 * 256 <= MAX_RESULT_VALUES
    assert len(decode(frames, Limits(max_header_bytes=MAX_RESULT_HEADER_BYTES)).header["records"]) == 4000
    with pytest.raises(ProtocolError, match="exceeds the limit of 8388608"):
        decode(frames)
