"""Parametric stimulus families rendered as image batches ``[B, 3, S, S]`` float32 in [0, 1].

Every renderer takes one parameter array per property (one value per image, broadcast
together) and an image size ``S``. Geometry: pixel ``(i, j)`` sits at image coordinates
``x = (j - S//2) / S``, ``y = (i - S//2) / S`` (y downwards), so the centre pixel is the
origin, a spatial frequency ``f`` is in cycles per image, and phase 0 puts a bright bar (or a
spot's peak) on the centre pixel, where a centre unit looks. Orientation ``theta`` is the
direction of the wave vector: 0 deg gives vertical bars, 90 deg horizontal ones. Angles are
in degrees everywhere.
"""

from __future__ import annotations

import numpy as np
import torch


def _params(*values) -> list[np.ndarray]:
    """Parameters as float64 arrays broadcast to one common length ``[B]``."""
    arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values))
    return [a.reshape(-1) for a in arrays]


def coordinates(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates ``x, y`` of shape [S, S], origin at the centre pixel, 1 = image width."""
    axis = (np.arange(size) - size // 2) / size
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return x, y


def _to_batch(channels: np.ndarray) -> torch.Tensor:
    """float64 [B, 3, S, S] -> float32 tensor, clipped to [0, 1] against rounding only."""
    return torch.from_numpy(channels).float().clamp_(0.0, 1.0)


def _grey(luminance: np.ndarray) -> torch.Tensor:
    """float64 luminance [B, S, S] -> achromatic float32 images [B, 3, S, S]."""
    return _to_batch(luminance[:, None]).expand(-1, 3, -1, -1).contiguous()


def _full_field(rgb: np.ndarray, size: int) -> torch.Tensor:
    """Constant images of colours ``rgb`` [B, 3]."""
    return _to_batch(np.ascontiguousarray(rgb[:, :, None, None])).expand(-1, -1, size, size).contiguous()


def uniform(level, size: int) -> torch.Tensor:
    """Grey fields of luminance ``level`` in [0, 1] (0 black, 0.5 mid-grey, 1 white)."""
    (level,) = _params(level)
    return _full_field(np.repeat(level[:, None], 3, axis=1), size)


def hsl_to_rgb(hue, saturation, lightness) -> np.ndarray:
    """HSL (hue in degrees, saturation and lightness in [0, 1]) -> RGB [B, 3] in [0, 1]."""
    hue, saturation, lightness = _params(hue, saturation, lightness)
    chroma = (1 - np.abs(2 * lightness - 1)) * saturation
    h = (hue % 360) / 60
    second = chroma * (1 - np.abs(h % 2 - 1))
    sector = np.floor(h).astype(int) % 6
    zero = np.zeros_like(h)
    table = [  # (R, G, B) per 60-degree sector
        (chroma, second, zero), (second, chroma, zero), (zero, chroma, second),
        (zero, second, chroma), (second, zero, chroma), (chroma, zero, second),
    ]
    rgb = np.stack([np.choose(sector, [row[c] for row in table]) for c in range(3)], axis=1)
    return rgb + (lightness - chroma / 2)[:, None]


def hues(hue, size: int, saturation=1.0, lightness=0.5) -> torch.Tensor:
    """Full-field colours of the given HSL hues (De Valois' spectral sweep)."""
    return _full_field(hsl_to_rgb(hue, saturation, lightness), size)


def grating_profile(orientation, frequency, phase, contrast, size: int) -> np.ndarray:
    """Luminance ``0.5 + 0.5 * contrast * cos(2 pi f (x cos t + y sin t) + phase)``, [B, S, S].

    Computed separably, ``cos(u + v) = cos u cos v - sin u sin v`` with ``u`` along x
    (including the phase) and ``v`` along y, so a batch costs O(B S) cosines."""
    orientation, frequency, phase, contrast = _params(orientation, frequency, phase, contrast)
    axis = (np.arange(size) - size // 2) / size
    t = np.deg2rad(orientation)[:, None]
    u = 2 * np.pi * frequency[:, None] * np.cos(t) * axis + np.deg2rad(phase)[:, None]  # [B, S] along x
    v = 2 * np.pi * frequency[:, None] * np.sin(t) * axis  # [B, S] along y
    wave = np.cos(v)[:, :, None] * np.cos(u)[:, None, :] - np.sin(v)[:, :, None] * np.sin(u)[:, None, :]
    return 0.5 + 0.5 * contrast[:, None, None] * wave


def gratings(orientation, frequency, phase, size: int, contrast=1.0) -> torch.Tensor:
    """Achromatic sinusoidal gratings (the spatial sweep)."""
    return _grey(grating_profile(orientation, frequency, phase, contrast, size))


def red_green_gratings(orientation, frequency, phase, size: int, contrast=1.0) -> torch.Tensor:
    """Red/green gratings: red = the grating, green = its complement, blue = 0 (R + G = 1
    everywhere: equal in intensity, not equiluminant), as in Harris et al.'s code."""
    g = grating_profile(orientation, frequency, phase, contrast, size)
    return _to_batch(np.stack([g, 1 - g, np.zeros_like(g)], axis=1))


def gaussian_profile(sigma, size: int) -> np.ndarray:
    """``exp(-r^2 / (2 sigma^2))`` with sigma in image widths, [B, S, S] (peak 1 at the centre)."""
    (sigma,) = _params(sigma)
    x, y = coordinates(size)
    return np.exp(-(x**2 + y**2)[None] / (2 * sigma[:, None, None] ** 2))


def dog_profile(sigma, surround, size: int) -> np.ndarray:
    """Balanced difference of Gaussians with centre ``sigma`` and surround ``surround * sigma``
    (zero net area in 2-D), scaled to peak 1 at the centre; the surround dips below 0."""
    sigma, surround = _params(sigma, surround)
    k2 = (surround**2)[:, None, None]
    centre = gaussian_profile(sigma, size)
    outer = gaussian_profile(sigma * surround, size)
    return (centre - outer / k2) / (1 - 1 / k2)


def spots(profile: np.ndarray, polarity, contrast) -> torch.Tensor:
    """Achromatic spots on mid-grey: ``0.5 + 0.5 * polarity * contrast * profile`` (polarity
    +1 for a bright (ON) centre, -1 for a dark (OFF) one)."""
    polarity, contrast = _params(polarity, contrast)  # one value for all images broadcasts too
    return _grey(0.5 + 0.5 * (polarity * contrast)[:, None, None] * profile)


def gaussian_spots(sigma, size: int, polarity=1.0, contrast=1.0) -> torch.Tensor:
    """Gaussian spots of width ``sigma`` (image widths) at the centre."""
    sigma, polarity, contrast = _params(sigma, polarity, contrast)
    return spots(gaussian_profile(sigma, size), polarity, contrast)


def dog_spots(sigma, size: int, surround=3.0, polarity=1.0, contrast=1.0) -> torch.Tensor:
    """Difference-of-Gaussian spots: a centre with an opposite-sign surround ring."""
    sigma, surround, polarity, contrast = _params(sigma, surround, polarity, contrast)
    return spots(dog_profile(sigma, surround, size), polarity, contrast)
