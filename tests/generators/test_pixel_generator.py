"""Pixel generator: the image is exactly sigmoid(code)."""

import numpy as np
import pytest
import torch

from generators.pixel import PixelGenerator
from xdream.core import registry
from xdream.core.errors import ConfigError


def test_image_is_sigmoid_of_code_exactly():
    gen = PixelGenerator(size=8)
    code = torch.linspace(-6, 6, 3 * 8 * 8).reshape(1, -1)
    assert gen.latent_shape == (3, 8, 8) and gen.image_size == 8
    assert torch.equal(gen.decode(code), torch.sigmoid(code.reshape(1, 3, 8, 8)))
    assert torch.equal(gen.decode(torch.zeros(1, 192)), torch.full((1, 3, 8, 8), 0.5))


def test_normal_codes_are_noise_around_mid_grey():
    gen = registry.create("generator", "pixel", {}, device="cpu")
    images = gen.decode(gen.sample(16, np.random.default_rng(0)))
    assert images.shape == (16, 3, 32, 32)
    assert images.mean().item() == pytest.approx(0.5, abs=0.01)
    assert 0.15 < images.std().item() < 0.25


@pytest.mark.parametrize("size", [4, 7, 1000])
def test_bad_size_is_config_error(size):
    with pytest.raises(ConfigError, match=rf"pixel size must be in \[8, 256\], got {size}"):
        registry.create("generator", "pixel", {"size": size}, device="cpu")
