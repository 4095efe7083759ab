"""``xdream compare``: evolution vs gradient ascent vs natural images, on one target.

For one responder unit it runs the named evolution optimisers (each a normal run folder),
the gradient baselines (:mod:`xdream.gradient.baselines`) and scores a natural-image reference set
(:mod:`xdream.images.natural`). Every method's best images are re-scored with the same responder,
without transforms or noise. The folder gets ``compare.json``, ``table.md``/``table.csv``
(activation, ratio to the best natural image, evaluations or steps, wall time),
``trajectories.png``, one ``montage-<method>.png`` per method and ``report.html``.

``xdream compare --from-session RUN`` (:func:`compare_session`) makes the same table from what an
evolution run recorded; nothing is run or shown again. Each chosen thread of the run (a session's,
or a one-thread run's only one) is one method (its generator and optimiser); the natural reference
images the run showed with its generations are the natural row of each target (a session scores
them on every thread's target, so there is one natural row per distinct target, and a thread's
ratio is to the best natural image on its own target; noise-free where noise was simulated, as the
threads' activations and trajectories). The activation of a thread is the best
recorded score of the best images of its generations, the noise-free score where noise was
simulated (the images the optimiser ranked first by their noisy scores); it is not re-scored,
because the responder may be an animal on a rig, and a CNN's recorded scores already are its
responder's. The wall time of a thread is that of the generations it took part in, shared with
the threads shown in the same responder calls. Its montages are the recorded best image of a
thread's best generations and the best natural images.
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
from xdream.core.errors import ConfigError, RunDirError, choices_text
from xdream.evolve.experiment import Experiment
from xdream.images.io import load_image, montage, save_png
from xdream.images.natural import load_reference
from xdream.images.plots import plot_curves
from xdream.runs.rundir import RunDir, RunState, ThreadState, atomic_write, new_run_path

RESULT = "compare.json"
#: How ``--from-session`` scores a thread (the table's activation column says so).
RECORDED = "recorded best (noise-free where noise was simulated), not re-scored"


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
        raise ConfigError(f"unknown compare preset {preset!r}; valid: {choices_text(PRESETS)}")
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
    target: str | None = None  # set where methods ran on different targets (--from-session)


def _gradient_settings(s: CompareSettings, method: str) -> GradientSettings:
    steps = s.latent_steps if method == "latent" else s.steps
    used = {"generator": {"name": s.generator}} if method == "latent" else {"size": s.size}  # what it uses only
    return GradientSettings(method=method, steps=steps, batch=s.batch, seed=s.seed, score_every=max(1, steps // 32),
                            **used)


def _responder_table(s: CompareSettings) -> dict:
    """The responder of the target (the registered one that accepts its spec) with its options."""
    return {"name": registry.responder_for_target(s.target), "target": s.target,
            **({"input_size": s.input_size} if s.input_size else {})}


def _evolution_config(s: CompareSettings, optimizer: str) -> ExperimentConfig:
    return ExperimentConfig.from_dict({"seed": s.seed, "generations": s.generations, "generator": {"name": s.generator},
                                       "responder": _responder_table(s), "optimizer": {"name": optimizer}})


class Comparison:
    """All checks happen in the constructor, before anything is written, but for the weights
    files (this package does not import :mod:`xdream.weights`): ``xdream compare`` checks those
    before it builds one (:func:`xdream.cli.compare.check_weights`)."""

    def __init__(self, settings: CompareSettings, output: str | Path | None = None):
        s = self.settings = settings
        if not s.optimizers and not s.gradient:
            raise ConfigError("compare needs at least one optimizer or gradient method")
        for kind, names in (("optimizer", s.optimizers), ("gradient method", s.gradient)):
            twice = [n for i, n in enumerate(names) if n in names[:i]]
            if twice:  # it would run again into its own folder, after the first run
                raise ConfigError(f"compare names {kind} {twice[0]!r} twice; name each method once")
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
        path = Path(output or new_run_path("compare"))
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
        arrays = [experiment.run_dir.load_arrays(g) for g in range(summary.generations)]
        codes = np.concatenate([a["codes"] for a in arrays])
        scores = np.concatenate([a["scores"] for a in arrays])
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
        write_comparison(self.run, results, tops, title=self.settings.target,
                         hlines={"best natural image": natural.best},
                         record={"settings": asdict(self.settings), "responder": self.responder.describe(),
                                 "natural_top_names": natural_names, "threads": torch.get_num_threads()})
        return results

    def close(self) -> None:
        try:
            self.responder.close()
        finally:
            self.run.lock.release()


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
    """The table; with a target column when the methods ran on different targets."""
    columns = (COLUMNS[0], activation, *COLUMNS[2:])
    several = len({r.target for r in results}) > 1
    columns += ("target",) if several else ()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_row(r) + ([r.target or ""] if several else [])) + " |" for r in results]
    return "\n".join(lines) + "\n"


def table_csv(results: list[MethodResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["method", "kind", "activation", "ratio_to_best_natural", "cost", "cost_unit", "seconds"])
    for r in results:
        writer.writerow([r.method, r.kind, repr(r.best), repr(r.ratio), r.cost, r.cost_unit, f"{r.seconds:.3f}"])
    return buffer.getvalue()


# -- the threads of a recorded run (xdream compare --from-session) --------------------------------------
def compare_session(run: str | Path, output: str | Path | None = None, threads: list[str] | None = None,
                    top: int = 8) -> tuple[RunDir, list[MethodResult]]:
    """Write the comparison of ``threads`` (default: all) of the run in ``run`` into the new
    folder ``output``; returns it and the table's rows (threads, then one natural row per target).
    Everything is checked before the folder is made."""
    state = RunState.read(run)
    chosen = [state.thread(name) for name in dict.fromkeys(threads)] if threads else state.threads
    empty = [t.name for t in chosen if not t.generations]
    if empty:
        raise RunDirError(f"thread {empty[0]!r} of {state.path} has no finished generation to compare")
    results, tops = [], {}
    for t in chosen:
        result, images = _thread_result(t, state, top)
        results.append(result)
        tops[result.method] = images
    targets = list(dict.fromkeys(t.target_text for t in chosen))
    naturals = {}  # target -> (its natural row, the reference names best first)
    for text in targets:
        owner = next(t for t in chosen if t.target_text == text)
        natural = _natural_result(owner, label="natural images" + (f" on {text}" if len(targets) > 1 else ""),
                                  noise=state.noise)
        if natural is not None:
            naturals[text] = natural
    for r, t in zip(results, chosen):
        r.target = t.target_text
        natural = naturals.get(t.target_text)
        r.ratio = r.best / natural[0].best if natural is not None and natural[0].best > 0 else math.nan
    for text, (natural, _) in naturals.items():
        natural.ratio, natural.target = (1.0 if natural.best > 0 else math.nan), text
        results.append(natural)
    output = output or new_run_path("compare")
    out = RunDir.create(output, to_toml({"kind": "compare", "from_session": str(state.path),
                                         "threads": [t.name for t in chosen]}), subdirs=(), kind="compare")
    try:
        tops.update(_natural_images(state, naturals, top))
        write_comparison(
            out, results, tops, title=" ; ".join(targets),
            hlines={("best natural image" + (f" ({text})" if len(targets) > 1 else "")): n.best
                    for text, (n, _) in naturals.items()},
            record={"settings": {"from_session": str(state.path), "threads": [t.name for t in chosen], "top": top},
                    "session": str(state.path.resolve()), "activation": RECORDED,
                    "responder": {"target": " ; ".join(targets)},
                    "natural_top_names": [n for _, top_names in naturals.values() for n in top_names]},
            xlabel="images scored", activation=f"activation ({RECORDED})")
    finally:
        out.lock.release()
    return out, results


def _thread_result(t: ThreadState, state: RunState, top: int) -> tuple[MethodResult, torch.Tensor]:
    """A thread's row and the recorded best images of its best generations, best first."""
    ranked = []  # (activation, generation)
    for g, record in enumerate(t.records):
        if "best_index" not in record:
            continue
        score = record["best"]
        if state.noise:
            clean = t.run.load_arrays(g).get("clean_scores")
            score = float(clean[record["best_index"]]) if clean is not None else score
        ranked.append((score, g))
    activation = {g: s for s, g in ranked}  # per generation, as the trajectory draws it
    ranked = sorted(ranked, key=lambda x: (-x[0], x[1]))[:top]
    if not ranked:
        raise RunDirError(f"thread {t.name!r} of {state.path} has no image with a response to compare")
    missing = [g for _, g in ranked if not t.run.image_file("best", g).is_file()]
    if missing:
        raise RunDirError(f"{t.run.image_file('best', missing[0])} is missing (run with save_images = "
                          f"\"none\", or the file was deleted); compare needs each generation's best image")
    images = torch.stack([load_image(t.run.image_file("best", g)) for _, g in ranked])
    best_so_far = np.fmax.accumulate([activation.get(g, -np.inf) for g in range(len(t.records))])
    trajectory = [(r["evaluations"], float(b)) for r, b in zip(t.records, best_so_far)]
    result = MethodResult(f"{t.name} ({t.generator} + {t.optimizer})", "thread", float(ranked[0][0]), t.evaluations,
                          "evaluations", state.seconds(t), trajectory, [s for s, _ in ranked], folder=None)
    return result, images


