"""The published JSON Schema of ``xdream-rig/1`` headers (``schemas/xdream-rig-1.json``) and the
codec's validator for it.

The schema file is the machine-readable half of docs/protocol.md; the codec validates every
header against it, so the file and the codec cannot drift apart. The validator implements the
subset of JSON Schema draft 2020-12 the file uses (type, const, enum, minimum/maximum,
minLength/maxLength, pattern, items/prefixItems, minItems/maxItems, uniqueItems, required,
properties, additionalProperties, anyOf, local ``$ref``), in plain Python without a run-time
dependency, each message type compiled once into closures that read no schema at check time;
the test suite checks the file with the reference ``jsonschema`` implementation too. A value above a ``maximum``/``maxLength``/``maxItems`` is a ``too-large``
error; any other violation is ``bad-message`` (docs/protocol.md §3). As in JSON Schema, a
number with a zero fraction is an integer (MATLAB's ``jsonencode`` writes ``1024.0``); the
validator hands such values on as Python ints.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

SCHEMA_FILE = "xdream-rig-1.json"
TOO_LARGE_KEYWORDS = ("maximum", "maxLength", "maxItems")


class SchemaViolation(Exception):
    """One header value that breaks the schema: ``path`` (e.g. ``records[3].onset``), the
    value, what is allowed, and the keyword that failed."""

    def __init__(self, path: str, value, allowed: str, keyword: str, message: str | None = None):
        text = repr(value)
        text = text if len(text) <= 60 else text[:57] + "..."
        where = f"header field {path!r} is {text}" if path else f"header is {text}"
        super().__init__(message or f"{where}; allowed: {allowed}")
        self.path, self.keyword = path, keyword

    @property
    def code(self) -> str:
        return "too-large" if self.keyword in TOO_LARGE_KEYWORDS else "bad-message"


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The schema file shipped with the package, parsed once."""
    return json.loads(resources.files("xdream.rig").joinpath("schemas", SCHEMA_FILE).read_text("utf-8"))


def validate_header(header: dict, kind: str) -> None:
    """Raise :class:`SchemaViolation` unless ``header`` is a valid ``kind`` message header;
    integers written with a zero fraction become ints in place."""
    _validator(kind)(header, None)


@lru_cache(maxsize=None)
def _validator(kind: str):
    """The check of one message type, compiled once from the schema (see :func:`_compile`)."""
    root = load_schema()
    return _compile(root["$defs"][kind], root, {})


def _resolve(node: dict, root: dict) -> dict:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def describe(node: dict, root: dict) -> str:
    """What a schema node allows, in words (used in one-line errors)."""
    node = _resolve(node, root)
    if "anyOf" in node:
        return " or ".join(describe(n, root) for n in node["anyOf"])
    if node.get("type") == "string" and "pattern" in node:
        chars = _PATTERN_WORDS.get(node["pattern"], f"matching {node['pattern']}")
        return f"{node.get('minLength', 0)}-{node['maxLength']} characters {chars}"
    if "const" in node:
        return repr(node["const"])
    if "enum" in node:
        return ", ".join(map(str, node["enum"]))
    kind = node.get("type")
    if kind == "integer":
        return f"an integer {node.get('minimum', '')}..{node.get('maximum', '')}"
    if kind == "array":
        return f"a list of {node.get('minItems', 0)}..{node.get('maxItems', 'any')} items"
    if kind == "string":
        return f"a string of at most {node.get('maxLength')} characters"
    if isinstance(kind, list):
        return " or ".join({"number": "a finite number", "null": "null"}.get(k, k) for k in kind)
    return {"number": "a finite number", "boolean": "true or false", "object": "a JSON object"}.get(kind, str(kind))


_PATTERN_WORDS = {"^[A-Za-z0-9_.:-]+$": "of A-Z a-z 0-9 _ . : - (no space)",
                  "^[^\\u0000-\\u001f\\u007f]+$": "of free text (no control characters)",
                  "^[^\\n\\r]*$": "on one line (no line break)"}

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _path(at) -> str:
    """The text of a path kept as nested (parent, key) pairs: ``records[3].onset``."""
    parts = []
    while at is not None:
        at, key = at
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    text = "".join(reversed(parts))
    return text[1:] if text.startswith(".") else text


