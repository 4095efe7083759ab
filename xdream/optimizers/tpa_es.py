"""TPA-ES: the isotropic (mu/mu_w, lambda)-ES of ``csa-es`` with two-point step-size adaptation.

Two-point adaptation (Hansen, "CMA-ES with two-point step-size adaptation", INRIA RR-6527,
arXiv:0805.0231, 2008; the rule pycma uses by default from d = 300 on, ``CMAAdaptSigmaTPA``):
each generation after the first shows two of its samples on the line of the last mean shift,
``m + sigma |z| u`` and ``m - sigma |z| u`` (``u`` the unit shift, ``|z|`` the length of a fresh
standard normal step), and the step size grows when the sample ahead ranks better than the one
behind, shrinks when it ranks worse:

- ``r = (#scores above the one behind - #scores above the one ahead) / (lambda - 1)``, in [-1, 1];
- ``s <- 0.7 s + 0.3 sign(r) |r|^0.5``, ``sigma *= exp(s / damp)``,
  ``damp = 0.7 + 2 ln d + 2 ln max(1, lambda - d)`` (pycma 4's constants).

Both line samples are ordinary members of the generation: they are ranked and recombined like
the others. Unlike cumulative step-size adaptation, whose time constant ``1 / c_sigma`` is about
``d / mu_eff`` generations (about 103 at d = 918, longer than a run of a few thousand
evaluations), TPA reacts within a few generations at any dimension. Cost linear in ``d``.

Measured (``experiments/optimizer_benchmark``, the ``power`` table: Fourier codes, d = 918, read
by 8 EfficientNet-Lite0 units, 3 seeds, noise 0 / 0.2 / 0.5, 2000 evaluations): the best arm,
1.16x XDREAM's GA (ahead in 65 of 72 paired runs), level with pycma's full CMA-ES at its own
defaults and ahead of diagonal CMA-ES, at 2.4 ms per ask + tell at d = 4096, lambda = 40. It
is the default optimiser of ``xdream evolve`` and ``xdream compare``.
"""

from __future__ import annotations

import math

import numpy as np

from xdream.optimizers.csa_es import IsotropicES

SMOOTHING, EXPONENT = 0.3, 0.5  # pycma's CMAAdaptSigmaTPA: sp.c and sp.z_exponent


class TPAES(IsotropicES):
    name = "tpa-es"

    def __init__(self, dim, rng, *, population: int | None = None, sigma0: float = 1.0,
                 sampler=None, init=None, budget=None):
        super().__init__(dim, rng, population=population, sigma0=sigma0, sampler=sampler, init=init, budget=budget)
        self.damp = 0.7 + 2 * math.log(dim) + 2 * math.log(max(1, self.population - dim))
        self.tpa_s = 0.0
        self.shift: np.ndarray | None = None  # the last mean shift; None before the first tell
        self._lined = False  # whether the pending generation starts with the two line samples

    def _steps(self) -> np.ndarray:
        z = super()._steps()
        norm = float(np.linalg.norm(self.shift)) if self.shift is not None else 0.0
        self._lined = norm > 0
        if self._lined:
            z[0] = (self.shift * (np.linalg.norm(z[0].astype(np.float64)) / norm)).astype(np.float32)
            z[1] = -z[0]
        return z

    def _adapt_sigma(self, z_w, scores, shift) -> None:
        """Two-point adaptation from the ranks of the line samples (rows 0 and 1), when the
        generation had them; the mean's ``shift`` gives the next generation's line."""
        self.shift = shift
        if self._lined:
            s = np.where(np.isfinite(scores), scores, -np.inf)  # unscored: below every score
            r = (np.sum(s > s[1]) - np.sum(s > s[0])) / (len(s) - 1)
            self.tpa_s = (1 - SMOOTHING) * self.tpa_s + SMOOTHING * math.copysign(abs(r) ** EXPONENT, r)
            self.sigma *= math.exp(self.tpa_s / self.damp)
        self._lined = False

    def _state(self) -> dict:
        return {**super()._state(), "tpa_s": self.tpa_s, "lined": self._lined,
                "shift": None if self.shift is None else self.shift.copy()}

    def _load_state(self, state: dict) -> None:
        super()._load_state(state)
        self.tpa_s = float(state["tpa_s"])
        self._lined = bool(state["lined"])
        self.shift = None if state["shift"] is None else np.array(state["shift"], dtype=np.float64)
