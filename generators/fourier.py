"""A weight-free generator: Lucid's decorrelated 1/f Fourier image, low frequencies only.

The latent holds the real and imaginary parts of the spectrum entries with at most
``max_frequency`` cycles per image along each axis (rows ``0..k`` and ``h-k..h-1``, columns
``0..k`` of the ``rfft2`` grid), for each of the 3 decorrelated colour channels; every other
entry is zero. Decoding follows Lucid exactly (see :mod:`xdream.gradient.lucid`): scale by the 1/f
``spectrum_scale``, ``irfft2``, crop, divide by 4, decorrelate colours, sigmoid. A few latent
coordinates are inert or redundant by construction (the imaginary part of the DC entry, the
Hermitian pairs of column 0), as in Lucid's own parameterisation.

Latent scaling: a code ``z`` sets the spectrum coefficients to ``code_scale * z``, where
``code_scale`` is computed exactly (by Parseval) so that N(0, 1) codes give a pre-sigmoid
RGB image with root-mean-square ``PRE_SIGMOID_RMS`` whatever the size, ``max_frequency`` and
``decay_power``. With the defaults the images have a pixel std of about 0.2 around mid-grey:
smooth coloured blobs with clearly visible contrast, not saturated. A zero code is mid-grey.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from xdream.core.errors import ConfigError
from xdream.core.generator import Generator
from xdream.gradient.lucid import color_decorrelation_matrix, irfft_image, spectrum_scale, to_valid_rgb

#: Target RMS of the pre-sigmoid RGB image for N(0, 1) codes (sigmoid slope stays high).
PRE_SIGMOID_RMS = 1.0
SIZE_RANGE = (8, 1024)
DECAY_RANGE = (0.0, 4.0)


def latent_entries(max_frequency: int) -> tuple[int, int]:
    """(rows, columns) of the kept spectrum block: ``(2k + 1, k + 1)``."""
    return 2 * max_frequency + 1, max_frequency + 1


def code_scale(size: int, max_frequency: int, decay_power: float) -> float:
    """Coefficient per unit code so N(0, 1) codes give pre-sigmoid RMS ``PRE_SIGMOID_RMS``.

    Per pixel, an entry ``s * (a + ib)`` in column ``j > 0`` contributes ``E = 4 s^2 / (h W)^2``
    and in column 0 ``s^2 / (h W)^2`` (``W`` the irfft width), all divided by 16 (the ``/ 4``);
    colour decorrelation multiplies the channel mean by ``||C_norm||_F^2 / 3``.
    """
    k = max_frequency
    rows, cols = latent_entries(k)
    scale = spectrum_scale(size, size, decay_power)
    irfft_width = 2 * (scale.shape[1] - 1)
    kept = np.concatenate([scale[: k + 1, :cols], scale[size - k :, :cols]], axis=0)
    weight = np.where(np.arange(cols) > 0, 4.0, 1.0)
    per_channel = (kept**2 * weight).sum() / (size * irfft_width) ** 2 / 16.0
    colour = (color_decorrelation_matrix() ** 2).sum() / 3.0
    return PRE_SIGMOID_RMS / math.sqrt(per_channel * colour)


class FourierGenerator(Generator):
    """Low-frequency Lucid Fourier images; latent ``(2, 3, 2k+1, k+1)`` = (real/imag,
    channel, frequency row, frequency column)."""

    name = "fourier"

    def __init__(
        self,
        *,
        size: int = 128,
        max_frequency: int = 8,
        decay_power: float = 1.0,
        device: str = "cpu",
    ):
        super().__init__(device=device)
        lo, hi = SIZE_RANGE
        if not lo <= size <= hi:
            raise ConfigError(f"fourier size must be in [{lo}, {hi}], got {size}")
        k_max = (size - 1) // 2
        if not 1 <= max_frequency <= k_max:
            raise ConfigError(
                f"fourier max_frequency must be in [1, {k_max}] for size {size}, got {max_frequency}"
            )
        lo, hi = DECAY_RANGE
        if not lo <= decay_power <= hi:
            raise ConfigError(f"fourier decay_power must be in [{lo}, {hi}], got {decay_power}")
        self.image_size = size
        self.max_frequency = max_frequency
        self.decay_power = float(decay_power)
        rows, cols = latent_entries(max_frequency)
        self.latent_shape = (2, 3, rows, cols)
        self.code_scale = code_scale(size, max_frequency, decay_power)
        self._scale = torch.as_tensor(
            spectrum_scale(size, size, decay_power), dtype=torch.float32, device=self.device
        )

    def decode_tensor(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, d]`` -> place them in a zero spectrum -> Lucid image -> sigmoid RGB."""
        k, h = self.max_frequency, self.image_size
        coeffs = codes.reshape(len(codes), *self.latent_shape) * self.code_scale
        gap = coeffs.new_zeros(*coeffs.shape[:-2], h - coeffs.shape[-2], coeffs.shape[-1])
        full = torch.cat([coeffs[..., : k + 1, :], gap, coeffs[..., k + 1 :, :]], dim=-2)
        full = F.pad(full, (0, self._scale.shape[-1] - full.shape[-1])) * self._scale
        spectrum = torch.complex(full[:, 0], full[:, 1])
        return to_valid_rgb(irfft_image(spectrum, h, h))
