"""``example-additive``: additive Gaussian trial noise, ``score + sd * N(0, 1)``.

Drawn only from the RNG xdream passes (one variate per score, whatever the scores), so a run
replays identically; NaN (no response) stays NaN.
"""

from __future__ import annotations

import math

import numpy as np

from xdream.core.errors import ConfigError
from xdream.core.responder import NoiseModel


class AdditiveNoise(NoiseModel):
    """Option ``sd``: the noise's standard deviation, in units of the score (default 1)."""

    name = "example-additive"

    def __init__(self, sd: float = 1.0):
        if not math.isfinite(sd) or sd < 0:
            raise ConfigError(f"example-additive option 'sd' must be a finite number >= 0, got {sd}")
        self.sd = float(sd)

    def __call__(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        return scores + self.sd * rng.standard_normal(scores.shape)
