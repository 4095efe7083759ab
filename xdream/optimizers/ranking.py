"""Shared ranking helpers for the evolution strategies: NaN ranks last, log-rank weights."""

from __future__ import annotations

import numpy as np


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Indices from best to worst (maximisation); NaN ranks below every finite score, and ties
    (NaNs among themselves included) keep index order, exactly as a score below all would."""
    s = np.where(np.isfinite(scores), scores, -np.inf)
    return np.argsort(-s, kind="stable")


def log_rank_weights(mu: int) -> np.ndarray:
    """CMA-ES recombination weights ``log(mu + 1/2) - log(i)``, i = 1..mu, summing to 1."""
    w = np.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
    return w / w.sum()
