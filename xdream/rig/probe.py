"""The content probe of ``xdream-rig/1`` (docs/protocol.md §4.5): the response a rig computes
from the pixels it was given, so that a checker can tell whether each record belongs to the
image whose id it carries.

For an image of ``L = H*W*C`` values ``x_i`` in row-major ``[H, W, C]`` order (uint8 pixels
divided by 255, float32 pixels as they are), channel ``k`` (the channel's position in the
rig's ``welcome``) reads ``(1/L) * sum_i x_i * (((i + 3k) mod 7) - 3)``, in double precision.
The weights take both signs and differ per channel, so two random images (or two channels)
give values far apart while any language computes the same number to ~1e-12.
"""

from __future__ import annotations

import numpy as np

TOLERANCE = 1e-6  # absolute: a double computation printed with >= 9 significant digits is well within


def probe_weights(length: int, channel: int) -> np.ndarray:
    """The read-out weights of ``channel`` for an image of ``length`` values."""
    return (((np.arange(length, dtype=np.int64) + 3 * channel) % 7) - 3).astype(np.float64)


def probe_values(image: np.ndarray, channels: int) -> list[float]:
    """The probe value of each of ``channels`` channels for one image ``[H, W, C]``."""
    x = np.ascontiguousarray(image).reshape(-1)
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    return [float(x @ probe_weights(x.size, k)) / x.size for k in range(channels)]


def matches(values, expected, tolerance: float = TOLERANCE) -> bool:
    """Whether a record's ``values`` (numbers or None) are ``expected`` within ``tolerance``."""
    return len(values) == len(expected) and all(
        v is not None and abs(float(v) - e) <= tolerance for v, e in zip(values, expected))
