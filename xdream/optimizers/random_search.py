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
        self._pending: np.ndarray | None = None

    def ask(self) -> np.ndarray:
        if self.generation == 0:  # init rows (if any) are part of the first draw
            codes = self.initial_population(self.population)
        else:
            codes = np.asarray(self.sampler(self.population, self.rng), dtype=np.float32).reshape(-1, self.dim)
        self._pending = codes
        return codes.copy()

    def tell(self, codes, scores) -> None:
        if self._pending is None:
            raise ValueError("tell() called without a pending ask()")
        self._check_tell(codes, scores, self._pending)
        self._pending = None
        self.generation += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "pending": None if self._pending is None else self._pending.copy()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._pending = None if state["pending"] is None else np.array(state["pending"], dtype=np.float32)
