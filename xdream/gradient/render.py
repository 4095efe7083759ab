"""Gradient ascent: on an image parameterisation (Lucid's ``render_vis``), DeepDream from a
photo with octaves, and ascent in a generator's latent space.

Every run is seeded from one integer through :func:`xdream.core.seeding.derive_rngs` (stream
``gradient``): a ``numpy`` Generator for the transforms' random choices and a
``torch.Generator`` for initial tensors. No global RNG (numpy's, torch's or Python's) is
read or changed, so results depend on the seed only.

``score`` (optional) is a callable ``images -> float64 [B]`` (a responder's ``respond``):
the current, untransformed images are scored every ``score_every`` steps and at the end,
giving a trajectory comparable with an evolution's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from xdream.core.errors import ConfigError
from xdream.core.seeding import derive_rngs
from xdream.gradient.objectives import Objective, layer as layer_objective
from xdream.gradient.param import ImageParam
from xdream.gradient.target import INPUT, ModelTarget
from xdream.gradient.transforms import Compose, no_transforms, standard_transforms

Score = Callable[[torch.Tensor], np.ndarray]


@dataclass
class RenderResult:
    """Final images ``[B, 3, H, W]`` in [0, 1]; ``history`` holds one record per scored step:
    ``{"step", "objective"[, "score"]}`` with ``score`` the best image's responder score."""

    images: torch.Tensor
    history: list[dict] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    codes: torch.Tensor | None = None


def seeded(seed: int) -> tuple[np.random.Generator, torch.Generator]:
    """The gradient stream of ``seed``: numpy Generator and a torch.Generator drawn from it."""
    rng = derive_rngs(seed)["gradient"]
    return rng, torch.Generator().manual_seed(int(rng.integers(2**62)))


def _check_steps(steps: int, lr: float) -> None:
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if not 0 < lr < float("inf"):
        raise ConfigError(f"learning rate must be a finite number > 0, got {lr}")


class _Recorder:
    """Scores the current images every ``every`` steps (and at the last) into ``history``."""

    def __init__(self, score: Score | None, every: int, steps: int):
        self.score, self.every, self.steps, self.history = score, max(1, every), steps, []

    def __call__(self, step: int, value: float, images: Callable[[], torch.Tensor]) -> None:
        if step % self.every and step != self.steps:
            return
        record = {"step": step, "objective": value}
        if self.score is not None:
            with torch.no_grad():
                record["score"] = float(np.nanmax(self.score(images())))
        self.history.append(record)


def _progress(steps: int, on: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=steps, disable=not on, desc=desc, unit="step", dynamic_ncols=True)


def model_view(target: ModelTarget, images: torch.Tensor, transforms: Compose,
               rng: np.random.Generator) -> tuple[torch.Tensor, float]:
    """The transformed images and the factor that magnifies them for the model: the fixed
    ``input_size / size`` of the untransformed images (never a resize back to ``input_size``), so
    a random scale ``s`` makes the content ``s`` times as wide in the model's frame (as in
    Lucid, whose ``render_vis`` feeds the transformed image at its own size; Lucent resizes
    every transformed image to 224 px, which undoes the scale)."""
    return transforms(images, rng), target.input_size / images.shape[-1]


def _ascend(objective, target, make_images, params, *, transforms, steps, lr, rng, score, score_every, progress,
            desc) -> RenderResult:
    """Adam on ``params`` maximising ``objective`` of ``target`` at ``transforms(make_images())``
    (seen as :func:`model_view` says); the result holds ``make_images()`` after the last step."""
    target.check_layers(objective.layers)
    model_layers = [n for n in objective.layers if n != INPUT]
    optimizer = torch.optim.Adam(params, lr=lr)
    recorder = _Recorder(score, score_every, steps)
    start = time.perf_counter()
    with _progress(steps, progress, desc) as bar:
        for step in range(steps + 1):
            images = make_images()
            acts = {}
            if model_layers:
                seen, factor = model_view(target, images, transforms, rng)
                acts = target.activations(seen, model_layers, resize=factor)
            acts[INPUT] = images
            value = objective(acts)
            recorder(step, float(value.detach()), lambda: make_images().detach())
            if step == steps:
                break
            optimizer.zero_grad(set_to_none=True)
            (-value).backward()
            if all(p.grad is None for p in params):
                raise ConfigError(f"objective {objective.name} has no gradient path to the optimised tensor")
            optimizer.step()
            bar.update(1)
            bar.set_postfix(objective=f"{float(value.detach()):.4g}")
    seconds = time.perf_counter() - start
    with torch.no_grad():
        images = make_images().detach()
    return RenderResult(images, recorder.history, steps, seconds)


def render(
    objective: Objective,
    target: ModelTarget,
    *,
    param: ImageParam | None = None,
    size: int = 128,
    batch: int = 1,
    parameterisation: str = "fourier",
    decorrelate: bool = True,
    transforms: Compose | None = None,
    steps: int = 512,
    lr: float = 0.05,
    seed: int = 0,
    score: Score | None = None,
    score_every: int = 16,
    progress: bool = False,
) -> RenderResult:
    """Lucid's ``render_vis``: Adam (lr 0.05, 512 steps) on a 128 px decorrelated Fourier
    image under the standard transforms; the model sees each transformed image magnified by
    ``input_size / size`` (:func:`model_view`)."""
    _check_steps(steps, lr)
    rng, gen = seeded(seed)
    if param is None:
        param = ImageParam.named(parameterisation, size=size, batch=batch, decorrelate=decorrelate,
                                 generator=gen, device=target.device)
    transforms = standard_transforms() if transforms is None else transforms
    return _ascend(objective, target, param, param.parameters(), transforms=transforms, steps=steps, lr=lr, rng=rng,
                   score=score, score_every=score_every, progress=progress, desc="render")


