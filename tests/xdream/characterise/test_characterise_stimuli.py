"""Stimulus renderers: pixel-exact on small cases, any size, [B, 3, S, S] float32 in [0, 1]."""

import math

import numpy as np
import pytest
import torch

from xdream.characterise import stimuli

E = math.exp


def grey(values):
    """Expected achromatic image from a [S, S] list of luminances."""
    return np.repeat(np.asarray(values, dtype=np.float32)[None], 3, axis=0)


@pytest.mark.parametrize("orientation, phase, contrast, row", [
    (0, 0, 1.0, [0.0, 0.5, 1.0, 0.5]),      # centre pixel (index 2) is the bright bar
    (0, 90, 1.0, [0.5, 1.0, 0.5, 0.0]),
    (0, 180, 1.0, [1.0, 0.5, 0.0, 0.5]),
    (0, 0, 0.5, [0.25, 0.5, 0.75, 0.5]),
])
def test_vertical_grating_one_cycle_per_image(orientation, phase, contrast, row):
    image = stimuli.gratings(orientation, 1, phase, 4, contrast)
    np.testing.assert_allclose(image[0].numpy(), grey([row] * 4), atol=1e-7)


def test_horizontal_grating_and_two_cycles():
    image = stimuli.gratings(90, 1, 0, 4)[0, 0].numpy()
    np.testing.assert_allclose(image, np.array([[0.0, 0.5, 1.0, 0.5]]).T.repeat(4, 1), atol=1e-7)
    two = stimuli.gratings(0, 2, 0, 4)[0, 0, 0].numpy()  # period 2 px: 1, 0, 1, 0
    np.testing.assert_allclose(two, [1.0, 0.0, 1.0, 0.0], atol=1e-7)


def test_oblique_grating_matches_its_formula_and_frequency_zero_is_uniform():
    s = 9
    axis = (np.arange(s) - s // 2) / s
    y, x = np.meshgrid(axis, axis, indexing="ij")
    t = math.radians(30)
    expected = 0.5 + 0.5 * 0.8 * np.cos(2 * math.pi * 3 * (x * math.cos(t) + y * math.sin(t)) + math.radians(45))
    np.testing.assert_allclose(stimuli.gratings(30, 3, 45, s, 0.8)[0, 1].numpy(), expected, atol=1e-6)
    flat = stimuli.gratings(0, 0, 180, 5)
    assert torch.all(flat == 0)  # f = 0, phase 180: the black field


def test_red_green_grating_is_complementary_with_no_blue():
    image = stimuli.red_green_gratings(0, 1, 0, 4)[0].numpy()
    np.testing.assert_allclose(image[0, 0], [0.0, 0.5, 1.0, 0.5], atol=1e-7)
    np.testing.assert_allclose(image[1, 0], [1.0, 0.5, 0.0, 0.5], atol=1e-7)
    assert np.all(image[2] == 0)


@pytest.mark.parametrize("hue, saturation, lightness, rgb", [
    (0, 1, 0.5, (1, 0, 0)), (30, 1, 0.5, (1, 0.5, 0)), (60, 1, 0.5, (1, 1, 0)), (120, 1, 0.5, (0, 1, 0)),
    (180, 1, 0.5, (0, 1, 1)), (240, 1, 0.5, (0, 0, 1)), (300, 1, 0.5, (1, 0, 1)), (330, 1, 0.5, (1, 0, 0.5)),
    (360, 1, 0.5, (1, 0, 0)), (0, 1, 0.75, (1, 0.5, 0.5)), (200, 0, 0.3, (0.3, 0.3, 0.3)), (90, 0.5, 0.5, (0.5, 0.75, 0.25)),
])
def test_hsl_hues_full_field(hue, saturation, lightness, rgb):
    image = stimuli.hues(hue, 3, saturation, lightness)
    assert image.shape == (1, 3, 3, 3)
    np.testing.assert_allclose(image[0].numpy(), np.broadcast_to(np.array(rgb, np.float32)[:, None, None], (3, 3, 3)), atol=1e-7)


def test_uniform_fields():
    image = stimuli.uniform([0.0, 0.5, 1.0], 2)
    np.testing.assert_array_equal(image[:, :, 0, 0].numpy(), [[0, 0, 0], [0.5, 0.5, 0.5], [1, 1, 1]])
    assert torch.all(image == image[:, :, :1, :1])


def test_gaussian_spot_pixels():
    # 3 px, sigma 1/3 image width: edge pixels at r = 1/3 -> exp(-1/2), corners exp(-1)
    on = stimuli.gaussian_spots(1 / 3, 3)[0, 0].numpy()
    g = np.array([[E(-1), E(-0.5), E(-1)], [E(-0.5), 1, E(-0.5)], [E(-1), E(-0.5), E(-1)]])
    np.testing.assert_allclose(on, 0.5 + 0.5 * g, atol=1e-7)
    off = stimuli.gaussian_spots(1 / 3, 3, polarity=-1, contrast=0.5)[0, 0].numpy()
    np.testing.assert_allclose(off, 0.5 - 0.25 * g, atol=1e-7)


def test_dog_spot_pixels():
    # centre sigma 1/3, surround 2x: profile = (g_c - g_s / 4) / (1 - 1/4), peak 1
    dog = stimuli.dog_spots(1 / 3, 3, surround=2.0)[0, 0].numpy()
    edge = (E(-0.5) - E(-0.125) / 4) / 0.75
    corner = (E(-1) - E(-0.25) / 4) / 0.75
    expected = 0.5 + 0.5 * np.array([[corner, edge, corner], [edge, 1.0, edge], [corner, edge, corner]])
    np.testing.assert_allclose(dog, expected, atol=1e-7)
    wide = stimuli.dog_profile(0.05, 3.0, 64)[0]
    assert wide.min() < 0 and abs(wide.sum()) < 0.02 * np.abs(wide).sum()  # surround balances centre


@pytest.mark.parametrize("size", [1, 2, 7, 32, 65])
def test_any_size_batched_float32_in_range(size):
    images = [
        stimuli.gratings([0, 45, 90], [1, 5, 15], [0, 30, 60], size),
        stimuli.red_green_gratings(10, [0, 3], 0, size),
        stimuli.hues(np.arange(0, 360, 40), size),
        stimuli.uniform([0, 1], size),
        stimuli.gaussian_spots([0.05, 0.2], size, polarity=[1, -1]),
        stimuli.dog_spots(0.1, size, 3.0, [1, -1]),
    ]
    for batch, n in zip(images, (3, 2, 9, 2, 2, 2)):
        assert batch.shape == (n, 3, size, size) and batch.dtype == torch.float32
        assert batch.min() >= 0 and batch.max() <= 1


def test_grating_repeats_every_period():
    image = stimuli.gratings(0, 4, 17, 32)[0, 0]
    assert torch.allclose(image[:, :8], image[:, 8:16], atol=1e-6)
