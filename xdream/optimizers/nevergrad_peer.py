"""nevergrad's optimisers behind xdream's interface: the off-the-shelf peers of the benchmark.

nevergrad (Rapin & Teytaud 2018, facebookresearch/nevergrad) is the field's toolbox of
gradient-free optimisers; ``method`` names one of its registry (``NGOpt``, ``DiagonalCMA`` (the
default), ``TwoPointsDE``, ...), built on ``ng.p.Array(shape=(dim,))`` with ``num_workers =
population`` so that it is asked a whole generation at a time, and ``budget`` evaluations (which
NGOpt uses to choose its algorithm; 3000 without one). It is built at the first ask, so that it
sees the budget of a run given in generations, set after construction
(:mod:`xdream.core.optimizer`). It is used as a user would: its own settings, its own start (the
zero code, or the mean of ``init``). NGOpt is not the default because it fails where its choice
falls on a metamodel (nevergrad 1.0.12 with numpy 2 raises a TypeError in ``learn_on_k_best``,
seen at d = 8).

nevergrad minimises: scores are negated, and an unscored (NaN) sample is told a loss worse than
every finite one ("rank-last"); a generation with no score is not told at all and the
optimiser is put back as it was before the ask. Its random state is seeded from the given
Generator; the state dict pickles the whole nevergrad optimiser. Needs the optional ``peers``
extra (``pip install 'xdream[peers]'``). nevergrad's own failures (NGOpt with batches of 40 can
raise "Mean shift samples are expected but missing") propagate: the benchmark records them.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np

from xdream.core.errors import ConfigError
from xdream.core.optimizer import Optimizer

DEFAULT_BUDGET = 3000


def _nevergrad():
    try:
        import nevergrad
    except ImportError:
        raise ConfigError("optimizer 'nevergrad' needs the nevergrad package: pip install 'xdream[peers]'") from None
    return nevergrad


class Nevergrad(Optimizer):
    name = "nevergrad"
    nan_policy = "rank-last"

    def __init__(self, dim, rng, *, method: str = "DiagonalCMA", population: int = 40, sampler=None, init=None,
                 budget=None):
        super().__init__(dim, rng, sampler=sampler, init=init, budget=budget)
        self._check_population(population)
        ng = _nevergrad()
        if method not in ng.optimizers.registry:
            raise ConfigError(f"nevergrad method {method!r} unknown; valid: NGOpt, DiagonalCMA, TwoPointsDE, ... "
                              f"(nevergrad.optimizers.registry)")
        self.method, self.population = method, population
        self._seed = int(rng.integers(2**32))
        self.ng = None  # built at the first ask: a run given in generations sets its budget after construction
        self._candidates: list | None = None  # nevergrad's candidates of the pending ask
        self._before_ask: bytes | None = None

    def _build(self):
        ng = _nevergrad()
        parametrization = ng.p.Array(init=self.start_mean())
        parametrization.random_state = np.random.RandomState(self._seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nevergrad warns about settings it finds inefficient
            return ng.optimizers.registry[self.method](parametrization=parametrization,
                                                       budget=self.budget or DEFAULT_BUDGET,
                                                       num_workers=self.population)

    def _ask(self) -> np.ndarray:
        self.ng = self.ng or self._build()
        self._before_ask = pickle.dumps(self.ng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._candidates = [self.ng.ask() for _ in range(self.population)]
        return np.stack([c.value for c in self._candidates])  # float64: told back exactly

    def _tell(self, codes, scores) -> None:
        candidates, self._candidates = self._candidates, None
        finite = np.isfinite(scores)
        if not finite.any():
            self.ng = pickle.loads(self._before_ask)  # as if never asked
            return
        loss = -scores
        worst = loss[finite].max()
        loss[~finite] = worst + 1.0 + abs(worst)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for candidate, value in zip(candidates, loss):
                self.ng.tell(candidate, float(value))

    def _state(self) -> dict:
        # one pickle: the pending candidates stay the ones the optimiser knows it asked
        return {"ng": pickle.dumps((self.ng, self._candidates)), "before_ask": self._before_ask, "seed": self._seed}

    def _load_state(self, state: dict) -> None:
        self.ng, self._candidates = pickle.loads(state["ng"])
        self._before_ask = state["before_ask"]
        self._seed = state.get("seed", self._seed)  # (a state from before the lazy build holds its built optimiser)
