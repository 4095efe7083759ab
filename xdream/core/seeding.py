"""One master seed per run; every random stream is a named child of it.

Children come from ``numpy.random.SeedSequence(seed).spawn`` in the fixed order of
:data:`STREAMS`; new streams are only ever appended, so existing ones never change.
"""

from __future__ import annotations

import numpy as np

STREAMS = ("optimizer", "noise", "reference", "responder", "inversion", "gradient", "order")


def derive_rngs(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}
