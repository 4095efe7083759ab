"""A differentiable model with named layers: what gradient ascent needs from a responder.

The core cannot import the responder plugins, so a responder that wraps a torch model offers
``feature_target()`` returning a :class:`ModelTarget`; any ``nn.Module`` works the same way
from Python. Layers are named by module path (``model.named_modules()``) plus two special
names: ``"input"`` (the images being optimised, before transforms) and ``"logits"`` (the
model's output).
"""

from __future__ import annotations

import difflib
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from xdream.core.errors import ConfigError, UnknownNameError
from xdream.gradient.objectives import Objective

INPUT, LOGITS = "input", "logits"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Stop(Exception):
    """Ends the forward pass once every requested layer has run."""


class ModelTarget:
    """``model`` in eval mode with its input preprocessing: images ``[B, 3, H, W]`` in [0, 1]
    are resized (bilinear) to ``input_size`` unless ``resize=False`` and normalised by
    ``mean``/``std``. ``objective`` is the unit the owner responds with (the default to ascend).
    The model is put in eval mode and frozen, so a layer output without ``grad_fn`` is one
    that no gradient from the input reaches.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        input_size: int = 224,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        name: str | None = None,
        objective: Objective | None = None,
    ):
        self.model = model.eval().requires_grad_(False)  # frozen: only the input carries gradients
        self.input_size = input_size
        self.name = name or type(model).__name__
        self.objective = objective
        self._modules = {n: m for n, m in model.named_modules() if n}
        device = next(iter(model.parameters()), torch.zeros(0)).device
        self.device = device
        self._mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def layer_names(self) -> list[str]:
        return [INPUT, LOGITS, *self._modules]

    def check_layers(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in (INPUT, LOGITS) and name not in self._modules:
                close = difflib.get_close_matches(name, list(self._modules), n=5, cutoff=0.5)
                raise UnknownNameError(
                    f"unknown layer {name!r} in {self.name}; close matches: {', '.join(close) or '(none)'}; "
                    f"also 'input' and 'logits'"
                )

    def preprocess(self, images: torch.Tensor, resize: bool = True) -> torch.Tensor:
        images = images.to(self.device, torch.float32)
        if resize and images.shape[-2:] != (self.input_size, self.input_size):
            images = F.interpolate(images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return (images - self._mean) / self._std

    def activations(self, images: torch.Tensor, layers: Iterable[str], resize: bool = True) -> dict[str, torch.Tensor]:
        """Outputs of the named layers for ``images`` (the graph is kept). The forward pass
        stops after the last layer needed unless ``"logits"`` is asked for. A layer whose
        output does not depend differentiably on the input raises ConfigError."""
        layers = list(dict.fromkeys(layers))
        self.check_layers(layers)
        out: dict[str, torch.Tensor] = {}
        if INPUT in layers:
            out[INPUT] = images
        wanted = [n for n in layers if n not in (INPUT, LOGITS)]
        if not wanted and LOGITS not in layers:
            return out

        def recorder(name):
            def hook(module, args, output):
                if name not in out:
                    out[name] = output
                if LOGITS not in layers and all(n in out for n in wanted):
                    raise _Stop

            return hook

        handles = [self._modules[n].register_forward_hook(recorder(n)) for n in wanted]
        try:
            logits = self.model(self.preprocess(images, resize))
            if LOGITS in layers:
                out[LOGITS] = logits
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        for name in wanted:
            if name not in out:
                raise ConfigError(f"layer {name!r} is not called in {self.name}'s forward pass")
            if not isinstance(out[name], torch.Tensor):
                raise ConfigError(f"layer {name!r} outputs {type(out[name]).__name__}, not a tensor")
        if images.requires_grad:
            for name, tensor in out.items():
                if name != INPUT and tensor.grad_fn is None:
                    raise ConfigError(
                        f"layer {name!r} of {self.name} has no gradient path from the input image "
                        f"(its output is detached or computed without autograd); pick another layer"
                    )
        return out


def target_of(responder) -> ModelTarget:
    """The differentiable model behind a responder, or a one-line ConfigError saying why not."""
    make = getattr(responder, "feature_target", None)
    target = make() if make is not None else None
    if target is None:
        raise ConfigError(
            f"responder {getattr(responder, 'name', type(responder).__name__)!r} has no differentiable model, "
            f"so gradient ascent cannot run on it; give a target whose responder has one (a CNN unit)"
        )
    return target