def check_differentiable(generator, codes: torch.Tensor | None = None) -> None:
    """A one-line ConfigError unless ``generator.decode`` carries a gradient to ``codes`` (by
    default one zero code, so that the check draws nothing from any random generator)."""
    if codes is None:
        codes = torch.zeros(1, generator.latent_dim, device=generator.device, requires_grad=True)
    images = generator.decode(codes)
    if not isinstance(images, torch.Tensor) or images.grad_fn is None:
        raise ConfigError(
            f"generator {generator.name!r} is not differentiable (its images carry no gradient to the codes); "
            "latent ascent needs a generator whose decode is a torch computation"
        )


def latent_ascent(
    generator,
    objective: Objective,
    target: ModelTarget,
    *,
    batch: int = 4,
    steps: int = 256,
    lr: float = 0.05,
    transforms: Compose | None = None,
    seed: int = 0,
    score: Score | None = None,
    score_every: int = 16,
    progress: bool = False,
) -> RenderResult:
    """Adam on a batch of codes of any differentiable generator (``decode`` keeps the graph),
    starting from the generator's own ``sample``; no transforms unless given."""
    _check_steps(steps, lr)
    rng, _ = seeded(seed)
    codes = torch.as_tensor(generator.sample(batch, rng), dtype=torch.float32).to(generator.device)
    codes.requires_grad_(True)
    check_differentiable(generator, codes)
    transforms = no_transforms() if transforms is None else transforms
    result = _ascend(objective, target, lambda: generator.decode(codes), [codes], transforms=transforms, steps=steps,
                     lr=lr, rng=rng, score=score, score_every=score_every, progress=progress, desc="latent ascent")
    result.codes = codes.detach()
    return result


def deepdream_image(
    image: torch.Tensor,
    target: ModelTarget,
    objective: Objective | None = None,
    *,
    octaves: int = 4,
    octave_scale: float = 1.4,
    steps_per_octave: int = 32,
    step_size: float = 0.01,
    jitter: int = 32,
    seed: int = 0,
    score: Score | None = None,
    progress: bool = False,
) -> RenderResult:
    """DeepDream from a photo ``[1, 3, H, W]`` in [0, 1], as in the original notebook: split
    the photo into ``octaves`` scales (factor ``octave_scale``), start at the smallest, and at
    each octave take ``steps_per_octave`` normalised-gradient steps
    (``x += step_size * g / mean|g|``, under a random roll of up to ``jitter`` px), then
    upscale and add back the detail of the next scale. The model sees each octave at its own
    resolution, so the scale of the dreamed features grows with the octaves. ``objective``
    defaults to the target's layer (mean squared activation)."""
    if octaves < 1 or steps_per_octave < 1 or not octave_scale > 1 or not step_size > 0:
        raise ConfigError(
            f"DeepDream needs octaves >= 1, steps_per_octave >= 1, octave_scale > 1 and step_size > 0; got "
            f"{octaves}, {steps_per_octave}, {octave_scale}, {step_size}"
        )
    if objective is None:
        if target.objective is None:
            raise ConfigError("DeepDream needs an objective (the target names no layer)")
        objective = layer_objective(target.objective.layers[0])
    target.check_layers(objective.layers)
    rng, _ = seeded(seed)
    img = image.detach().to(target.device, torch.float32).clone()
    details = []
    for _ in range(octaves - 1):
        h, w = img.shape[-2:]
        low = F.interpolate(img, size=(max(16, round(h / octave_scale)), max(16, round(w / octave_scale))),
                            mode="bilinear", align_corners=False, antialias=True)
        details.append(img - F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False))
        img = low
    total = octaves * steps_per_octave
    recorder = _Recorder(score, steps_per_octave, total)
    step = 0
    start = time.perf_counter()
    with _progress(total, progress, "deepdream") as bar:
        for octave in range(octaves):
            if octave:
                detail = details[-octave]
                img = F.interpolate(img, size=detail.shape[-2:], mode="bilinear", align_corners=False) + detail
            for _ in range(steps_per_octave):
                dy, dx = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2))
                x = torch.roll(img, (dy, dx), dims=(-2, -1)).requires_grad_(True)
                acts = target.activations(x, objective.layers, resize=False)
                value = objective(acts)
                recorder(step, float(value.detach()), lambda: img.clamp(0, 1))
                (grad,) = torch.autograd.grad(value, x)
                grad = torch.roll(grad, (-dy, -dx), dims=(-2, -1))
                img = (img + step_size * grad / (grad.abs().mean() + 1e-8)).clamp(0, 1).detach()
                step += 1
                bar.update(1)
    with torch.no_grad():
        value = float(objective(target.activations(img, objective.layers, resize=False)))
    recorder(total, value, lambda: img)
    return RenderResult(img, recorder.history, total, time.perf_counter() - start)
