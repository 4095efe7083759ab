"""The defaults table (``defaults.toml`` beside this module): which plugins the commands use
when the user names none. Kept as data so that the core names no plugin in its code."""

from __future__ import annotations

import tomllib
from importlib.resources import files


def defaults(section: str) -> dict:
    """One section of the defaults table (``evolve``, ``compare``, ``gradient``, ``sweep``), read
    afresh (a few hundred bytes), so callers may change what they get."""
    return tomllib.loads(files("xdream.config").joinpath("defaults.toml").read_text())[section]
