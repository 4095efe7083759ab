"""One master seed per run; every random stream is a named child of it.

Children come from ``numpy.random.SeedSequence(seed).spawn`` in the fixed order of
:data:`STREAMS`; new streams are only ever appended, so existing ones never change.
"""

from __future__ import annotations

import numpy as np

from xdream.core.errors import ConfigError

STREAMS = ("optimizer", "noise", "reference", "responder", "inversion", "gradient", "order")


def check_seed(seed, what: str = "seed") -> int:
    """``seed`` when it is an integer >= 0 (all that ``SeedSequence`` takes), else a one-line ConfigError."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"{what} must be an integer >= 0, got {seed!r}")
    return seed


def derive_rngs(seed: int) -> dict[str, np.random.Generator]:
    check_seed(seed)
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}
