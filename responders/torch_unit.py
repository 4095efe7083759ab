"""One unit of a pretrained CNN as a responder: the in-silico stand-in for a recorded neuron.

A target ``MODEL:LAYER:CHANNEL[:Y:X]`` names a model (the embedded ``efficientnet_lite0``,
``caffenet`` -- the Caffe reference AlexNet XDREAM scores, :mod:`responders.models.caffenet` -- or
a torchvision classifier), a layer by its module path (as in ``model.named_modules()``), a
channel, and optionally a position on the layer's feature map. The layer is read with a
forward hook that stops the forward pass right after it, so early layers cost little.
torchvision's ``alexnet`` is not CaffeNet: it has other channel counts, no LRN and no groups.

Weights are never downloaded: torchvision weights must already be in the torch hub cache,
CaffeNet's published file in the xdream weights cache (``xdream weights download caffenet``), or
either is given as a local state-dict file (option ``weights``). A torchvision model means its
``DEFAULT`` weights unless ``weights_variant`` names another of its published sets (e.g.
``"IMAGENET1K_V1"``, what ``pretrained=True`` loaded in older lab code, where ``DEFAULT`` is
``IMAGENET1K_V2`` for resnet50); the option is recorded in the run's config like any other.

``input_size`` (default: the model's own: 227 for CaffeNet, 224 for EfficientNet-Lite0, a torchvision
model's crop size from its weights' transforms, 224 for most, 299 for inception_v3, 240-600 for
efficientnet_b1-b7) is the size the whole image is resized to, without cropping. The Ponce lab's
in-silico scorers resize whole images to 227 px for every network; ``input_size = 227`` reproduces
that convention.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xdream.core.errors import ConfigError, UnknownNameError, WeightsError, choices_text
from xdream.core.responder import Responder
from xdream.weights.store import local_file, verify_file

from .models.caffenet import WEIGHTS as CAFFENET_WEIGHTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EMBEDDED = "efficientnet_lite0"
CAFFENET = "caffenet"
TARGET_FORM = "MODEL:LAYER:CHANNEL[:Y:X], e.g. efficientnet_lite0:_blocks.4:3 or alexnet:features.8:0:6:6"


# ----------------------------------------------------------------------------------------------
# target specs


@dataclass(frozen=True)
class Target:
    """A parsed target spec; ``y``/``x`` are None unless the spec names a unit position."""

    model: str
    layer: str
    channel: int
    y: int | None = None
    x: int | None = None

    def __str__(self) -> str:
        pos = "" if self.y is None else f":{self.y}:{self.x}"
        return f"{self.model}:{self.layer}:{self.channel}{pos}"


def parse_target(spec: str) -> Target:
    """Parse ``MODEL:LAYER:CHANNEL[:Y:X]``; a malformed spec raises ConfigError showing the form."""
    parts = spec.split(":") if isinstance(spec, str) else []
    if len(parts) not in (3, 5) or not parts[0] or not parts[1]:
        raise ConfigError(f"target {spec!r} is malformed; expected {TARGET_FORM}")
    bad = [p for p in parts[2:] if not p.removeprefix("-").isdecimal()]
    if bad:
        raise ConfigError(
            f"target {spec!r}: CHANNEL, Y and X must be integers, got {bad[0]!r}; expected {TARGET_FORM}"
        )
    return Target(parts[0], parts[1], *(int(p) for p in parts[2:]))


# ----------------------------------------------------------------------------------------------
# models


@dataclass(frozen=True)
class ModelSpec:
    """How to build a named model: architecture only, or with its pretrained weights; which
    weights those are (``weights_name``, recorded in the run); and how a local weights file is
    loaded (``load_file``; None: a strict ``load_state_dict`` into ``build()``)."""

    name: str
    build: Callable[[], nn.Module]
    pretrained: Callable[[], nn.Module]
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights_name: str = ""
    load_file: Callable[[str | Path], nn.Module] | None = None


def model_names() -> list[str]:
    """Valid MODEL names: the embedded EfficientNet-Lite0, CaffeNet, then torchvision's classifiers."""
    import torchvision

    return [EMBEDDED, CAFFENET, *torchvision.models.list_models(module=torchvision.models)]


