"""The closed evolution loop and its run directory.

One generation: ``optimizer.ask()`` -> codes; ``generator.decode`` -> images; the images,
with the generation's natural reference images appended (config ``[reference]``), go to
``responder.respond`` as one batch, and under ``unscored = "reshow"`` the unscored ones go
again (:mod:`xdream.evolve.presentation`); ``optimizer.tell`` gets the evolved images' scores only;
then the generation's codes, scores, best image and montage are written, a log line appended
and the checkpoint replaced. Everything random derives from the config's one seed, so a
resumed run continues bit-identically.

``evaluations`` counts the evolved images told to the optimiser: the budget and the
optimiser's schedules see only these. ``presented`` counts every image sent to the responder
(reference images and re-shows included), the number that costs time on a rig.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from xdream.core import registry
from xdream.config import ExperimentConfig, read_toml, to_toml
from xdream.core.errors import RunDirError
from xdream.core.generator import Generator
from xdream.images.io import montage, save_png
from xdream.core.optimizer import Optimizer
from xdream.evolve.presentation import Presentation, present
from xdream.evolve.reference import ReferenceCycle
from xdream.core.responder import NoisyResponder, Responder
from xdream.runs.rundir import RunDir
from xdream.core.seeding import derive_rngs


#: Per-generation values kept for the trajectory plot (and in the checkpoint).
HISTORY_KEYS = ("best", "mean", "clean_best", "reference_mean")


@dataclass
class Summary:
    """What a finished (or stopped) run reached and where its results are."""

    run_dir: Path
    generations: int
    evaluations: int
    initial_best: float
    final_best: float
    best_generation: int
    stopped_early: bool
    presented: int | None = None  # images shown, references and re-shows included

    @property
    def improvement(self) -> float:
        """Final best over the first generation's best (NaN when that is not positive)."""
        return self.final_best / self.initial_best if self.initial_best > 0 else math.nan

    def lines(self) -> list[str]:
        ratio = f" ({self.improvement:.2f}x)" if math.isfinite(self.improvement) else ""
        status = "stopped early; resume with: xdream evolve --resume " + str(self.run_dir) if self.stopped_early else "finished"
        shown = f" ({self.presented} images shown)" if self.presented not in (None, self.evaluations) else ""
        return [
            f"{status}: {self.generations} generations, {self.evaluations} evaluations{shown}",
            f"best score: first generation {self.initial_best:.4g} -> final {self.final_best:.4g}{ratio}"
            f" (generation {self.best_generation})",
            f"results: {self.run_dir}  (best.png, images/, trajectory.png, log.jsonl, summary.json)",
        ]


