"""CSA-ES against the update equations of Hansen's tutorial (C = I), and its behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xdream.core import registry


def make(options=None, dim=30, seed=0):
    return registry.create("optimizer", "csa-es", dict(options or {}), dim=dim, rng=np.random.default_rng(seed))


def test_one_generation_follows_the_tutorial_equations():
    """Samples m + sigma z; the mean, evolution path and step size after a tell, recomputed here
    from the tutorial's formulas (Hansen 2016, eqs. 41-44 with C = I, c_m = 1)."""
    d, lam = 30, 10
    opt = make({"population": lam, "sigma0": 0.7}, dim=d, seed=3)
    z = np.random.default_rng(3).standard_normal((lam, d), dtype=np.float32)  # the optimiser's first draw
    codes = opt.ask()
    np.testing.assert_allclose(codes, 0.7 * z, rtol=1e-6)
    scores = -np.sum((codes - 1.0) ** 2, axis=1)
    opt.tell(codes, scores)

    mu = lam // 2
    w = np.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
    w /= w.sum()
    mu_eff = 1 / np.sum(w**2)
    c_s = (mu_eff + 2) / (d + mu_eff + 5)
    d_s = 1 + 2 * max(0, math.sqrt((mu_eff - 1) / (d + 1)) - 1) + c_s
    z_w = w @ z[np.argsort(-scores)[:mu]].astype(np.float64)
    path = math.sqrt(c_s * (2 - c_s) * mu_eff) * z_w
    chi = math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d**2))
    np.testing.assert_allclose(opt.mean, 0.7 * z_w, rtol=1e-12)
    np.testing.assert_allclose(opt.path, path, rtol=1e-12)
    assert opt.sigma == pytest.approx(0.7 * math.exp(c_s / d_s * (np.linalg.norm(path) / chi - 1)), rel=1e-12)


def test_step_size_grows_on_a_slope_and_shrinks_near_an_optimum():
    """CSA's path is long when successive steps agree (a linear slope: sigma grows) and short
    when they cancel (close to the optimum of a sphere: sigma shrinks)."""
    slope = make({"population": 10, "sigma0": 0.1})
    for _ in range(50):
        codes = slope.ask()
        slope.tell(codes, codes.sum(axis=1))
    assert slope.sigma > 10 * 0.1
    bowl = make({"population": 10, "sigma0": 1.0})
    for _ in range(150):
        codes = bowl.ask()
        bowl.tell(codes, -np.sum((codes - 1.0) ** 2, axis=1))
    assert bowl.sigma < 0.1 and np.linalg.norm(bowl.mean - 1.0) < 0.5


def test_samples_are_isotropic_whatever_the_landscape():
    """No covariance is learnt: after climbing an ill-conditioned quadratic, the steps of a
    generation have the same spread along every coordinate."""
    weights = np.logspace(0, 3, 30)
    opt = make({"population": 400})
    for _ in range(20):
        codes = opt.ask()
        opt.tell(codes, -np.sum(weights * (codes - 1.0) ** 2, axis=1))
    steps = (opt.ask() - opt.mean.astype(np.float32)) / opt.sigma
    spread = steps.std(axis=0)
    assert spread.max() / spread.min() < 1.35 and abs(spread.mean() - 1) < 0.05


@pytest.mark.parametrize("name", ["csa-es", "tpa-es"])
@pytest.mark.parametrize("dim, population", [(100, None), (30, 9)])  # 4 + floor(3 ln 100) = 17: odd
def test_weights_follow_the_tutorial_and_pycma_at_an_odd_population(name, dim, population):
    """Tutorial eq. 49 (and pycma): ``w_i ~ ln((lambda + 1) / 2) - ln i`` for i = 1..floor(lambda / 2);
    for an odd population the first term is not ``ln(mu + 1/2)``."""
    import cma

    options = {} if population is None else {"population": population}
    opt = registry.create("optimizer", name, options, dim=dim, rng=np.random.default_rng(0))
    lam = opt.population
    assert lam % 2 == 1
    w = np.log((lam + 1) / 2) - np.log(np.arange(1, lam // 2 + 1))
    np.testing.assert_allclose(opt.weights, w / w.sum(), rtol=1e-12)
    pycma = cma.recombination_weights.RecombinationWeights(lam)
    np.testing.assert_allclose(opt.weights, np.asarray(pycma)[: pycma.mu], rtol=1e-12)
    assert opt.mu_eff == pytest.approx(pycma.mueff, rel=1e-12)


def test_population_defaults_to_the_tutorials():
    assert make(dim=918).population == 4 + int(3 * math.log(918)) == 24
    assert make(dim=4096).population == 28
    assert make({"population": 12}).weights.size == 6


# ---- TPA-ES: the same strategy with two-point step-size adaptation -------------------------


def test_tpa_line_samples_mirror_the_last_mean_shift():
    opt = registry.create("optimizer", "tpa-es", {"population": 10}, dim=30, rng=np.random.default_rng(0))
    first = opt.ask()
    before = opt.mean.copy()
    opt.tell(first, -np.sum((first - 1.0) ** 2, axis=1))
    shift = opt.mean - before
    steps = (opt.ask().astype(np.float64) - opt.mean) / opt.sigma
    np.testing.assert_allclose(steps[0], -steps[1], atol=1e-5)
    cosine = steps[0] @ shift / np.linalg.norm(steps[0]) / np.linalg.norm(shift)
    assert cosine == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("ahead_wins", [True, False])
def test_tpa_step_size_follows_the_rank_of_the_line_samples(ahead_wins):
    """Sample ahead best and the one behind worst: r = 1, s = 0.3, sigma *= exp(0.3 / damp);
    the other way round sigma shrinks by the same factor (pycma's TPA constants)."""
    d, lam = 30, 10
    opt = registry.create("optimizer", "tpa-es", {"population": lam}, dim=d, rng=np.random.default_rng(1))
    codes = opt.ask()
    opt.tell(codes, -np.sum((codes - 1.0) ** 2, axis=1))
    sigma = opt.sigma
    codes = opt.ask()
    scores = np.linspace(0.0, 1.0, lam)  # rows 2.. in between
    scores[0], scores[1] = (2.0, -1.0) if ahead_wins else (-1.0, 2.0)
    opt.tell(codes, scores)
    damp = 0.7 + 2 * math.log(d)
    expected = sigma * math.exp((0.3 if ahead_wins else -0.3) / damp)
    assert opt.sigma == pytest.approx(expected, rel=1e-12)


def test_tpa_step_size_grows_on_a_slope_and_shrinks_near_an_optimum():
    slope = registry.create("optimizer", "tpa-es", {"population": 10, "sigma0": 0.1}, dim=30,
                            rng=np.random.default_rng(0))
    for _ in range(50):
        codes = slope.ask()
        slope.tell(codes, codes.sum(axis=1))
    assert slope.sigma > 10 * 0.1
    bowl = registry.create("optimizer", "tpa-es", {"population": 10}, dim=30, rng=np.random.default_rng(0))
    for _ in range(150):
        codes = bowl.ask()
        bowl.tell(codes, -np.sum((codes - 1.0) ** 2, axis=1))
    assert bowl.sigma < 0.1 and np.linalg.norm(bowl.mean - 1.0) < 0.5
