"""The published JSON Schema of xdream-rig/1: it is valid JSON Schema (checked with the reference
`jsonschema` implementation), every example message in docs/protocol.md passes both that
implementation and the codec, and both refuse the same broken headers."""

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest

from xdream.rig.protocol import ProtocolError, decode, encode
from xdream.rig.schema import SchemaViolation, load_schema, validate_header

DOC = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"


def doc_examples():
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)
    return [json.loads(b) for b in blocks]


def test_the_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(load_schema())


EXAMPLES = doc_examples()


def test_the_doc_has_an_example_of_every_message_type():
    assert {e["type"] for e in EXAMPLES} == set(load_schema()["$defs"]) - {
        "id", "token", "tokens", "text", "channel", "channels", "count", "number", "record"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["type"] for e in EXAMPLES])
def test_every_doc_example_is_valid(example):
    jsonschema.Draft202012Validator(load_schema()).validate(example)
    validate_header(copy.deepcopy(example), example["type"])
    if example["type"] != "present":  # (a present example has no data frames here)
        header = {k: v for k, v in example.items() if k != "protocol"}
        assert decode(encode(header)).header == example


BROKEN = [
    ("hello", lambda h: h.pop("session")),
    ("hello", lambda h: h.update(session="with space")),
    ("welcome", lambda h: h.update(channels=[])),
    ("welcome", lambda h: h.update(max_frame_bytes=0)),
    ("present", lambda h: h.update(shape=[8, 8, 2])),
    ("present", lambda h: h.update(repeats=101)),
    ("present", lambda h: h.update(image_ids=["a", "a"])),
    ("result", lambda h: h["records"][0].update(onset="soon")),
    ("result", lambda h: h["records"][0].update(extra=1)),
    ("pong", lambda h: h.update(state="asleep")),
    ("error", lambda h: h.update(code="oops")),
    ("ping", lambda h: h.update(colour="red")),
    ("error", lambda h: h.update(message="line one\nline two")),  # text is one line (§2, §4.4)
    ("welcome", lambda h: h.update(rig="lab 3\r\nrig")),
    ("hello", lambda h: h.update(client="xdream\rclient")),
]


@pytest.mark.parametrize("kind,change", BROKEN)
def test_reference_implementation_and_codec_refuse_the_same_headers(kind, change):
    header = copy.deepcopy(next(e for e in EXAMPLES if e["type"] == kind))
    change(header)
    assert not jsonschema.Draft202012Validator(load_schema()).is_valid(header)
    with pytest.raises(SchemaViolation):
        validate_header(header, kind)
    if kind != "present":
        with pytest.raises(ProtocolError):
            decode([json.dumps(header).encode()])


ODD_VALUES = [None, True, False, 0, -1, 1.0, 1.5, 2**31, 1e300, float(2**53), "", "x", "with space", "a" * 65,
              "a" * 1001, "\u0001", [], [1], ["a", "a"], ["a"] * 300, {}, {"a": 1}, "raw", "png", 100, 101, 4097,
              [8, 8, 3], [8, 8, 2], 99.0]


def mutated(example: dict, rng) -> dict:
    """The example with 1-3 fields (of the header or of a record) dropped, added or replaced by odd values."""
    header = copy.deepcopy(example)
    for _ in range(rng.randint(1, 3)):
        records = header.get("records")
        target = header
        if isinstance(records, list) and records and isinstance(records[0], dict) and rng.random() < 0.5:
            target = records[0]
        op, keys = rng.random(), list(target)
        if op < 0.2 and keys:
            target.pop(rng.choice(keys))
        elif op < 0.3:
            target["extra"] = 1
        elif keys:
            target[rng.choice(keys)] = copy.deepcopy(rng.choice(ODD_VALUES))
    return header


def test_the_codec_and_the_reference_implementation_agree_on_mutated_headers():
    import random

    rng, root = random.Random(0), load_schema()
    reference = {e["type"]: jsonschema.Draft202012Validator({**root, "$ref": f"#/$defs/{e['type']}"})
                 for e in EXAMPLES}
    refused = 0
    for _ in range(1500):
        example = rng.choice(EXAMPLES)
        header = mutated(example, rng)
        try:
            validate_header(copy.deepcopy(header), example["type"])
            ours = True
        except SchemaViolation:
            ours, refused = False, refused + 1
        assert ours == reference[example["type"]].is_valid(header), header
    assert 300 < refused < 1490  # both verdicts were exercised (about 3 % of the mutations stay valid)


@pytest.mark.parametrize("kind,change", [
    ("hello", lambda h: h.update(session="9f3c6a\n")),
    ("present", lambda h: h.update(image_ids=["g12-0", "g12-1\n"])),
    ("welcome", lambda h: h.update(channels=["V4 e1", "V4 e2\n"])),
    ("error", lambda h: h.update(message="queue full\n")),
])
def test_a_pattern_is_anchored_at_the_very_end_of_the_string(kind, change):
    """JSON Schema patterns are ECMA-262, where ``$`` matches at the end only: an id or channel
    name ending in a newline is refused (Python's ``$`` also matches before a final newline)."""
    header = copy.deepcopy(next(e for e in EXAMPLES if e["type"] == kind))
    change(header)
    with pytest.raises(SchemaViolation, match="allowed: (1-64 characters of|0-1000 characters on one line)"):
        validate_header(header, kind)
