"""The defaults table (``defaults.toml`` beside this module): which plugins the commands use
when the user names none. Kept as data so that the core names no plugin in its code."""

from __future__ import annotations

import copy
import tomllib
from functools import lru_cache
from importlib.resources import files


def defaults(section: str) -> dict:
    """One section of the defaults table (``evolve``, ``compare``, ``gradient``, ``sweep``), a
    copy, so callers may change what they get."""
    return copy.deepcopy(_table()[section])


@lru_cache(maxsize=1)
def _table() -> dict:
    """The table parsed once per process (package data, as the rig's schema in xdream.rig.schema):
    every config built takes its plugin defaults from it, and expanding the optimiser benchmark's
    paper preset (14,700 runs) built 88,200 of them, 10 s of TOML parsing."""
    return tomllib.loads(files("xdream.config").joinpath("defaults.toml").read_text())
