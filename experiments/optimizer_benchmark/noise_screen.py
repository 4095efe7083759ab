"""Noise remedies screened on ``tpa-es``: is the gap under noise in the ``power`` table a matter
of noise handling?

Each variant is paired with plain ``tpa-es`` on the ``power`` preset's units, generator,
responder and budget (same seed, so the same starting population), under Wang & Ponce's
multiplicative noise. The variants are the textbook remedies for noisy evolution strategies:

- ``repeat-2``: every image shown twice and its two noisy scores averaged (re-evaluation;
  Hansen et al., IEEE TEC 13(1), 2009, UH-CMA-ES's measure of rank changes rests on it);
- ``population-N``: larger populations (fewer, better-informed generations) and smaller ones;
- ``mean-rate-C``: the mean moved by ``C`` times the recombined step (the mean's learning rate
  ``c_m`` of Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772, who notes that
  ``c_m < 1`` can help on noisy functions): wide samples, careful moves;
- ``cap-A-B``: the step size capped by a schedule falling geometrically from ``A`` to ``B``
  over the run (what TPA does on its own without noise, where it ends near 0.6).

Diagnostic, not counted as evaluations: the noise-free score of the distribution's mean after
every generation (``mean_clean_best``), to see whether showing the mean could help.

Scores are normalised per unit by the best noise-free score any run reached on it, over this
screen and the committed ``power-result/records.csv``, as ``analyse.py`` does. Writes
``records.jsonl`` and ``table.md`` (per variant and noise level: mean normalised score, and the
paired difference to ``tpa-es`` with its 95% t interval, Wilcoxon p and pairs won)::

    python experiments/optimizer_benchmark/noise_screen.py            # about 11 min on 2 cores
    python experiments/optimizer_benchmark/noise_screen.py --seeds 0 1 --noise 0.2
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tomllib
from collections import defaultdict
from multiprocessing import get_context
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from analyse import paired_test  # noqa: E402

from xdream.optimizers.tpa_es import TPAES  # noqa: E402

BASELINE = "tpa-es"
VARIANTS = {  # label -> tpa-es options, and the screen's own remedies
    BASELINE: {},
    "repeat-2": {"repeat": 2},
    "population-12": {"population": 12},
    "population-16": {"population": 16},
    "population-48": {"population": 48},
    "population-96": {"population": 96},
    "mean-rate-0.25": {"mean_rate": 0.25},
    "mean-rate-0.5": {"mean_rate": 0.5},
    "mean-rate-1.5": {"mean_rate": 1.5},
    "mean-rate-2": {"mean_rate": 2.0},
    "cap-2-0.5": {"cap": (2.0, 0.5)},
    "cap-1.5-0.3": {"cap": (1.5, 0.3)},
}


class RescaledMeanTPA(TPAES):
    """``tpa-es`` whose mean moves ``mean_rate`` times the recombined step; the samples keep
    their width and the line samples their direction."""

    def __init__(self, dim, rng, *, mean_rate: float, **options):
        super().__init__(dim, rng, **options)
        self.mean_rate = float(mean_rate)

    def _tell(self, codes, scores) -> None:
        before = self.mean.copy()
        super()._tell(codes, scores)
        self.mean = before + self.mean_rate * (self.mean - before)


def power_setup() -> dict:
    """The ``power`` preset's base and units (``power.toml``)."""
    sweep = tomllib.loads((HERE / "power.toml").read_text())
    return {"base": sweep["base"], "targets": sweep["grid"]["target"]}


def screen_run(label: str, target: str, noise: float, seed: int, budget: int | None = None) -> dict:
    """One paired run: variant ``label`` of ``tpa-es`` on ``target`` at ``noise``; ``budget``
    (evaluations) defaults to the preset's."""
    import torch

    from xdream.core import registry

    base = power_setup()["base"]
    budget = budget or base["budget"]
    remedy = dict(VARIANTS[label])
    repeat, cap, mean_rate = remedy.pop("repeat", 1), remedy.pop("cap", None), remedy.pop("mean_rate", None)
    gen_options, resp_options = dict(base["generator"]), dict(base["responder"])
    generator = registry.create("generator", gen_options.pop("name"), gen_options, device="cpu")
    responder = registry.create("responder", resp_options.pop("name"), {**resp_options, "target": target},
                                device="cpu")
    noise_model = registry.create("noise", "gaussian", {"level": noise})
    rng, noise_rng = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    kwargs = dict(sampler=generator.sample, budget=budget, init=generator.initial_code(), **remedy)
    optimizer = (TPAES(generator.latent_dim, rng, **kwargs) if mean_rate is None
                 else RescaledMeanTPA(generator.latent_dim, rng, mean_rate=mean_rate, **kwargs))
    evaluations = shown = 0
    clean_best = mean_clean_best = -math.inf
    with torch.no_grad():
        while evaluations + repeat * optimizer.population <= budget:
            codes = optimizer.ask()
            clean = responder.respond(generator.decode(codes))
            noisy = np.mean([noise_model(clean, noise_rng) for _ in range(repeat)], axis=0)
            optimizer.tell(codes, noisy)
            evaluations, shown = evaluations + repeat * len(codes), shown + len(codes)
            clean_best = max(clean_best, float(np.max(clean)))
            if cap:
                optimizer.sigma = min(optimizer.sigma, cap[0] * (cap[1] / cap[0]) ** (evaluations / budget))
            mean_image = generator.decode(optimizer.mean[None].astype(np.float32))
            mean_clean_best = max(mean_clean_best, float(responder.respond(mean_image)[0]))
    return {"variant": label, "target": target, "noise": noise, "seed": seed, "evaluations": evaluations,
            "images": shown, "clean_best": clean_best, "mean_clean_best": mean_clean_best,
            "final_sigma": optimizer.sigma}


