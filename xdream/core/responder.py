"""The Responder interface: images in, one score per image out.

A responder is anything that turns images into responses: a unit of a local CNN, or a neuron
recorded on a rig. The experiment loop cannot tell them apart. ``NaN`` means no valid response
(an aborted trial, a lost message); optimisers have an explicit policy for it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch


class Responder(ABC):
    """Base class for responders; subclasses implement :meth:`respond`."""

    name: str = "responder"

    @abstractmethod
    def respond(self, images: torch.Tensor) -> np.ndarray:
        """Scores float64 ``[B]`` for images ``[B, 3, H, W]`` in [0, 1]."""

    def prepare(self, run_dir: Path, generation: int, image_ids: list[str] | None = None) -> None:
        """Called by the experiment before each :meth:`respond` of a generation: the run
        directory (remote responders keep their trial records there), the generation number and
        one id per image of the coming batch (``g3-0``, ``g3-ref5``: see
        :mod:`xdream.evolve.presentation`), which a rig uses as its image ids. An image re-shown later
        in the generation keeps its id. Ignored by local responders."""

    def respond_units(self, images: torch.Tensor) -> np.ndarray:
        """Responses float64 ``[B, U]`` of every unit the responder records, for recordings of
        many units at once (a whole CNN layer, an electrode array); one unit by default."""
        return np.asarray(self.respond(images), dtype=np.float64)[:, None]

    def unit_labels(self) -> list[str]:
        """One name per column of :meth:`respond_units`."""
        return [self.name]

    def close(self) -> None:
        """Release sockets, files or models; idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NoiseModel(ABC):
    """Turns noise-free scores into noisy observations, drawing only from the given RNG.

    Noise models simulate trial-to-trial variability of recorded neurons on top of any
    responder (see :class:`NoisyResponder`)."""

    name: str = "noise"

    @abstractmethod
    def __call__(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy float64 scores of the same shape; NaN stays NaN."""


class NoisyResponder(Responder):
    """Wraps any responder with a noise model; keeps the noise-free scores of the last call
    in :attr:`last_clean` so runs can record the true activation next to the noisy one."""

    def __init__(self, inner: Responder, noise: NoiseModel, rng: np.random.Generator):
        self.inner, self.noise, self.rng = inner, noise, rng
        self.name = f"{inner.name}+{noise.name}"
        self.last_clean: np.ndarray | None = None

    def respond(self, images: torch.Tensor) -> np.ndarray:
        clean = np.asarray(self.inner.respond(images), dtype=np.float64)
        self.last_clean = clean
        return np.asarray(self.noise(clean, self.rng), dtype=np.float64)

    def prepare(self, run_dir: Path, generation: int, image_ids: list[str] | None = None) -> None:
        self.inner.prepare(run_dir, generation, image_ids)

    def respond_units(self, images: torch.Tensor) -> np.ndarray:
        clean = np.asarray(self.inner.respond_units(images), dtype=np.float64)
        self.last_clean = clean
        return np.asarray(self.noise(clean, self.rng), dtype=np.float64)

    def unit_labels(self) -> list[str]:
        return self.inner.unit_labels()

    def close(self) -> None:
        self.inner.close()