def model_spec(name: str, weights_variant: str | None = None) -> ModelSpec:
    """The :class:`ModelSpec` for a model name and (torchvision only) one of its published weight
    sets; UnknownNameError lists the valid names."""
    if name in (EMBEDDED, CAFFENET) and weights_variant is not None:
        raise ConfigError(f"weights_variant {weights_variant!r}: {name} has one published set of weights; "
                          "weights_variant picks among a torchvision model's (e.g. resnet50: IMAGENET1K_V1)")
    if name == EMBEDDED:
        from .models import efficientnet_lite as lite

        return ModelSpec(
            name, lite.EfficientNetLite0, lite.load_efficientnet_lite0, lite.INPUT_SIZE, lite.MEAN, lite.STD,
            weights_name=f"{lite.PACKAGE}/{lite.WEIGHTS_FILE}",
        )
    if name == CAFFENET:
        from .models import caffenet

        return ModelSpec(name, caffenet.CaffeNet, caffenet.load_caffenet, caffenet.INPUT_SIZE, caffenet.MEAN,
                         caffenet.STD, weights_name=f"{caffenet.WEIGHTS.url} (SHA-256 {caffenet.WEIGHTS.sha256})",
                         load_file=caffenet.load_caffenet)
    names = model_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownNameError(f"unknown model {name!r}; {hint}valid: {choices_text(names)}")
    return _torchvision_spec(name, weights_variant)


def _torchvision_weights(name: str, variant: str | None):
    """torchvision's weights enum member for ``name``: ``variant`` (e.g. ``IMAGENET1K_V1``) or DEFAULT."""
    import torchvision

    enum = torchvision.models.get_model_weights(name)
    if variant is None:
        return enum.DEFAULT
    valid = [member.name for member in enum]
    if variant not in valid:
        raise ConfigError(f"weights_variant {variant!r} is not one of {name}'s published weights; valid: "
                          f"{', '.join(valid)} (DEFAULT is {enum.DEFAULT.name})")
    return enum[variant]


def _torchvision_spec(name: str, variant: str | None = None) -> ModelSpec:
    import torchvision

    weights = _torchvision_weights(name, variant)
    transform = weights.transforms()

    def build() -> nn.Module:
        model = torchvision.models.get_model(name, weights=None)
        if hasattr(model, "transform_input"):  # as torchvision's pretrained inception/googlenet
            model.transform_input = True
        return model

    def pretrained() -> nn.Module:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not cached.is_file():
            raise WeightsError(
                f"{name}: pretrained weights {cached} not found (xdream never downloads); "
                f"fetch {weights.url} into that file, or pass a local state-dict file with --target-weights FILE"
            )
        return torchvision.models.get_model(name, weights=weights)  # cached: loads, no download

    return ModelSpec(name, build, pretrained, int(transform.crop_size[0]), tuple(transform.mean), tuple(transform.std),
                     weights_name=str(weights))


