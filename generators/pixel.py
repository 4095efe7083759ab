"""Raw pixels: the code is the image itself, up to a sigmoid. No prior at all, so it is the
baseline a generator's image prior is measured against.

Why a sigmoid: it maps any real code to a valid RGB value in (0, 1) without clipping, so the
optimiser's Gaussian search space needs no bounds, the map is differentiable everywhere with
non-zero gradient (a hard clip would stop gradients at the edges), and a zero code is exactly
mid-grey; N(0, 1) codes give pixel noise around 0.5. It is the same squashing Lucid uses.
"""

from __future__ import annotations

import torch

from xdream.core.errors import ConfigError
from xdream.core.generator import Generator

SIZE_RANGE = (8, 256)


class PixelGenerator(Generator):
    """``image = sigmoid(code)``; latent ``(3, size, size)``."""

    name = "pixel"

    def __init__(self, *, size: int = 32, device: str = "cpu"):
        super().__init__(device=device)
        lo, hi = SIZE_RANGE
        if not lo <= size <= hi:
            raise ConfigError(f"pixel size must be in [{lo}, {hi}], got {size}")
        self.image_size = size
        self.latent_shape = (3, size, size)

    def decode_tensor(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, 3*size*size]`` -> ``sigmoid`` -> ``[B, 3, size, size]``."""
        return torch.sigmoid(codes.reshape(len(codes), *self.latent_shape))
