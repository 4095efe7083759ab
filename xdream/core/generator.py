"""The Generator interface: latent codes in, images out.

A generator maps a batch of codes float32 ``[B, *latent_shape]`` (flattened to ``[B, d]`` on
the optimiser side) to images float32 ``[B, 3, H, W]`` in ``[0, 1]``. Decoding is a torch
computation, so gradients flow from the images back to the codes (used by gradient baselines
and by code inversion).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import torch


class Generator(ABC):
    """Base class for image generators. Subclasses set ``name``, ``latent_shape`` and
    ``image_size`` and implement :meth:`decode_tensor`.

    **Weights (a capability).** ``weights_files`` lists the published files the plugin loads, as
    :class:`~xdream.weights.entry.WeightsEntry` s (url, file name, size, SHA-256, licence,
    citation), declared on the class beside its code as torchvision's ``Weights`` enums are.
    ``xdream weights list/download/verify/path`` works over what registered plugins declare, and
    ``xdream evolve --generator-weights FILE`` (``[generator] weights``) passes a local file. The
    plugin loads its file with
    ``WeightsStore.from_environment(catalog=by_name(self.weights_files)).resolve(NAME, ...)``.
    Default: none.

    **Memory (a capability).** ``memory_per_image``: the device bytes decoding one image takes
    (activations), from which a CUDA run sizes its decode chunks (:mod:`xdream.core.device`).
    Default None: measured on the device by decoding one code (CUDA), or 64 images a chunk (CPU).

    **Contract test.** ``tests/generators/test_generator_contract.py`` builds every registered
    generator with no options (its declared weights from the cache: ``xdream weights download``
    first), or with the options ``tests/generators/conftest.py`` gives generators whose
    published weights cannot ship with the tests."""

    name: str = "generator"
    latent_shape: tuple[int, ...]
    image_size: int
    weights_files: tuple = ()  # of xdream.weights.entry.WeightsEntry (the core imports nothing else)
    memory_per_image: int | None = None  # device bytes one decoded image takes; None: measured on CUDA

    def __init__(self, *, device: str = "cpu"):
        self.device = torch.device(device)

    @property
    def latent_dim(self) -> int:
        """Length of a flattened code: the optimiser's search dimension."""
        return math.prod(self.latent_shape)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` initial codes ``[n, d]`` float32; N(0, 1) unless a generator knows better."""
        return rng.standard_normal((n, self.latent_dim)).astype(np.float32)

    def initial_code(self) -> np.ndarray | None:
        """A code ``[d]`` the search starts from when the user chose one through the generator
        (e.g. BigGAN-deep's ``init_class``): CMA-type optimisers take it as their mean, the
        genetic algorithm as one of its first population. None (the default): the optimiser's
        own start."""
        return None

    @abstractmethod
    def decode_tensor(self, codes: torch.Tensor) -> torch.Tensor:
        """Differentiable decode of ``[B, d]`` float32 codes to ``[B, 3, H, W]`` in [0, 1]."""

    def decode(self, codes) -> torch.Tensor:
        """Decode numpy or torch codes of shape ``[B, d]`` or ``[B, *latent_shape]``."""
        if not isinstance(codes, torch.Tensor):
            codes = torch.as_tensor(np.asarray(codes, dtype=np.float32))
        codes = codes.to(self.device, torch.float32).reshape(len(codes), self.latent_dim)
        return self.decode_tensor(codes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(latent={self.latent_shape}, image={self.image_size}px)"
