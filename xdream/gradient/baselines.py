"""Gradient baselines against a responder, as runs with their own folder.

Methods (``METHODS``):

- ``featurevis``: Lucid's feature visualisation: a decorrelated 1/f Fourier image under the
  standard transforms, Adam (lr 0.05), 512 steps, 128 px;
- ``pixel``: the same on a decorrelated pixel image;
- ``latent``: Adam on the codes of a differentiable generator (the evolution's search space);
- ``deepdream``: DeepDream from a photo with octaves.

Every final image is re-scored with the responder itself (no transforms, no noise), so the
numbers compare directly with an evolution's. A run folder holds ``config.toml`` (the target and
the settings its method uses), ``gradient.json``, ``best.png``, ``montage.png``,
``images/final_NN.png`` and ``trajectory.png``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from xdream.core import registry
from xdream.config import defaults, to_toml
from xdream.core.device import check_memory
from xdream.core.errors import ConfigError, choices_text
from xdream.core.seeding import check_seed
from xdream.gradient import objectives as obj
from xdream.gradient import deepdream_image, latent_ascent, render, target_of
from xdream.gradient.param import SIZE_RANGE
from xdream.gradient.render import check_differentiable
from xdream.gradient.transforms import no_transforms, standard_transforms
from xdream.images.io import montage, save_png
from xdream.images.plots import plot_curves
from xdream.runs.rundir import RunDir

METHODS = ("featurevis", "pixel", "latent", "deepdream")
RESULT = "gradient.json"
#: The settings only some methods use, and which; the others serve every method.
USED_BY = {"size": ("featurevis", "pixel", "deepdream"), "batch": ("featurevis", "pixel", "latent"),
           "transforms": ("featurevis", "pixel", "latent"), "score_every": ("featurevis", "pixel", "latent"),
           "generator": ("latent",), "image": ("deepdream",), "octaves": ("deepdream",), "octave_scale": ("deepdream",)}


@dataclass
class GradientSettings:
    """One gradient run. ``objective``: ``unit`` (what the responder scores: its unit, or a layer
    target's mean over its channels), ``channel`` (the unit's; a layer target has none),
    ``layer`` (DeepDream on the unit's layer) or ``class:N``; by default ``layer`` for
    DeepDream and ``unit`` otherwise. ``transforms`` defaults to Lucid's standard set for
    image parameterisations and to none for latent ascent (the generator is the prior).
    ``lr`` is Adam's learning rate, or DeepDream's step size. A setting its method does not use
    (``USED_BY``; DeepDream: one photo, its own jitter, scored once per octave) must keep its default."""

    method: str = "featurevis"
    objective: str | None = None
    steps: int | None = None  # default per method: 512 (latent 256, deepdream 32 per octave)
    lr: float | None = None  # default per method: 0.05 (deepdream's step size 0.01)
    size: int = 128  # deepdream: the photo is resized to twice this
    batch: int = 1
    seed: int = 0
    transforms: bool | None = None
    tv: float = 0.0
    l1: float = 0.0
    blur: float = 0.0
    generator: dict = field(default_factory=lambda: {"name": defaults("gradient")["generator"]})
    image: str | None = None  # deepdream: a photo file (default scikit-image's chelsea)
    octaves: int = 4
    octave_scale: float = 1.4
    score_every: int = 16

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown gradient method {self.method!r}; valid: {choices_text(METHODS)}")
        default = GradientSettings()
        for name, methods in USED_BY.items():
            if self.method not in methods and getattr(self, name) != getattr(default, name):
                raise ConfigError(f"gradient {name} {getattr(self, name)!r} is not used by method {self.method!r}; "
                                  f"methods that use it: {', '.join(methods)}")
        for name in ("steps", "batch", "size", "octaves", "score_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"gradient {name} must be >= 1, got {value}")
        low, high = SIZE_RANGE
        if self.method in ("featurevis", "pixel") and not low <= self.size <= high:
            raise ConfigError(f"gradient image size must be in [{low}, {high}] px for {self.method}, got {self.size}")
        if self.method == "deepdream" and self.size > high:  # the photo is twice this
            raise ConfigError(f"gradient image size must be in [1, {high}] px for deepdream, got {self.size}")
        for name in ("tv", "l1", "blur"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ConfigError(f"gradient {name} weight must be a finite number >= 0, got {getattr(self, name)}")
        if self.lr is not None and not 0 < self.lr < math.inf:  # NaN fails too
            raise ConfigError(f"gradient learning rate must be a finite number > 0, got {self.lr}")
        if not self.octave_scale > 1:
            raise ConfigError(f"gradient octave_scale must be > 1, got {self.octave_scale}")
        check_seed(self.seed, "gradient seed")

    def used(self) -> dict:
        """The settings its method uses, per-method defaults resolved (steps, lr, transforms,
        objective): what ran, as ``config.toml`` and ``gradient.json`` record it."""
        resolved = {**asdict(self), "objective": self.objective_spec, "steps": self.n_steps, "lr": self.learning_rate,
                    "transforms": self.use_transforms}
        return {k: v for k, v in resolved.items() if v is not None and self.method in USED_BY.get(k, (self.method,))}

    @property
    def objective_spec(self) -> str:
        return self.objective or ("layer" if self.method == "deepdream" else "unit")

    @property
    def use_transforms(self) -> bool:
        return self.transforms if self.transforms is not None else self.method in ("featurevis", "pixel")

    @property
    def objective_meaning(self) -> str:
        """What the ascent's objective value measures: not the unit's activation of an image
        (transforms, penalties and the objective itself differ); printed and on the page."""
        seen = "images randomly transformed as in Lucid" if self.use_transforms else "the optimised images"
        penalties = [name for name in ("tv", "l1", "blur") if getattr(self, name)]
        return (f"the value the ascent maximised, on {seen}"
                + (f", minus the {' and '.join(penalties)} penalties" if penalties else ""))

    @property
    def n_steps(self) -> int:
        return self.steps or {"latent": 256, "deepdream": 32}.get(self.method, 512)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else 0.01 if self.method == "deepdream" else 0.05


#: What a gradient run's re-scored activation measures (the command's output and its page say so).
ACTIVATION_MEANING = "the final images re-scored by the target unit, untransformed, as an evolution scores images"


@dataclass
class GradientOutcome:
    images: torch.Tensor
    scores: np.ndarray  # the responder's re-score of each final image
    history: list[dict]
    steps: int
    seconds: float
    objective: str


def build_objective(spec: str, target, settings: GradientSettings) -> obj.Objective:
    """The objective named by ``spec`` on the responder's unit, minus weighted regularisers."""
    unit = target.objective
    if unit is None:
        raise ConfigError(f"{target.name} names no unit to visualise")
    layer_name = unit.layers[0]
    if spec == "unit":
        objective = unit
    elif spec == "channel":
        named = re.fullmatch(r"(?:neuron|channel)\(.+:(\d+)(?:@\d+,\d+)?\)", unit.name)  # the unit's channel
        if named is None:
            raise ConfigError(f"objective 'channel' needs a target with a channel; {target.name} has none (it is "
                              f"scored by {unit.name}); valid objectives for it: unit, layer, class:N")
        objective = obj.channel(layer_name, int(named[1]))
    elif spec == "layer":
        objective = obj.layer(layer_name)
    elif spec.startswith("class:") and spec[6:].isdecimal():
        objective = obj.class_logit(int(spec[6:]))
    else:
        raise ConfigError(f"unknown objective {spec!r}; valid: unit, channel, layer, class:N (e.g. class:285)")
    for weight, penalty in ((settings.tv, obj.total_variation), (settings.l1, lambda: obj.l1(constant=0.5)),
                            (settings.blur, obj.blur)):
        if weight:
            objective = objective - weight * penalty()
    return objective


#: The memory the backward pass through the model takes, as a multiple of the images it sees: autograd
#: keeps every layer output up to the objective's layer. A lower bound (efficientnet_lite0 keeps about
#: 70 times its 224 px input up to _blocks.2, 155 times up to _blocks.15), so a refused run cannot fit.
BACKWARD_FACTOR = 32


def check_fits(settings: GradientSettings, target, generator=None) -> None:
    """Refuse, in one line, a batch whose images and backward pass cannot fit in the free memory
    of the target's device: ``batch`` (DeepDream: one photo) images at the working size -- the
    largest of the optimised images (DeepDream's photo: twice ``size``; latent: the generator's
    images) and the model's input (an image parameterisation's is magnified to it) -- as
    float32 RGB, times :data:`BACKWARD_FACTOR`."""
    if settings.method == "deepdream":  # the model sees the photo at its own size
        what, batch, working, advice = f"gradient size {settings.size}", 1, 2 * settings.size, "use a smaller size"
    else:
        images = generator.image_size if settings.method == "latent" else settings.size
        what, batch, working = f"gradient batch {settings.batch}", settings.batch, max(images, target.input_size)
        advice = "use a smaller batch (at most about {fits})"
    check_memory(what, batch, 3 * working * working * 4 * BACKWARD_FACTOR,
                 f"{batch} image(s) of {working} px and the model's backward pass", advice, target.device)


def prepare(responder, settings: GradientSettings) -> dict:
    """Validate everything a run needs before anything is written: target, objective,
    generator (latent) or photo (deepdream), and that the batch fits in memory."""
    settings.validate()
    target = target_of(responder)
    parts = {"target": target, "objective": build_objective(settings.objective_spec, target, settings)}
    target.check_layers(parts["objective"].layers)
    _probe(parts["objective"], target, settings)
    if settings.method == "latent":
        options = dict(settings.generator)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"latent ascent needs a generator name (--generator NAME); valid: "
                              f"{choices_text(registry.available('generator'))}")
        parts["generator"] = registry.create("generator", name, options, device=str(target.device))
        check_differentiable(parts["generator"])
    if settings.method == "deepdream":
        from xdream.images.natural import read_image, reference_set, skimage_photos

        if settings.image is None:
            photo = dict(skimage_photos())["chelsea"]
        else:
            photo = read_image(Path(settings.image).expanduser())
            if photo is None:
                raise ConfigError(f"image {settings.image} is not a readable image file (PNG, JPEG, ...)")
        _, images = reference_set([("photo", photo)], size=settings.size * 2, crops=False)
        parts["photo"] = images
    check_fits(settings, target, parts.get("generator"))
    return parts