def _natural_result(t: ThreadState, label: str, noise: bool = False) -> tuple[MethodResult, list[str]] | None:
    """The natural reference images scored on ``t``'s target: their best score each (an image
    is shown in several generations), best first; None if the run showed none. With ``noise``
    the noise-free scores (the generation files' ``reference_clean_scores``), as the threads'."""
    best: dict[str, float] = {}
    for g, r in enumerate(t.records):
        scores = r.get("reference_scores", [])
        if noise and r.get("reference_names"):
            clean = t.run.load_arrays(g).get("reference_clean_scores")
            scores = scores if clean is None else clean.tolist()
        for name, score in zip(r.get("reference_names", []), scores):
            if score is not None and math.isfinite(score):
                best[name] = max(score, best.get(name, -math.inf))
    if not best:
        return None
    ranked = sorted(best.items(), key=lambda x: -x[1])
    shown = sum(len(r.get("reference_names", [])) for r in t.records)
    result = MethodResult(label, "natural", ranked[0][1], shown, "images", 0.0, [], [s for _, s in ranked])
    return result, [n for n, _ in ranked]


def _natural_images(state: RunState, naturals: dict, top: int) -> dict[str, torch.Tensor]:
    """The best natural images of each natural row, read from the run's reference set (left
    out where that set can no longer be read: its table row stays)."""
    if not naturals:
        return {}
    folder = state.config.get("reference", {}).get("folder")
    try:
        names, images = load_reference(folder, size=128, crops=False)
    except (ConfigError, OSError):
        return {}
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for natural, ranked in naturals.values():
        rows = [index[n] for n in ranked[:top] if n in index]
        if rows:
            out[natural.method] = images[rows]
    return out
