"""The contract every registered noise model keeps, checked through the registry on each
plugin's ``example()`` (see :class:`xdream.core.responder.NoiseModel`), so a new noise model is
tested without a test file of its own: float64 output of the input's shape, NaN stays NaN, the
input is not modified, and all randomness comes from the RNG it is given (same seed, same noise;
the global numpy, Python and torch RNGs untouched)."""

import random

import numpy as np
import pytest
import torch

from xdream.core import registry

NAMES = registry.available("noise")


@pytest.fixture(params=NAMES)
def noise(request):
    return registry.load("noise", request.param).example()


def scores(shape=(40,), seed=0):
    """Typical responses: positive and negative activations, some large."""
    return np.random.default_rng(seed).normal(5.0, 4.0, shape)


def test_core_noise_models_are_registered():
    assert {"poisson", "gaussian"} <= set(NAMES)


def test_name_is_the_registered_one(noise, request):
    assert noise.name == request.node.callspec.params["noise"]


@pytest.mark.parametrize("shape", [(1,), (40,), (6, 3)])
def test_shape_and_dtype(noise, shape):
    out = noise(scores(shape), np.random.default_rng(0))
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == shape


def test_nan_stays_nan_and_the_input_is_untouched(noise):
    x = scores()
    x[[0, 7, 8, 39]] = np.nan
    before = x.copy()
    out = noise(x, np.random.default_rng(0))
    assert np.isnan(out[[0, 7, 8, 39]]).all()
    np.testing.assert_array_equal(x, before)


def test_all_nan_input(noise):
    assert np.isnan(noise(np.full(5, np.nan), np.random.default_rng(0))).all()


def test_same_rng_seed_same_noise_and_the_rng_is_used(noise):
    x = scores()
    a = noise(x, np.random.default_rng(3))
    np.testing.assert_array_equal(a, noise(x, np.random.default_rng(3)))
    assert not np.array_equal(a, noise(x, np.random.default_rng(4)))  # the noise comes from the RNG
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    noise(x, rng)
    assert rng.bit_generator.state != state


def test_no_global_rng_is_used(noise):
    np.random.seed(1)
    random.seed(1)
    torch.manual_seed(1)
    before = (np.random.get_state(), random.getstate(), torch.get_rng_state().clone())
    noise(scores(), np.random.default_rng(0))
    after = np.random.get_state()
    assert np.array_equal(after[1], before[0][1]) and after[2:] == before[0][2:]
    assert random.getstate() == before[1]
    assert torch.equal(torch.get_rng_state(), before[2])
