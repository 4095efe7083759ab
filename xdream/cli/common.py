"""What every command shares: the ``--set KEY=VALUE`` grammar and the common flags.

One grammar for every command: ``KEY=VALUE`` with a dotted ``KEY`` (``optimizer.population``,
``noise.level``) and ``VALUE`` a TOML literal (``3``, ``0.5``, ``true``, ``"text"``, ``[0, 90]``);
anything that is not a TOML literal is taken as a plain string.
"""

from __future__ import annotations

import tomllib

from xdream.core.errors import ConfigError


def parse_value(text: str):
    """A --set value as a TOML literal (numbers, booleans, quoted strings), else a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set(items: list[str]) -> list[tuple[str, object]]:
    """``--set`` items as (dotted key, value) pairs; a missing ``=`` or key is a one-line error."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set needs KEY=VALUE, got {item!r}")
        pairs.append((key.strip(), parse_value(value.strip())))
    return pairs
