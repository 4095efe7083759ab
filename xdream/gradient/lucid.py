"""Lucid's image-parameterisation conventions (Olah et al., Distill 2017), in torch.

Pure functions shared by the Fourier generator plugin and gradient-ascent feature
visualisation, so both use the same constants:

- decorrelated 1/f Fourier images: a real-FFT spectrum scaled by ``1 / max(f, 1/max(w, h))
  ** decay_power * sqrt(w * h)``, inverted with ``irfft2``, cropped to ``h x w`` and divided
  by 4;
- colour decorrelation with the square root of ImageNet's colour correlation, normalised by
  its largest column norm (0.46195);
- valid RGB by a sigmoid (no colour mean added, as in Lucid's ``to_valid_rgb``).

Images are channel-first ``[..., 3, H, W]`` (Lucid itself is channel-last).
"""

from __future__ import annotations

import numpy as np
import torch

#: Lucid's ``color_correlation_svd_sqrt`` (rows: R, G, B output; columns: decorrelated input).
COLOR_CORRELATION_SVD_SQRT = (
    (0.26, 0.09, 0.02),
    (0.27, 0.00, -0.05),
    (0.27, -0.09, 0.03),
)
#: ImageNet colour mean Lucid adds when it does not squash with a sigmoid.
COLOR_MEAN = (0.48, 0.46, 0.41)


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """Spatial frequency magnitude (cycles per pixel) of each ``rfft2`` entry, ``[h, w//2+1]``
    (``[h, w//2+2]`` for odd ``w``: Lucid takes one extra column and crops the image later)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[: w // 2 + (2 if w % 2 else 1)]
    return np.sqrt(fx * fx + fy * fy)


def spectrum_scale(h: int, w: int, decay_power: float = 1.0) -> np.ndarray:
    """Per-entry spectrum scale ``1 / max(f, 1/max(w, h)) ** decay_power * sqrt(w * h)``:
    equal energy per octave (1/f) and a unit-order image for unit-order coefficients."""
    freqs = rfft2d_freqs(h, w)
    return 1.0 / np.maximum(freqs, 1.0 / max(w, h)) ** decay_power * np.sqrt(w * h)


def irfft_image(scaled_spectrum: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Image ``[..., h, w]`` from an already scaled complex spectrum ``[..., h, wf]``:
    ``irfft2(...)[..., :h, :w] / 4`` (backward norm, as ``tf.spectral.irfft2d``)."""
    return torch.fft.irfft2(scaled_spectrum)[..., :h, :w] / 4.0


def color_decorrelation_matrix() -> np.ndarray:
    """Lucid's colour matrix divided by its largest column L2 norm (0.46195), float64 [3, 3]."""
    c = np.array(COLOR_CORRELATION_SVD_SQRT, dtype=np.float64)
    return c / np.linalg.norm(c, axis=0).max()


def decorrelate_colors(t: torch.Tensor) -> torch.Tensor:
    """Map decorrelated colour channels to RGB: ``rgb = t @ C_norm.T`` over axis -3."""
    c = torch.as_tensor(color_decorrelation_matrix(), dtype=t.dtype, device=t.device)
    return torch.einsum("dc,...chw->...dhw", c, t)


def to_valid_rgb(t: torch.Tensor, decorrelate: bool = True) -> torch.Tensor:
    """Lucid's ``to_valid_rgb`` with ``sigmoid=True``: ``sigmoid(decorrelate(t))`` in (0, 1);
    a zero ``t`` is exactly mid-grey, and gradients never vanish at a hard clip."""
    if decorrelate:
        t = decorrelate_colors(t)
    return torch.sigmoid(t)
