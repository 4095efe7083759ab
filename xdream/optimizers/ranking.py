"""Shared ranking helpers for the evolution strategies: NaN ranks last, log-rank weights."""

from __future__ import annotations

import numpy as np


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Indices from best to worst (maximisation); NaN ranks below every finite score, and ties
    (NaNs among themselves included) keep index order, exactly as a score below all would."""
    s = np.where(np.isfinite(scores), scores, -np.inf)
    return np.argsort(-s, kind="stable")


def log_rank_weights(mu: int, population: int | None = None) -> np.ndarray:
    """CMA-ES recombination weights ``log((population + 1) / 2) - log(i)``, i = 1..mu, summing to 1
    (Hansen's tutorial, eq. 49, and pycma; Wang & Ponce's ``log(lambda / 2 + 1/2)``): for an odd
    population that is not ``log(mu + 1/2)``. Without ``population``: ``log(mu + 1/2) - log(i)``
    (the same for ``population = 2 mu``; the weights of sphere-cma's ``select`` best)."""
    top = mu + 0.5 if population is None else (population + 1) / 2
    w = np.log(top) - np.log(np.arange(1, mu + 1))
    return w / w.sum()
