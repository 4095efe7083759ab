"""Random search, the floor of every benchmark: each generation is a fresh draw from the
generator's prior (its ``sample``), whatever the scores.

Its ``nan_policy`` is ``"ignore"``: scores, NaN or not, never change what it asks. Over a run
its result is the best of ``budget`` independent prior samples.
"""

from __future__ import annotations

import numpy as np

from xdream.core.optimizer import Optimizer


class RandomSearch(Optimizer):
    name = "random"
    nan_policy = "ignore"

    def __init__(self, dim, rng, *, population: int = 40, sampler=None, init=None, budget=None):
        super().__init__(dim, rng, sampler=sampler, init=init, budget=budget)
        self._check_population(population)
        self.population = population

    def _ask(self) -> np.ndarray:
        if self.generation == 0:  # init rows (if any) are part of the first draw
            return self.initial_population(self.population)
        return np.asarray(self.sampler(self.population, self.rng), dtype=np.float32).reshape(-1, self.dim)

    def _tell(self, codes, scores) -> None:
        """Scores never change what it asks."""
