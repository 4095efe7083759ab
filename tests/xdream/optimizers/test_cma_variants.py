"""SphereCMA and CholeskyCMA against Wang & Ponce (GECCO 2022), and the
run length the Experiment hands to schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xdream import Experiment, ExperimentConfig
from xdream.core import registry
from xdream.optimizers.ranking import log_rank_weights


def make(name, options=None, seed=0, dim=8, **provided):
    return registry.create("optimizer", name, dict(options or {}), dim=dim, rng=np.random.default_rng(seed), **provided)


def angle(a, b):
    return math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))


# ---- SphereCMA ---------------------------------------------------------------------------------


def test_sphere_schedule_reads_the_budget():
    opt = make("sphere-cma", {"population": 40}, budget=3000)
    assert opt.schedule_generations() == 75
    assert opt.angle(0) == pytest.approx(50.0)
    assert opt.angle(74) == pytest.approx(7.33)
    assert opt.angle(37) == pytest.approx(math.sqrt(50 * 7.33))  # exponential: geometric midpoint
    assert opt.angle(500) == pytest.approx(7.33)  # flat after the run length
    short = make("sphere-cma", {"population": 40}, budget=400)
    assert short.schedule_generations() == 10 and short.angle(9) == pytest.approx(7.33)
    assert make("sphere-cma").schedule_generations() == 75  # no budget: the paper's length


@pytest.mark.parametrize("generation", [1, 40])
def test_sphere_samples_lie_on_the_sphere_at_the_scheduled_angle(generation):
    d = 4096
    opt = make("sphere-cma", {"sphere_norm": 300.0}, dim=d, budget=3000)
    x = opt.ask()
    opt.tell(x, np.arange(len(x), dtype=float))
    opt.generation = generation
    y = opt.ask().astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 300.0, rtol=1e-5)
    angles = np.degrees([angle(row, opt.base) for row in y])
    # tangent N(0, mu^2 I_{d-1}) with mu = deg pi / 180 / sqrt(d): its norm is deg degrees
    np.testing.assert_allclose(angles, opt.angle(generation), rtol=0.05)


def test_sphere_step_moves_along_the_great_circle_with_overshoot():
    d = 50
    opt = make("sphere-cma", {"population": 10, "select": 4, "lr": 1.5}, dim=d, seed=1)
    x0 = opt.ask()
    opt.tell(x0, np.arange(10, dtype=float))
    # the first tell sets the base point at the weighted mean of the best 4 (log-rank weights)
    w = log_rank_weights(4)
    first = w @ x0[[9, 8, 7, 6]].astype(np.float64)
    np.testing.assert_allclose(opt.base, first / np.linalg.norm(first), atol=1e-6)
    base = opt.base.copy()
    x1 = opt.ask()
    s = np.random.default_rng(0).normal(size=10)
    opt.tell(x1, s)
    order = np.argsort(-s)[:4]
    target = w @ x1[order].astype(np.float64)
    target /= np.linalg.norm(target)
    theta = angle(base, target)
    assert angle(base, opt.base) == pytest.approx(1.5 * theta, rel=1e-6)
    assert angle(target, opt.base) == pytest.approx(0.5 * theta, rel=1e-6)  # beyond the target
    # ... in the plane of base and target
    basis = np.linalg.qr(np.stack([base, target], axis=1))[0]
    np.testing.assert_allclose(basis @ (basis.T @ opt.base), opt.base, atol=1e-9)


def test_sphere_norm_defaults_to_the_prior_code_norm():
    d = 400
    opt = make("sphere-cma", dim=d)
    assert opt.sphere_norm == pytest.approx(math.sqrt(d), rel=0.05)
    x = opt.ask()
    opt.tell(x, np.arange(len(x), dtype=float))
    np.testing.assert_allclose(np.linalg.norm(opt.ask(), axis=1), opt.sphere_norm, rtol=1e-5)


# ---- CholeskyCMA -------------------------------------------------------------------------------


def test_cholesky_constants_follow_the_paper():
    d = 4096
    opt = make("cholesky-cma", dim=d)
    assert opt.population == 40 and opt.mu == 20 and opt.sigma == 3.0
    assert opt.cc == pytest.approx(4 / (d + 4))
    assert opt.c1 == pytest.approx(2 / (d + math.sqrt(2)) ** 2)
    assert opt.cs == pytest.approx(math.sqrt(opt.mueff) / (math.sqrt(opt.mueff) + math.sqrt(d)))
    assert opt.damps == pytest.approx(1.05, abs=0.01)
    x = opt.ask()
    assert x.shape == (40, d)
    assert np.std(x) == pytest.approx(3.0, rel=0.02) and abs(np.mean(x)) < 0.05  # zero mean, sigma 3


@pytest.mark.parametrize("dim, population", [(918, None), (16, 23)])  # 4 + floor(3 log2 918) = 33: odd
def test_cholesky_weights_at_an_odd_population_follow_the_paper(dim, population):
    """Wang & Ponce's CholeskyCMAES: ``mu = lambda / 2``, weights ``log(mu + 1/2) - log(1..floor(mu))``,
    i.e. ``log((lambda + 1) / 2)`` first, as Hansen's tutorial, not ``log(floor(lambda / 2) + 1/2)``."""
    opt = make("cholesky-cma", {} if population is None else {"population": population}, dim=dim)
    lam = opt.population
    assert lam % 2 == 1 and opt.mu == lam // 2
    w = np.log(lam / 2 + 0.5) - np.log(np.arange(1, opt.mu + 1))
    np.testing.assert_allclose(opt.weights, w / w.sum(), rtol=1e-12)
    assert opt.mueff == pytest.approx(1 / np.sum((w / w.sum()) ** 2), rel=1e-12)


