"""MeanCMA: CMA-ES that also shows its mean, the search distribution's centre, every generation.

In a high-dimensional latent space every CMA-ES sample lies at distance about
``sigma * sqrt(d)`` from the mean, and almost all of that step is in directions that do not
help: the weighted mean of the selected samples cancels those components ("genetic repair",
Beyer, Evolutionary Computation 3(1), 1995), so the mean itself usually scores above the
samples it came from. CMA-ES treats the mean as its best estimate of the optimum (Hansen, "The
CMA Evolution Strategy: A Tutorial", arXiv:1604.00772, 2016) but never evaluates it. Here each
generation shows ``population - 1`` samples of pycma's strategy and the mean as the last image;
the strategy learns from the samples only (the mean's score, noisy on a rig, never enters the
update), so the search is pycma's CMA-ES with one image per generation spent on its centre.

Measured (``experiments/optimizer_benchmark``, the ``power`` table: Fourier codes, d = 918, read
by EfficientNet-Lite0 units, 72 runs each): level with the same strategy showing 20 samples
without noise (mean normalised score 0.926 against 0.920) and slightly below it under noise
(0.608 against 0.626 at noise 0.2: one sample fewer to learn from); it is kept as a measured
candidate, not as a default. ``diagonal`` (the default) is sep-CMA-ES (Ros &
Hansen, PPSN 2008: linear cost in ``d``); ``diagonal = false`` learns the full covariance.
Defaults: population 20 (19 samples + the mean) and ``sigma0 = 1``, the prior's scale; the
benchmark's screens found 20 better than 40 at a few thousand evaluations (more generations).
"""

from __future__ import annotations

import numpy as np

from xdream.core.errors import ConfigError
from xdream.optimizers.cmaes import PyCMA, tell_strategy


class MeanCMA(PyCMA):
    name = "mean-cma"

    def __init__(self, dim, rng, *, population: int = 20, sigma0: float = 1.0, diagonal: bool = True,
                 sampler=None, init=None, budget=None):
        if population < 4:
            raise ConfigError(f"{self.name} population must be >= 4 (3 samples, the fewest pycma takes, + the mean), got {population}")
        super().__init__(dim, rng, population=population - 1, sigma0=sigma0, diagonal=diagonal,
                         sampler=sampler, init=init, budget=budget)
        self.population = self.es.popsize + 1

    def _ask(self) -> np.ndarray:
        samples = np.asarray(self.es.ask(), dtype=np.float64)
        return np.concatenate([samples, np.asarray(self.es.mean, dtype=np.float64)[None]])

    def _tell(self, codes, scores) -> None:
        tell_strategy(self.es, codes[:-1], scores[:-1])  # the last row is the mean: shown, not learnt from

    def _load_state(self, state: dict) -> None:
        super()._load_state(state)
        self.population = self.es.popsize + 1
