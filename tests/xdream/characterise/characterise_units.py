"""Hand-built units with known answers, as real nn.Modules read through TorchUnit."""

import math

import numpy as np
import torch
from torch import nn

from responders.torch_unit import TorchUnit

SIZE = 32  # stimulus and input size: no resizing between them


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    axis = torch.arange(size, dtype=torch.float64) - size // 2
    r2 = axis[:, None] ** 2 + axis[None, :] ** 2
    return torch.exp(-r2 / (2 * sigma**2))


def dog_kernel(size: int, sigma_c: float, sigma_s: float) -> torch.Tensor:
    """A balanced centre-surround kernel (sums to 0 exactly up to rounding)."""
    c = gaussian_window(size, sigma_c)
    s = gaussian_window(size, sigma_s)
    k = c / c.sum() - s / s.sum()
    return k - k.mean()


class LinearUnit(nn.Module):
    """``bias + sum_c weights[c] * image_c`` over the whole image, as a 1x1 map in layer 'out'.
    With ``relu`` the output is rectified (a dead unit: negative bias, zero weights)."""

    def __init__(self, weights: torch.Tensor, bias: float, relu: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, weights.shape[-1], bias=True).double()
        with torch.no_grad():
            self.conv.weight.copy_(weights[None])
            self.conv.bias.fill_(bias)
        self.out = nn.ReLU() if relu else nn.Identity()

    def forward(self, x):
        return self.out(self.conv(x.double()).float())


def as_unit(module: nn.Module, name: str) -> TorchUnit:
    """Identity preprocessing (mean 0, std 1) so the unit sees the stimulus pixels themselves."""
    return TorchUnit.from_module(module, "out", 0, input_size=SIZE, mean=(0, 0, 0), std=(1, 1, 1), batch_size=512, name=name)


def red_minus_green(bias=20.0, gain=20.0) -> TorchUnit:
    w = gaussian_window(SIZE, 4.0)
    w = w / w.sum() * gain
    return as_unit(LinearUnit(torch.stack([w, -w, torch.zeros_like(w)]), bias), "red-green")


def luminance(bias=5.0, gain=20.0) -> TorchUnit:
    w = gaussian_window(SIZE, 4.0)
    w = w / w.sum() * gain / 3
    return as_unit(LinearUnit(torch.stack([w, w, w]), bias), "luminance")


def dead() -> TorchUnit:
    return as_unit(LinearUnit(torch.zeros(3, SIZE, SIZE, dtype=torch.float64), -1.0, relu=True), "dead")


DOG_SIGMAS = (1.0, 3.0)  # pixels


def centre_surround(bias=20.0, gain=40.0) -> TorchUnit:
    k = dog_kernel(SIZE, *DOG_SIGMAS) * gain / 3
    return as_unit(LinearUnit(torch.stack([k, k, k]), bias), "dog")


def double_opponent(bias=20.0, gain=20.0) -> TorchUnit:
    """A red-minus-green centre plus a luminance centre-surround: opponent in both sweeps."""
    w = gaussian_window(SIZE, 4.0)
    w = w / w.sum() * gain
    k = dog_kernel(SIZE, *DOG_SIGMAS) * 2 * gain / 3
    return as_unit(LinearUnit(torch.stack([w + k, -w + k, k]), bias), "double")


def dog_peak_frequency(size: int = SIZE, sigmas=DOG_SIGMAS) -> float:
    """Where theory puts a balanced DoG's peak, in cycles per image: the maximum of
    exp(-2 pi^2 sc^2 f^2) - exp(-2 pi^2 ss^2 f^2) (f in cycles per pixel)."""
    sc, ss = sigmas
    f = math.sqrt(math.log(ss**2 / sc**2) / (2 * math.pi**2 * (ss**2 - sc**2)))
    return f * size


def dog_gain(freq_per_image: np.ndarray, size: int = SIZE, sigmas=DOG_SIGMAS) -> np.ndarray:
    f = np.asarray(freq_per_image) / size
    sc, ss = sigmas
    return np.exp(-2 * math.pi**2 * sc**2 * f**2) - np.exp(-2 * math.pi**2 * ss**2 * f**2)
