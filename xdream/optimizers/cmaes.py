"""CMA-ES through pycma, full or diagonal covariance (``diagonal=True``, linear cost).

pycma minimises and, given a seed, reseeds numpy's *global* RNG. Here it gets ``seed=nan``
and a ``randn`` hook that draws from the optimiser's own Generator, writes no files and
prints nothing. Scores are negated for pycma; NaN scores rank last.
"""

from __future__ import annotations

import pickle

import cma
import numpy as np

from xdream.core.optimizer import Optimizer


class _Randn:
    """pycma's ``randn(lam, n)`` hook, drawing from a numpy Generator (picklable)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def __call__(self, *shape):
        return self.rng.standard_normal(shape)


def cma_strategy(x0: np.ndarray, sigma0: float, rng: np.random.Generator, *, population: int | None = None,
                 diagonal: bool = False) -> cma.CMAEvolutionStrategy:
    """A pycma strategy at ``x0`` drawing from ``rng`` only, silent, without files or stopping rules."""
    options = {
        "seed": np.nan,
        "randn": _Randn(rng),
        "verbose": -9,
        "verb_log": 0,
        "verb_disp": 0,
        "signals_filename": "",  # no file checks
        "CMA_diagonal": bool(diagonal),
        # pycma mirrors samples for popsize < 6 by injecting them into the next ask(); an
        # all-NaN generation (no tell) would then lose them and change the state.
        "CMA_mirrors": 0,
        "tolfun": 0, "tolx": 0, "tolfunhist": 0, "tolstagnation": np.inf,
        "tolflatfitness": np.inf, "tolconditioncov": np.inf,
    }
    if population is not None:
        options["popsize"] = int(population)
    return cma.CMAEvolutionStrategy(np.asarray(x0, dtype=np.float64), float(sigma0), options)


def tell_strategy(es: cma.CMAEvolutionStrategy, solutions: np.ndarray, scores: np.ndarray) -> None:
    """Tell pycma (a minimiser) the scores to maximise; NaN ranks last; all NaN: nothing told."""
    finite = np.isfinite(scores)
    if not finite.any():
        return
    loss = -np.asarray(scores, dtype=np.float64)
    worst = loss[finite].max()
    loss[~finite] = worst + 1.0 + abs(worst)  # rank last, whatever the scale
    es.tell(list(np.asarray(solutions, dtype=np.float64)), loss.tolist())


def load_strategy(blob: bytes, rng: np.random.Generator) -> cma.CMAEvolutionStrategy:
    """A pickled strategy, its sampling hook drawing from ``rng`` again."""
    es = pickle.loads(blob)
    es.opts["randn"].rng = rng  # the hook is shared with pycma's sampler
    return es


class PyCMA(Optimizer):
    name = "cmaes"
    nan_policy = "rank-last"
    accepts_repaired_codes = True  # pycma's tell takes repaired (e.g. clipped) solutions

    def __init__(
        self,
        dim,
        rng,
        *,
        population: int | None = None,
        sigma0: float = 1.0,
        diagonal: bool = False,
        sampler=None,
        init=None,
        budget=None,
    ):
        super().__init__(dim, rng, sampler=sampler, init=init, budget=budget)
        self._check_strategy(population, sigma0, min_dim=2)
        self.es = cma_strategy(self.start_mean(), sigma0, rng, population=population, diagonal=diagonal)
        self.population = self.es.popsize

    def _ask(self) -> np.ndarray:
        # float64: pycma gets its own samples back in _tell when the codes told are the asked ones
        return np.asarray(self.es.ask(), dtype=np.float64)

    def _tell(self, codes, scores) -> None:
        tell_strategy(self.es, codes, scores)

    @property
    def sigma(self) -> float:
        return float(self.es.sigma)

    def _state(self) -> dict:
        return {"es": pickle.dumps(self.es)}

    def _load_state(self, state: dict) -> None:
        self.es = load_strategy(state["es"], self.rng)
        self.population = self.es.popsize
