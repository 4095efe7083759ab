"""XDREAM's genetic algorithm (Xiao & Kreiman 2020), exactly as published.

One generation: clip scores at their 95th percentile (``clip_percentile``); fitness = softmax
of the clipped scores at temperature ``kT = std(scores) / selectivity`` (std of the unclipped
scores, as XDREAM computes it); keep the ``n_conserve`` best unchanged; carry every unscored
individual over unchanged (unscored: any score that is not finite, NaN and +-inf alike: an
infinite response is a broken measurement, not an infinitely good image); fill the rest with children of two parents drawn by roulette on fitness,
each gene from the first parent with probability ``heritability``, then each gene mutated
with probability ``mutation_rate`` by adding N(0, ``mutation_size``).

Two named presets (``preset = "xdream" | "wang-ponce"``) set every option an explicit value
does not override: XDREAM's published defaults, and the GA of Wang & Ponce's benchmark
(population 40, mutation_rate 0.25, mutation_size 0.75, kT = 2 std i.e. selectivity 0.5,
n_conserve 10, heritability 0.75, and no score clip: their ``Genetic.step_simple`` in
Animadversio/ActMax-Optimizer-Dev, ``core/Optimizers.py``, takes ``exp((s - max s) / kT)`` of
the raw scores; ``clip_percentile = 100`` is that).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from xdream.core.errors import ConfigError, choices_text
from xdream.core.optimizer import Optimizer

PRESETS = {
    "xdream": dict(population=20, mutation_rate=0.5, mutation_size=0.5, selectivity=2.0,
                   heritability=0.5, n_conserve=0, clip_percentile=95.0),
    "wang-ponce": dict(population=40, mutation_rate=0.25, mutation_size=0.75, selectivity=0.5,
                       heritability=0.75, n_conserve=10, clip_percentile=100.0),
}


def fitness(scores: np.ndarray, selectivity: float, clip_percentile: float = 95.0) -> np.ndarray:
    """Selection probabilities for finite ``scores``: ``kT = max(std(scores) / selectivity,
    1e-8)`` from the scores as given, then clip them at their ``clip_percentile``-th percentile
    (100: no clip) and normalise ``exp((s - max s) / kT)``; uniform if flat. As in XDREAM's
    ``Genetic``, the temperature comes from the *unclipped* scores (the clip only tames the
    outlier's own weight)."""
    scores = np.asarray(scores, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        kT = max(np.std(scores) / selectivity, 1e-8)
    if not np.isfinite(kT):
        return np.full(len(scores), 1.0 / len(scores))
    s = scores if clip_percentile >= 100 else np.minimum(scores, np.percentile(scores, clip_percentile))
    f = np.exp((s - s.max()) / kT)
    return f / f.sum()


class GeneticAlgorithm(Optimizer):
    name = "genetic"
    nan_policy = "carry-over"
    presets = PRESETS

    def __init__(
        self,
        dim,
        rng,
        *,
        preset: Literal["xdream", "wang-ponce"] = "xdream",
        population: int | None = None,
        mutation_rate: float | None = None,
        mutation_size: float | None = None,
        selectivity: float | None = None,
        heritability: float | None = None,
        n_conserve: int | None = None,
        clip_percentile: float | None = None,
        sampler=None,
        init=None,
        budget=None,
    ):
        super().__init__(dim, rng, sampler=sampler, init=init, budget=budget)
        if preset not in PRESETS:
            raise ConfigError(f"genetic preset {preset!r} unknown; valid: {choices_text(PRESETS)}")
        given = dict(population=population, mutation_rate=mutation_rate, mutation_size=mutation_size,
                     selectivity=selectivity, heritability=heritability, n_conserve=n_conserve,
                     clip_percentile=clip_percentile)
        values = {k: PRESETS[preset][k] if v is None else v for k, v in given.items()}
        population, mutation_rate, mutation_size, selectivity, heritability, n_conserve, clip_percentile = \
            values.values()
        self.preset = preset
        self._check_population(population)
        if not 0 <= n_conserve < population:
            raise ConfigError(f"genetic n_conserve must be in [0, population), got {n_conserve}")
        for key, value in (("mutation_rate", mutation_rate), ("heritability", heritability)):
            if not 0 <= value <= 1:  # NaN fails too
                raise ConfigError(f"genetic {key} must be in [0, 1], got {value}")
        self._check_positive(mutation_size=mutation_size, selectivity=selectivity)
        if not 0 < clip_percentile <= 100:
            raise ConfigError(f"genetic clip_percentile must be in (0, 100] (100: no clip), got {clip_percentile}")
        self.population = population
        self.mutation_rate = mutation_rate
        self.mutation_size = mutation_size
        self.selectivity = selectivity
        self.heritability = heritability
        self.n_conserve = n_conserve
        self.clip_percentile = float(clip_percentile)
        self.codes = self.initial_population(population)

    def _ask(self) -> np.ndarray:
        return self.codes

    def _tell(self, codes, scores) -> None:
        scored = np.flatnonzero(np.isfinite(scores))
        unscored = np.flatnonzero(~np.isfinite(scores))
        if len(scored) == 0:  # nothing to select on: keep everyone
            self.codes = codes.copy()
            return
        order = scored[np.argsort(-scores[scored], kind="stable")]
        elites = order[: self.n_conserve]
        n_children = self.population - len(elites) - len(unscored)
        children = self._children(codes[scored], fitness(scores[scored], self.selectivity, self.clip_percentile), n_children)
        # XDREAM's order: elites, then children, then the unscored carried over at the end
        self.codes = np.concatenate([codes[elites], children, codes[unscored]], axis=0)

    def _children(self, parents: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
        if n <= 0:
            return np.empty((0, self.dim), np.float32)
        pairs = self.rng.choice(len(parents), size=(n, 2), p=p)
        from_first = self.rng.random((n, self.dim), dtype=np.float32) < self.heritability
        children = np.where(from_first, parents[pairs[:, 0]], parents[pairs[:, 1]])
        children = children.astype(np.float64)
        mutate = self.rng.random((n, self.dim), dtype=np.float32) < self.mutation_rate
        # normals only for the genes that mutate (the costly draw; vectorised either way)
        genes = np.flatnonzero(mutate)  # integer indexing: much cheaper than a boolean mask here
        children.reshape(-1)[genes] += self.rng.normal(0.0, self.mutation_size, size=len(genes))
        return children.astype(np.float32)

    def _state(self) -> dict:
        return {"codes": self.codes.copy()}

    def _load_state(self, state: dict) -> None:
        self.codes = np.array(state["codes"], dtype=np.float32)