def _probe(objective: obj.Objective, target, settings: GradientSettings) -> None:
    """Compute the objective once on a grey image, so that one the model cannot give (a class
    index beyond its outputs, say) is a one-line error before anything is written."""
    grey = torch.full((1, 3, settings.size, settings.size), 0.5, device=target.device)
    try:
        with torch.no_grad():
            objective(target.activations(grey, objective.layers))
    except (IndexError, RuntimeError) as e:
        raise ConfigError(f"objective {settings.objective_spec} cannot be computed on {target.name}: "
                          f"{str(e).splitlines()[0]}") from None


def run_gradient(responder, settings: GradientSettings, parts: dict, progress: bool = False) -> GradientOutcome:
    """Run one gradient method on ``parts`` (from :func:`prepare`); re-score its final images with ``responder``."""
    target, objective = parts["target"], parts["objective"]
    common = dict(seed=settings.seed, score=responder.respond, progress=progress)
    s = settings
    transforms = standard_transforms() if s.use_transforms else no_transforms()
    if s.method in ("featurevis", "pixel"):
        result = render(objective, target, size=s.size, batch=s.batch, lr=s.learning_rate, steps=s.n_steps,
                        parameterisation="fourier" if s.method == "featurevis" else "pixel",
                        transforms=transforms, score_every=s.score_every, **common)
    elif s.method == "latent":
        result = latent_ascent(parts["generator"], objective, target, batch=s.batch, steps=s.n_steps,
                               lr=s.learning_rate, transforms=transforms, score_every=s.score_every, **common)
    else:
        result = deepdream_image(parts["photo"], target, objective, octaves=s.octaves, octave_scale=s.octave_scale,
                                 steps_per_octave=s.n_steps, step_size=s.learning_rate, **common)
    scores = np.asarray(responder.respond(result.images), dtype=np.float64)
    return GradientOutcome(result.images, scores, result.history, result.steps, result.seconds, objective.name)


