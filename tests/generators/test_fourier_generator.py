"""Fourier generator and the Lucid conventions in xdream.gradient.lucid, pinned to published values
and to an independent numpy re-implementation of Lucid's fft_image + to_valid_rgb."""

import numpy as np
import pytest
import torch

from generators.fourier import FourierGenerator, code_scale
from xdream.gradient import lucid
from xdream.core import registry
from xdream.core.errors import ConfigError

C = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def test_color_matrix_constants():
    norms = np.linalg.norm(C, axis=0)
    assert round(norms.max(), 5) == 0.46195
    c_norm = lucid.color_decorrelation_matrix()
    np.testing.assert_allclose(c_norm, C / 0.46195, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(c_norm, axis=0).max(), 1.0)
    assert lucid.COLOR_MEAN == (0.48, 0.46, 0.41)


def test_decorrelate_colors_is_t_times_c_norm_transposed():
    t = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    c_norm = torch.from_numpy(lucid.color_decorrelation_matrix())
    expected = (t.permute(0, 2, 3, 1) @ c_norm.T).permute(0, 3, 1, 2)
    torch.testing.assert_close(lucid.decorrelate_colors(t), expected)


def test_rfft2d_freqs_even_and_odd():
    f = lucid.rfft2d_freqs(6, 8)
    assert f.shape == (6, 5)
    np.testing.assert_allclose(f[0], np.fft.fftfreq(8)[:5].__abs__())
    np.testing.assert_allclose(f[:, 0], np.abs(np.fft.fftfreq(6)))
    odd = lucid.rfft2d_freqs(4, 9)  # one extra column, cropped after the inverse FFT
    assert odd.shape == (4, 6)
    np.testing.assert_allclose(odd[0, -1], 4 / 9)


def test_spectrum_scale_values():
    s = lucid.spectrum_scale(128, 128)
    assert s.shape == (128, 65)
    assert s[0, 0] == pytest.approx(128 * 128)  # DC: 1 / (1/128) * sqrt(128 * 128)
    assert s[0, 1] == pytest.approx(128 * 128)  # lowest frequency equals the floor 1/128
    assert s[3, 4] == pytest.approx(128 / 5 * 128)  # f = 5/128
    assert s[-3, 4] == pytest.approx(128 / 5 * 128)  # negative row frequency
    assert lucid.spectrum_scale(128, 128, 2.0)[3, 4] == pytest.approx((128 / 5) ** 2 * 128)
    rect = lucid.spectrum_scale(64, 32)
    assert rect.shape == (64, 17) and rect[0, 0] == pytest.approx(64 * np.sqrt(64 * 32))


def test_irfft_image_equals_ortho_norm_without_sqrt_wh():
    h = w = 16
    parts = torch.randn(2, 3, h, w // 2 + 1, dtype=torch.float64)
    spec = torch.complex(parts[0], parts[1])
    scale = torch.from_numpy(lucid.spectrum_scale(h, w))
    ortho = torch.fft.irfft2(spec * scale / np.sqrt(h * w), norm="ortho") / 4
    torch.testing.assert_close(lucid.irfft_image(spec * scale, h, w), ortho)


def test_to_valid_rgb_zero_is_mid_grey():
    assert torch.equal(lucid.to_valid_rgb(torch.zeros(1, 3, 2, 2)), torch.full((1, 3, 2, 2), 0.5))


def lucid_reference(codes, size, k, decay_power, scale):
    """Lucid's pipeline in numpy, channel-last as Lucid writes it."""
    rows = list(range(k + 1)) + list(range(size - k, size))
    freqs = lucid.rfft2d_freqs(size, size)
    out = []
    for z in codes.reshape(len(codes), 2, 3, 2 * k + 1, k + 1).astype(np.float64) * scale:
        spectrum = np.zeros((3, *freqs.shape), complex)
        spectrum[:, rows, : k + 1] = z[0] + 1j * z[1]
        s = 1.0 / np.maximum(freqs, 1.0 / size) ** decay_power * np.sqrt(size * size)
        image = np.fft.irfft2(s * spectrum)[:, :size, :size] / 4.0  # [3, h, w]
        t = image.transpose(1, 2, 0)  # Lucid: [h, w, 3]
        rgb = t.reshape(-1, 3) @ (C / np.linalg.norm(C, axis=0).max()).T
        out.append((1 / (1 + np.exp(-rgb))).reshape(size, size, 3).transpose(2, 0, 1))
    return np.stack(out)


@pytest.mark.parametrize("size,k,decay", [(128, 8, 1.0), (9, 4, 1.0), (16, 3, 2.0), (21, 6, 0.5)])
def test_decode_matches_numpy_lucid(size, k, decay):
    gen = FourierGenerator(size=size, max_frequency=k, decay_power=decay)
    codes = gen.sample(3, np.random.default_rng(0))
    expected = lucid_reference(codes, size, k, decay, gen.code_scale)
    np.testing.assert_allclose(gen.decode(codes).numpy(), expected, atol=2e-6)


@pytest.mark.parametrize("size,k", [(128, 8), (64, 1), (9, 4), (32, 15)])
def test_latent_dim_formula(size, k):
    gen = FourierGenerator(size=size, max_frequency=k)
    assert gen.latent_shape == (2, 3, 2 * k + 1, k + 1)
    assert gen.latent_dim == 3 * 2 * (2 * k + 1) * (k + 1)
    assert FourierGenerator().latent_dim == 918


def test_zero_code_is_exactly_mid_grey():
    gen = FourierGenerator()
    assert torch.equal(gen.decode(np.zeros((2, gen.latent_dim), np.float32)), torch.full((2, 3, 128, 128), 0.5))


@pytest.mark.parametrize("size,k,decay", [(64, 8, 1.0), (9, 4, 1.0), (16, 7, 2.0), (33, 5, 0.0)])
def test_code_scale_gives_unit_rms_before_sigmoid(size, k, decay):
    """Sum over basis codes of the mean squared pre-sigmoid pixel = E over N(0, 1) codes."""
    gen = FourierGenerator(size=size, max_frequency=k, decay_power=decay)
    pre = torch.logit(gen.decode(torch.eye(gen.latent_dim)).double())
    assert (pre**2).sum(dim=0).mean().item() == pytest.approx(1.0, rel=1e-4)
    assert gen.code_scale == code_scale(size, k, decay)


def test_normal_codes_give_visible_contrast():
    gen = FourierGenerator()
    images = gen.decode(gen.sample(32, np.random.default_rng(0)))
    std = images.flatten(1).std(dim=1)
    assert 0.12 < std.mean().item() < 0.3
    assert images.mean().item() == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize(
    "options,needle",
    [
        ({"size": 7}, "[8, 1024]"),
        ({"size": 5000}, "5000"),
        ({"max_frequency": 0}, "[1, 63]"),
        ({"max_frequency": 64}, "64"),
        ({"size": 16, "max_frequency": 8}, "[1, 7] for size 16"),
        ({"decay_power": -1.0}, "-1.0"),
    ],
)
def test_bad_options_are_config_errors(options, needle):
    with pytest.raises(ConfigError) as info:
        registry.create("generator", "fourier", options, device="cpu")
    assert needle in str(info.value) and "\n" not in str(info.value)
