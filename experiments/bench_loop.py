"""Loop overhead and optimiser cost, measured in one run.

(a) Throughput of the full evolution loop (ask, decode, respond, tell, and every file a
    generation writes) as a ratio to the generator + responder forward alone on the same
    batch: how much the framework costs on top of the unavoidable compute.
(b) ask + tell time per generation at d=4096, lambda=40 for every registered optimiser
    (median and max over the generations), with random scores.
(c) Decode throughput (images/s, no gradients) of every registered generator at a batch of
    20 on this machine. DeePSiM and BigGAN-deep run on fresh weights with the official shapes
    (speed does not depend on the values), so the benchmark needs no download.
(d) The loop of (a) in two fresh processes, glibc's malloc as shipped and with
    ``xdream.core.allocator.retain_freed_memory`` (which the ``xdream`` command and this script
    use): time and page faults per generation, and their ratio.

    python experiments/bench_loop.py [--generations 10] [--opt-generations 40] [--decode-batch 20]
    python experiments/bench_loop.py --only-generators --generators biggan-deep-128 deepsim-fc6
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from xdream import Experiment, ExperimentConfig
from xdream.core import registry
from xdream.core.allocator import retain_freed_memory


def loop_vs_forward(generations: int, population: int) -> dict:
    config = ExperimentConfig.from_dict({"generations": generations, "seed": 0,
                                         "optimizer": {"name": "genetic", "population": population}})
    with tempfile.TemporaryDirectory() as tmp:
        experiment = Experiment(config, run_dir=f"{tmp}/run")
        experiment.step()  # warm-up (first-call allocations)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        for _ in range(generations):
            experiment.step()
        loop = (time.perf_counter() - start) / generations
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / generations
        codes = experiment.optimizer.ask()
        start = time.perf_counter()
        for _ in range(generations):
            with torch.no_grad():
                experiment.responder.respond(experiment.generator.decode(codes))
        forward = (time.perf_counter() - start) / generations
        experiment.close()
    return {"loop_s": loop, "forward_s": forward, "loop_faults": faults, "population": population,
            "target": config.responder.options["target"], "generator": config.generator.name}


def allocator_effect(generations: int, population: int) -> dict[str, dict]:
    """:func:`loop_vs_forward` in a fresh process per allocator setting (it cannot be undone
    in-process)."""
    results = {}
    for label, retain in (("glibc default", False), ("retained", True)):
        code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_loop; "
                f"{'bench_loop.retain_freed_memory(); ' if retain else ''}"
                f"print(json.dumps(bench_loop.loop_vs_forward({generations}, {population})))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        results[label] = json.loads(done.stdout.splitlines()[-1])
    return results


def optimiser_costs(dim: int, population: int, generations: int) -> dict[str, list[float]]:
    results = {}
    variants = [(name, {}) for name in registry.available("optimizer")]
    if "cmaes" in registry.available("optimizer"):
        variants.append(("cmaes", {"diagonal": True}))
    if "genetic" in registry.available("optimizer"):
        variants.append(("genetic", {"preset": "wang-ponce"}))
    runners = {}
    for name, options in variants:
        label = name + "".join(f"-{v}" if isinstance(v, str) else f"-{k}" for k, v in options.items())
        rng = np.random.default_rng(0)
        optimizer = registry.create("optimizer", name, {"population": population, **options},
                                    dim=dim, rng=rng)
        runners[label] = (optimizer, rng)
        results[label] = []
    # Round-robin over the optimisers, so a busy machine slows them all alike.
    for _ in range(generations):
        for label, (optimizer, rng) in runners.items():
            start = time.perf_counter()
            codes = optimizer.ask()
            optimizer.tell(codes, rng.standard_normal(len(codes)))
            results[label].append(time.perf_counter() - start)
    return results


def generator_speeds(batch: int, repeats: int = 3, names: list[str] | None = None) -> dict[str, tuple[float, int, int]]:
    """name -> (images/s, latent dim, image size), the best of ``repeats`` timed batches (one
    batch when it takes over 10 s)."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or registry.available("generator"):
            generator = registry.create("generator", name, _random_weights(name, tmp), device="cpu")
            codes = generator.sample(batch, np.random.default_rng(0))
            times = []
            with torch.no_grad():
                generator.decode(codes[:2])  # warm-up
                for _ in range(repeats):
                    start = time.perf_counter()
                    generator.decode(codes)
                    times.append(time.perf_counter() - start)
                    if times[-1] > 10:
                        break
            results[name] = (batch / min(times), generator.latent_dim, generator.image_size)
            del generator
    return results


def _random_weights(name: str, tmp: str) -> dict:
    """Options that load fresh weights with the official shapes (speed does not depend on the
    values) from a file in ``tmp``, for generators whose published weights are downloads."""
    from generators import biggan, deepsim

    if name.startswith("deepsim-"):
        variant = name.removeprefix("deepsim-").replace("-", "_")
        state = deepsim.init_state_dict(variant)
    elif name.startswith("biggan-deep-"):
        state = biggan.init_state_dict(int(name.removeprefix("biggan-deep-")))
    else:
        return {}
    path = f"{tmp}/{name}.pt"
    torch.save(state, path)
    return {"weights": path, "verify": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--opt-generations", type=int, default=40)
    parser.add_argument("--decode-batch", type=int, default=20)
    parser.add_argument("--only-generators", action="store_true", help="run part (c) only")
    parser.add_argument("--generators", nargs="+", metavar="NAME", help="part (c) for these generators only")
    args = parser.parse_args()
    retain_freed_memory()  # as the xdream command does; (d) measures what it is worth
    print(f"torch threads: {torch.get_num_threads()}")
    if not args.only_generators:
        loop_and_optimisers(args)
    print(f"\n(c) decode throughput, batch {args.decode_batch}, no gradients")
    for name, (speed, dim, size) in generator_speeds(args.decode_batch, names=args.generators).items():
        print(f"    {name:18s} {speed:8.2f} img/s   latent {dim:6d}   {size}x{size} px")
    if not args.only_generators:
        allocator(args)


def allocator(args) -> None:
    print(f"\n(d) the loop of (a) in fresh processes, by malloc setting ({args.generations} generations)")
    d = allocator_effect(args.generations, args.population)
    for label, r in d.items():
        print(f"    {label:15s} {r['loop_s'] * 1e3:8.1f} ms/generation   {r['loop_faults']:9.0f} page faults/generation")
    print(f"    glibc default / retained time per generation = "
          f"{d['glibc default']['loop_s'] / d['retained']['loop_s']:.2f}")


def loop_and_optimisers(args) -> None:
    a = loop_vs_forward(args.generations, args.population)
    ratio = a["forward_s"] / a["loop_s"]
    print(f"\n(a) {a['generator']} -> {a['target']}, {a['population']} images per generation")
    print(f"    full loop      {a['loop_s'] * 1e3:8.1f} ms/generation  ({a['population'] / a['loop_s']:.1f} img/s)")
    print(f"    forward alone  {a['forward_s'] * 1e3:8.1f} ms/generation  ({a['population'] / a['forward_s']:.1f} img/s)")
    print(f"    loop throughput / forward-only throughput = {ratio:.3f}  (overhead {100 * (1 / ratio - 1):.1f}%)")

    print(f"\n(b) ask+tell per generation, d=4096, lambda=40, {args.opt_generations} generations")
    for label, times in optimiser_costs(4096, 40, args.opt_generations).items():
        print(f"    {label:20s} median {statistics.median(times) * 1e3:9.2f} ms   max {max(times) * 1e3:9.2f} ms")


if __name__ == "__main__":
    main()