class Experiment:
    """An evolution run built from one validated config.

    ``generator`` and ``responder`` may be passed as objects (Python API: your own
    ``nn.Module`` through ``TorchUnit.from_module``, say); otherwise they are built by name from
    the config. All validation happens before anything is written to disk.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        generator: Generator | None = None,
        responder: Responder | None = None,
        run_dir: str | Path | None = None,
        progress: bool = False,
        _resume: RunDir | None = None,
    ):
        self.config = config
        rngs = derive_rngs(config.seed)
        self.generator = generator or registry.create(
            "generator", config.generator.name, config.generator.options, device=config.device
        )
        # Reference images are read and counted before the responder connects or anything is written.
        self.reference = None if config.reference is None else \
            ReferenceCycle.load(config.reference, self.generator.image_size)
        responder = responder or registry.create(
            "responder", config.responder.name, config.responder.options, device=config.device
        )
        if config.noise is not None:
            noise = registry.create("noise", config.noise.name, config.noise.options)
            responder = NoisyResponder(responder, noise, rngs["noise"])
        self.responder = responder
        self.noise_rng = rngs["noise"]
        self.start = self.inversion = None
        if _resume is None:  # a resumed run has its state already
            from xdream.evolve.start import invert_start

            started = invert_start(config, self.generator, responder, rngs["inversion"], progress=progress)
            if started is not None:
                self.start, self.inversion = started
        self.optimizer: Optimizer = registry.create(
            "optimizer",
            config.optimizer.name,
            config.optimizer.options,
            dim=self.generator.latent_dim,
            rng=rngs["optimizer"],
            sampler=self.generator.sample,
            budget=config.budget,
            init=self.generator.initial_code() if self.inversion is None else self.inversion.code,
        )
        if config.budget is None:
            # A run given in generations: schedules see its length in evaluations.
            self.optimizer.budget = config.generations * int(self.optimizer.population)
        self.generation = 0
        self.evaluations = 0
        self.presented = 0
        self.best_score = -math.inf
        self.best_generation = -1
        self.history: list[dict] = []  # per generation: best, mean (clean best, reference mean)
        if _resume is not None:
            self.run_dir = _resume
            self._restore()
        else:
            path = run_dir or config.output or _default_output(config)
            self.run_dir = RunDir.create(path, to_toml({**config.to_dict(), "output": str(path)}))
            if self.inversion is not None:
                from xdream.evolve.start import save_start

                save_start(self.run_dir, self.start, self.inversion)

    # -- construction from disk ------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | Path, **kwargs) -> "Experiment":
        return cls(ExperimentConfig.from_dict(read_toml(path)), **kwargs)

    @classmethod
    def resume(cls, path: str | Path, **components) -> "Experiment":
        """Continue the run in ``path`` from its last checkpoint (pass the same custom
        generator/responder objects if the run was started with them)."""
        run = RunDir.open(path)
        config = ExperimentConfig.from_dict(read_toml(run.path / "config.toml"))
        return cls(config, _resume=run, **components)

    def _restore(self) -> None:
        state = self.run_dir.load_checkpoint()
        if state is None:  # killed before the first generation finished: start over
            self.run_dir.rewind(0)
            return
        self.optimizer.load_state_dict(state["optimizer"])
        self.noise_rng.bit_generator.state = state["noise_rng"]
        for key in ("generation", "evaluations", "best_score", "best_generation", "history"):
            setattr(self, key, state[key])
        self.presented = state.get("presented", self.evaluations)
        then, now = state.get("reference_names") or [], [] if self.reference is None else self.reference.names
        if then != now:  # the cycle would show other images than the run did
            change = f"{len(then)} images then, {len(now)} now" if len(then) != len(now) else "other file names"
            raise RunDirError(f"the reference images of {self.run_dir.path} changed since the run started "
                              f"({change}); restore the folder to resume")
        self.run_dir.rewind(self.generation)

    def _checkpoint(self) -> None:
        self.run_dir.save_checkpoint(
            {
                "optimizer": self.optimizer.state_dict(),
                "noise_rng": self.noise_rng.bit_generator.state,
                "generation": self.generation,
                "evaluations": self.evaluations,
                "presented": self.presented,
                "reference_names": None if self.reference is None else self.reference.names,
                "best_score": self.best_score,
                "best_generation": self.best_generation,
                "history": self.history,
            }
        )

    # -- the loop -----------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        if self.config.budget is not None:
            return self.evaluations >= self.config.budget
        return self.generation >= self.config.generations

    def step(self) -> dict:
        """Run one generation, write its files, checkpoint; return its log record."""
        t = [time.perf_counter()]
        codes = self.optimizer.ask()
        t.append(time.perf_counter())
        with torch.no_grad():
            images = self.generator.decode(codes)
        t.append(time.perf_counter())
        reference_index, reference_images = np.zeros(0, dtype=np.int64), None
        if self.reference is not None:
            reference_index, reference_images = self.reference.batch(self.generation, images)
        outcome = present(self.responder, images, run_dir=self.run_dir.path, generation=self.generation,
                        reference_images=reference_images, reference_index=reference_index,
                        reshow_attempts=self.config.reshow_attempts if self.config.unscored == "reshow" else 0)
        t.append(time.perf_counter())
        self.optimizer.tell(codes, outcome.scores)
        t.append(time.perf_counter())
        record = self._save_generation(codes, images, outcome, reference_index)
        t.append(time.perf_counter())
        record["timings"] = {
            name: t[i + 1] - t[i] for i, name in enumerate(("ask", "decode", "respond", "tell", "save"))
        }
        self.run_dir.append_log(record)
        self._checkpoint()
        return record

    def _save_generation(self, codes, images, outcome: Presentation, reference_index: np.ndarray) -> dict:
        g, scores, clean = self.generation, outcome.scores, outcome.clean
        arrays = {"codes": codes.astype(np.float32), "scores": scores}
        if clean is not None:
            arrays["clean_scores"] = clean
        if self.config.unscored == "reshow":
            arrays["shown"] = outcome.shown
        if self.reference is not None:
            arrays.update(reference_scores=outcome.reference_scores, reference_index=reference_index)
            if outcome.reference_clean is not None:
                arrays["reference_clean_scores"] = outcome.reference_clean
        self.run_dir.save_arrays(g, **arrays)
        finite = np.isfinite(scores)
        record = {
            "generation": g,
            "evaluations": self.evaluations + len(scores),
            "presented": self.presented + outcome.presented,
            "scores": scores.tolist(),
            "best": float(scores[finite].max()) if finite.any() else math.nan,
            "mean": float(scores[finite].mean()) if finite.any() else math.nan,
            "n_nan": int((~finite).sum()),
            "reshown": outcome.reshown,
        }
        if clean is not None:
            record["clean_best"] = float(np.nanmax(clean)) if np.isfinite(clean).any() else math.nan
        if self.reference is not None:
            ref = outcome.reference_scores
            record["reference_names"] = [self.reference.names[k] for k in reference_index]
            record["reference_scores"] = ref.tolist()
            record["reference_mean"] = float(np.nanmean(ref)) if np.isfinite(ref).any() else math.nan
        if finite.any():
            best = int(np.flatnonzero(finite)[np.argmax(scores[finite])])
            record["best_index"] = best
            if self.config.save_images != "none":
                save_png(images[best], self.run_dir.image_file("best", g))
            if record["best"] > self.best_score:
                self.best_score, self.best_generation = record["best"], g
                save_png(images[best], self.run_dir.path / "best.png")
        if self.config.save_images == "all":
            save_png(montage(images), self.run_dir.image_file("montage", g))
        self.history.append({k: record[k] for k in HISTORY_KEYS if k in record})
        self.generation += 1
        self.evaluations += len(scores)
        self.presented += outcome.presented
        return record

    def run(self, *, progress: bool = True, should_stop: Callable[[], bool] | None = None,
            on_generation: Callable[[dict], None] | None = None) -> Summary:
        """Run until the generation count or evaluation budget is reached, or until
        ``should_stop()`` turns true (checked after each generation, so nothing is lost).
        ``on_generation(record)`` is called after each saved generation (e.g. a live report)."""
        from tqdm.auto import tqdm

        total = self.config.budget if self.config.budget is not None else self.config.generations
        unit = "eval" if self.config.budget is not None else "gen"
        done = self.evaluations if self.config.budget is not None else self.generation
        stopped = False
        with tqdm(total=total, initial=done, unit=unit, disable=not progress, dynamic_ncols=True) as bar:
            while not self.done:
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                record = self.step()
                bar.set_postfix(gen=record["generation"], best=f"{record['best']:.3g}",
                                mean=f"{record['mean']:.3g}", refresh=False)
                if on_generation is not None:
                    on_generation(record)
                bar.update(len(record["scores"]) if self.config.budget is not None else 1)
        return self.finish(stopped_early=stopped)

    def finish(self, *, stopped_early: bool = False) -> Summary:
        """Write summary.json and the trajectory plot; return the summary."""
        if not self.history:
            raise RunDirError(f"run {self.run_dir.path} has no finished generation to summarise")
        from xdream.images.plots import plot_trajectory

        summary = Summary(
            run_dir=self.run_dir.path,
            generations=self.generation,
            evaluations=self.evaluations,
            initial_best=self.history[0]["best"],
            final_best=self.best_score,
            best_generation=self.best_generation,
            stopped_early=stopped_early,
            presented=self.presented,
        )
        self.run_dir.write_json(
            "summary.json",
            {**{k: getattr(summary, k) for k in ("generations", "evaluations", "presented", "initial_best",
                                                 "final_best", "best_generation", "stopped_early")},
             "improvement": summary.improvement, "config": self.config.to_dict()},
        )
        plot_trajectory(self.history, self.run_dir.path / "trajectory.png", title=self._title())
        return summary

    def _title(self) -> str:
        c = self.config
        target = c.responder.options.get("target", c.responder.name)
        return f"{c.optimizer.name} on {c.generator.name} -> {target}"

    def close(self) -> None:
        self.responder.close()


def _default_output(config: ExperimentConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.generator.name}-{config.optimizer.name}"


