"""Every channel of a CNN layer at once: the in-silico stand-in for an electrode array.

A target ``MODEL:LAYER[:Y:X]`` names a convolutional layer; :meth:`TorchLayer.respond_units`
reads every channel's unit at the centre of the feature map (or at Y:X) from one forward pass,
``[B, C]``, which is how ``xdream characterise`` classifies a whole layer. ``respond`` (one
score per image, for evolution) is the mean over those units, a population response.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from xdream.core.errors import ConfigError

from .torch_unit import Target, TorchUnit, parse_target

LAYER_FORM = "MODEL:LAYER[:Y:X], e.g. efficientnet_lite0:_blocks.1 or alexnet:features.3:6:6"


def layer_target(spec: str) -> str:
    """``MODEL:LAYER[:Y:X]`` -> the equivalent unit spec on channel 0 (checked by parse_target)."""
    parts = spec.split(":") if isinstance(spec, str) else []
    if len(parts) not in (2, 4):
        raise ConfigError(f"layer target {spec!r} is malformed; expected {LAYER_FORM}")
    return ":".join([*parts[:2], "0", *parts[2:]])


class TorchLayer(TorchUnit):
    """All channels of one layer, each read at the same feature-map position. Its
    :meth:`~TorchUnit.for_units` (a session's several targets) gives a ``torch-units``
    responder reading each unit at the centre or its Y:X, like this one."""

    name = "torch-layer"
    target_form = "MODEL:LAYER[:Y:X] (every channel of a layer)"

    @classmethod
    def accepts_target(cls, spec: str) -> bool:
        """A layer spec has 2 or 4 fields (``MODEL:LAYER[:Y:X]``); checked fully on construction."""
        return isinstance(spec, str) and len(spec.split(":")) in (2, 4)

    @classmethod
    def example(cls, workdir: Path, seed: int = 0) -> "TorchLayer":
        """Every channel of an early EfficientNet-Lite0 block at 64 px (deterministic)."""
        return cls(TorchUnit.EXAMPLE_TARGET.rsplit(":", 1)[0], input_size=64)

    def __init__(
        self,
        target: str,
        weights: str | None = None,
        batch_size: int = 32,
        input_size: int | None = None,
        device: str = "cpu",
        weights_variant: str | None = None,
    ):
        parse_target(layer_target(target))  # a malformed spec fails before the model loads
        super().__init__(layer_target(target), readout="center", weights=weights, batch_size=batch_size,
                         input_size=input_size, device=device, weights_variant=weights_variant)

    @classmethod
    def check_targets(cls, specs: list[str], options: dict) -> None:
        """Layer targets ``MODEL:LAYER[:Y:X]`` checked as construction checks them (a feature map,
        Y:X on it), on the architecture alone; unit targets (a session's threads, which
        :meth:`~TorchUnit.for_units` records through ``torch-units``) as ``torch-unit`` checks them."""
        TorchUnit.check_targets([spec for spec in specs if not cls.accepts_target(spec)], options)
        super().check_targets([spec for spec in specs if cls.accepts_target(spec)], options)

    @classmethod
    def _unit_spec(cls, spec: str) -> str:
        return layer_target(spec)

    @classmethod
    def from_module(cls, module: nn.Module, layer: str, y: int | None = None, x: int | None = None,
                    **options) -> "TorchLayer":
        """Every channel of a layer of the caller's own model (Python API)."""
        return super().from_module(module, layer, 0, y, x, readout="center", **options)

    def _spec(self) -> str:
        t = self.target
        return f"{t.model}:{t.layer}" + ("" if t.y is None else f":{t.y}:{t.x}")

    def _check_unit(self) -> None:
        t, shape = self.target, self.layer_shape
        if len(shape) != 3:
            raise ConfigError(
                f"layer {t.layer!r} outputs {list(shape)} per image, no spatial map for the centre-unit "
                f"read-out; choose a layer with output [C, H, W] (xdream layers {t.model})"
            )
        super()._check_unit()

    def _read(self, out: torch.Tensor) -> torch.Tensor:
        y, x = self.unit
        return out[:, :, y, x]

    def respond_units(self, images: torch.Tensor) -> np.ndarray:
        """Every channel's activation float64 ``[B, C]`` from one forward pass per batch."""
        with torch.no_grad():
            units = self._read_batches(images, lambda outs: self._read(outs[self.target.layer]), (self.layer_shape[0],))
        return units.double().cpu().numpy()

    def respond(self, images: torch.Tensor) -> np.ndarray:
        """The mean over the layer's units per image, float64 ``[B]``."""
        return self.respond_units(images).mean(axis=1)

    def feature_target(self):
        """The model and its preprocessing for gradient ascent (:mod:`xdream.gradient`) with what
        :meth:`respond` scores as the objective: the mean over the layer's channels of the unit at
        the centre (or Y:X). A layer target has no channel."""
        from xdream.gradient import Objective

        target, layer, (y, x) = super().feature_target(), self.target.layer, self.unit
        target.objective = Objective(lambda a: a[layer][:, :, y, x].mean(), (layer,), f"units({layer}@{y},{x})")
        return target

    def unit_labels(self) -> list[str]:
        t = self.target
        return [str(Target(t.model, t.layer, c, t.y, t.x)) for c in range(self.layer_shape[0])]

    def describe(self) -> dict:
        info = super().describe()
        info.pop("channel")
        info.update(target=f"{self.target.model}:{self.target.layer}", channels=self.layer_shape[0])
        return info

    def __repr__(self) -> str:
        return f"TorchLayer({self.target.model}:{self.target.layer}, unit={self.unit}, layer_shape={list(self.layer_shape)})"
