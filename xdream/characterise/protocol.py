"""Characterisation protocols: which stimuli, how often, and the table of every stimulus.

A :class:`Protocol` is built from a preset and optional overrides (TOML / ``--set``), checks
every parameter range, and expands into a :class:`StimulusTable` -- one row per distinct
stimulus with its sweep, family and parameters -- which renders any rows at any size.

Presets (Harris, Mihai & Hare 2019, and their code ecs-vlc/opponency):

* ``default``: baselines (black, mid-grey, white), 36 hues (0..350 deg step 10, S 1, L 0.5),
  18 orientations (0..340 deg step 20) x 32 phases (step 11.25 deg) x 16 frequencies (0..15
  cycles per image) = 9216 gratings; one presentation each (for deterministic CNN units).
* ``coarse``: for a rig, where presentations cost animal time: 18 hues, 8 orientations
  (0..157.5 step 22.5; with phases covering 360 deg the other half-turn repeats them) x 4
  phases x 6 frequencies = 192 gratings, each shown 5 times, baselines 20 times (every test
  compares against the baseline, so it gets the most repeats): 1110 presentations.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from xdream.core.errors import ConfigError, UnknownNameError, choices_text

if TYPE_CHECKING:  # torch loads only to render: the command line's parser reads PRESETS without it
    import torch

BASELINE_NAMES = {"black": 0.0, "grey": 0.5, "white": 1.0}
# sweep -> stimulus family; 'spectral' and 'spatial' are the two the classification combines
SWEEPS = {"baseline": "uniform", "spectral": "hue", "spatial": "grating", "red-green": "red-green",
          "gaussian": "gaussian", "dog": "dog"}
PARAMETERS = ("level", "hue", "saturation", "lightness", "orientation", "frequency", "phase",
              "contrast", "sigma", "surround", "polarity")


def _steps(start: float, stop: float, step: float) -> list[float]:
    """``start, start+step, ...`` below ``stop`` (like range, for floats)."""
    n = max(0, math.ceil((stop - start) / step - 1e-9))
    return [start + i * step for i in range(n)]


@dataclass
class Protocol:
    """All settings of a characterisation; lists are parameter values (angles in degrees,
    frequencies in cycles per image, spot sizes in image widths)."""

    name: str = "default"
    baseline: str = "black"  # which uniform field is the baseline ('spontaneous rate')
    baseline_levels: list = field(default_factory=lambda: [0.0, 0.5, 1.0])
    hues: list = field(default_factory=lambda: _steps(0, 360, 10))
    saturation: float = 1.0
    lightness: float = 0.5
    orientations: list = field(default_factory=lambda: _steps(0, 360, 20))
    phases: list = field(default_factory=lambda: _steps(0, 360, 11.25))
    frequencies: list = field(default_factory=lambda: list(range(16)))
    contrast: float = 1.0
    red_green: bool = False  # red/green gratings on the same orientation x phase x frequency grid
    spots: bool = False  # Gaussian and DoG spots (ON and OFF) at the sizes below
    spot_sigmas: list = field(default_factory=lambda: [0.02, 0.05, 0.1, 0.2])
    surround: float = 3.0
    repeats: int = 1
    baseline_repeats: int = 1

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict) -> "Protocol":
        """A preset (``data['preset']``, default 'default') with overrides; all checked."""
        data = dict(data)
        preset = data.pop("preset", "default")
        if preset not in PRESETS:
            raise UnknownNameError(f"unknown preset {preset!r}; valid: {choices_text(PRESETS)}")
        valid = [f.name for f in dataclasses.fields(cls) if f.name != "name"]
        for key in data:
            if key not in valid:
                raise ConfigError(f"unknown protocol key {key!r}; valid: {choices_text(valid)}")
        values = {**dataclasses.asdict(PRESETS[preset]), **{k: _expand(k, v) for k, v in data.items()}}
        protocol = cls(**values)
        protocol.validate()
        return protocol

    def to_dict(self) -> dict:
        return {"preset": self.name, **{k: v for k, v in dataclasses.asdict(self).items() if k != "name"}}

    def validate(self) -> None:
        """One-line ConfigError for any empty range or out-of-range value."""
        if self.baseline not in BASELINE_NAMES:
            raise ConfigError(f"baseline {self.baseline!r} is not a uniform field; valid: {choices_text(BASELINE_NAMES)}")
        for key in ("baseline_levels", "hues", "orientations", "phases", "frequencies", "spot_sigmas"):
            values = getattr(self, key)
            if not isinstance(values, list) or not values:
                raise ConfigError(f"empty parameter range: {key} = {values!r}; give at least one value")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
                raise ConfigError(f"{key} must be a list of finite numbers, got {values!r}")
        _within("baseline_levels", self.baseline_levels, 0, 1)
        _within("frequencies", self.frequencies, 0, math.inf)
        _within("spot_sigmas", self.spot_sigmas, 1e-6, math.inf)
        for key, lo, hi in (("saturation", 0, 1), ("lightness", 0, 1), ("contrast", 0, 1), ("surround", 1.000001, math.inf)):
            _within(key, [getattr(self, key)], lo, hi)
        for key in ("red_green", "spots"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        for key in ("repeats", "baseline_repeats"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")
        level = BASELINE_NAMES[self.baseline]
        if level not in self.baseline_levels:
            raise ConfigError(f"baseline {self.baseline!r} (level {level}) must be one of baseline_levels {self.baseline_levels}")

    @property
    def baseline_level(self) -> float:
        return BASELINE_NAMES[self.baseline]

    # -- expansion ------------------------------------------------------------------------------
    def table(self) -> "StimulusTable":
        """Every distinct stimulus of the protocol, in sweep order."""
        rows: list[tuple[str, dict]] = [("baseline", {"level": v}) for v in self.baseline_levels]
        rows += [("spectral", {"hue": h, "saturation": self.saturation, "lightness": self.lightness}) for h in self.hues]
        grid = [
            {"orientation": o, "frequency": f, "phase": p, "contrast": self.contrast}
            for o in self.orientations for p in self.phases for f in self.frequencies
        ]
        rows += [("spatial", g) for g in grid]
        if self.red_green:
            rows += [("red-green", g) for g in grid]
        if self.spots:
            for sweep, extra in (("gaussian", {}), ("dog", {"surround": self.surround})):
                rows += [
                    (sweep, {"sigma": s, "polarity": pol, "contrast": self.contrast, **extra})
                    for s in self.spot_sigmas for pol in (1.0, -1.0)
                ]
        return StimulusTable.from_rows(rows)

    def repeats_of(self, table: "StimulusTable") -> np.ndarray:
        """Presentations per stimulus: baselines get ``baseline_repeats``, the rest ``repeats``."""
        return np.where(table.sweep == "baseline", self.baseline_repeats, self.repeats)


def _expand(key: str, value):
    """``{start, stop, step}`` tables become value lists (stop excluded); anything else as is."""
    if isinstance(value, dict):
        if set(value) != {"start", "stop", "step"}:
            raise ConfigError(f"{key} range needs exactly start, stop and step, got {sorted(value)}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()) or value["step"] <= 0:
            raise ConfigError(f"{key} range needs numbers and step > 0, got {value}")
        return _steps(value["start"], value["stop"], value["step"])
    return value


def _within(key: str, values, lo: float, hi: float) -> None:
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi]
    if bad:
        raise ConfigError(f"{key} value {bad[0]!r} out of range; allowed {lo:g}..{hi:g}")


PRESETS = {
    "default": Protocol(),
    "coarse": Protocol(
        name="coarse",
        hues=_steps(0, 360, 20),
        orientations=_steps(0, 180, 22.5),
        phases=[0.0, 90.0, 180.0, 270.0],
        frequencies=[1, 2, 3, 5, 8, 13],
        repeats=5,
        baseline_repeats=20,
    ),
}


@dataclass
class StimulusTable:
    """One row per distinct stimulus: ``sweep`` names, and every parameter as a float column
    (NaN where a family does not use it)."""

    sweep: np.ndarray  # str [N]
    params: dict[str, np.ndarray]  # name -> float64 [N]

    @classmethod
    def from_rows(cls, rows: list[tuple[str, dict]]) -> "StimulusTable":
        sweep = np.array([s for s, _ in rows], dtype=object)
        params = {k: np.array([p.get(k, np.nan) for _, p in rows], dtype=np.float64) for k in PARAMETERS}
        return cls(sweep, params)

    def __len__(self) -> int:
        return len(self.sweep)

    def rows(self, sweep: str) -> np.ndarray:
        """Indices of the rows of one sweep."""
        return np.flatnonzero(self.sweep == sweep)

    def sweeps(self) -> list[str]:
        return [s for s in SWEEPS if (self.sweep == s).any()]

    def describe(self, index: int) -> dict:
        """The parameters a row uses, e.g. {'sweep': 'spectral', 'hue': 120.0}."""
        used = {k: float(v[index]) for k, v in self.params.items() if not np.isnan(v[index])}
        return {"sweep": str(self.sweep[index]), **used}

    def render(self, indices, size: int) -> "torch.Tensor":
        """Images ``[len(indices), 3, size, size]`` of the given rows, in that order."""
        import torch

        indices = np.asarray(indices, dtype=np.int64)
        out = torch.empty(len(indices), 3, size, size)
        for sweep in np.unique(self.sweep[indices]):
            where = np.flatnonzero(self.sweep[indices] == sweep)
            params = {k: v[indices[where]] for k, v in self.params.items()}
            out[torch.from_numpy(where)] = _render(SWEEPS[sweep], params, size)
        return out


def render_described(described: dict, size: int) -> "torch.Tensor":
    """The image ``[3, size, size]`` of one stimulus as :meth:`StimulusTable.describe` gives it
    (``{'sweep': 'spatial', 'orientation': 20.0, ...}``), rendered anew at any size."""
    params = dict(described)
    sweep = params.pop("sweep", None)
    if sweep not in SWEEPS:
        raise ConfigError(f"unknown stimulus sweep {sweep!r}; valid: {choices_text(SWEEPS)}")
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise ConfigError(f"unknown stimulus parameter {unknown[0]!r}; valid: {choices_text(PARAMETERS)}")
    return StimulusTable.from_rows([(sweep, params)]).render([0], size)[0]


def _render(family: str, p: dict, s: int) -> "torch.Tensor":
    """The images of one stimulus family with parameter columns ``p`` at size ``s``."""
    from xdream.characterise import stimuli

    return {
        "uniform": lambda: stimuli.uniform(p["level"], s),
        "hue": lambda: stimuli.hues(p["hue"], s, p["saturation"], p["lightness"]),
        "grating": lambda: stimuli.gratings(p["orientation"], p["frequency"], p["phase"], s, p["contrast"]),
        "red-green": lambda: stimuli.red_green_gratings(p["orientation"], p["frequency"], p["phase"], s, p["contrast"]),
        "gaussian": lambda: stimuli.gaussian_spots(p["sigma"], s, p["polarity"], p["contrast"]),
        "dog": lambda: stimuli.dog_spots(p["sigma"], s, p["surround"], p["polarity"], p["contrast"]),
    }[family]()
