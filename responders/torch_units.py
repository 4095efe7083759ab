"""Several units of one CNN at once: the in-silico stand-in for neurons recorded together.

``targets`` lists ``MODEL:LAYER:CHANNEL[:Y:X]`` specs of one model (any layers, channels and
positions). :meth:`TorchUnits.respond_units` reads them all from one forward pass per batch,
``[B, U]`` in the order of ``targets``, the pass stopping right after the deepest layer any of
them needs; each column equals what ``torch-unit`` gives for that target alone. This is what a
session of several evolution threads on one network calls once per generation
(:meth:`responders.torch_unit.TorchUnit.for_units`), so the model is loaded once and every
thread's images share the same batches. ``respond`` (one score per image) is the mean over the
units, a population response.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from xdream.core.errors import ConfigError

from .torch_unit import (TARGET_FORM, TorchModelResponder, TorchUnit, check_unit, load_model, parse_target,
                         torch_device, unit_position)


class TorchUnits(TorchModelResponder):
    """Every unit of ``targets`` (one model) from one forward pass per batch of ``batch_size``
    images. ``readout``, ``weights``, ``weights_variant``, ``input_size`` and ``device`` mean what
    they mean for ``torch-unit`` and apply to every target."""

    name = "torch-units"

    @classmethod
    def example(cls, workdir: Path, seed: int = 0) -> "TorchUnits":
        """Three early EfficientNet-Lite0 units on three layers (one at a given position) at
        64 px: cheap and deterministic."""
        return cls([TorchUnit.EXAMPLE_TARGET, "efficientnet_lite0:_blocks.0:7", "efficientnet_lite0:_blocks.1:3:2:1"],
                   input_size=64)

    def __init__(
        self,
        targets: list[str],
        readout: Literal["center", "mean"] = "center",
        weights: str | None = None,
        batch_size: int = 32,
        input_size: int | None = None,
        device: str = "cpu",
        weights_variant: str | None = None,
    ):
        if not isinstance(targets, (list, tuple)) or not targets:
            raise ConfigError(f"torch-units needs a non-empty list of targets, got {targets!r}; "
                              f"each {TARGET_FORM}")
        parsed = [parse_target(spec) for spec in targets]  # a malformed spec fails before the model loads
        first: dict = {}
        for spec, t in zip(targets, parsed):
            if t in first:
                raise ConfigError(f"target {spec!r} is given twice in targets (as {first[t]!r} and {spec!r}); "
                                  "list each unit once")
            first[t] = spec
        models = list(dict.fromkeys(t.model for t in parsed))
        if len(models) > 1:
            raise ConfigError(f"targets name {len(models)} models ({', '.join(models)}); torch-units records units "
                              f"of one model: give every target the model {models[0]!r}, or use one responder per model")
        dev = torch_device(device)
        model, spec = load_model(models[0], weights, weights_variant)
        self.weights_name = f"file {weights}" if weights is not None else spec.weights_name
        layers = list(dict.fromkeys(t.layer for t in parsed))
        size = spec.input_size if input_size is None else input_size  # (0 is refused, not the default)
        shapes = self._setup_model(model, models[0], layers, readout=readout, input_size=size,
                                   mean=spec.mean, std=spec.std, batch_size=batch_size, device=dev)
        for label, t in zip(targets, parsed):
            check_unit(t, shapes[t.layer], readout, label)
        self.targets, self.labels, self.layer_shapes = parsed, [str(spec) for spec in targets], shapes
        self._reads = [self._layer_read(layer, shapes[layer]) for layer in layers]
        columns = torch.tensor([c for _, cols, *_ in self._reads for c in cols], dtype=torch.long)
        self._order = torch.argsort(columns).to(dev)  # from the layers' order back to the targets'

    def _layer_read(self, layer: str, shape: tuple[int, ...]):
        """What to read from one layer's output: the targets' columns, channels and positions."""
        columns = [i for i, t in enumerate(self.targets) if t.layer == layer]
        positions = [unit_position(self.targets[i], shape, self.readout) for i in columns]
        index = lambda values: torch.tensor(values, dtype=torch.long, device=self.device)  # noqa: E731
        channels = index([self.targets[i].channel for i in columns])
        if positions[0] is None:  # a 2-D layer or the mean readout: no position
            return layer, columns, channels, None, None
        return layer, columns, channels, index([p[0] for p in positions]), index([p[1] for p in positions])

    def _read(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        for layer, _, channels, ys, xs in self._reads:
            out = outputs[layer]
            if ys is not None:
                parts.append(out[:, channels, ys, xs])
            else:
                picked = out[:, channels]
                parts.append(picked if picked.ndim == 2 else picked.mean(dim=(-2, -1)))
        return torch.cat(parts, dim=1)[:, self._order]

    def respond_units(self, images: torch.Tensor) -> np.ndarray:
        """Every target's activation float64 ``[B, U]``, in the order of ``targets``."""
        with torch.no_grad():
            return self._read_batches(images, self._read, (len(self.targets),)).double().cpu().numpy()

    def respond(self, images: torch.Tensor) -> np.ndarray:
        """The mean over the units per image, float64 ``[B]``."""
        return self.respond_units(images).mean(axis=1)

    def unit_labels(self) -> list[str]:
        """The targets as given."""
        return list(self.labels)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "targets": list(self.labels),
            "model": self.targets[0].model,
            "readout": self.readout,
            "units": [unit_position(t, self.layer_shapes[t.layer], self.readout) for t in self.targets],
            "layer_shapes": {layer: list(shape) for layer, shape in self.layer_shapes.items()},
            "input_size": self.input_size,
            "weights": self.weights_name,
            "device": str(self.device),
        }

    def __repr__(self) -> str:
        return f"TorchUnits({len(self.targets)} units of {self.targets[0].model}, readout={self.readout!r})"