def write_gradient_dir(path: str | Path, settings: GradientSettings, responder, outcome: GradientOutcome,
                       run: RunDir | None = None) -> Path:
    """Write a gradient run's folder (``run`` when already created) and return its path."""
    describe = responder.describe()
    run = run or create_dir(path, settings, describe.get("target", responder.name))
    order = np.argsort(-outcome.scores)
    for rank, i in enumerate(order):
        save_png(outcome.images[i], run.path / "images" / f"final_{rank:02d}.png")
    save_png(outcome.images[order[0]], run.path / "best.png")
    save_png(montage(outcome.images[order]), run.path / "montage.png")
    # the plot before gradient.json, the file a finished run is known by (xdream report)
    steps = [h["step"] for h in outcome.history]
    curves = {f"objective {outcome.objective}": (steps, [h["objective"] for h in outcome.history])}
    # the responder's unit on the untransformed images, comparable with an evolution's scores
    curves["unit activation (best image)"] = (steps, [h.get("score", np.nan) for h in outcome.history])
    plot_curves(curves, run.path / "trajectory.png", xlabel="step", ylabel="value",
                title=f"{settings.method}: {outcome.objective} ({describe.get('target', responder.name)})")
    run.write_json(RESULT, {
        "kind": "gradient", "method": settings.method, "settings": settings.used(), "responder": describe,
        "objective": outcome.objective, "steps": outcome.steps, "seconds": outcome.seconds,
        "scores": outcome.scores.tolist(), "best": float(outcome.scores.max()), "history": outcome.history,
        "final_objective": outcome.history[-1]["objective"] if outcome.history else None,
        "objective_meaning": settings.objective_meaning, "activation_meaning": ACTIVATION_MEANING,
        "threads": torch.get_num_threads(),  # torch's intra-op count: 1 and 2 threads sum in other orders
    })
    return run.path


def create_dir(path: str | Path, settings: GradientSettings, target: str) -> RunDir:
    """A new, empty run folder holding, as ``config.toml``, the target and the settings its method used."""
    run = RunDir.create(path, to_toml({"kind": "gradient", "target": target, **settings.used()}), kind="gradient")
    (run.path / "generations").rmdir()  # evolution-only
    return run