def load_state_file(model: nn.Module, path: str | Path, what: str) -> nn.Module:
    """Load a local state-dict file into ``model`` strictly; a file that does not fit raises a
    one-line WeightsError saying which keys or shapes are wrong. A file without any auxiliary-head
    keys (googlenet's ``aux1``/``aux2``, inception_v3's ``AuxLogits``; saved with ``aux_logits=False``
    as torchvision's pretrained googlenet is) drops those heads, as torchvision does: they never
    take part in a response."""
    path = verify_file(path, None, what)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise WeightsError(f"{what}: cannot read {path} as a torch state dict ({reason})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{what}: {path} is not a state dict; save one with torch.save(model.state_dict(), FILE)")
    aux = [n for n in ("aux1", "aux2", "AuxLogits") if getattr(model, n, None) is not None]
    if aux and not any(k.split(".")[0] in aux for k in state):
        model.aux_logits = False
        for name in aux:
            setattr(model, name, None)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        problems = [
            f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})"
            for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong))
            if keys
        ]
        raise WeightsError(f"{what}: {path} does not fit the model: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
    return model


def load_model(name: str, weights: str | Path | None = None,
               weights_variant: str | None = None) -> tuple[nn.Module, ModelSpec]:
    """A named model with its pretrained weights (torchvision: ``weights_variant`` or DEFAULT),
    or with a local state-dict file."""
    if weights is not None and weights_variant is not None:
        raise ConfigError(f"give weights (a local file) or weights_variant ({weights_variant!r}, torchvision's "
                          f"published set), not both: {name}'s weights would be ambiguous")
    spec = model_spec(name, weights_variant)
    if weights is None:
        return spec.pretrained(), spec
    return _load_file(spec, weights), spec


def _load_file(spec: ModelSpec, weights: str | Path) -> nn.Module:
    weights = local_file(weights, spec.name)
    if spec.load_file is not None:
        return spec.load_file(weights)
    return load_state_file(spec.build(), weights, spec.name)


def layer_names(model: nn.Module) -> list[str]:
    """Module paths a target may name (every submodule; the root itself is not a layer)."""
    return [n for n, _ in model.named_modules() if n]


def list_layers(
    model_name: str, input_size: int | None = None, weights: str | Path | None = None
) -> list[tuple[str, tuple[int, ...]]]:
    """The layers a target can name, with output shapes (no batch dimension) for one image at
    the model's input size. Containers the forward pass never calls (a ModuleList) and layers
    whose output is not a tensor are left out. Weights are not needed for shapes; a
    ``weights`` file is checked to fit. Backs ``xdream layers MODEL``."""
    spec = model_spec(model_name)
    model = (spec.build() if weights is None else _load_file(spec, weights)).eval()
    size = input_size or spec.input_size
    shapes: dict[str, tuple[int, ...]] = {}

    def recorder(name):
        def hook(module, args, output):
            if name not in shapes and isinstance(output, torch.Tensor):
                shapes[name] = tuple(output.shape[1:])

        return hook

    handles = [m.register_forward_hook(recorder(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return [(n, shapes[n]) for n in layer_names(model) if n in shapes]


# ----------------------------------------------------------------------------------------------
# reading layers: the pieces every CNN responder shares


class _StopForward(Exception):
    """Raised by a read-out hook to end the forward pass once the last layer read has run."""


def find_layers(model: nn.Module, model_name: str, layers: list[str]) -> dict[str, nn.Module]:
    """The modules named ``layers``; an unknown name raises UnknownNameError with close matches."""
    modules = dict(model.named_modules())
    for layer in layers:
        if not layer or layer not in modules:
            names = layer_names(model)
            close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
            raise UnknownNameError(
                f"unknown layer {layer!r} in {model_name} ({len(names)} layers); "
                f"close matches: {', '.join(close) or '(none)'}; list them with `xdream layers {model_name}`"
            )
    return {layer: modules[layer] for layer in layers}


def layer_outputs(model: nn.Module, layers: dict[str, nn.Module], model_input: torch.Tensor,
                  model_name: str) -> dict[str, torch.Tensor]:
    """Run ``model`` until every module of ``layers`` has run and return their outputs. Forward
    hooks stop the pass right after the last of them (in execution order), so a pass costs only
    what the deepest layer read needs; a layer called more than once gives its first call."""
    captured: dict[str, object] = {}

    def recorder(name):
        def hook(module, args, output):
            captured.setdefault(name, output)
            if len(captured) == len(layers):
                raise _StopForward

        return hook

    handles = [module.register_forward_hook(recorder(name)) for name, module in layers.items()]
    try:
        model(model_input)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    for name in layers:
        if name not in captured:
            raise ConfigError(f"layer {name!r} is not called in {model_name}'s forward pass")
        if not isinstance(captured[name], torch.Tensor):
            raise ConfigError(f"layer {name!r} outputs {type(captured[name]).__name__}, not a tensor")
    return captured


def check_unit(target: Target, shape: tuple[int, ...], readout: str, label: str | None = None) -> None:
    """A one-line ConfigError, starting with ``label`` (default: the target), unless the
    target's channel (and Y:X) exist in a layer whose output per image has ``shape``."""
    t, label = target, label or str(target)
    if len(shape) not in (1, 3):
        raise ConfigError(
            f"layer {t.layer!r} outputs shape {list(shape)} per image; a unit needs [C] or [C, H, W]"
        )
    if not 0 <= t.channel < shape[0]:
        raise ConfigError(f"{label}: channel {t.channel} out of range; layer {t.layer} has {shape[0]} channels "
                          f"(0..{shape[0] - 1})")
    if t.y is None:
        return
    if len(shape) == 1:
        raise ConfigError(f"layer {t.layer!r} has no feature map (output [B, {shape[0]}]); drop :Y:X from {label}")
    if readout == "mean":
        raise ConfigError(f"target {label} gives a unit position Y:X, which readout 'mean' cannot use")
    for axis, value, size in (("Y", t.y, shape[1]), ("X", t.x, shape[2])):
        if not 0 <= value < size:
            raise ConfigError(f"{label}: {axis} {value} out of range; layer {t.layer}'s feature map is "
                              f"{shape[1]}x{shape[2]} ({axis} 0..{size - 1})")


def unit_position(target: Target, shape: tuple[int, ...], readout: str) -> tuple[int, int] | None:
    """The feature-map position read for a target: its Y:X, else the centre; None for a 2-D
    layer or the mean readout."""
    if len(shape) == 1 or readout == "mean":
        return None
    if target.y is not None:
        return target.y, target.x
    return shape[1] // 2, shape[2] // 2


class TorchModelResponder(Responder):
    """What the responders reading layers of a CNN share (``torch-unit``, ``torch-layer``,
    ``torch-units``): option checks, the model in eval mode with frozen parameters, the
    preprocessing, and batched forward passes that stop after the last layer read.

    Images ``[B, 3, H, W]`` in [0, 1] are resized (bilinear, differentiable) to the model's
    input size and normalised as the model was trained."""

    weights_files = (CAFFENET_WEIGHTS,)  # torchvision's files live in torch's hub cache, not xdream's
    weights_name = ""  # which weights the model holds (a torchvision enum, a file), for the run's record

    @classmethod
    def needed_files(cls, options: dict) -> list:
        """The weights file the target's model loads (:mod:`xdream.weights.needed`): a local
        ``weights`` file; CaffeNet's published file in the xdream cache; a torchvision model's
        in torch's hub cache (fetched, hash-prefix checked, by torchvision's own download); none
        for the embedded EfficientNet-Lite0 (its file ships in a package)."""
        from xdream.weights.cache import WeightsStore
        from xdream.weights.needed import NeededFile

        specs = options.get("targets") or [options.get("target") or ""]
        model = str(specs[0]).split(":")[0]
        if options.get("weights"):
            return [NeededFile(f"{model} (your file)", Path(options["weights"]).expanduser(), "check the path given")]
        if model == CAFFENET:
            path = WeightsStore.from_environment().path(CAFFENET_WEIGHTS.name)
            return [NeededFile(CAFFENET, path, f"xdream weights download {CAFFENET}", CAFFENET)]
        if model == EMBEDDED or model not in model_names():
            return []
        weights = _torchvision_weights(model, options.get("weights_variant"))
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name

        def fetch():  # torchvision's download: into the hub cache, the file name's hash prefix checked
            weights.get_state_dict(progress=True, check_hash=True)
            return path

        return [NeededFile(f"{model} {weights.name} (torchvision)", path, f"fetch {weights.url} into that file",
                           fetch=fetch)]

    def _setup_model(self, model: nn.Module, model_name: str, layers: list[str], *, readout, input_size, mean, std,
                     batch_size, device) -> dict[str, tuple[int, ...]]:
        """Check the options, find ``layers`` and probe them; returns each layer's output
        shape per image (no batch dimension)."""
        if readout not in ("center", "mean"):
            raise ConfigError(f"readout must be 'center' or 'mean', got {readout!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if input_size < 1:
            raise ConfigError(f"input_size must be >= 1, got {input_size}")
        modules = find_layers(model, model_name, layers)
        self.readout, self.batch_size, self.input_size, self.device = readout, batch_size, input_size, device
        self.model = model.to(device).eval().requires_grad_(False)
        self._model_name, self._layers = model_name, modules
        self._mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        try:
            with torch.no_grad():
                outs = self._layer_outputs(torch.zeros(1, 3, input_size, input_size, device=device))
        except (RuntimeError, AssertionError) as exc:  # torch._assert: e.g. a vision transformer's fixed size
            raise ConfigError(
                f"{model_name} cannot run at input_size {input_size}: {str(exc).splitlines()[0]}"
            ) from None
        return {name: tuple(out.shape[1:]) for name, out in outs.items()}

    @classmethod
    def for_units(cls, units: list[str], options: dict, device: str = "cpu") -> Responder:
        """A ``torch-units`` responder recording every unit of ``units`` (specs of one model)
        in one forward pass per batch, built with this responder's ``options`` (validated;
        its own ``target``/``targets`` left out)."""
        from xdream.core import registry

        options = {k: v for k, v in options.items() if k not in ("target", "targets")}
        return registry.create("responder", "torch-units", {**options, "targets": list(units)}, device=device)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> resized, normalised model input (differentiable)."""
        images = torch.as_tensor(images).to(self.device, torch.float32)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got {list(images.shape)}")
        if images.shape[-2:] != (self.input_size, self.input_size):
            images = F.interpolate(
                images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False, antialias=False
            )
        return (images - self._mean) / self._std

    def _layer_outputs(self, model_input: torch.Tensor) -> dict[str, torch.Tensor]:
        return layer_outputs(self.model, self._layers, model_input, self._model_name)

    def _read_batches(self, images: torch.Tensor, read: Callable[[dict], torch.Tensor],
                      width: tuple[int, ...] = ()) -> torch.Tensor:
        """``read(layer outputs)`` for each batch of ``batch_size`` images, concatenated
        (autograd kept); ``width`` is the shape per image of an empty result."""
        chunks = [read(self._layer_outputs(self.preprocess(images[i : i + self.batch_size])))
                  for i in range(0, len(images), self.batch_size)]
        if not chunks:
            return torch.zeros((0, *width), device=self.device)
        return torch.cat(chunks)

    @classmethod
    def list_layers(cls, model: str, weights: str | Path | None = None,
                    input_size: int | None = None) -> list[tuple[str, tuple[int, ...]]]:
        return list_layers(model, input_size=input_size, weights=weights)


# ----------------------------------------------------------------------------------------------
# the responder


class TorchUnit(TorchModelResponder):
    """A CNN unit as a responder: ``respond`` returns its activation per image (float64).

    Images ``[B, 3, H, W]`` in [0, 1] are resized (bilinear, differentiable) to the model's
    input size and normalised as the model was trained. ``readout="center"`` reads the centre
    of the channel's feature map (or the unit at Y:X when the spec gives one); ``"mean"``
    reads the channel's mean over the map. For a layer called more than once per forward pass
    (a reused activation module), the first call is read.
    """

    name = "torch-unit"
    target_form = "MODEL:LAYER:CHANNEL[:Y:X] (one unit)"
    EXAMPLE_TARGET = "efficientnet_lite0:_blocks.2:5"  # an early unit: the forward pass stops there

    @classmethod
    def example(cls, workdir: Path, seed: int = 0) -> "TorchUnit":
        """An early unit of the bundled pretrained EfficientNet-Lite0 at 64 px: cheap, and
        deterministic (``seed`` is not needed)."""
        return cls(cls.EXAMPLE_TARGET, input_size=64)

    def __init__(
        self,
        target: str,
        readout: Literal["center", "mean"] = "center",
        weights: str | None = None,
        batch_size: int = 32,
        input_size: int | None = None,
        device: str = "cpu",
        weights_variant: str | None = None,
    ):
        t = parse_target(target)
        dev = torch_device(device)
        model, spec = load_model(t.model, weights, weights_variant)
        self.weights_name = f"file {weights}" if weights is not None else spec.weights_name
        self._setup(
            model, t, readout=readout, input_size=spec.input_size if input_size is None else input_size,
            mean=spec.mean, std=spec.std, batch_size=batch_size, device=dev,
        )

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        layer: str,
        channel: int,
        y: int | None = None,
        x: int | None = None,
        *,
        readout: Literal["center", "mean"] = "center",
        input_size: int = 224,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        batch_size: int = 32,
        device: str = "cpu",
        name: str | None = None,
    ) -> "TorchUnit":
        """A unit of the caller's own model (Python API only). The module is moved to
        ``device``, put in eval mode and its parameters are frozen (requires_grad False)."""
        if (y is None) != (x is None):
            raise ConfigError(f"give both y and x or neither, got y={y!r}, x={x!r}")
        self = cls.__new__(cls)
        target = Target(name or type(module).__name__, layer, channel, y, x)
        self._setup(module, target, readout=readout, input_size=input_size, mean=mean, std=std,
                    batch_size=batch_size, device=torch_device(device))
        return self

    @classmethod
    def check_targets(cls, specs: list[str], options: dict) -> None:
        """Each spec's model, layer, channel and Y:X checked on the model's architecture alone
        (built once per model, no weights loaded), at the ``input_size`` and ``readout`` of
        ``options``: what construction would check, at a fraction of its cost."""
        models: dict[str, tuple[nn.Module, ModelSpec]] = {}
        shapes: dict[tuple[str, str], tuple[int, ...]] = {}
        readout = options.get("readout", "center")
        for spec in specs:
            t = parse_target(cls._unit_spec(spec))
            if (t.model, t.layer) in shapes:  # the layer probed already: the unit alone is checked
                check_unit(t, shapes[t.model, t.layer], readout, spec)
                continue
            if t.model not in models:
                model_def = model_spec(t.model, options.get("weights_variant"))
                models[t.model] = model_def.build(), model_def
            model, model_def = models[t.model]
            unit = cls.__new__(cls)
            unit._setup(model, t, readout=readout, input_size=options.get("input_size") or model_def.input_size,
                        mean=model_def.mean, std=model_def.std, batch_size=1, device=torch.device("cpu"))
            shapes[t.model, t.layer] = unit.layer_shape

    @classmethod
    def _unit_spec(cls, spec: str) -> str:
        """The unit spec a target of this responder is checked as (here: the target itself)."""
        return spec

    def _setup(self, model, target: Target, *, readout, input_size, mean, std, batch_size, device) -> None:
        """The one construction path: check options, find the layer, probe its output shape."""
        shapes = self._setup_model(model, target.model, [target.layer], readout=readout, input_size=input_size,
                                   mean=mean, std=std, batch_size=batch_size, device=device)
        self.target = target
        self._layer = self._layers[target.layer]
        self.layer_shape = shapes[target.layer]
        self._check_unit()

    def _spec(self) -> str:
        """The target as the user wrote it, for messages and records."""
        return str(self.target)

    def _check_unit(self) -> None:
        check_unit(self.target, self.layer_shape, self.readout, self._spec())

    @property
    def unit(self) -> tuple[int, int] | None:
        """The feature-map position read, or None for a 2-D layer or the mean readout."""
        return unit_position(self.target, self.layer_shape, self.readout)

    def describe(self) -> dict:
        """What is being recorded, for logs and reports."""
        return {
            "target": self._spec(),
            "model": self.target.model,
            "layer": self.target.layer,
            "channel": self.target.channel,
            "readout": self.readout,
            "unit": self.unit,
            "layer_shape": list(self.layer_shape),
            "input_size": self.input_size,
            "weights": self.weights_name,
            "device": str(self.device),
        }

    def _read(self, out: torch.Tensor) -> torch.Tensor:
        channel = out[:, self.target.channel]
        if channel.ndim == 1:
            return channel
        if self.readout == "mean":
            return channel.mean(dim=(-2, -1))
        y, x = self.unit
        return channel[:, y, x]

    def activation(self, images: torch.Tensor) -> torch.Tensor:
        """The unit's activation float32 ``[B]``, keeping the autograd graph (for gradient ascent)."""
        return self._read_batches(images, lambda outs: self._read(outs[self.target.layer]))

    def respond(self, images: torch.Tensor) -> np.ndarray:
        """The unit's activation per image, float64 ``[B]`` (no gradients)."""
        with torch.no_grad():
            return self.activation(images).double().cpu().numpy()

    def feature_target(self):
        """The model, its preprocessing and this unit's objective for gradient ascent
        (:mod:`xdream.gradient`): the centre (or Y:X) unit, or the channel mean."""
        from xdream.gradient import ModelTarget, channel, neuron

        t = self.target
        if self.readout == "mean" and len(self.layer_shape) == 3:
            objective = channel(t.layer, t.channel)
        else:
            objective = neuron(t.layer, t.channel, t.y, t.x)
        return ModelTarget(
            self.model, input_size=self.input_size, mean=tuple(self._mean.flatten().tolist()),
            std=tuple(self._std.flatten().tolist()), name=self._spec(), objective=objective,
        )

    def unit_labels(self) -> list[str]:
        return [str(self.target)]

    @classmethod
    def accepts_target(cls, spec: str) -> bool:
        """A unit spec has 3 or 5 fields (``MODEL:LAYER:CHANNEL[:Y:X]``); checked fully on construction."""
        return isinstance(spec, str) and len(spec.split(":")) in (3, 5)

    def __repr__(self) -> str:
        return f"TorchUnit({self.target}, readout={self.readout!r}, layer_shape={list(self.layer_shape)})"


def torch_device(device: str) -> torch.device:
    """A usable torch device, or ConfigError naming the bad value."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1', 'mps')") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} is not available here (no CUDA); use 'cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r} is not available here (no MPS); use 'cpu'")
    return dev
