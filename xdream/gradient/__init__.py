"""Gradient-ascent feature visualisation (Lucid conventions), the baseline evolution is
measured against.

- :mod:`.param`       image parameterisations: pixel or Fourier 1/f, colour-decorrelated, batched
- :mod:`.transforms`  pad, jitter, random scale, random rotate; Lucid's standard set
- :mod:`.objectives`  unit, channel, layer (DeepDream), class logit, direction, diversity and the
                      regularisers TV, L1, blur, combined with ``+``, ``-`` and scalar ``*``
- :mod:`.target`      a differentiable model with named layers (what a responder provides)
- :mod:`.render`      Adam ascent on an image, DeepDream with octaves, ascent in a generator's latent
- :mod:`.lucid`       Lucid's Fourier and colour conventions (shared with the ``fourier`` generator)
- :mod:`.baselines`   the gradient baselines as runs with their own folder (``xdream gradient``)
"""

from xdream.gradient.objectives import (
    Objective, blur, channel, class_logit, deepdream, direction, diversity, l1, layer, neuron,
    total_variation,
)
from xdream.gradient.param import ImageParam
from xdream.gradient.render import RenderResult, deepdream_image, latent_ascent, render
from xdream.gradient.target import ModelTarget, target_of
from xdream.gradient.transforms import standard_transforms

__all__ = [
    "ImageParam", "ModelTarget", "Objective", "RenderResult", "blur", "channel", "class_logit",
    "deepdream", "deepdream_image", "direction", "diversity", "l1", "latent_ascent", "layer", "neuron",
    "render", "standard_transforms", "target_of", "total_variation",
]
