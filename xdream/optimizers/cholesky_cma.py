"""CholeskyCMA: CMA-ES with a lazily updated Cholesky factor (Wang & Ponce, GECCO 2022).

Samples ``x = mean + sigma * z @ A`` with ``z ~ N(0, I)``; ``C = A^T A``. Settings of the
paper (Wang & Ponce, GECCO 2022): population ``4 + floor(3 log2 d)`` (40 at d = 4096), sigma0 3,
initial mean zero (or the mean of ``init``), mu = lambda / 2 log-rank weights
``log(lambda / 2 + 1/2) - log i``, i = 1..floor(lambda / 2),
``cc = 4 / (d + 4)``, ``cs = sqrt(mueff) / (sqrt(mueff) + sqrt(d))``,
``c1 = 2 / (d + sqrt 2)^2``, ``damps = 1 + cs + 2 max(0, sqrt((mueff - 1) / (d + 1)) - 1)``;
cumulative step-size adaptation every generation and a rank-one update of ``A`` and ``A^-1``
from the path ``pc`` every ``update_every`` generations.

Each rank-one update adds one outer product, so ``A = a I + U^T V`` and
``A^-1 = b I + R^T S`` are kept in that exact factored form: sampling costs
O(lambda * d * k) for k updates instead of the dense O(lambda * d^2) (a 4096 x 4096 factor
would cost tens of ms per generation). When k would exceed d / 4 the factors are made dense.
The step is computed from the codes told back (which may differ from the asked ones).
"""

from __future__ import annotations

import math

import numpy as np

from xdream.core.errors import ConfigError
from xdream.core.optimizer import Optimizer
from xdream.optimizers.ranking import log_rank_weights, rank_order


class LowRankFactor:
    """A d x d matrix ``M = base + U^T V``, ``base`` a scalar times I or a dense matrix."""

    def __init__(self, dim: int):
        self.dim = dim
        self.base: float | np.ndarray = 1.0
        self.U = np.zeros((0, dim))
        self.V = np.zeros((0, dim))

    def right(self, y: np.ndarray) -> np.ndarray:
        """``y @ M`` for rows ``y``."""
        out = y * self.base if np.isscalar(self.base) else y @ self.base
        return out + (y @ self.U.T) @ self.V if len(self.U) else out

    def left(self, x: np.ndarray) -> np.ndarray:
        """``M @ x`` for a column vector given as a 1-d array."""
        out = x * self.base if np.isscalar(self.base) else self.base @ x
        return out + self.U.T @ (self.V @ x) if len(self.U) else out

    def scale_and_add(self, scale: float, u: np.ndarray, v: np.ndarray) -> None:
        """``M <- scale * M + outer(u, v)``; dense once the rank would pass d / 4."""
        self.base = self.base * scale
        self.V = self.V * scale
        self.U = np.vstack([self.U, u[None]])
        self.V = np.vstack([self.V, v[None]])
        if len(self.U) > max(1, self.dim // 4):
            dense = self.base * np.eye(self.dim) if np.isscalar(self.base) else self.base
            self.base = dense + self.U.T @ self.V
            self.U, self.V = np.zeros((0, self.dim)), np.zeros((0, self.dim))

    def state(self) -> dict:
        base = self.base if np.isscalar(self.base) else self.base.copy()
        return {"base": base, "U": self.U.copy(), "V": self.V.copy()}

    def load(self, state: dict) -> None:
        base = state["base"]
        self.base = float(base) if np.isscalar(base) else np.array(base, dtype=np.float64)
        self.U, self.V = np.array(state["U"], np.float64), np.array(state["V"], np.float64)


class CholeskyCMA(Optimizer):
    name = "cholesky-cma"
    nan_policy = "rank-last"
    accepts_repaired_codes = True  # the step is computed from the codes told

    def __init__(
        self,
        dim,
        rng,
        *,
        population: int | None = None,
        sigma0: float = 3.0,
        update_every: int = 10,
        sampler=None,
        init=None,
        budget=None,
    ):
        super().__init__(dim, rng, sampler=sampler, init=init, budget=budget)
        self._check_strategy(population, sigma0)
        if update_every < 1:
            raise ConfigError(f"cholesky-cma update_every must be >= 1, got {update_every}")
        d = self.dim
        self.population = population or int(4 + math.floor(3 * math.log2(d)))
        self.mu = self.population // 2
        self.weights = log_rank_weights(self.mu, self.population)
        self.mueff = 1.0 / float(np.sum(self.weights**2))
        self.cc = 4 / (d + 4)
        self.cs = math.sqrt(self.mueff) / (math.sqrt(self.mueff) + math.sqrt(d))
        self.c1 = 2 / (d + math.sqrt(2)) ** 2
        self.damps = 1 + self.cs + 2 * max(0.0, math.sqrt((self.mueff - 1) / (d + 1)) - 1)
        self.chi_n = math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d**2))
        self.update_every = update_every
        self.sigma = float(sigma0)
        self.mean = self.start_mean()
        self.ps, self.pc = np.zeros(d), np.zeros(d)
        self.A, self.Ainv = LowRankFactor(d), LowRankFactor(d)
        self.updates = 0  # generations with at least one score

    def _ask(self) -> np.ndarray:
        z = self.rng.standard_normal((self.population, self.dim))
        return (self.mean + self.sigma * self.A.right(z)).astype(np.float32)

    def _tell(self, codes, scores) -> None:
        if not np.isfinite(scores).any():
            return
        chosen = codes[rank_order(scores)[: self.mu]].astype(np.float64)
        new_mean = self.weights @ chosen
        # z of the chosen samples, recovered from the codes told: (x - mean) / sigma @ A^-1
        zw = self.weights @ self.Ainv.right((chosen - self.mean) / self.sigma)
        self.mean = new_mean
        cs, cc = self.cs, self.cc
        self.ps = (1 - cs) * self.ps + math.sqrt(cs * (2 - cs) * self.mueff) * zw
        self.pc = (1 - cc) * self.pc + math.sqrt(cc * (2 - cc) * self.mueff) * self.A.right(zw[None])[0]
        self.sigma *= math.exp((cs / self.damps) * (np.linalg.norm(self.ps) / self.chi_n - 1))
        self.updates += 1
        if self.updates % self.update_every == 0:
            self._update_factor()

    def _update_factor(self) -> None:
        """Rank-one update of A and A^-1 with the path pc (Cholesky-CMA, as in Wang & Ponce)."""
        c1 = self.c1
        v = self.Ainv.right(self.pc[None])[0]
        normv = float(v @ v)
        if normv <= 0 or not math.isfinite(normv):
            return
        root = math.sqrt(1 + normv * c1 / (1 - c1))
        scale = math.sqrt(1 - c1)
        ainv_v = self.Ainv.left(v)
        self.A.scale_and_add(scale, v, scale / normv * (root - 1) * self.pc)
        self.Ainv.scale_and_add(1 / scale, ainv_v, -(1 / scale) / normv * (1 - 1 / root) * v)

    def _state(self) -> dict:
        return {
            "sigma": self.sigma, "mean": self.mean.copy(), "ps": self.ps.copy(), "pc": self.pc.copy(),
            "A": self.A.state(), "Ainv": self.Ainv.state(), "updates": self.updates,
        }

    def _load_state(self, state: dict) -> None:
        self.sigma = float(state["sigma"])
        self.mean, self.ps, self.pc = (np.array(state[k], np.float64) for k in ("mean", "ps", "pc"))
        self.A.load(state["A"])
        self.Ainv.load(state["Ainv"])
        self.updates = int(state["updates"])
