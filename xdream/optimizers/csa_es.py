"""CSA-ES: the (mu/mu_w, lambda) evolution strategy with cumulative step-size adaptation only
(and :class:`IsotropicES`, the strategy without its step-size rule, which ``tpa-es`` shares).

CMA-ES without covariance learning: isotropic Gaussian samples ``x = m + sigma z`` around the
mean, log-rank weighted recombination of the better half, and the step size grown or shrunk by
the length of the evolution path (Hansen & Ostermeier, Evolutionary Computation 9(2), 2001;
here with the constants of Hansen, "The CMA Evolution Strategy: A Tutorial",
arXiv:1604.00772, 2016, Table 1 and eqs. 41-44 with ``C = I`` and ``c_m = 1``):

- ``lambda = 4 + floor(3 ln d)``, ``mu = floor(lambda / 2)``, weights ``ln((lambda + 1) / 2) - ln i``;
- ``c_sigma = (mu_eff + 2) / (d + mu_eff + 5)``,
  ``d_sigma = 1 + 2 max(0, sqrt((mu_eff - 1) / (d + 1)) - 1) + c_sigma``;
- ``m += sigma z_w``, ``p <- (1 - c_sigma) p + sqrt(c_sigma (2 - c_sigma) mu_eff) z_w``,
  ``sigma *= exp(c_sigma / d_sigma (|p| / E|N(0, I)| - 1))``.

Why no covariance: in a latent space of hundreds or thousands of dimensions CMA-ES's
covariance learning rates are of order ``1 / d^2``, so within a few thousand evaluations the
covariance barely moves and the step size is what matters (Wang & Ponce, GECCO 2022, whose
answer is a fixed angular schedule: ``sphere-cma``). CSA adapts the step size to the landscape
instead, at a cost linear in ``d``: no matrix, float32 samples, one weighted sum per tell.

Measured (``experiments/optimizer_benchmark``, the ``power`` table: Fourier codes, d = 918, 2000
evaluations): 1.07x XDREAM's GA, behind the pycma arms, because at d = 918 CSA's time constant
``1 / c_sigma`` (about 103 generations) is longer than the run (83): the step size barely moves.
``tpa-es`` is the same strategy with a step-size rule that reacts within a few generations.

Defaults: ``population = 4 + floor(3 ln d)`` (24 at d = 918, 28 at d = 4096) and ``sigma0 = 1``,
the prior's scale; the mean starts at zero (the prior's centre) or at the mean of ``init``.
"""

from __future__ import annotations

import math

import numpy as np

from xdream.core.optimizer import Optimizer
from xdream.optimizers.ranking import log_rank_weights, rank_order


class IsotropicES(Optimizer):
    """The (mu/mu_w, lambda)-ES with ``C = I``: isotropic samples around the mean and log-rank
    weighted recombination of the better half; a subclass adapts the step size
    (:meth:`_adapt_sigma`)."""

    nan_policy = "rank-last"

    def __init__(self, dim, rng, *, population: int | None = None, sigma0: float = 1.0,
                 sampler=None, init=None, budget=None):
        super().__init__(dim, rng, sampler=sampler, init=init, budget=budget)
        self._check_strategy(population, sigma0, min_dim=2)
        self.population = int(population) if population is not None else 4 + int(3 * math.log(dim))
        self.weights = log_rank_weights(self.population // 2, self.population)
        self.mu_eff = 1.0 / float(np.sum(self.weights**2))
        self.mean = self.start_mean()
        self.sigma = float(sigma0)
        self._z: np.ndarray | None = None  # the standard normal steps of the pending codes

    def _steps(self) -> np.ndarray:
        """The standard normal steps ``z`` of the next generation, ``[population, dim]``."""
        return self.rng.standard_normal((self.population, self.dim), dtype=np.float32)

    def _ask(self) -> np.ndarray:
        self._z = self._steps()
        codes = self._z * np.float32(self.sigma)
        codes += self.mean.astype(np.float32)
        return codes

    def _tell(self, codes, scores) -> None:
        z, self._z = self._z, None
        if not np.isfinite(scores).any():
            return
        chosen = rank_order(scores)[: len(self.weights)]
        z_w = self.weights @ z[chosen].astype(np.float64)
        before = self.mean.copy()
        self.mean += self.sigma * z_w
        self._adapt_sigma(z_w, scores, self.mean - before)

    def _adapt_sigma(self, z_w: np.ndarray, scores: np.ndarray, shift: np.ndarray) -> None:
        """Update ``sigma`` after a generation: ``z_w`` the recombined standard step, ``scores``
        the generation's (NaN = unscored), ``shift`` the mean's move."""
        raise NotImplementedError

    def _state(self) -> dict:
        return {"mean": self.mean.copy(), "sigma": self.sigma, "z": None if self._z is None else self._z.copy()}

    def _load_state(self, state: dict) -> None:
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.sigma = float(state["sigma"])
        self._z = None if state["z"] is None else np.array(state["z"], dtype=np.float32)


class CSAES(IsotropicES):
    name = "csa-es"

    def __init__(self, dim, rng, *, population: int | None = None, sigma0: float = 1.0,
                 sampler=None, init=None, budget=None):
        super().__init__(dim, rng, population=population, sigma0=sigma0, sampler=sampler, init=init, budget=budget)
        self.c_sigma = (self.mu_eff + 2) / (dim + self.mu_eff + 5)
        self.d_sigma = 1 + 2 * max(0.0, math.sqrt((self.mu_eff - 1) / (dim + 1)) - 1) + self.c_sigma
        self.path_gain = math.sqrt(self.c_sigma * (2 - self.c_sigma) * self.mu_eff)
        self.chi_d = math.sqrt(dim) * (1 - 1 / (4 * dim) + 1 / (21 * dim**2))  # E|N(0, I)|
        self.path = np.zeros(dim)

    def _adapt_sigma(self, z_w, scores, shift) -> None:
        """Cumulative step-size adaptation from the recombined step ``z_w``."""
        self.path *= 1 - self.c_sigma
        self.path += self.path_gain * z_w
        self.sigma *= math.exp(self.c_sigma / self.d_sigma * (np.linalg.norm(self.path) / self.chi_d - 1))

    def _state(self) -> dict:
        return {**super()._state(), "path": self.path.copy()}

    def _load_state(self, state: dict) -> None:
        super()._load_state(state)
        self.path = np.array(state["path"], dtype=np.float64)
