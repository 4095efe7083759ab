"""``xdream compare``: evolution vs gradient ascent vs natural images, on one target.

For one responder unit it runs the named evolution optimisers (each a normal run folder),
the gradient baselines (:mod:`xdream.gradient.baselines`) and scores a natural-image reference set
(:mod:`xdream.images.natural`). Every method's best images are re-scored with the same responder,
without transforms or noise. The folder gets ``compare.json``, ``table.md``/``table.csv``
(activation, ratio to the best natural image, evaluations or steps, wall time),
``trajectories.png``, one ``montage-<method>.png`` per method and ``report.html``.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from xdream.core import registry
from xdream.gradient.baselines import GradientSettings, prepare, run_gradient, write_gradient_dir
from xdream.config import ExperimentConfig, defaults, to_toml
from xdream.core.errors import ConfigError
from xdream.evolve.experiment import Experiment
from xdream.images.io import montage, save_png
from xdream.images.natural import load_reference
from xdream.images.plots import plot_curves
from xdream.runs.rundir import RunDir, atomic_write

RESULT = "compare.json"


@dataclass
class CompareSettings:
    """What to compare. ``optimizers`` and ``gradient`` name the methods; ``generations`` is
    per evolution run; ``steps``/``latent_steps`` are the gradient baselines' step counts;
    ``reference`` is a folder of photos (None: scikit-image's photographs). Target, generator
    and optimisers default to the defaults table's ``[compare]``."""

    target: str = field(default_factory=lambda: defaults("compare")["target"])
    generator: str = field(default_factory=lambda: defaults("compare")["generator"])
    optimizers: list[str] = field(default_factory=lambda: defaults("compare")["optimizers"])
    generations: int = 60
    gradient: list[str] = field(default_factory=lambda: ["featurevis", "latent"])
    steps: int = 512
    latent_steps: int = 256
    batch: int = 4
    size: int = 128
    input_size: int | None = None
    reference: str | None = None
    seed: int = 0
    top: int = 8


#: ``default`` is the full comparison (minutes on 2 CPU cores); ``quick`` checks the pipeline.
PRESETS = {
    "default": {},
    "quick": {"generations": 3, "steps": 6, "latent_steps": 6,
              "batch": 2, "size": 32, "input_size": 64, "top": 4},
}


def settings_for(preset: str, **overrides) -> CompareSettings:
    if preset not in PRESETS:
        raise ConfigError(f"unknown compare preset {preset!r}; valid: {', '.join(PRESETS)}")
    table = defaults("compare")  # a preset's own target, if any, is ``<preset>_target`` there
    target = {"target": table[f"{preset}_target"]} if f"{preset}_target" in table else {}
    values = {**target, **PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return CompareSettings(**values)


@dataclass
class MethodResult:
    """One row of the table plus what the report shows."""

    method: str
    kind: str  # evolution | gradient | natural
    best: float
    cost: int
    cost_unit: str
    seconds: float
    trajectory: list[tuple[float, float]]
    top_scores: list[float]
    folder: str | None = None
    ratio: float = math.nan


def _gradient_settings(s: CompareSettings, method: str) -> GradientSettings:
    steps = s.latent_steps if method == "latent" else s.steps
    return GradientSettings(method=method, steps=steps, size=s.size, batch=s.batch, seed=s.seed,
                            generator={"name": s.generator}, score_every=max(1, steps // 32))


def _responder_table(s: CompareSettings) -> dict:
    """The responder of the target (the registered one that accepts its spec) with its options."""
    return {"name": registry.responder_for_target(s.target), "target": s.target,
            **({"input_size": s.input_size} if s.input_size else {})}


def _evolution_config(s: CompareSettings, optimizer: str) -> ExperimentConfig:
    responder = _responder_table(s)
    return ExperimentConfig.from_dict({"seed": s.seed, "generations": s.generations, "generator": {"name": s.generator},
                                       "responder": responder, "optimizer": {"name": optimizer}})


class Comparison:
    """All checks happen in the constructor, before anything is written."""

    def __init__(self, settings: CompareSettings, output: str | Path | None = None):
        s = self.settings = settings
        if not s.optimizers and not s.gradient:
            raise ConfigError("compare needs at least one optimizer or gradient method")
        for name in ("generations", "steps", "latent_steps", "batch", "top"):
            if getattr(s, name) < 1:
                raise ConfigError(f"compare {name} must be >= 1, got {getattr(s, name)}")
        self.configs = {opt: _evolution_config(s, opt) for opt in s.optimizers}
        table = _responder_table(s)
        self.responder = registry.create("responder", table.pop("name"), table)
        self.gradient = {m: _gradient_settings(s, m) for m in s.gradient}
        for m, g in self.gradient.items():
            if m == "deepdream":
                raise ConfigError("compare runs featurevis, pixel and latent; run deepdream with xdream gradient")
            g.validate()
        self.parts = {m: prepare(self.responder, g) for m, g in self.gradient.items()}
        self.reference = load_reference(s.reference, size=self.responder.input_size)
        path = Path(output or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-compare")
        self.run = RunDir.create(path, to_toml({"kind": "compare", **{k: v for k, v in asdict(s).items() if v is not None}}),
                                 kind="compare")
        for sub in ("generations", "images"):  # evolution-only folders
            (self.run.path / sub).rmdir()

    # -- methods ---------------------------------------------------------------------------------
    def _evolution(self, optimizer: str, progress: bool) -> tuple[MethodResult, torch.Tensor]:
        folder = f"evolution-{optimizer}"
        start = time.perf_counter()
        experiment = Experiment(self.configs[optimizer], responder=self.responder, run_dir=self.run.path / folder)
        summary = experiment.run(progress=progress)
        seconds = time.perf_counter() - start
        codes, scores = [], []
        for g in range(summary.generations):
            arrays = experiment.run_dir.load_arrays(g)
            codes.append(arrays["codes"])
            scores.append(arrays["scores"])
        codes, scores = np.concatenate(codes), np.concatenate(scores)
        top = np.argsort(-np.nan_to_num(scores, nan=-np.inf))[: self.settings.top]
        with torch.no_grad():
            images = experiment.generator.decode(codes[top])
        rescored = np.asarray(self.responder.respond(images), dtype=np.float64)
        order = np.argsort(-rescored)
        records = experiment.run_dir.read_log()
        best_so_far = np.fmax.accumulate([r["best"] if r["best"] is not None else -np.inf for r in records])
        trajectory = [(r["evaluations"], float(b)) for r, b in zip(records, best_so_far)]
        result = MethodResult(optimizer, "evolution", float(rescored.max()), summary.evaluations, "evaluations",
                              seconds, trajectory, rescored[order].tolist(), folder)
        return result, images[order]

    def _gradient(self, method: str, progress: bool) -> tuple[MethodResult, torch.Tensor]:
        settings = self.gradient[method]
        start = time.perf_counter()
        outcome = run_gradient(self.responder, settings, self.parts[method], progress=progress)
        folder = f"gradient-{method}"
        write_gradient_dir(self.run.path / folder, settings, self.responder, outcome)
        seconds = time.perf_counter() - start
        order = np.argsort(-outcome.scores)
        best_so_far = np.fmax.accumulate([h["score"] for h in outcome.history])
        trajectory = [(h["step"] + 1, float(b)) for h, b in zip(outcome.history, best_so_far)]  # x: forward passes
        label = f"{method} ({settings.batch} image{'s' if settings.batch > 1 else ''})"
        result = MethodResult(label, "gradient", float(outcome.scores.max()), outcome.steps, "steps", seconds,
                              trajectory, outcome.scores[order].tolist(), folder)
        return result, outcome.images[order]

    def _natural(self) -> tuple[MethodResult, torch.Tensor, list[str]]:
        names, images = self.reference
        start = time.perf_counter()
        scores = np.asarray(self.responder.respond(images), dtype=np.float64)
        seconds = time.perf_counter() - start
        order = np.argsort(-scores)[: self.settings.top]
        result = MethodResult("natural images", "natural", float(scores.max()), len(scores), "images", seconds, [],
                              scores[order].tolist())
        return result, images[order], [names[i] for i in order]

    # -- the whole comparison ------------------------------------------------------------------------
    def run_all(self, progress: bool = False) -> list[MethodResult]:
        from tqdm.auto import tqdm

        results, tops = [], {}
        natural, natural_images, natural_names = self._natural()
        jobs = [("evolution", o) for o in self.settings.optimizers] + [("gradient", m) for m in self.settings.gradient]
        for kind, name in tqdm(jobs, disable=not progress, desc="compare", unit="method"):
            result, images = self._evolution(name, progress) if kind == "evolution" else self._gradient(name, progress)
            results.append(result)
            tops[result.method] = images
        results.append(natural)
        tops[natural.method] = natural_images
        for r in results:
            r.ratio = r.best / natural.best if natural.best > 0 else math.nan
        self._write(results, tops, natural_names)
        return results

    def _write(self, results: list[MethodResult], tops: dict, natural_names: list[str]) -> None:
        write_comparison(self.run, results, tops, title=self.settings.target,
                         hlines={"best natural image": results[-1].best},
                         record={"settings": asdict(self.settings), "responder": self.responder.describe(),
                                 "natural_top_names": natural_names})

    def close(self) -> None:
        self.responder.close()


def write_comparison(run: RunDir, results: list[MethodResult], tops: dict, *, title: str, hlines: dict[str, float],
                     record: dict, xlabel: str = "images scored (evolution) or gradient steps + 1",
                     activation: str = "activation") -> None:
    """A comparison folder's files: one montage per method with images in ``tops`` (method ->
    images, best first), ``trajectories.png``, ``table.md``/``table.csv`` and ``compare.json``
    (``record`` and the methods); ``activation`` names the table's activation column."""
    montages = {}
    for r in results:
        if r.method in tops:
            name = _montage_name(r.method, set(montages.values()))
            save_png(montage(tops[r.method]), run.path / name)
            montages[r.method] = name
    curves = {r.method: tuple(zip(*r.trajectory)) for r in results if r.trajectory}
    plot_curves(curves, run.path / "trajectories.png", xlabel=xlabel, ylabel="best activation so far", title=title,
                hlines=hlines, logx=True)
    atomic_write(run.path / "table.md", table_markdown(results, activation).encode())
    atomic_write(run.path / "table.csv", table_csv(results).encode())
    run.write_json(RESULT, {"kind": "compare", **record,
                            "methods": [{**asdict(r), "montage": montages.get(r.method)} for r in results]})


def _montage_name(method: str, taken: set[str]) -> str:
    stem = "montage-" + method.split(" ")[0].replace("/", "_")
    name, n = f"{stem}.png", 2
    while name in taken:
        name, n = f"{stem}-{n}.png", n + 1
    return name


COLUMNS = ("method", "activation", "ratio to best natural", "evaluations / steps", "wall time (s)")


def _row(r: MethodResult) -> list[str]:
    return [r.method, f"{r.best:.4g}", f"{r.ratio:.2f}" if math.isfinite(r.ratio) else "n/a",
            f"{r.cost} {r.cost_unit}", f"{r.seconds:.1f}"]


def table_markdown(results: list[MethodResult], activation: str = "activation") -> str:
    columns = (COLUMNS[0], activation, *COLUMNS[2:])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results]
    return "\n".join(lines) + "\n"


def table_csv(results: list[MethodResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["method", "kind", "activation", "ratio_to_best_natural", "cost", "cost_unit", "seconds"])
    for r in results:
        writer.writerow([r.method, r.kind, repr(r.best), repr(r.ratio), r.cost, r.cost_unit, f"{r.seconds:.3f}"])
    return buffer.getvalue()
