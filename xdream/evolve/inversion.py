"""Codes of natural images by gradient inversion: ``encode(generator, image)`` finds the code
whose decoded image is closest (pixel MSE) to the image, for any differentiable generator.

Used by ``--init-image FILE`` (config key ``init_image``) and ``--init-from-characterisation RUN``
(``init_characterisation``) to start an evolution from an image's code (:mod:`xdream.evolve.start`):
the code becomes the optimiser's ``init``. The start is the best (lowest loss) of
a few codes from the generator's own ``sample`` (a zero code can be a dead point, e.g. where
every ReLU is off), then Adam; all randomness comes from the ``rng`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xdream.core.errors import ConfigError
from xdream.core.generator import Generator


@dataclass
class Inversion:
    """The best code found ``[d]`` float32, its decoded image, and the loss per step."""

    code: np.ndarray
    image: torch.Tensor
    losses: list[float]


def fit_to_generator(image: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop ``[3, H, W]`` to a square and resize it to the generator's ``size``."""
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[:, top : top + side, left : left + side].unsqueeze(0)
    return F.interpolate(square, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def check_encodable(generator: Generator) -> None:
    """A one-line ConfigError unless decoding carries gradients back to the code."""
    code = torch.zeros(1, generator.latent_dim, device=generator.device, requires_grad=True)
    image = generator.decode(code)
    if not isinstance(image, torch.Tensor) or not image.requires_grad:
        raise ConfigError(f"generator {generator.name!r} cannot encode images (its decode carries no gradient to the "
                          "codes); starting from an image needs a generator whose decode is a torch computation")


def encode(generator: Generator, image: torch.Tensor, rng: np.random.Generator, *, steps: int = 200,
           lr: float = 0.05, l2: float = 1e-3, starts: int = 8, progress: bool = False) -> Inversion:
    """Minimise ``mean((decode(z) - image)^2) + l2 * mean(z^2)`` over the code ``z`` with Adam.

    ``image``: float ``[3, H, W]`` in [0, 1] (cropped and resized to the generator's size).
    The small ``l2`` term keeps the code near the region the optimisers sample from."""
    from tqdm.auto import tqdm

    check_encodable(generator)
    target = fit_to_generator(image.float(), generator.image_size).to(generator.device).unsqueeze(0)
    with torch.no_grad():
        candidates = torch.from_numpy(generator.sample(starts, rng)).to(generator.device)
        errors = ((generator.decode(candidates) - target) ** 2).flatten(1).mean(1)
    code = candidates[int(errors.argmin())].reshape(1, -1).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([code], lr=lr)
    best, best_loss, losses = code.detach().clone(), float("inf"), []
    for _ in tqdm(range(steps), desc="encoding init image", disable=not progress):
        optimizer.zero_grad()
        reconstruction = generator.decode(code)
        fit = F.mse_loss(reconstruction, target)
        loss = fit + l2 * code.pow(2).mean()
        loss.backward()
        losses.append(float(fit.detach()))
        if losses[-1] < best_loss:
            best_loss, best = losses[-1], code.detach().clone()
        optimizer.step()
    with torch.no_grad():
        final = generator.decode(best)[0]
    return Inversion(code=best[0].cpu().numpy().astype(np.float32), image=final, losses=losses)
