"""The closed evolution loop and its run directory.

One generation: ``optimizer.ask()`` -> codes; ``generator.decode`` -> images; the images,
with the generation's natural reference images appended (config ``[reference]``), go to
``responder.respond`` as one batch, and under ``unscored = "reshow"`` the unscored ones go
again (:mod:`xdream.evolve.presentation`); ``optimizer.tell`` gets the evolved images' scores only;
then the generation's codes, scores, best image and montage are written, a log line appended
and the checkpoint replaced. Everything random derives from the config's one seed, so a
resumed run continues bit-identically.

``evaluations`` counts the evolved images told to the optimiser: the budget and the
optimiser's schedules see only these; the last generation of a run given a budget is
trimmed (its remaining codes are told as unscored, never shown) so evaluations never exceed
the budget.

A resume proves what it continues from (:meth:`Experiment.resume`): the checkpoint's
SHA-256, the config and the components against the checkpoint's record of them, and the log
and every generation file against the checkpoint's copy and digests; a mismatch is a one-line
:class:`RunDirError` and nothing is changed. ``presented`` counts every image sent to the responder
(reference images and re-shows included), the number that costs time on a rig.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from xdream.core import registry
from xdream.config import ExperimentConfig, read_toml, to_toml
from xdream.config.experiment import check_device
from xdream.core.errors import ConfigError, RunDirError
from xdream.runs.fingerprint import changed_config_error, component_record, config_changes, config_fingerprint
from xdream.core.generator import Generator
from xdream.core.optimizer import Optimizer
from xdream.evolve.build import build_optimizer
from xdream.evolve.presentation import Presentation, present
from xdream.evolve.record import save_generation
from xdream.evolve.reference import ReferenceCycle
from xdream.core.responder import NoisyResponder, Responder
from xdream.runs.rundir import CONFIG, SUMMARY, RunDir
from xdream.core.seeding import derive_rngs
from xdream.core.threads import use_threads


#: Config keys a resume can never take changed (``--allow-changed`` refuses them too).
FIXED_ON_RESUME = {"seed": "the run's random state is in its checkpoint",
                   "optimizer.name": "the checkpoint holds the state of the run's optimiser",
                   "generator.name": "the checkpoint's codes are in the run's generator's latent space"}
#: Decoding works on at most this many codes at a time (the decoder's activations stay small).
DECODE_CHUNK = 64


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
        status = f"stopped before its end; resume with: xdream evolve --resume {self.run_dir}" \
            if self.stopped_early else "finished"
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
    the config. The run records what it actually used (:func:`xdream.runs.fingerprint.component_record`),
    and a resume without the same objects is refused. All validation happens before anything
    is written to disk. The run directory's write lock is held from construction until
    :meth:`close` (or the end of :meth:`run`).

    The config's ``threads`` sets torch's intra-op threads (process-wide) before anything is
    built; left out, the process's current count is kept. Either way ``self.config.threads`` is
    the count used, and it is what the run's ``config.toml`` records.
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
        _state: dict | None = None,
        _allow_changed: tuple[str, ...] = (),
    ):
        if config.threads is None:
            config = dataclasses.replace(config, threads=torch.get_num_threads())
        else:
            use_threads(config.threads)
        self.config = config
        self.custom = [k for k, v in (("generator", generator), ("responder", responder)) if v is not None]
        if _state is not None:
            _check_custom(_resume, _state, self.custom)
        check_device(config.device)
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
        self.components = {"generator": component_record(self.generator), "responder": component_record(responder)}
        if _state is not None:
            _check_components(_resume, _state["components"], self.components, _allow_changed)
        if config.noise is not None:
            noise = registry.create("noise", config.noise.name, config.noise.options)
            responder = NoisyResponder(responder, noise, rngs["noise"])
        self.responder = responder
        self.noise_rng = rngs["noise"]
        population = config.optimizer.options.get("population")
        if isinstance(population, int):  # before the optimiser builds its first population
            _check_memory(population, self.generator.image_size, config.save_images)
        self.start = self.inversion = None
        if _state is None:  # a resumed run has its state already
            from xdream.evolve.start import invert_start

            started = invert_start(config, self.generator, responder, rngs["inversion"], progress=progress)
            if started is not None:
                self.start, self.inversion = started
        self.optimizer: Optimizer = build_optimizer(
            config.optimizer, self.generator, rngs["optimizer"], budget=config.budget, generations=config.generations,
            init=None if self.inversion is None else self.inversion.code)
        self.generation = 0
        self.evaluations = 0
        self.presented = 0
        self.checkpointed = 0  # generations the checkpoint on disk holds
        self.best_score = -math.inf
        self.best_generation = -1
        self.history: list[dict] = []  # per generation: best, mean (clean best, reference mean)
        self.log_lines: list[str] = []  # the log as written, kept in the checkpoint (a resume checks it)
        self.digests: list[str] = []  # SHA-256 of each generation's file
        if _resume is not None:
            self.run_dir = _resume
            if _state is not None:
                self._restore(_state)
            else:  # no generation finished (or --restart): start afresh in the run's folder
                self.run_dir.rewind(0, [])
                self._save_start()
        else:
            path = run_dir or config.output or _default_output(config)
            toml = to_toml({**config.to_dict(), "output": str(path)})
            self.run_dir = RunDir.create(path, _custom_note(self.custom, self.components) + toml)
            try:
                self._save_start()
            except BaseException:
                self.run_dir.lock.release()
                raise

    def _save_start(self) -> None:
        if self.inversion is not None:
            from xdream.evolve.start import save_start

            save_start(self.run_dir, self.start, self.inversion)

    # -- construction from disk ------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | Path, **kwargs) -> "Experiment":
        return cls(ExperimentConfig.from_dict(read_toml(path)), **kwargs)

    @classmethod
    def resume(cls, path: str | Path, *, allow_changed=(), repair: bool = False, restart: bool = False,
               **components) -> "Experiment":
        """Continue the run in ``path`` from its last checkpoint (pass the same custom
        generator/responder objects if the run was started with them).

        Before anything is built or changed: the checkpoint's SHA-256, the config against the
        checkpoint's (``allow_changed``: dotted keys that may differ, e.g. ``generations`` to
        extend a run), the log and every generation file against the checkpoint's copy and
        digests (``repair``: rebuild the log from the checkpoint's copy). Without a
        checkpoint, a run whose later generations exist is refused; ``restart`` moves
        everything but the config into ``RUN/discarded-<time>/`` and starts over."""
        run = RunDir.open(path)
        try:
            run.clean_temp_files()
            data = read_toml(run.path / CONFIG)
            if restart:
                config = ExperimentConfig.from_dict(data)
                run.set_aside()
                return cls(config, _resume=run, **components)
            state = run.load_checkpoint()
            if state is None:
                _refuse_without_checkpoint(run)
                return cls(ExperimentConfig.from_dict(data), _resume=run, **components)
            _check_config(run, state, data, tuple(allow_changed))
            if repair:  # only a log whose generation files all match the checkpoint is rebuilt
                run.verify([], state["digests"])
                run.repair_log(state["log_lines"])
            run.verify(state["log_lines"], state["digests"])
            return cls(ExperimentConfig.from_dict(data), _resume=run, _state=state,
                       _allow_changed=tuple(allow_changed), **components)
        except BaseException:
            run.lock.release()
            raise

    def _restore(self, state: dict) -> None:
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError, TypeError) as e:
            raise RunDirError(f"the checkpoint of {self.run_dir.path} does not fit optimiser "
                              f"{self.config.optimizer.name!r} ({type(e).__name__}: {e}); restore config.toml") from None
        self.noise_rng.bit_generator.state = state["noise_rng"]
        for key in ("generation", "evaluations", "best_score", "best_generation", "history", "log_lines", "digests"):
            setattr(self, key, state[key])
        self.checkpointed = self.generation
        self.presented = state.get("presented", self.evaluations)
        then, now = state.get("reference_names") or [], [] if self.reference is None else self.reference.names
        if then != now:  # the cycle would show other images than the run did
            change = f"{len(then)} images then, {len(now)} now" if len(then) != len(now) else "other file names"
            raise RunDirError(f"the reference images of {self.run_dir.path} changed since the run started "
                              f"({change}); restore the folder to resume")
        self.run_dir.rewind(self.generation, self.log_lines)
        if not self.done:  # the completion mark of an earlier end no longer holds
            self.run_dir.remove(SUMMARY)

    def _checkpoint(self) -> None:
        config = self.config.to_dict()
        self.run_dir.save_checkpoint(
            {
                "config": config,
                "config_fingerprint": config_fingerprint(config),
                "components": self.components,
                "custom": self.custom,
                "optimizer": self.optimizer.state_dict(),
                "noise_rng": self.noise_rng.bit_generator.state,
                "generation": self.generation,
                "evaluations": self.evaluations,
                "presented": self.presented,
                "reference_names": None if self.reference is None else self.reference.names,
                "best_score": self.best_score,
                "best_generation": self.best_generation,
                "history": self.history,
                "log_lines": self.log_lines,
                "digests": self.digests,
            }
        )
        self.checkpointed = self.generation

    # -- the loop -----------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        if self.config.budget is not None:
            return self.evaluations >= self.config.budget
        return self.generation >= self.config.generations

    def step(self) -> dict:
        """Run one generation, write its files, checkpoint; return its log record."""
        self.run_dir.lock.acquire()  # again, if run() released it at the end
        t = [time.perf_counter()]
        asked = self.optimizer.ask()
        codes = asked[: self._remaining(len(asked))]  # the budget's last generation is trimmed
        t.append(time.perf_counter())
        with torch.no_grad():
            images = torch.cat([self.generator.decode(codes[i:i + DECODE_CHUNK])
                                for i in range(0, len(codes), DECODE_CHUNK)])
        t.append(time.perf_counter())
        reference_index, reference_images = np.zeros(0, dtype=np.int64), None
        if self.reference is not None:
            reference_index, reference_images = self.reference.batch(self.generation, images)
        outcome = present(self.responder, images, run_dir=self.run_dir.path, generation=self.generation,
                        reference_images=reference_images, reference_index=reference_index,
                        reshow_attempts=self.config.reshow_attempts if self.config.unscored == "reshow" else 0)
        t.append(time.perf_counter())
        told = outcome.scores
        if len(codes) < len(asked):  # never shown: unscored for the optimiser
            told = np.concatenate([told, np.full(len(asked) - len(codes), np.nan)])
        self.optimizer.tell(asked, told)
        t.append(time.perf_counter())
        record = self._save_generation(codes, images, outcome, reference_index)
        t.append(time.perf_counter())
        record["timings"] = {
            name: t[i + 1] - t[i] for i, name in enumerate(("ask", "decode", "respond", "tell", "save"))
        }
        self.log_lines.append(self.run_dir.append_log(record))
        self._checkpoint()
        return record

    def _remaining(self, n: int) -> int:
        """How many of ``n`` asked codes this generation may evaluate (all, without a budget)."""
        return n if self.config.budget is None else max(1, min(n, self.config.budget - self.evaluations))

    def _save_generation(self, codes, images, outcome: Presentation, reference_index: np.ndarray) -> dict:
        return save_generation(self, self.run_dir, codes, images, outcome, save_images=self.config.save_images,
                               reshow=self.config.unscored == "reshow", reference_index=reference_index,
                               reference_names=None if self.reference is None else self.reference.names)

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
        try:
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
        finally:
            self.run_dir.lock.release()

    def finish(self, *, stopped_early: bool = False) -> Summary:
        """Write the trajectory plot, then summary.json (the completion mark: written last, so a
        run that has it has everything); return the summary."""
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
        self.run_dir.lock.acquire()
        plot_trajectory(self.history, self.run_dir.path / "trajectory.png", title=self._title())
        self.run_dir.write_json(
            SUMMARY,
            {"status": "stopped" if stopped_early else "finished",
             **{k: getattr(summary, k) for k in ("generations", "evaluations", "presented", "initial_best",
                                                 "final_best", "best_generation", "stopped_early")},
             "improvement": summary.improvement, "config": self.config.to_dict(), "components": self.components,
             "custom_components": self.custom},
        )
        return summary

    def _title(self) -> str:
        """What ran, from the components actually used (a custom module's own name)."""
        record = self.components["responder"]
        target = record.get("target") or record.get("name")
        return f"{self.config.optimizer.name} on {self.components['generator'].get('name')} -> {target}"

    def close(self) -> None:
        try:
            self.responder.close()
        finally:
            self.run_dir.lock.release()


def _check_custom(run: RunDir, state: dict, given: list[str]) -> None:
    """A run started with custom component objects resumes only with objects again."""
    for kind in state.get("custom", []):
        if kind not in given:
            record = state["components"][kind]
            what = record.get("target") or record.get("name")
            raise RunDirError(f"run {run.path} was started through the Python API with its own {kind} "
                              f"({record['class']} {what}); resume it with the same object: "
                              f"Experiment.resume({str(run.path)!r}, {kind}=...)")


def _check_components(run: RunDir, then: dict, now: dict, allow: tuple[str, ...]) -> None:
    for kind in ("generator", "responder"):
        if kind in allow or then[kind] == now[kind]:
            continue
        keys = sorted(k for k in set(then[kind]) | set(now[kind]) if then[kind].get(k) != now[kind].get(k))
        shown = "; ".join(f"{k} {then[kind].get(k)!r} then, {now[kind].get(k)!r} now" for k in keys[:2])
        raise RunDirError(f"the {kind} of {run.path} differs from the one its checkpoint records ({shown}); "
                          f"resume with the run's own {kind}, or pass --allow-changed {kind} to continue anyway")


def _check_config(run: RunDir, state: dict, data: dict, allow: tuple[str, ...]) -> None:
    """config.toml against the checkpoint's copy: a change is refused unless allowed."""
    changes = config_changes(state["config"], data)
    for key in allow:
        if key in FIXED_ON_RESUME:
            raise ConfigError(f"--allow-changed {key}: {key} cannot change on resume ({FIXED_ON_RESUME[key]}); "
                              "start a new run instead")
    refused = {k: v for k, v in changes.items() if k not in allow and k.split(".")[0] not in allow}
    if refused:
        raise changed_config_error(run.path, refused, {k: FIXED_ON_RESUME[k] for k in refused if k in FIXED_ON_RESUME})


def _refuse_without_checkpoint(run: RunDir) -> None:
    """No checkpoint: start over only if nothing beyond the first generation in flight exists."""
    later = [g for g in run.finished_generations() if g > 0]
    log = run.path / "log.jsonl"
    lines = [line for line in log.read_bytes().split(b"\n") if line.strip()] if log.is_file() else []
    if later or len(lines) > 1:
        n = max(len(lines), len(later) + 1)
        raise RunDirError(f"{run.path} holds {n} finished generations but no checkpoint ({run.path / 'checkpoint.pkl'} "
                          f"is missing), so it cannot continue; restore the checkpoint, or start over with "
                          f"xdream evolve --resume {run.path} --restart (the old generations are moved aside)")


def _custom_note(custom: list[str], components: dict) -> str:
    """TOML comments saying which components a run used instead of the config's tables."""
    lines = []
    for kind in custom:
        r = components[kind]
        what = r.get("target") or r.get("repr") or r.get("name")
        weights = f", weights sha256 {r['weights_sha256'][:16]}" if "weights_sha256" in r else ""
        lines += [f"# This run used its own {kind} object (Python API): {r['class']} {what}{weights}.",
                  f"# The [{kind}] table below was NOT used; resume with Experiment.resume(RUN, {kind}=...)."]
    return "\n".join(lines) + "\n" if lines else ""


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _check_memory(population: int, image_size: int, save_images: str) -> None:
    """Refuse a population whose images alone would not fit in memory (decoding is chunked,
    but the responder, the montage and the saved generation see them all at once)."""
    per_image = 3 * image_size * image_size * 4 * (3 if save_images == "all" else 2)
    need, have = population * per_image, _available_memory()
    if have is not None and need > have // 2:
        raise ConfigError(f"population {population} needs about {need / 2**30:.1f} GiB for one generation's "
                          f"{image_size} px images, more than half of the {have / 2**30:.1f} GiB available (the rest is "
                          "for the models and the responder): use a smaller population "
                          f"(at most about {max(1, have // 2 // per_image)})")


def _default_output(config: ExperimentConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.generator.name}-{config.optimizer.name}"


