"""MeanCMA: pycma's CMA-ES with its mean shown as the last image of every generation."""

from __future__ import annotations

import numpy as np
import pytest

from xdream.core import registry
from xdream.core.errors import ConfigError


def make(name, options, seed=0, dim=30):
    return registry.create("optimizer", name, dict(options), dim=dim, rng=np.random.default_rng(seed))


@pytest.mark.parametrize("diagonal", [True, False])
def test_shows_pycmas_samples_then_its_mean_and_learns_from_the_samples_only(diagonal):
    shown = make("mean-cma", {"population": 8, "diagonal": diagonal})
    plain = make("cmaes", {"population": 7, "diagonal": diagonal})  # the same strategy, 7 samples
    assert shown.population == 8
    rng = np.random.default_rng(1)
    for generation in range(5):
        codes, samples = shown.ask(), plain.ask()
        assert codes.shape == (8, 30)
        np.testing.assert_array_equal(codes[:7], samples)
        np.testing.assert_array_equal(codes[7], plain.es.mean.astype(np.float32))
        scores = rng.standard_normal(7)
        # the mean's score, however extreme, must not change the search
        mean_score = [1e9, -1e9, np.nan][generation % 3]
        shown.tell(codes, np.append(scores, mean_score))
        plain.tell(samples, scores)
    np.testing.assert_array_equal(shown.ask(), np.concatenate([plain.ask(), plain.es.mean[None].astype(np.float32)]))


def test_the_mean_moves_towards_the_better_samples():
    opt = make("mean-cma", {"population": 12, "sigma0": 0.5}, dim=10)
    target = np.full(10, 2.0)
    first = opt.ask()[-1].copy()
    for _ in range(30):
        codes = opt.ask()
        opt.tell(codes, -np.sum((codes - target) ** 2, axis=1))
    last = opt.ask()[-1]
    assert np.linalg.norm(last - target) < 0.25 * np.linalg.norm(first - target)


def test_state_round_trip_keeps_the_population():
    opt = make("mean-cma", {"population": 6})
    opt.tell(opt.ask(), np.arange(6.0))
    again = make("mean-cma", {"population": 6}, seed=5)
    again.load_state_dict(opt.state_dict())
    assert again.population == 6
    np.testing.assert_array_equal(again.ask(), opt.ask())


@pytest.mark.parametrize("population", [3, 1, 0])
def test_population_below_four_is_refused_naming_it(population):
    with pytest.raises(ConfigError, match=f"mean-cma population must be >= 4.*got {population}$"):
        make("mean-cma", {"population": population})

