"""Loop overhead and optimiser cost, measured in one run.

(a) Throughput of the full evolution loop (ask, decode, respond, tell, and every file a
    generation writes) as a ratio to the generator + responder forward alone on the same
    batch: how much the framework costs on top of the unavoidable compute.
(b) ask + tell time per generation at d=4096, lambda=40 for every registered optimiser
    (median and max over the generations, and the median CPU time of the process, which a
    shared machine does not inflate), with random scores. Budgets: the default (``tpa-es``)
    <= 5 ms; a model-guided optimiser (``surrogate-tpa``) <= 1 s of CPU per generation, 5% of
    a 20 s rig generation. An optimiser that uses the
    generator's geometry (``geometry-cma``) is timed twice: built by hand (no generator: its
    full-space fallback) and with a basis from a random linear decode at d=4096 (ask + tell
    does not depend on where the basis came from); its one-time precomputation is not in the
    ask + tell figure, it is part (f).
(c) Decode throughput (images/s, no gradients) of every registered generator at a batch of
    20 on this machine. DeePSiM and BigGAN-deep run on fresh weights with the official shapes
    (speed does not depend on the values), so the benchmark needs no download.
(d) The loop of (a) in two fresh processes, glibc's malloc as shipped and with
    ``xdream.core.allocator.retain_freed_memory`` (which the ``xdream`` command and this script
    use): time and page faults per generation, and their ratio.
(e) The default job (``xdream evolve`` as shipped) idle and beside 2 busy processes (each a
    torch matmul loop with torch's default threads), and the slowdown ratio; beside it the same
    job as xdream ran it before ``xdream.core.threads`` (one spinning thread per core), and
    ``xdream evolve --threads 1`` (fewer threads than cores). Goal: loaded / idle <= 3x on 2 cores.

(f) The one-time geometry precomputation of ``geometry-cma`` (its default rank, points and
    iterations) per generator: seconds, metric-vector products, fraction of the metric's trace
    captured. DeePSiM runs on fresh weights as in (c) (the time does not depend on the values;
    the fraction does, so it is not shown for them).

    python experiments/bench_loop.py [--generations 10] [--opt-generations 40] [--decode-batch 20]
    python experiments/bench_loop.py --only-generators --generators biggan-deep-128 deepsim-fc6
    python experiments/bench_loop.py --only-load --load-generations 4
    python experiments/bench_loop.py --only-optimizers --opt-generations 40
    python experiments/bench_loop.py --only-geometry --geometry-generators fourier dcgan-faces
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xdream.core.threads import quiet_thread_pools, usable_cores

quiet_thread_pools()  # as the xdream command does, before torch loads its OpenMP runtime

import numpy as np  # noqa: E402
import torch  # noqa: E402

from xdream import Experiment, ExperimentConfig  # noqa: E402
from xdream.core import registry  # noqa: E402
from xdream.config.experiment import PluginConfig  # noqa: E402
from xdream.core.allocator import retain_freed_memory  # noqa: E402
from xdream.evolve.build import build_optimizer  # noqa: E402


def loop_vs_forward(generations: int, population: int) -> dict:
    config = ExperimentConfig.from_dict({"generations": generations + 1, "seed": 0,  # + the warm-up
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


BUSY_LOOP = "import torch\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"
# The default job as xdream ran it before xdream.core.threads: the Python API, torch's default of a
# spinning OpenMP thread per core (the wait policy is left unset in that process's environment).
BEFORE_JOB = ("import sys; from xdream import Experiment, ExperimentConfig; "
              "from xdream.core.allocator import retain_freed_memory; retain_freed_memory(); "
              "c = ExperimentConfig.from_dict({**ExperimentConfig().to_dict(), 'generations': int(sys.argv[1]), "
              "'threads': int(sys.argv[2])}); e = Experiment(c, run_dir=sys.argv[3]); e.run(progress=False); e.close()")


def job_seconds(run_dir: Path) -> tuple[float, int]:
    """Mean loop time per generation of a finished run from its log (generation 0, the warm-up,
    left out) and the threads its config records."""
    import tomllib

    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    times = [sum(r["timings"].values()) for r in log[1:]]
    return statistics.mean(times), tomllib.loads((run_dir / "config.toml").read_text())["threads"]


def default_job(variant: str, generations: int, run_dir: Path) -> tuple[float, int]:
    """The default job in a fresh process: ``before`` (see BEFORE_JOB), ``xdream`` (``xdream
    evolve``, its own thread choice) or ``one-thread`` (``xdream evolve --threads 1``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if variant == "before":
        command = [sys.executable, "-c", BEFORE_JOB, str(generations + 1), str(usable_cores()), str(run_dir)]
    else:
        command = [sys.executable, "-m", "xdream.cli", "evolve", "--generations", str(generations + 1),
                   "--quiet", "--output", str(run_dir)]
        command += ["--threads", "1"] if variant == "one-thread" else []
    subprocess.run(command, env=env, check=True, capture_output=True)
    return job_seconds(run_dir)


def load_effect(generations: int, busy: int = 2) -> dict[str, dict]:
    """variant -> {idle, loaded: (s/generation, threads)}: each variant's default job alone,
    then beside ``busy`` processes running torch matmul loops with torch's defaults."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("before", "xdream", "one-thread"):
            results[variant] = {"idle": default_job(variant, generations, Path(tmp) / f"{variant}-idle")}
        loaders = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP], env=env) for _ in range(busy)]
        try:
            time.sleep(3)  # the busy loops past their start-up
            for variant in results:
                results[variant]["loaded"] = default_job(variant, generations, Path(tmp) / f"{variant}-loaded")
        finally:
            for process in loaders:
                process.kill()
                process.wait()
    return results


def optimiser_costs(dim: int, population: int, generations: int) -> dict[str, list[tuple[float, float]]]:
    """Per optimiser, (wall, CPU) seconds of each ask + tell."""
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
        if optimizer.uses_generator_geometry:  # a second instance, with a basis, precomputed first
            rng = np.random.default_rng(0)
            optimizer = registry.create("optimizer", name, {"population": population, **options}, dim=dim, rng=rng)
            optimizer.attach_generator(random_linear_decode(dim), source="random-linear")
            optimizer.tell(optimizer.ask(), rng.standard_normal(optimizer.population))
            label += f" (basis of rank {optimizer.geometry_report()['rank']})"
            runners[label] = (optimizer, rng)
            results[label] = []
    # Round-robin over the optimisers, so a busy machine slows them all alike.
    for _ in range(generations):
        for label, (optimizer, rng) in runners.items():
            start, cpu = time.perf_counter(), time.process_time()
            codes = optimizer.ask()
            optimizer.tell(codes, rng.standard_normal(len(codes)))
            results[label].append((time.perf_counter() - start, time.process_time() - cpu))
    return results


def random_linear_decode(dim: int, size: int = 16, seed: int = 0):
    """A differentiable decode ``[B, dim] -> [B, 3, size, size]`` (a fixed random linear map)."""
    matrix = torch.as_tensor(np.random.default_rng(seed).standard_normal((3 * size * size, dim)) / np.sqrt(dim),
                             dtype=torch.float32)
    return lambda codes: (codes @ matrix.T).reshape(len(codes), 3, size, size)


def geometry_costs(names: list[str]) -> dict[str, dict]:
    """name -> geometry-cma's precomputation report on that generator (default options)."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            generator = registry.create("generator", name, _random_weights(name, tmp), device="cpu")
            plugin = PluginConfig("geometry-cma", {})
            optimizer = build_optimizer(plugin, generator, np.random.default_rng(0), budget=None, generations=1)
            optimizer.ask()
            results[name] = {**optimizer.geometry_report(), "dim": generator.latent_dim,
                             "fresh_weights": bool(_random_weights(name, tmp))}
            del generator, optimizer
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
    parser.add_argument("--only-load", action="store_true", help="run part (e) only")
    parser.add_argument("--load-generations", type=int, default=4, help="generations per job in part (e)")
    parser.add_argument("--generators", nargs="+", metavar="NAME", help="part (c) for these generators only")
    parser.add_argument("--only-optimizers", action="store_true", help="run part (b) only")
    parser.add_argument("--only-geometry", action="store_true", help="run part (f) only")
    parser.add_argument("--geometry-generators", nargs="+", metavar="NAME", default=["fourier", "dcgan-faces"],
                        help="part (f) for these generators (default: fourier dcgan-faces; deepsim-fc6 takes minutes)")
    args = parser.parse_args()
    retain_freed_memory()  # as the xdream command does; (d) measures what it is worth
    print(f"torch threads: {torch.get_num_threads()}")
    if args.only_load:
        load(args)
        return
    if args.only_geometry:
        geometry(args)
        return
    if args.only_optimizers:
        optimisers(args)
        return
    if not args.only_generators:
        loop_and_optimisers(args)
    print(f"\n(c) decode throughput, batch {args.decode_batch}, no gradients")
    for name, (speed, dim, size) in generator_speeds(args.decode_batch, names=args.generators).items():
        print(f"    {name:18s} {speed:8.2f} img/s   latent {dim:6d}   {size}x{size} px")
    if not args.only_generators:
        allocator(args)
        load(args)
        geometry(args)


def geometry(args) -> None:
    print("\n(f) geometry-cma's one-time precomputation (default options), per generator")
    for name, r in geometry_costs(args.geometry_generators).items():
        captured = "(fresh weights)" if r["fresh_weights"] else f"{100 * r['captured']:.1f}% of the trace"
        print(f"    {name:18s} d={r['dim']:5d}  rank {r['rank']:4d}  {r['seconds']:7.1f} s  "
              f"{r['products']} products x {r['points']} codes  captured {captured}")


def load(args) -> None:
    print(f"\n(e) the default job idle and beside 2 busy torch processes ({args.load_generations} generations "
          f"after a warm-up, {usable_cores()} cores, load average {os.getloadavg()[0]:.1f} at the start)")
    labels = {"before": "before (spinning, 1 thread/core)", "xdream": "xdream evolve (its choice)",
              "one-thread": "xdream evolve --threads 1"}
    for variant, r in load_effect(args.load_generations).items():
        (idle, t_idle), (loaded, t_loaded) = r["idle"], r["loaded"]
        print(f"    {labels[variant]:34s} idle {idle * 1e3:8.1f} ms/gen ({t_idle} threads)   loaded "
              f"{loaded * 1e3:8.1f} ms/gen ({t_loaded} threads)   loaded / idle = {loaded / idle:.2f}x")


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

    optimisers(args)


def optimisers(args) -> None:
    print(f"\n(b) ask+tell per generation, d=4096, lambda=40, {args.opt_generations} generations")
    for label, times in optimiser_costs(4096, 40, args.opt_generations).items():
        wall, cpu = [t[0] for t in times], [t[1] for t in times]
        print(f"    {label:34s} median {statistics.median(wall) * 1e3:9.2f} ms   max {max(wall) * 1e3:9.2f} ms"
              f"   CPU median {statistics.median(cpu) * 1e3:9.2f} ms")


if __name__ == "__main__":
    main()
