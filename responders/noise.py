"""Noise models that make a CNN unit behave more like a recorded neuron.

Both draw only from the ``numpy.random.Generator`` they are given, draw the same number of
variates whatever the scores (so a run replays identically), and pass NaN through.
"""

from __future__ import annotations

import math

import numpy as np

from xdream.core.errors import ConfigError
from xdream.core.responder import NoiseModel


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"noise option {name!r} must be a finite number >= 0, got {value!r}")
    return float(value)


class PoissonNoise(NoiseModel):
    """Spike counts: ``Poisson(max(score, 0) * gain)``, as float64 counts.

    Treats the activation as a firing rate, so noise grows with the response like real spike
    counts; ``gain`` (> 0; at 0 every count would be 0) sets counts per unit of activation (higher
    gain, relatively less noise).
    A rate ``gain x score`` above numpy's Poisson limit (about 9.2e18) is a ConfigError at the draw."""

    name = "poisson"

    def __init__(self, gain: float = 1.0):
        self.gain = _non_negative("gain", gain)
        if self.gain == 0:
            raise ConfigError("noise option 'gain' must be a finite number > 0 (at 0 every spike count is 0), got 0")

    def __call__(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        valid = ~np.isnan(scores)
        rate = np.where(valid, np.maximum(scores, 0.0) * self.gain, 0.0)
        try:
            counts = rng.poisson(rate).astype(np.float64)
        except ValueError:  # numpy's "lam value too large": a rate above about 9.2e18
            top = float(np.max(scores[valid]))
            raise ConfigError(f"noise option 'gain' {self.gain:g} is too large for the response {top:g}: gain x "
                              f"response must stay below 9.2e18 (here gain < {9.2e18 / top:.2g})") from None
        return np.where(valid, counts, np.nan)

    def __repr__(self) -> str:
        return f"PoissonNoise(gain={self.gain})"


class MultiplicativeGaussianNoise(NoiseModel):
    """Wang & Ponce's benchmark noise: ``score * max(0, 1 + level * randn)``.

    The factor is never negative, so noise can silence a response but never flip its sign;
    ``level`` 0.2 and 0.5 are the benchmark's moderate and strong noise."""

    name = "gaussian"

    def __init__(self, level: float = 0.2):
        self.level = _non_negative("level", level)

    def __call__(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        factor = np.maximum(0.0, 1.0 + self.level * rng.standard_normal(scores.shape))
        return scores * factor

    def __repr__(self) -> str:
        return f"MultiplicativeGaussianNoise(level={self.level})"
