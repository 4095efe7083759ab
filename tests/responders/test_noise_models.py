"""Noise models: statistics, determinism for a seed, NaN passthrough, wrapping a CNN unit."""

import numpy as np
import pytest
import torch

from responders.noise import MultiplicativeGaussianNoise, PoissonNoise
from xdream.core import registry
from xdream.core.errors import ConfigError
from xdream.core.responder import NoisyResponder


def rng(seed=0):
    return np.random.default_rng(seed)


def test_poisson_counts_have_the_rate_as_mean_and_variance():
    noise = registry.create("noise", "poisson", {"gain": 2.0})
    counts = noise(np.full(20000, 3.0), rng())
    assert counts.dtype == np.float64 and np.all(counts == np.round(counts))
    assert counts.mean() == pytest.approx(6.0, abs=0.1)
    assert counts.var() == pytest.approx(6.0, rel=0.05)


def test_poisson_negative_rate_is_silent_and_nan_passes():
    out = PoissonNoise()(np.array([-5.0, np.nan, 0.0, 50.0]), rng())
    assert out[0] == 0 and np.isnan(out[1]) and out[2] == 0 and out[3] > 20


def test_gaussian_noise_is_centred_on_the_score():
    noise = registry.create("noise", "gaussian", {"level": 0.2})
    out = noise(np.full(20000, 5.0), rng())
    assert out.mean() == pytest.approx(5.0, abs=0.05)
    assert out.std() == pytest.approx(1.0, rel=0.05)
    assert np.array_equal(MultiplicativeGaussianNoise(level=0)(np.arange(4.0), rng()), np.arange(4.0))


def test_gaussian_noise_never_flips_the_sign():
    noise = MultiplicativeGaussianNoise(level=2.0)
    positive = noise(np.full(5000, 3.0), rng(1))
    negative = noise(np.full(5000, -3.0), rng(2))
    assert positive.min() >= 0 and negative.max() <= 0
    assert (positive == 0).mean() > 0.2  # a factor clipped at 0 silences, never negates
    assert np.isnan(noise(np.array([1.0, np.nan]), rng())[1])


@pytest.mark.parametrize("noise", [PoissonNoise(gain=3.0), MultiplicativeGaussianNoise(level=0.5)])
def test_noise_is_deterministic_for_a_seed(noise):
    scores = np.array([1.0, np.nan, 4.0, -1.0, 7.5])
    a, b, c = noise(scores, rng(7)), noise(scores, rng(7)), noise(scores, rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.nan_to_num(a), np.nan_to_num(c))


@pytest.mark.parametrize(
    "name,options,text",
    [
        ("poisson", {"gain": -1.0}, "gain"),
        ("poisson", {"gain": float("inf")}, "gain"),
        ("poisson", {"gain": "high"}, "gain"),
        ("poisson", {"gain": 0.0}, "'gain' must be a finite number > 0"),  # every count 0: nothing to evolve
        ("gaussian", {"level": -0.2}, "level"),
        ("gaussian", {"sigma": 0.2}, "sigma"),
    ],
)
def test_bad_noise_options(name, options, text):
    with pytest.raises(ConfigError, match=text):
        registry.create("noise", name, options)


def test_poisson_gain_too_large_for_the_responses_is_one_config_error():
    """gain x response above numpy's Poisson limit (~9.2e18) is one line naming both, not a traceback."""
    assert PoissonNoise(gain=1e18)(np.array([0.5, np.nan]), rng())[0] > 0
    with pytest.raises(ConfigError, match=r"'gain' 1e\+18 is too large for the response 12.*gain < 7.7e\+17") as info:
        PoissonNoise(gain=1e18)(np.array([0.5, np.nan, 12.0]), rng())
    assert "\n" not in str(info.value)


def test_noisy_responder_wraps_a_torch_unit():
    unit = registry.create("responder", "torch-unit", {"target": "efficientnet_lite0:_blocks.2:5", "input_size": 64})
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    noisy = NoisyResponder(unit, PoissonNoise(gain=20.0), rng(3))
    scores = noisy.respond(images)
    clean = unit.respond(images)
    np.testing.assert_array_equal(noisy.last_clean, clean)
    assert scores.shape == (6,) and scores.dtype == np.float64
    assert np.all(scores == np.round(scores)) and not np.allclose(scores, clean)
    assert noisy.name == "torch-unit+poisson"
    quiet = NoisyResponder(unit, MultiplicativeGaussianNoise(level=0.0), rng(3))
    np.testing.assert_array_equal(quiet.respond(images), clean)
