"""Peer check: xdream's gradient baseline vs Lucent's ``render_vis`` on the same unit.

Same unit (EfficientNet-Lite0, embedded weights, centre unit of a channel), same 128 px
decorrelated Fourier parameterisation, Adam lr 0.05, same number of steps; each final image is
scored by xdream's torch-unit responder (no transforms). Two Lucent arms:

- ``lucent``: Lucent 0.1.8 as shipped (its ``standard_transforms``: its ``jitter`` is a kornia
  translate by 0..d-1 px with no crop, so the image shifts by up to d-1 px one way and keeps its size);
- ``lucent-crop``: the same with Lucid's jitter (a random ``H-d x W-d`` crop at offsets 0..d),
  the like-for-like comparison of the two implementations.

Prints the activation each reached and the ratios xdream / Lucent and xdream / Lucent-crop,
per seed, in mean and in median.

Run with ``bash experiments/compare_lucent/run.sh`` (it builds this experiment's own
environment with torch-lucent; the main environment never gets it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xdream.core import registry
from xdream.gradient import render, target_of
from xdream.images.io import save_png


class Normalised(nn.Module):
    """Lite0 with its own input normalisation inside, so Lucent needs no preprocessing."""

    def __init__(self, model, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.net = model

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def crop_jitter(d: int):
    """Lucid's ``transform.jitter``: a random crop of ``H-d x W-d`` at offsets 0..d (drawn from
    the global numpy RNG, as Lucent's own transforms draw)."""

    def inner(images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        dy, dx = (int(v) for v in np.random.randint(0, d + 1, size=2))
        return images[..., dy:dy + h - d, dx:dx + w - d]

    return inner


def lucid_transforms():
    """Lucent's standard_transforms with Lucid's crop jitter in place of Lucent's translate."""
    from lucent.optvis import transform

    return [transform.pad(12, mode="constant", constant_value=0.5), crop_jitter(8),
            transform.random_scale([1 + (i - 5) / 50.0 for i in range(11)]),
            transform.random_rotate(list(range(-10, 11)) + 5 * [0]), crop_jitter(4)]


def lucent_render(unit, steps: int, seed: int, crop: bool = False) -> torch.Tensor:
    from lucent.optvis import objectives, param, render as lrender, transform

    np.random.seed(seed)  # Lucent draws its transforms from the global RNGs
    torch.manual_seed(seed)
    model = Normalised(unit.model, unit._mean.flatten().tolist(), unit._std.flatten().tolist()).eval()
    layer = "net_" + unit.target.layer.replace(".", "_")
    objective = objectives.neuron(layer, unit.target.channel)
    images = lrender.render_vis(
        model, objective, param_f=lambda: param.image(128),
        transforms=lucid_transforms() if crop else transform.standard_transforms,
        thresholds=(steps,), preprocess=False, progress=False, show_image=False,
    )
    return torch.from_numpy(images[-1]).permute(0, 3, 1, 2).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="efficientnet_lite0:_blocks.10:27")
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    unit = registry.create("responder", "torch-unit", {"target": args.target})
    target = target_of(unit)
    rows = []
    for seed in range(args.seeds):
        t = time.perf_counter()
        ours = render(target.objective, target, steps=args.steps, seed=seed).images
        t_ours = time.perf_counter() - t
        theirs = lucent_render(unit, args.steps, seed)
        cropped = lucent_render(unit, args.steps, seed, crop=True)
        a, b, c = (float(unit.respond(x)[0]) for x in (ours, theirs, cropped))
        for name, image in (("xdream", ours), ("lucent", theirs), ("lucent-crop", cropped)):
            save_png(image[0], out / f"{name}_seed{seed}.png")
        rows.append({"seed": seed, "xdream": a, "lucent": b, "lucent_crop": c, "ratio": a / b, "ratio_crop": a / c,
                     "xdream_s": t_ours})
        print(f"seed {seed}: xdream {a:.3f}  lucent {b:.3f}  lucent-crop {c:.3f}  ratios {a / b:.3f}, {a / c:.3f}")
    summary = {f"{stat}_ratio{arm}": getattr(statistics, stat)(r[f"ratio{arm}"] for r in rows)
               for stat in ("mean", "median") for arm in ("", "_crop")}
    print(f"{args.target}, {args.steps} steps, 128 px: ratio xdream / lucent (as shipped) mean "
          f"{summary['mean_ratio']:.3f}, median {summary['median_ratio']:.3f}; xdream / lucent with Lucid's crop "
          f"jitter mean {summary['mean_ratio_crop']:.3f}, median {summary['median_ratio_crop']:.3f}")
    (out / "result.json").write_text(json.dumps({"target": args.target, "steps": args.steps, "rows": rows, **summary},
                                                indent=2))


if __name__ == "__main__":
    main()
