"""The published JSON Schema of ``xdream-rig/1`` headers (``schemas/xdream-rig-1.json``) and the
codec's validator for it.

The schema file is the machine-readable half of docs/protocol.md; the codec validates every
header against it, so the file and the codec cannot drift apart. The validator implements the
subset of JSON Schema draft 2020-12 the file uses (type, const, enum, minimum/maximum,
minLength/maxLength, pattern, items/prefixItems, minItems/maxItems, uniqueItems, required,
properties, additionalProperties, anyOf, local ``$ref``), in plain Python for speed and without
a run-time dependency; the test suite checks the file with the reference ``jsonschema``
implementation too. A value above a ``maximum``/``maxLength``/``maxItems`` is a ``too-large``
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


@lru_cache(maxsize=None)
def _pattern(text: str) -> re.Pattern:
    return re.compile(text)


def validate_header(header: dict, kind: str) -> None:
    """Raise :class:`SchemaViolation` unless ``header`` is a valid ``kind`` message header;
    integers written with a zero fraction become ints in place."""
    root = load_schema()
    _check(header, root["$defs"][kind], root, "")


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
                  "^[^\\u0000-\\u001f\\u007f]+$": "of free text (no control characters)"}

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _check(value, node: dict, root: dict, path: str):
    """``value`` checked against ``node``; returns it (an integral float as an int)."""
    node = _resolve(node, root)

    def fail(keyword, shown=value):
        raise SchemaViolation(path, shown, describe(node, root), keyword)

    if "anyOf" in node:
        errors = []
        for option in node["anyOf"]:
            try:
                return _check(value, option, root, path)
            except SchemaViolation as e:
                errors.append(e)
        fail("anyOf")
    kind = node.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPES[k](value) for k in kinds):
            fail("type")
        if isinstance(value, float) and "integer" in kinds and "number" not in kinds:
            value = int(value)
    if "const" in node and (value != node["const"] or type(value) is not type(node["const"])):
        fail("const")
    if "enum" in node and not any(value == e and type(value) is type(e) for e in node["enum"]):
        fail("enum")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            fail("minimum")
        if "maximum" in node and value > node["maximum"]:
            fail("maximum")
    elif isinstance(value, str):
        if len(value) < node.get("minLength", 0):
            fail("minLength")
        if "maxLength" in node and len(value) > node["maxLength"]:
            fail("maxLength")
        if "pattern" in node and not _pattern(node["pattern"]).search(value):
            fail("pattern")
    elif isinstance(value, list):
        shown = f"<list of {len(value)}>"
        if len(value) < node.get("minItems", 0):
            fail("minItems", shown if len(value) > 8 else value)
        if "maxItems" in node and len(value) > node["maxItems"]:
            fail("maxItems", shown)
        prefix = node.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else node.get("items")
            if sub is not None:
                value[i] = _check(item, sub, root, f"{path}[{i}]")
        if node.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            raise SchemaViolation(path, shown if len(value) > 8 else value, "unique items", "uniqueItems")
    elif isinstance(value, dict) and "properties" in node:
        props = node["properties"]
        if node.get("additionalProperties") is False:
            unknown = sorted(set(value) - set(props))
            if unknown:
                where = f"field {path!r}" if path else "header"
                raise SchemaViolation(path, unknown[0], "", "additionalProperties",
                                      f"{where} has unknown field {unknown[0]!r}; allowed: {', '.join(props)}")
        for name in node.get("required", ()):
            if name not in value:
                where = f"field {path!r}" if path else "header"
                raise SchemaViolation(path, None, "", "required", f"{where} lacks field {name!r}")
        for name, sub in props.items():
            if name in value:
                value[name] = _check(value[name], sub, root, f"{path}.{name}" if path else name)
    return value
