"""CSA-ES: the (mu/mu_w, lambda) evolution strategy with cumulative step-size adaptation only.

CMA-ES without covariance learning (Hansen & Ostermeier, Evolutionary Computation 9(2), 2001:
the CSA rule of section 3 with C fixed at the identity; pycma's ``CMA_on = 0``): isotropic
Gaussian samples around the mean, log-rank weighted recombination of the better half, and the
step size grown or shrunk by the length of the evolution path. In a latent space of hundreds or
thousands of dimensions the covariance learning rates of CMA-ES are of order ``1 / d^2``, so
within a few thousand evaluations the covariance barely moves and the step size is what matters
(Wang & Ponce, GECCO 2022, whose answer is a fixed angular schedule: ``sphere-cma``). CSA adapts
the step size to the landscape instead, at a cost linear in ``d`` (no ``d x d`` matrix: pycma
stores the identity as a diagonal), so it meets the 5 ms ask+tell budget at d = 4096 where full
CMA-ES does not.

On Fourier codes (d = 918) read by EfficientNet-Lite0 units it scored level with pycma's full
CMA-ES at the same population, ahead of diagonal CMA-ES under noise, and ahead of XDREAM's GA
(``experiments/optimizer_benchmark``, the ``power`` table). Defaults: pycma's population
``4 + floor(3 ln d)`` (24 at d = 918, 28 at d = 4096) and ``sigma0 = 1``, the prior's scale.
"""

from __future__ import annotations

from xdream.optimizers.cmaes import PyCMA


class CSAES(PyCMA):
    name = "csa-es"
    isotropic = True

    def __init__(self, dim, rng, *, population: int | None = None, sigma0: float = 1.0,
                 sampler=None, init=None, budget=None):
        super().__init__(dim, rng, population=population, sigma0=sigma0, sampler=sampler, init=init, budget=budget)
