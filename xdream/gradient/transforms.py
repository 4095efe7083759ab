"""Random image transforms applied before each gradient step (transformation robustness).

Each transform is a small frozen dataclass called as ``t(images, rng)`` with images
``[B, 3, H, W]`` and a ``numpy.random.Generator``: every random choice comes from that
generator, one choice per call shared by the whole batch, as in Lucid. All are
differentiable. :func:`standard_transforms` is Lucid's ``transform.standard_transforms``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

#: Lucid's standard random scales: 0.90, 0.92, ..., 1.10.
STANDARD_SCALES = tuple(1 + (i - 5) / 50.0 for i in range(11))
#: Lucid's standard rotation angles in degrees: -10..10, with 0 five extra times.
STANDARD_ANGLES = tuple(range(-10, 11)) + 5 * (0,)


@dataclass(frozen=True)
class Pad:
    """Pad ``width`` pixels on every side with ``value`` (Lucid: constant 0.5)."""

    width: int
    value: float = 0.5

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return F.pad(images, (self.width,) * 4, mode="constant", value=self.value)


@dataclass(frozen=True)
class Jitter:
    """Crop ``H-d x W-d`` at a random offset in ``0..d`` on each axis (Lucid's random_crop)."""

    d: int

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        h, w = images.shape[-2:]
        dy, dx = (int(v) for v in rng.integers(0, self.d + 1, size=2))
        return images[..., dy : dy + h - self.d, dx : dx + w - self.d]


@dataclass(frozen=True)
class RandomScale:
    """Resize (bilinear) by a factor drawn uniformly from ``scales``."""

    scales: tuple[float, ...]

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        s = float(self.scales[rng.integers(len(self.scales))])
        h, w = images.shape[-2:]
        size = (max(1, int(s * h)), max(1, int(s * w)))
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class RandomRotate:
    """Rotate about the centre by an angle (degrees) drawn uniformly from ``angles``;
    bilinear, zeros outside (Lucid's tf rotate also fills zeros)."""

    angles: tuple[float, ...]

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        a = math.radians(float(self.angles[rng.integers(len(self.angles))]))
        theta = images.new_tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])
        grid = F.affine_grid(theta.expand(len(images), 2, 3), list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class Compose:
    """Apply transforms in order."""

    transforms: tuple

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        for t in self.transforms:
            images = t(images, rng)
        return images


def standard_transforms() -> Compose:
    """Lucid's standard set: pad 12 (0.5), jitter 8, scale 0.90..1.10, rotate -10..10, jitter 4."""
    return Compose((Pad(12, 0.5), Jitter(8), RandomScale(STANDARD_SCALES), RandomRotate(STANDARD_ANGLES), Jitter(4)))


def no_transforms() -> Compose:
    return Compose(())
