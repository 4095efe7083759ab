"""Lucid's conventions as used by gradient ascent: parameterisations, valid RGB, transforms."""

import numpy as np
import pytest
import torch

from xdream.gradient import lucid
from xdream.core.errors import ConfigError
from xdream.gradient import ImageParam, standard_transforms
from xdream.gradient.param import LUCID_SD
from xdream.gradient.transforms import Compose, Jitter, Pad, RandomRotate, RandomScale

C = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def numpy_lucid_image(spectrum: np.ndarray, h: int, w: int) -> np.ndarray:
    """Independent numpy version of Lucid's fft_image + to_valid_rgb, channel-last then back."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[: w // 2 + 1]
    scale = 1.0 / np.maximum(np.sqrt(fx**2 + fy**2), 1.0 / max(w, h)) * np.sqrt(w * h)
    img = np.fft.irfft2((spectrum[0] + 1j * spectrum[1]) * scale, s=(h, w))[..., :h, :w] / 4
    rgb = np.einsum("bchw,dc->bdhw", img, C / np.linalg.norm(C, axis=0).max())
    return 1 / (1 + np.exp(-rgb))


def test_decorrelation_matrix_and_colour_mean():
    np.testing.assert_allclose(lucid.color_decorrelation_matrix(), C / 0.46195, atol=2e-5)
    assert np.linalg.norm(C, axis=0).max() == pytest.approx(0.46195, abs=1e-5)
    assert lucid.COLOR_MEAN == (0.48, 0.46, 0.41)


def test_fourier_param_matches_numpy_lucid():
    p = ImageParam(32, batch=2, fft=True, decorrelate=True, generator=torch.Generator().manual_seed(1))
    assert tuple(p.tensor.shape) == (2, 2, 3, 32, 17)  # real/imag, batch, channel, rfft2 grid
    with torch.no_grad():
        p.tensor.normal_(0, 1, generator=torch.Generator().manual_seed(2))
        ours = p().double().numpy()
    np.testing.assert_allclose(ours, numpy_lucid_image(p.tensor.detach().double().numpy(), 32, 32), atol=1e-5)


def test_fft_spectrum_scale_pinned():
    s = lucid.spectrum_scale(128, 128)
    assert s[0, 0] == pytest.approx(128 * 128) and s[0, 1] == pytest.approx(128 * 128)
    assert s[3, 4] == pytest.approx(128 / 5 * 128)  # 1/f with f = 5/128, times sqrt(w h)
    assert s[64, 64] == pytest.approx(1 / np.sqrt(0.5**2 + 0.5**2) * 128)


@pytest.mark.parametrize("fft", [True, False], ids=["fourier", "pixel"])
def test_init_sd_and_zero_is_mid_grey(fft):
    p = ImageParam(64, batch=3, fft=fft, generator=torch.Generator().manual_seed(0))
    assert float(p.tensor.detach().std()) == pytest.approx(LUCID_SD, rel=0.05)
    with torch.no_grad():
        p.tensor.zero_()
    assert torch.equal(p(), torch.full((3, 3, 64, 64), 0.5))


def test_sigmoid_valid_rgb_in_open_unit_interval_with_gradient():
    t = torch.tensor([[-8.0, 0.0, 8.0]]).view(1, 3, 1, 1).repeat(1, 1, 2, 2).requires_grad_(True)
    rgb = lucid.to_valid_rgb(t, decorrelate=False)
    assert float(rgb.detach().min()) > 0 and float(rgb.detach().max()) < 1
    torch.testing.assert_close(rgb, torch.sigmoid(t))
    rgb.sum().backward()
    assert bool((t.grad > 0).all())  # no dead gradient where a clip would have one


def test_unknown_parameterisation_is_one_line():
    with pytest.raises(ConfigError, match="unknown parameterisation 'cppn'; valid: fourier, pixel"):
        ImageParam.named("cppn")


def test_standard_transform_values():
    assert standard_transforms() == Compose((
        Pad(12, 0.5),
        Jitter(8),
        RandomScale((0.90, 0.92, 0.94, 0.96, 0.98, 1.00, 1.02, 1.04, 1.06, 1.08, 1.10)),
        RandomRotate((-10, -9, -8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0, 0, 0, 0)),
        Jitter(4),
    ))
    np.testing.assert_allclose(standard_transforms().transforms[2].scales, np.arange(0.90, 1.105, 0.02))


def test_standard_transform_output_sizes():
    rng = np.random.default_rng(0)
    sizes = {standard_transforms()(torch.rand(1, 3, 128, 128), rng).shape[-1] for _ in range(60)}
    allowed = {int(144 * s) - 4 for s in np.arange(0.90, 1.105, 0.02)}  # 128 + 24 pad - 8 jitter
    assert sizes <= allowed and len(sizes) > 3


def test_pad_and_jitter_offsets_cover_zero_to_d():
    x = torch.arange(20.0).view(1, 1, 1, 20).expand(1, 3, 20, 20)
    assert float(Pad(2)(x, None)[0, 0, 0, 0]) == 0.5
    rng = np.random.default_rng(1)
    offsets = {int(Jitter(3)(x, rng)[0, 0, 0, 0]) for _ in range(200)}
    assert offsets == {0, 1, 2, 3}


def test_rotate_positive_angle_is_counterclockwise_as_tf_and_zero_is_identity():
    x = torch.rand(1, 3, 9, 9)
    torch.testing.assert_close(RandomRotate((0,))(x, np.random.default_rng(0)), x)
    rotated = RandomRotate((90,))(x, np.random.default_rng(0))
    torch.testing.assert_close(rotated, torch.rot90(x, k=1, dims=(-2, -1)), atol=1e-5, rtol=0)
