"""CSA-ES: pycma's CMA-ES with the covariance fixed at the identity, the step size adapted."""

from __future__ import annotations

import numpy as np

from xdream.core import registry


def make(name, options, dim=30, seed=0):
    return registry.create("optimizer", name, dict(options), dim=dim, rng=np.random.default_rng(seed))


def climb(opt, weights, generations=80):
    for _ in range(generations):
        codes = opt.ask()
        opt.tell(codes, -np.sum(weights * (codes - 1.0) ** 2, axis=1))
    return opt


def test_learns_the_step_size_only_where_diagonal_cma_learns_the_scales():
    """On an ill-conditioned quadratic diagonal CMA-ES learns unequal coordinate scales; CSA-ES
    keeps one scale for every coordinate and still shrinks its step towards the optimum."""
    weights = np.logspace(0, 3, 30)
    diagonal = climb(make("cmaes", {"population": 10, "diagonal": True}), weights)
    csa = climb(make("csa-es", {"population": 10}), weights)
    learnt = np.broadcast_to(diagonal.es.sigma_vec.scaling, (30,))
    assert learnt.max() / learnt.min() > 3
    assert np.ndim(csa.es.sigma_vec.scaling) == 0 and np.ndim(csa.es.C) == 0  # no matrix, no scales
    assert csa.sigma < 0.5


def test_step_size_grows_on_a_linear_slope():
    """CSA's path is long when successive steps agree: on a linear objective sigma must grow."""
    opt = make("csa-es", {"population": 10, "sigma0": 0.1})
    for _ in range(45):
        codes = opt.ask()
        opt.tell(codes, codes.sum(axis=1))
    assert opt.sigma > 10 * 0.1


def test_population_defaults_to_pycmas():
    assert make("csa-es", {}, dim=918).population == 4 + int(3 * np.log(918)) == 24
    assert make("csa-es", {}, dim=4096).population == 28
