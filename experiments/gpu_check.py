"""GPU check: does a run repeat bit for bit on this device, and what does the loop cost there?

(a) Identity. A fixed job (DeePSiM fc6 -> CaffeNet fc8 unit 1, CholeskyCMA, ``deterministic =
    true``) runs twice, and a third time stopped half-way and resumed in a fresh Experiment; every
    generation's codes and scores must be equal bit for bit across the three (exit status 1 if
    not). On CUDA this is what ``xdream.core.device`` promises; on the CPU it holds as it always did.
(b) Throughput per target model: the loop's seconds per generation (ask, decode, respond, tell,
    files) over the generator + responder forward alone on the same batch (the loop/forward
    ratio, the framework's cost on top of the compute) and images per second, for an fc6-shaped
    generator with a CaffeNet- and an AlexNet-shaped target.
(c) A 64-unit layer job: one thread per channel of CaffeNet conv5 in one session (shared model,
    batched forward), seconds per generation and images per second.

Every model has fresh random weights with the published keys and shapes (speed and determinism do
not depend on the values), written to files in a temporary folder and loaded through the users'
path (``--generator-weights`` / ``--target-weights`` as config keys), so nothing is downloaded.

    python experiments/gpu_check.py --device cuda                 # on a GPU machine
    python experiments/gpu_check.py --device cpu --population 4 --generations 2 --units 2 \\
        --generator deepsim-norm1 --models caffenet                # the suite's CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from xdream import Experiment, ExperimentConfig
from xdream.core.device import determinism_settings

TARGETS = {"caffenet": "caffenet:fc8:1", "alexnet": "alexnet:classifier.6:1"}
LAYER = {"caffenet": "caffenet:conv5", "alexnet": "alexnet:features.10"}


def weight_files(tmp: Path, generator: str, models: list[str]) -> dict[str, Path]:
    """Random-weights files in the published formats, one per model."""
    from generators import deepsim
    from responders.models import caffenet

    files = {generator: tmp / f"{generator}.pt"}
    torch.save(deepsim.init_state_dict(generator.removeprefix("deepsim-").replace("-", "_"), seed=0), files[generator])
    for model in models:
        files[model] = tmp / f"{model}.pt"
        if model == "caffenet":
            state = caffenet.init_state_dict(seed=1)
        else:
            import torchvision

            torch.manual_seed(1)
            state = torchvision.models.get_model(model, weights=None).state_dict()
        torch.save(state, files[model])
    return files


def job(files, generator, model, args, **extra) -> dict:
    return {"seed": 7, "device": args.device, "deterministic": True, "generations": args.generations,
            "save_images": "best", "generator": {"name": generator, "weights": str(files[generator]), "verify": False},
            "responder": {"name": "torch-unit", "target": TARGETS[model], "weights": str(files[model])},
            "optimizer": {"name": "cholesky-cma", "population": args.population}, **extra}


def arrays(run: Path, generations: int) -> list[dict]:
    out = []
    for g in range(generations):
        with np.load(run / "generations" / f"gen_{g:04d}.npz") as data:
            out.append({k: data[k] for k in ("codes", "scores")})
    return out


def identity(config: dict, tmp: Path, generations: int) -> tuple[bool, bool]:
    """(two runs equal, run and stop+resume equal), bit for bit."""
    runs = []
    for name in ("first", "second"):
        experiment = Experiment(ExperimentConfig.from_dict(config), run_dir=tmp / name)
        experiment.run(progress=False)
        experiment.close()
        runs.append(arrays(tmp / name, generations))
    calls = iter(range(10**6))
    split = Experiment(ExperimentConfig.from_dict(config), run_dir=tmp / "split")
    split.run(progress=False, should_stop=lambda: next(calls) >= max(1, generations // 2))
    split.close()
    resumed = Experiment.resume(tmp / "split")
    resumed.run(progress=False)
    resumed.close()
    runs.append(arrays(tmp / "split", generations))

    def same(a, b):
        return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)

    return same(runs[0], runs[1]), same(runs[0], runs[2])


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def throughput(config: dict, run_dir: Path, generations: int, device: str) -> dict:
    """Seconds per generation of the loop and of the forward alone, on the same batch."""
    experiment = Experiment(ExperimentConfig.from_dict(config), run_dir=run_dir)
    experiment.step()  # warm-up: first-call allocations, cuDNN set-up
    synchronize(device)
    start = time.perf_counter()
    for _ in range(generations):
        experiment.step()
    synchronize(device)
    loop = (time.perf_counter() - start) / generations
    images = len(json.loads((run_dir / "log.jsonl").read_text().splitlines()[-1])["scores"])
    thread = experiment.threads[0]
    codes = thread.optimizer.ask()
    start = time.perf_counter()
    for _ in range(generations):
        with torch.no_grad():
            experiment.responder.respond(thread.generator.decode(codes))
    synchronize(device)
    forward = (time.perf_counter() - start) / generations
    experiment.close()
    return {"loop_s": loop, "forward_s": forward, "ratio": loop / forward, "images_per_s": images / loop}


def layer_job(files, generator, model, args, run_dir: Path) -> dict:
    """``--units``: one thread per channel of the model's conv5, one session; per generation."""
    config = job(files, generator, model, args, generations=args.generations + 1)  # + the warm-up
    config["responder"] = {"name": "torch-unit", "weights": str(files[model])}
    config["thread"] = [{"name": f"unit{c}", "target": f"{LAYER[model]}:{c}"} for c in range(args.units)]
    experiment = Experiment(ExperimentConfig.from_dict(config), run_dir=run_dir)
    experiment.step()
    synchronize(args.device)
    start = time.perf_counter()
    for _ in range(args.generations):
        experiment.step()
    synchronize(args.device)
    seconds = (time.perf_counter() - start) / args.generations
    experiment.close()
    return {"units": args.units, "generation_s": seconds, "images_per_s": args.units * args.population / seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--generator", default="deepsim-fc6", help="a DeePSiM variant (default fc6)")
    parser.add_argument("--models", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--population", type=int, default=40)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--units", type=int, default=64, help="channels of the layer job (c)")
    args = parser.parse_args(argv)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run with --device cpu for the CPU check", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(0) if torch.device(args.device).type == "cuda" else "cpu"
    print(f"device {args.device} ({name}), torch {torch.__version__}; deterministic settings on CUDA: "
          f"{determinism_settings(True)}")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = weight_files(tmp, args.generator, args.models)
        first = args.models[0]
        twice, resumed = identity(job(files, args.generator, first, args), tmp / "identity", args.generations)
        ok = twice and resumed
        print(f"(a) identity, {args.generator} -> {TARGETS[first]}, {args.generations} generations x "
              f"{args.population}: two runs {'IDENTICAL' if twice else 'DIFFER'}; run vs stop+resume "
              f"{'IDENTICAL' if resumed else 'DIFFER'}")
        for model in args.models:
            t = throughput(job(files, args.generator, model, args, generations=args.generations + 1),
                           tmp / f"speed-{model}", args.generations, args.device)
            print(f"(b) {args.generator} -> {TARGETS[model]}: loop {t['loop_s'] * 1e3:.1f} ms/generation, forward "
                  f"{t['forward_s'] * 1e3:.1f} ms, loop/forward {t['ratio']:.2f}, {t['images_per_s']:.1f} images/s")
        layer = layer_job(files, args.generator, first, args, tmp / "layer")
        print(f"(c) {layer['units']}-unit layer job on {LAYER[first]}: {layer['generation_s'] * 1e3:.1f} ms/generation, "
              f"{layer['images_per_s']:.1f} images/s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
