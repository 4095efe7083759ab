"""Natural reference images shown in every generation, as rig sessions do to track the neuron.

Each generation shows ``per_generation`` natural images beside the evolved ones, in the same
batch (on a rig: the same request, so the same block of trials). They are scored like every
other image and never told to the optimiser; their scores go to the generation's npz
(``reference_scores``, ``reference_index``) and log record (``reference_mean``), and the
trajectory plot draws their mean beside the evolved best and mean.

The images are the readable images of a folder (sorted by file name) or, by default, the
photographs bundled with scikit-image, each cut to its centre square (:mod:`xdream.images.natural`,
no corner crops) and resized to the generator's image size. They are cycled in that fixed
order: generation ``g`` shows images ``(g * N + j) mod M`` for ``j < N``, so every image is
shown equally often, and a resumed run continues the cycle from its generation count alone.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from xdream.config import ReferenceConfig
from xdream.core.errors import ConfigError
from xdream.images.natural import load_reference


class ReferenceCycle:
    """``names`` and images ``[M, 3, S, S]`` in [0, 1], ``per_generation`` shown per generation."""

    def __init__(self, names: list[str], images: torch.Tensor, per_generation: int, source: str = "reference set"):
        if not 0 < per_generation <= len(names):
            raise ConfigError(f"reference.per_generation = {per_generation} but {source} has {len(names)} images; "
                              f"allowed: 0..{len(names)} (0: no reference images)")
        self.names, self.images, self.per_generation = list(names), images, per_generation

    @classmethod
    def load(cls, config: ReferenceConfig, size: int) -> "ReferenceCycle | None":
        """The cycle the config asks for at ``size`` px, or None when it shows none."""
        if config.per_generation == 0:
            return None
        names, images = load_reference(config.folder, size, crops=False)
        source = "scikit-image's photograph set" if config.folder is None else f"reference folder {config.folder}"
        return cls(names, images, config.per_generation, source)

    def indices(self, generation: int) -> np.ndarray:
        """Indices into :attr:`names` of the images generation ``generation`` shows."""
        start = generation * self.per_generation
        return (start + np.arange(self.per_generation)) % len(self.names)

    def batch(self, generation: int, like: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """Indices and images of generation ``generation``, with the device, dtype and
        height x width of the evolved images ``like``."""
        index = self.indices(generation)
        images = self.images[torch.from_numpy(index)]
        if images.shape[-2:] != like.shape[-2:]:
            images = F.interpolate(images, size=tuple(like.shape[-2:]), mode="bilinear", align_corners=False)
        return index, images.to(like.device, like.dtype)
