"""``example-gabor``: a model V1 simple cell, the dot product of the image's luminance with a
Gabor filter (Jones & Palmer 1987, J Neurophysiol 58:1233) centred on the image.

The filter is built for whatever image size arrives, in units of the image width, so the cell
sees the same stimulus at any resolution. Deterministic: no RNG, no weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from xdream.core.errors import ConfigError
from xdream.core.responder import Responder


class GaborCell(Responder):
    """A simple cell. Options: ``orientation`` (degrees), ``wavelength`` and ``sigma`` (of the
    Gaussian envelope), both as fractions of the image width, ``phase`` (degrees)."""

    name = "example-gabor"

    def __init__(self, orientation: float = 45.0, wavelength: float = 0.25, sigma: float = 0.15,
                 phase: float = 0.0, device: str = "cpu"):
        for option, value in (("wavelength", wavelength), ("sigma", sigma)):
            if not 0 < value <= 2:
                raise ConfigError(f"example-gabor option {option!r} must be in (0, 2] image widths, got {value}")
        self.orientation, self.wavelength, self.sigma, self.phase = orientation, wavelength, sigma, phase

    @classmethod
    def example(cls, workdir: Path, seed: int = 0) -> "GaborCell":
        """The default cell (deterministic, so ``seed`` is not needed)."""
        return cls()

    def kernel(self, height: int, width: int) -> torch.Tensor:
        """The filter ``[H, W]``, zero mean, unit L2 norm."""
        y = (torch.arange(height, dtype=torch.float64) - (height - 1) / 2) / width
        x = (torch.arange(width, dtype=torch.float64) - (width - 1) / 2) / width
        yy, xx = torch.meshgrid(y, x, indexing="ij")
        theta = math.radians(self.orientation)
        along = xx * math.cos(theta) + yy * math.sin(theta)
        envelope = torch.exp(-(xx**2 + yy**2) / (2 * self.sigma**2))
        kernel = envelope * torch.cos(2 * math.pi * along / self.wavelength + math.radians(self.phase))
        kernel = kernel - kernel.mean()
        return kernel / kernel.norm()

    def respond(self, images: torch.Tensor) -> np.ndarray:
        luminance = torch.as_tensor(images).detach().to("cpu", torch.float64).mean(dim=1)  # [B, H, W]
        kernel = self.kernel(*luminance.shape[1:])
        return (luminance * kernel).sum(dim=(1, 2)).numpy()

    def unit_labels(self) -> list[str]:
        return [f"{self.name}:{self.orientation:g}deg"]