def _one_thread_worker() -> None:
    """A pool worker: one torch and one BLAS thread, so two workers share 2 cores."""
    from xdream.core.threads import quiet_numpy_blas, use_threads

    use_threads(1)
    quiet_numpy_blas()


def unit_bests(records: list[dict]) -> dict[str, float]:
    """Best noise-free score per target over ``records`` and the committed power table."""
    best = defaultdict(lambda: -math.inf)
    with open(HERE / "power-result" / "records.csv") as f:
        for row in csv.DictReader(f):
            if row["clean_best"]:
                target = f"efficientnet_lite0:{row['target']}"
                best[target] = max(best[target], float(row["clean_best"]))
    for r in records:
        best[r["target"]] = max(best[r["target"]], r["clean_best"])
    return best


def table_markdown(records: list[dict]) -> str:
    """Per variant and noise level: mean normalised score (and the mean's), paired difference
    to the baseline."""
    best = unit_bests(records)
    score = {(r["variant"], r["target"], r["noise"], r["seed"]): r["clean_best"] / best[r["target"]] for r in records}
    of_mean = defaultdict(list)
    for r in records:
        of_mean[(r["variant"], r["noise"])].append(r["mean_clean_best"] / best[r["target"]])
    noises = sorted({r["noise"] for r in records})
    lines = ["| variant | noise | n | mean normalised | its mean's | vs tpa-es (95% CI) | Wilcoxon p | pairs won |",
             "|---|---|---|---|---|---|---|---|"]
    for label in dict.fromkeys(r["variant"] for r in records):
        for noise in noises:
            keys = [k for k in score if k[0] == label and k[2] == noise]
            if not keys:
                continue
            cell = f"| {label} | {noise:g} | {len(keys)} | {np.mean([score[k] for k in keys]):.3f} | " \
                   f"{np.mean(of_mean[(label, noise)]):.3f} |"
            diffs = [score[k] - score[(BASELINE, *k[1:])] for k in keys if (BASELINE, *k[1:]) in score]
            if label == BASELINE or not diffs:
                lines.append(cell + " | | |")
                continue
            t = paired_test(diffs)
            lines.append(cell + f" {t['mean']:+.3f} ± {t['half']:.3f} | {t['p']:.2g} | {t['wins']}/{t['n']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--targets", nargs="+", help="default: the power preset's 8 units")
    parser.add_argument("--noise", nargs="+", type=float, default=[0.2, 0.5])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--budget", type=int, help="evaluations per run (default: the power preset's)")
    parser.add_argument("--workers", type=int, default=2, help="processes; 1 runs in this one")
    parser.add_argument("--output", type=Path, default=HERE / "noise-screen-result")
    args = parser.parse_args(argv)
    variants = list(dict.fromkeys([BASELINE, *args.variants]))
    setup = power_setup()
    targets, budget = args.targets or setup["targets"], args.budget or setup["base"]["budget"]
    jobs = [(v, t, n, s, budget) for v in variants for t in targets for n in args.noise for s in args.seeds]
    if args.workers == 1:  # in this process, with its threads as they are
        records = [screen_run(*job) for job in jobs]
    else:
        with get_context("spawn").Pool(args.workers, initializer=_one_thread_worker) as pool:
            records = pool.starmap(screen_run, jobs)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    table = table_markdown(records)
    (args.output / "table.md").write_text(
        f"# Noise remedies on tpa-es ({len(targets)} units x seeds {args.seeds} x noise {args.noise}, "
        f"{budget} evaluations)\n\n{table}")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
