"""Presets for the published in-silico setups (``presets.toml`` beside this module): XDREAM's
(Xiao & Kreiman 2020) and Wang & Ponce's (GECCO 2022), each a run config with its ``source`` and
the ``conventions`` it fixes. Data, not code: the core names no plugin in its code.

A preset runs only where the weights files its generator and target load are present; otherwise
it is refused before anything is written, in one line naming every missing file and the command
that fetches it (:func:`xdream.weights.needed.check_preset_files`).
"""

from __future__ import annotations

import tomllib
from importlib.resources import files

from xdream.core.errors import UnknownNameError, choices_text

META = ("source", "conventions")  # a preset's keys that are documentation, not config


def _table() -> dict:
    return tomllib.loads(files("xdream.config").joinpath("presets.toml").read_text())


def names() -> list[str]:
    return list(_table())


def preset(name: str) -> dict:
    """The whole preset ``name`` (config tables plus ``source`` and ``conventions``)."""
    table = _table()
    if name not in table:
        raise UnknownNameError(f"unknown preset {name!r}; valid: {choices_text(list(table))}")
    return table[name]


def preset_config(name: str) -> dict:
    """Preset ``name`` as a config dict (as parsed from a config file), for flags to override."""
    return {k: v for k, v in preset(name).items() if k not in META}

