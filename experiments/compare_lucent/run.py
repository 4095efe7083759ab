"""Peer check: xdream's gradient baseline vs Lucent's ``render_vis`` on the same unit.

Same unit (EfficientNet-Lite0, embedded weights, centre unit of a channel), same 128 px
decorrelated Fourier parameterisation, Lucid's standard transforms, Adam lr 0.05, same
number of steps; each final image is scored by xdream's torch-unit responder (no transforms).
Prints the activation each reached and the ratio xdream / Lucent, per seed and in median.

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


def lucent_render(unit, steps: int, seed: int) -> torch.Tensor:
    from lucent.optvis import objectives, param, render as lrender, transform

    np.random.seed(seed)  # Lucent draws its transforms from the global RNGs
    torch.manual_seed(seed)
    model = Normalised(unit.model, unit._mean.flatten().tolist(), unit._std.flatten().tolist()).eval()
    layer = "net_" + unit.target.layer.replace(".", "_")
    objective = objectives.neuron(layer, unit.target.channel)
    images = lrender.render_vis(
        model, objective, param_f=lambda: param.image(128), transforms=transform.standard_transforms,
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
        t = time.perf_counter()
        theirs = lucent_render(unit, args.steps, seed)
        t_theirs = time.perf_counter() - t
        a, b = float(unit.respond(ours)[0]), float(unit.respond(theirs)[0])
        save_png(ours[0], out / f"xdream_seed{seed}.png")
        save_png(theirs[0], out / f"lucent_seed{seed}.png")
        rows.append({"seed": seed, "xdream": a, "lucent": b, "ratio": a / b, "xdream_s": t_ours, "lucent_s": t_theirs})
        print(f"seed {seed}: xdream {a:.3f}  lucent {b:.3f}  ratio {a / b:.3f}  ({t_ours:.0f} s vs {t_theirs:.0f} s)")
    median = statistics.median(r["ratio"] for r in rows)
    print(f"{args.target}, {args.steps} steps, 128 px: median ratio xdream / lucent = {median:.3f}")
    (out / "result.json").write_text(json.dumps({"target": args.target, "steps": args.steps, "rows": rows,
                                                 "median_ratio": median}, indent=2))


if __name__ == "__main__":
    main()
