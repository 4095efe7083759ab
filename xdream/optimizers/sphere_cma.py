"""SphereCMA: Wang & Ponce's "ZOHA sphere" with the exponential angular schedule (GECCO 2022).

In a high-dimensional generator space the code norm mostly sets image contrast and the
covariance barely adapts within a few thousand evaluations; what matters is shrinking the
step *angle*. So the search lives on a sphere of radius ``sphere_norm``:

- generation 0 asks the initial population (the generator's prior, or ``init`` rows);
- ``tell`` ranks the samples (NaN last), takes the log-rank-weighted Euclidean mean of the
  best ``select``, projects it to the sphere and moves the base point along the great circle
  towards it by ``t = lr`` (``lr`` 1.5 overshoots); the first tell puts the base point there;
- later generations sample Gaussian tangent vectors at the base point, with per-coordinate
  angular std ``deg * pi / 180 / sqrt(d)``, mapped onto the sphere by the exponential map;
  ``deg`` decays exponentially from ``angle_start`` (50) to ``angle_end`` (7.33) over the run.

The run length is ``ceil(budget / population)`` generations, ``budget`` being the evaluations
the experiment gives the optimiser (its ``budget``, or generations x population); without a
budget the schedule spans the paper's 75 generations. Later generations keep ``angle_end``.
``sphere_norm`` defaults to the mean norm of the initial population (the generator's own code
scale); the paper's DeePSiM fc6 runs used 300. Cost per generation: O(lambda * d).
"""

from __future__ import annotations

import math

import numpy as np

from xdream.core.errors import ConfigError
from xdream.core.optimizer import Optimizer
from xdream.optimizers.ranking import log_rank_weights, rank_order

DEFAULT_GENERATIONS = 75  # the paper's schedule length (40 x 75 = 3000 evaluations)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Point at fraction ``t`` (may exceed 1) of the great circle from unit ``a`` to unit ``b``."""
    theta = math.acos(float(np.clip(a @ b, -1.0, 1.0)))
    if theta < 1e-12:
        return b.copy()
    out = (math.sin((1 - t) * theta) * a + math.sin(t * theta) * b) / math.sin(theta)
    return out / np.linalg.norm(out)


def exp_map(base: np.ndarray, tangents: np.ndarray) -> np.ndarray:
    """Unit-sphere exponential map at unit ``base`` of tangent rows ``[n, d]``."""
    angle = np.sqrt(np.einsum("ij,ij->i", tangents, tangents))[:, None]
    along = np.sin(angle) / np.where(angle > 0, angle, 1.0)  # sin(a) / a per row
    out = tangents * along
    out += np.cos(angle) * base
    return out


class SphereCMA(Optimizer):
    name = "sphere-cma"
    nan_policy = "rank-last"

    def __init__(
        self,
        dim,
        rng,
        *,
        population: int = 40,
        select: int = 20,
        lr: float = 1.5,
        sphere_norm: float | None = None,
        angle_start: float = 50.0,
        angle_end: float = 7.33,
        sampler=None,
        init=None,
        budget=None,
    ):
        super().__init__(dim, rng, sampler=sampler, init=init, budget=budget)
        self._check_population(population)
        if not 1 <= select <= population:
            raise ConfigError(f"sphere-cma select must be in [1, population={population}], got {select}")
        self._check_positive(lr=lr, angle_start=angle_start, angle_end=angle_end, sphere_norm=sphere_norm)
        self.population, self.select, self.lr = population, select, lr
        self.angle_start, self.angle_end = angle_start, angle_end
        self.weights = log_rank_weights(select)
        self.initial = self.initial_population(population)
        norms = np.linalg.norm(self.initial.astype(np.float64), axis=1)
        self.sphere_norm = float(sphere_norm if sphere_norm is not None else (norms.mean() or math.sqrt(dim)))
        self.base: np.ndarray | None = None  # unit vector; None until a generation is scored

    def schedule_generations(self) -> int:
        """Generations the angular schedule spans: ``ceil(budget / population)`` or 75."""
        if self.budget is None:
            return DEFAULT_GENERATIONS
        return max(1, math.ceil(self.budget / self.population))

    def angle(self, generation: int) -> float:
        """Step angle in degrees for samples of ``generation`` (exponential decay, then flat)."""
        n = self.schedule_generations()
        frac = min(generation, n - 1) / (n - 1) if n > 1 else 1.0
        return self.angle_start * (self.angle_end / self.angle_start) ** frac

    def _ask(self) -> np.ndarray:
        if self.base is None:
            return self.initial
        mu = self.angle(self.generation) * math.pi / 180 / math.sqrt(self.dim)
        z = self.rng.standard_normal((self.population, self.dim))
        z -= (z @ self.base)[:, None] * self.base  # tangent plane at the base point
        z *= mu
        return (self.sphere_norm * exp_map(self.base, z)).astype(np.float32)

    def _tell(self, codes, scores) -> None:
        if not np.isfinite(scores).any():
            return
        chosen = rank_order(scores)[: self.select]
        x = codes[chosen].astype(np.float64)
        w = self.weights[: len(chosen)] / self.weights[: len(chosen)].sum()
        target = self._direction(w @ x, x)
        self.base = target if self.base is None else slerp(self.base, target, self.lr)

    def _direction(self, mean: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """Unit vector of the weighted mean; if it vanishes, of the best non-zero sample; if all
        vanish, the current base point (or the first axis)."""
        for v in (mean, *chosen):
            n = np.linalg.norm(v)
            if n > 1e-12:
                return v / n
        if self.base is not None:
            return self.base.copy()
        e = np.zeros(self.dim)
        e[0] = 1.0
        return e

    def _state(self) -> dict:
        return {
            "initial": self.initial.copy(),
            "sphere_norm": self.sphere_norm,
            "base": None if self.base is None else self.base.copy(),
        }

    def _load_state(self, state: dict) -> None:
        self.initial = np.array(state["initial"], dtype=np.float32)
        self.sphere_norm = float(state["sphere_norm"])
        self.base = None if state["base"] is None else np.array(state["base"], dtype=np.float64)