def _compile(node: dict, root: dict, done: dict):
    """``check(value, at) -> value`` for one schema node: its keywords read once, so checking a
    header does no dictionary look-ups in the schema (a 40-record result is checked in a
    fraction of what an interpreter of the schema takes). ``at`` is the value's path as nested
    (parent, key) pairs, turned into text only for an error. Recursive references are compiled
    once (``done``, by node identity)."""
    node = _resolve(node, root)
    key = id(node)
    if key in done:
        return done[key]
    done[key] = lambda value, at: done[key](value, at)  # a reference back to this node, while compiling

    def fail(keyword, value, at):
        raise SchemaViolation(_path(at), value, describe(node, root), keyword)

    if "anyOf" in node:
        options = [_compile(option, root, done) for option in node["anyOf"]]

        def check(value, at):
            for option in options:
                try:
                    return option(value, at)
                except SchemaViolation:
                    pass
            fail("anyOf", value, at)
        done[key] = check
        return check

    kind = node.get("type")
    kinds = None if kind is None else (kind if isinstance(kind, list) else [kind])
    tests = None if kinds is None else tuple(_TYPES[k] for k in kinds)
    to_int = kinds is not None and "integer" in kinds and "number" not in kinds
    has_const, const = "const" in node, node.get("const")
    enum = node.get("enum")
    minimum, maximum = node.get("minimum"), node.get("maximum")
    min_length, max_length = node.get("minLength", 0), node.get("maxLength")
    # a pattern is ECMA-262 (JSON Schema), whose "$" matches at the very end only; Python's "$" also matches
    # before a final newline, so it is "\Z" here
    pattern = re.compile(re.sub(r"(?<!\\)\$", r"\\Z", node["pattern"])).search if "pattern" in node else None
    min_items, max_items, unique = node.get("minItems", 0), node.get("maxItems"), node.get("uniqueItems")
    prefix = [_compile(n, root, done) for n in node.get("prefixItems", [])]
    items = _compile(node["items"], root, done) if "items" in node else None
    props = node.get("properties")
    subs = {name: _compile(sub, root, done) for name, sub in props.items()} if props is not None else None
    closed = props is not None and node.get("additionalProperties") is False
    required = node.get("required", ())

    def check(value, at):
        given = value  # errors show the value as sent (1e+300, not the int it converts to)
        if tests is not None:
            for test in tests:
                if test(value):
                    break
            else:
                fail("type", given, at)
            if to_int and isinstance(value, float):
                value = int(value)
        if has_const and (value != const or type(value) is not type(const)):
            fail("const", given, at)
        if enum is not None and not any(value == e and type(value) is type(e) for e in enum):
            fail("enum", given, at)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if minimum is not None and value < minimum:
                fail("minimum", given, at)
            if maximum is not None and value > maximum:
                fail("maximum", given, at)
        elif isinstance(value, str):
            if len(value) < min_length:
                fail("minLength", given, at)
            if max_length is not None and len(value) > max_length:
                fail("maxLength", given, at)
            if pattern is not None and not pattern(value):
                fail("pattern", given, at)
        elif isinstance(value, list):
            shown = f"<list of {len(value)}>"
            if len(value) < min_items:
                fail("minItems", shown if len(value) > 8 else value, at)
            if max_items is not None and len(value) > max_items:
                fail("maxItems", shown, at)
            for i, item in enumerate(value):
                sub = prefix[i] if i < len(prefix) else items
                if sub is not None:
                    value[i] = sub(item, (at, i))
            if unique and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
                raise SchemaViolation(_path(at), shown if len(value) > 8 else value, "unique items", "uniqueItems")
        elif isinstance(value, dict) and subs is not None:
            unknown = sorted(set(value) - set(subs)) if closed else []
            missing = [name for name in required if name not in value]
            if unknown or missing:  # unknown fields are reported first
                path = _path(at)
                where = f"field {path!r}" if path else "header"
                if unknown:
                    raise SchemaViolation(path, unknown[0], "", "additionalProperties",
                                          f"{where} has unknown field {unknown[0]!r}; allowed: {', '.join(subs)}")
                raise SchemaViolation(path, None, "", "required", f"{where} lacks field {missing[0]!r}")
            for name, sub in subs.items():
                if name in value:
                    value[name] = sub(value[name], (at, name))
        return value

    done[key] = check
    return check