def dense_reference(opt, told):
    """The paper's dense Cholesky-CMA update, written out independently, for told (codes,
    scores) pairs; returns (mean, sigma, A, Ainv)."""
    d = opt.dim
    mu, w, mueff = opt.mu, opt.weights, opt.mueff
    cs, cc, c1, damps, chi = opt.cs, opt.cc, opt.c1, opt.damps, opt.chi_n
    mean, sigma = np.zeros(d), 3.0
    A, Ainv = np.eye(d), np.eye(d)
    ps, pc = np.zeros(d), np.zeros(d)
    for g, (codes, scores) in enumerate(told, start=1):
        idx = np.argsort(-scores, kind="stable")[:mu]
        x = codes[idx].astype(np.float64)
        z = (x - mean) / sigma @ np.linalg.inv(A)
        mean = w @ x
        zw = w @ z
        ps = (1 - cs) * ps + math.sqrt(cs * (2 - cs) * mueff) * zw
        pc = (1 - cc) * pc + math.sqrt(cc * (2 - cc) * mueff) * zw @ A
        sigma *= math.exp(cs / damps * (np.linalg.norm(ps) / chi - 1))
        if g % opt.update_every == 0:
            v = pc @ Ainv
            nv = v @ v
            A = math.sqrt(1 - c1) * A + math.sqrt(1 - c1) / nv * (math.sqrt(1 + nv * c1 / (1 - c1)) - 1) * np.outer(v, pc)
            Ainv = Ainv / math.sqrt(1 - c1) - 1 / math.sqrt(1 - c1) / nv * (1 - 1 / math.sqrt(1 + nv * c1 / (1 - c1))) * np.outer(Ainv @ v, v)
    return mean, sigma, A, Ainv


@pytest.mark.parametrize("dim", [3, 16])  # 16: the factor stays low-rank; 3: it goes dense
def test_cholesky_factored_updates_equal_the_dense_algorithm(dim):
    opt = make("cholesky-cma", {"update_every": 2, "sigma0": 3.0}, dim=dim, seed=5)
    rng = np.random.default_rng(1)
    told = []
    for _ in range(12):
        x = opt.ask()
        s = -np.sum((x - 2.0) ** 2, axis=1) + rng.normal(size=len(x))
        opt.tell(x, s)
        told.append((x, s))
    mean, sigma, A, Ainv = dense_reference(opt, told)
    eye = np.eye(dim)
    np.testing.assert_allclose(opt.mean, mean, rtol=1e-8, atol=1e-10)
    assert opt.sigma == pytest.approx(sigma, rel=1e-10)
    np.testing.assert_allclose(opt.A.right(eye), A, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(opt.Ainv.right(eye), Ainv, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(A @ Ainv, eye, atol=1e-9)
    assert not np.allclose(A, eye, atol=1e-6), "the test is insensitive: A never moved"


# ---- run length from the Experiment -----------------------------------------------------------


@pytest.mark.parametrize("length, expected", [({"generations": 5}, 5 * 8), ({"budget": 20}, 20)])
def test_experiment_gives_schedules_the_run_length(tmp_path, fast_job, length, expected):
    fast_job.pop("generations")
    fast_job.update(length)
    fast_job["optimizer"] = {"name": "sphere-cma", "population": 8, "select": 4}
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    assert experiment.optimizer.budget == expected
    summary = experiment.run(progress=False)
    last = summary.generations - 1
    assert experiment.optimizer.schedule_generations() == math.ceil(expected / 8)
    assert experiment.optimizer.angle(last) == pytest.approx(7.33)
