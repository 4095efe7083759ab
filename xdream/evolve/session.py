"""Several evolution threads in one run: one responder call per generation for all of them.

Ponce et al. (2019, Cell 177:999) ran two independent evolutions in one recording session,
their images interleaved in the same trial blocks so that both see the same state of the
animal; XDREAM's in-silico experiments (Xiao & Kreiman 2020, PLoS Comput Biol 16:e1007973)
evolved many units of one network. A session does both. Each thread has its own generator,
optimiser, seed and target (columns of the responder's :meth:`~xdream.core.responder.Responder.respond_units`:
CNN units, or rig channels, a list of them averaged). One generation: every live thread asks
its optimiser and decodes its codes; all images (resized to one size when the generators
differ) and the generation's natural reference images go to the responder in **one** call, in
an order shuffled from the seed and the generation number (on a rig: one ``present`` request);
each thread's optimiser is told only its own images' scores on its own target. With a
``[noise]`` table each thread draws its simulated noise from its own stream, so a thread's
codes never depend on another thread's options (on a real neuron, threads share the animal,
which is the point of interleaving).

Run directory (:class:`RunDir` of kind ``session``)::

    RUN/config.toml, run.json, log.jsonl (one record per generation: order shown, each thread's best)
    RUN/checkpoint.pkl                 every thread's state, one atomic file
    RUN/threads/NAME/                  as a one-thread run: log.jsonl, generations/, images/, best.png,
                                       trajectory.png
    RUN/trajectory.png, results.jsonl  all threads; one record per thread
    RUN/summary.json                   the completion mark, written last

A resume proves what it continues from as a one-thread run does (checkpoint SHA-256, config and
components, every thread's log and generation files) and continues bit-identically.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from xdream.config import SessionConfig, read_toml, to_toml
from xdream.config.experiment import check_device
from xdream.config.session import comparable
from xdream.core import registry
from xdream.core.errors import ConfigError, RunDirError
from xdream.core.generator import Generator
from xdream.core.optimizer import Optimizer
from xdream.core.responder import NoiseModel, Responder
from xdream.core.seeding import derive_rngs
from xdream.core.threads import use_threads
from xdream.evolve.build import build_optimizer
from xdream.evolve.presentation import Presentation, present
from xdream.evolve.record import save_generation
from xdream.evolve.reference import ReferenceCycle
from xdream.runs.fingerprint import changed_config_error, component_record, config_changes, config_fingerprint
from xdream.runs.rundir import RESULTS, SESSION as KIND, THREADS_DIR
from xdream.runs.rundir import CONFIG, LOG, SUMMARY, RunDir, atomic_write, json_safe

DECODE_CHUNK = 64
INTERLEAVE = 0x1E1EAF  # the seed-sequence key of the interleaving order (any fixed number)
FIXED = ("generator.name", "optimizer.name", "seed")  # per thread: a resume can never take them changed


def interleaving(seed: int, generation: int, n: int) -> np.ndarray:
    """The order generation ``generation``'s ``n`` images are shown in: a permutation drawn from
    the session seed and the generation number only (no state to checkpoint)."""
    return np.random.default_rng(np.random.SeedSequence([seed, INTERLEAVE, generation])).permutation(n)


class SessionResponder(Responder):
    """The session's responder seen image by image: an evolved image scores the mean of its
    thread's columns of ``inner.respond_units`` (NaN if one is NaN); a reference image is
    scored on every thread's columns (:attr:`reference_rows`) and returns NaN here. With a
    noise model each thread's scores get noise from that thread's own stream, drawn in the
    order of its images' indices (never in the shuffled order)."""

    name = "session"

    def __init__(self, inner: Responder, columns: list[list[int]], noise: NoiseModel | None,
                 noise_rngs: list[np.random.Generator]):
        self.inner, self.columns, self.noise, self.noise_rngs = inner, columns, noise, noise_rngs
        self.owners: dict[str, tuple[int | None, int]] = {}  # image id -> (thread, index) or (None, reference k)
        self.reference_rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # id -> (scores [T], clean [T])
        self._ids: list[str] = []
        self.last_clean = None

    def prepare(self, run_dir: Path, generation: int, image_ids: list[str] | None = None) -> None:
        self._ids = list(image_ids)
        self.inner.prepare(run_dir, generation, image_ids)

    def respond(self, images: torch.Tensor) -> np.ndarray:
        full = np.asarray(self.inner.respond_units(images), dtype=np.float64)
        if full.ndim != 2 or len(full) != len(images):
            raise ValueError(f"responder {self.inner.name!r} returned {list(full.shape)} from respond_units for "
                             f"{len(images)} images; expected [{len(images)}, units]")
        scores, clean = np.full(len(images), math.nan), np.full(len(images), math.nan)
        owners = [self.owners[i] for i in self._ids]
        references = sorted((k, row) for row, (t, k) in enumerate(owners) if t is None)
        ref_scores = np.full((len(references), len(self.columns)), math.nan)
        ref_clean = ref_scores.copy()
        for t, cols in enumerate(self.columns):
            rows = [row for _, row in sorted((k, row) for row, (owner, k) in enumerate(owners) if owner == t)]
            if rows:
                clean[rows] = full[rows][:, cols].mean(axis=1)
                scores[rows] = self._noisy(clean[rows], t)
            if references:
                ref_rows = [row for _, row in references]
                ref_clean[:, t] = full[ref_rows][:, cols].mean(axis=1)
                ref_scores[:, t] = self._noisy(ref_clean[:, t], t)
        for j, (_, row) in enumerate(references):
            self.reference_rows[self._ids[row]] = (ref_scores[j], ref_clean[j])
        self.last_clean = clean if self.noise is not None else None
        return scores

    def _noisy(self, clean: np.ndarray, thread: int) -> np.ndarray:
        if self.noise is None:
            return clean.copy()
        return np.asarray(self.noise(clean, self.noise_rngs[thread]), dtype=np.float64)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Thread:
    """One evolution thread's components and progress."""

    name: str
    generator: Generator
    optimizer: Optimizer
    columns: list[int]
    run: RunDir  # RUN/threads/NAME (written under the session's lock)
    noise_rng: np.random.Generator
    generations: int | None
    budget: int | None
    patience: int | None
    generation: int = 0
    evaluations: int = 0
    presented: int = 0
    best_score: float = -math.inf
    best_generation: int = -1
    history: list = dataclasses.field(default_factory=list)
    log_lines: list = dataclasses.field(default_factory=list)
    digests: list = dataclasses.field(default_factory=list)

    STATE = ("generation", "evaluations", "presented", "best_score", "best_generation", "history", "log_lines",
             "digests")

    @property
    def stopped(self) -> str | None:
        """Why the thread has ended (``generations``, ``budget``, ``patience``), or None."""
        if self.budget is not None and self.evaluations >= self.budget:
            return "budget"
        if self.generations is not None and self.generation >= self.generations:
            return "generations"
        if self.patience is not None and self.generation - 1 - self.best_generation >= self.patience:
            return "patience"
        return None

    def remaining(self, n: int) -> int:
        return n if self.budget is None else max(1, min(n, self.budget - self.evaluations))

    def state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "noise_rng": self.noise_rng.bit_generator.state,
                **{k: getattr(self, k) for k in self.STATE}}


@dataclass
class SessionSummary:
    """What a finished (or stopped) session reached, per thread."""

    run_dir: Path
    generations: int
    evaluations: int
    presented: int
    stopped_early: bool
    threads: list[dict]  # the records of results.jsonl

    def lines(self) -> list[str]:
        status = f"stopped before its end; resume with: xdream evolve --resume {self.run_dir}" \
            if self.stopped_early else "finished"
        out = [f"{status}: {self.generations} generations, {len(self.threads)} threads, {self.evaluations} "
               f"evaluations ({self.presented} images shown)"]
        width = max(len(t["name"]) for t in self.threads)
        for t in self.threads:
            ratio = f" ({t['improvement']:.2f}x)" if t["improvement"] is not None else ""
            target = t["target"] if isinstance(t["target"], str) else " + ".join(t["target"])
            out.append(f"  {t['name']:<{width}}  {t['generator']} + {t['optimizer']} -> {target}: "
                       f"{t['initial_best']:.4g} -> {t['final_best']:.4g}{ratio} in {t['generations']} generations"
                       + (f" (stopped: {t['stopped']})" if t["stopped"] == "patience" else ""))
        out.append(f"results: {self.run_dir}  (threads/NAME/, trajectory.png, {RESULTS}, log.jsonl, summary.json)")
        return out


class Session:
    """A run of several evolution threads sharing one responder (see the module docstring).

    ``responder`` may be passed as an object recording every thread's target (its
    ``unit_labels()`` name them); otherwise it is built from the config: the ``[responder]``
    table, or the responder that accepts the threads' targets, made to record them all at once
    (:meth:`Responder.for_units`). Everything is validated, the rig connected and the models
    loaded before anything is written."""

    def __init__(self, config: SessionConfig, *, responder: Responder | None = None, run_dir: str | Path | None = None,
                 _resume: RunDir | None = None, _state: dict | None = None, _allow_changed: tuple[str, ...] = ()):
        if config.threads is None:
            config = dataclasses.replace(config, threads=torch.get_num_threads())
        else:
            use_threads(config.threads)
        self.config = config
        check_device(config.device)
        generators = self._generators()
        self.image_size = max(g.image_size for g in generators.values())
        self.reference = None if config.reference is None else ReferenceCycle.load(config.reference, self.image_size)
        self.custom = responder is not None
        inner = responder or build_responder(config)
        try:
            columns = [thread_columns(inner, t.name, t.target) for t in config.thread]
            self.components = {"responder": component_record(inner),
                               "generators": {k: component_record(g) for k, g in generators.items()}}
            if _state is not None:
                _check_components(_resume, _state["components"], self.components, _allow_changed)
            noise = None if config.noise is None else registry.create("noise", config.noise.name, config.noise.options)
            self.threads: list[Thread] = []
            for t, cols in zip(config.thread, columns):
                rngs = derive_rngs(t.seed)
                generator = generators[_plugin_key(t.generator)]
                generations, budget = config.thread_length(len(self.threads))
                optimizer = build_optimizer(t.optimizer, generator, rngs["optimizer"], budget=budget,
                                            generations=generations or 0)
                self.threads.append(Thread(t.name, generator, optimizer, cols, None, rngs["noise"], generations,
                                           budget, t.patience))
            self.responder = SessionResponder(inner, columns, noise, [t.noise_rng for t in self.threads])
        except BaseException:
            inner.close()
            raise
        self.generation = self.presented = self.checkpointed = 0
        self.log_lines: list[str] = []
        if _resume is not None:
            self.run_dir = _resume
            self._attach_threads()
            if _state is not None:
                self._restore(_state)
            else:
                self._rewind()
        else:
            path = run_dir or config.output or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-session"
            toml = to_toml({**config.to_dict(), "output": str(path)})
            try:
                self.run_dir = RunDir.create(path, toml, subdirs=(THREADS_DIR,), kind=KIND)
            except BaseException:
                inner.close()
                raise
            self._attach_threads()

    def _generators(self) -> dict[str, Generator]:
        """One generator object per distinct generator table (threads with the same table share it)."""
        out = {}
        for t in self.config.thread:
            key = _plugin_key(t.generator)
            if key not in out:
                out[key] = registry.create("generator", t.generator.name, t.generator.options,
                                           device=self.config.device)
        return out

    def _attach_threads(self) -> None:
        for t in self.threads:
            t.run = RunDir(self.run_dir.path / THREADS_DIR / t.name)
            for sub in ("generations", "images"):
                (t.run.path / sub).mkdir(parents=True, exist_ok=True)

    # -- resume ---------------------------------------------------------------------------------
    @classmethod
    def resume(cls, path: str | Path, *, allow_changed=(), repair: bool = False, restart: bool = False,
               responder: Responder | None = None) -> "Session":
        """Continue the session in ``path`` from its checkpoint, after proving the checkpoint,
        the config, the components, and every thread's log and generation files (see
        :meth:`xdream.evolve.experiment.Experiment.resume` for ``allow_changed``, ``repair``
        and ``restart``)."""
        run = RunDir.open(path)
        try:
            data = read_toml(run.path / CONFIG)
            config = SessionConfig.from_dict(data)
            threads = [RunDir(run.path / THREADS_DIR / t.name) for t in config.thread]
            for r in (run, *threads):
                r.clean_temp_files()
            if restart:
                run.set_aside(subdirs=(THREADS_DIR,))
                return cls(config, _resume=run, responder=responder)
            state = run.load_checkpoint()
            if state is None:
                _refuse_without_checkpoint(run, threads)
                return cls(config, _resume=run, responder=responder)
            if state.get("kind") != KIND:
                raise RunDirError(f"the checkpoint of {run.path} is not a session's; restore the run's own checkpoint")
            _check_config(run, state, data, tuple(allow_changed))
            saved = state["threads"]
            if repair:  # only logs whose generation files all match the checkpoint are rebuilt
                for r, t in zip(threads, config.thread):
                    r.verify([], saved[t.name]["digests"])
                run.repair_log(state["log_lines"])
                for r, t in zip(threads, config.thread):
                    r.repair_log(saved[t.name]["log_lines"])
            run.verify(state["log_lines"], [])
            for r, t in zip(threads, config.thread):
                r.verify(saved[t.name]["log_lines"], saved[t.name]["digests"])
            return cls(config, _resume=run, _state=state, _allow_changed=tuple(allow_changed), responder=responder)
        except BaseException:
            run.lock.release()
            raise

    def _restore(self, state: dict) -> None:
        for t in self.threads:
            saved = state["threads"][t.name]
            try:
                t.optimizer.load_state_dict(saved["optimizer"])
            except (KeyError, ValueError, TypeError) as e:
                raise RunDirError(f"the checkpoint of {self.run_dir.path} does not fit thread {t.name!r}'s optimiser "
                                  f"({type(e).__name__}: {e}); restore config.toml") from None
            t.noise_rng.bit_generator.state = saved["noise_rng"]
            for key in Thread.STATE:
                setattr(t, key, saved[key])
        self.generation, self.presented, self.log_lines = state["generation"], state["presented"], state["log_lines"]
        self.checkpointed = self.generation
        then, now = state.get("reference_names") or [], [] if self.reference is None else self.reference.names
        if then != now:
            raise RunDirError(f"the reference images of {self.run_dir.path} changed since the session started "
                              f"({len(then)} images then, {len(now)} now, or other names); restore the folder")
        self._rewind()
        if not self.done:
            self.run_dir.remove(SUMMARY)

    def _rewind(self) -> None:
        """Drop whatever is newer than the checkpoint (the generation in flight at a crash)."""
        self.run_dir.rewind(self.generation, self.log_lines)
        for t in self.threads:
            t.run.rewind(t.generation, t.log_lines)

    def _checkpoint(self) -> None:
        config = self.config.to_dict()
        self.run_dir.save_checkpoint({
            "kind": KIND, "config": config, "config_fingerprint": config_fingerprint(comparable(config)),
            "components": self.components, "custom": ["responder"] if self.custom else [],
            "generation": self.generation, "presented": self.presented, "log_lines": self.log_lines,
            "reference_names": None if self.reference is None else self.reference.names,
            "threads": {t.name: t.state() for t in self.threads},
        })
        self.checkpointed = self.generation

    # -- the loop -------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return all(t.stopped is not None for t in self.threads)

    @property
    def evaluations(self) -> int:
        return sum(t.evaluations for t in self.threads)

    def step(self) -> dict:
        """One generation of every live thread, in one responder call; returns the session's
        log record."""
        self.run_dir.lock.acquire()
        g, started = self.generation, time.perf_counter()
        live = [t for t in self.threads if t.stopped is None]
        asked, codes, images = {}, {}, {}
        for t in live:
            asked[t.name] = t.optimizer.ask()
            codes[t.name] = asked[t.name][: t.remaining(len(asked[t.name]))]
            with torch.no_grad():
                images[t.name] = torch.cat([t.generator.decode(codes[t.name][i:i + DECODE_CHUNK])
                                            for i in range(0, len(codes[t.name]), DECODE_CHUNK)])
        decoded = time.perf_counter()
        shown = torch.cat([self._resized(images[t.name]) for t in live])
        ids, owners = [], {}
        for index, t in enumerate(self.threads):
            if t in live:
                for i in range(len(codes[t.name])):
                    ids.append(f"g{g}-{t.name}-{i}")
                    owners[ids[-1]] = (index, i)
        reference_index, reference_images = np.zeros(0, dtype=np.int64), None
        if self.reference is not None:
            reference_index, reference_images = self.reference.batch(g, shown)
            for k in reference_index:
                ids.append(f"g{g}-ref{int(k)}")
                owners[ids[-1]] = (None, int(k))
        self.responder.owners, self.responder.reference_rows = owners, {}
        order = interleaving(self.config.seed, g, len(ids))
        outcome = present(self.responder, shown, run_dir=self.run_dir.path, generation=g,
                          reference_images=reference_images, reference_index=reference_index,
                          reshow_attempts=self.config.reshow_attempts if self.config.unscored == "reshow" else 0,
                          ids=ids, order=order)
        responded = time.perf_counter()
        threads_record, start = {}, 0
        for t in live:
            n = len(codes[t.name])
            mine = self._thread_outcome(t, outcome, slice(start, start + n), ids[len(outcome.scores):])
            start += n
            told = mine.scores
            if n < len(asked[t.name]):
                told = np.concatenate([told, np.full(len(asked[t.name]) - n, np.nan)])
            t.optimizer.tell(asked[t.name], told)
            record = self._save(t, codes[t.name], images[t.name], mine, reference_index)
            threads_record[t.name] = {k: record.get(k) for k in ("best", "mean", "evaluations", "reference_mean")}
        self.generation += 1
        self.presented += outcome.presented
        session_record = {
            "generation": g, "presented": self.presented, "shown": outcome.presented,
            "order": [ids[i] for i in order], "threads": threads_record,
            "stopped": {t.name: t.stopped for t in self.threads if t.stopped is not None},
            "timings": {"decode": decoded - started, "respond": responded - decoded,
                        "tell_save": time.perf_counter() - responded},
        }
        self.log_lines.append(self.run_dir.append_log(session_record))
        self._checkpoint()
        return session_record

    def _resized(self, images: torch.Tensor) -> torch.Tensor:
        """Images at the session's one image size (a request shows images of one shape)."""
        if images.shape[-1] == self.image_size:
            return images
        return F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                             antialias=True).clamp_(0, 1)

    def _thread_outcome(self, t: Thread, outcome: Presentation, own: slice, reference_ids: list[str]) -> Presentation:
        """Thread ``t``'s share of the generation's presentation: its images' scores and the
        reference images' scores on its target."""
        index = self.threads.index(t)
        rows = [self.responder.reference_rows[i] for i in reference_ids]
        ref = np.array([r[0][index] for r in rows], dtype=np.float64)
        ref_clean = np.array([r[1][index] for r in rows], dtype=np.float64) if self.config.noise is not None else None
        n_refs = len(reference_ids)
        shown = outcome.shown[own]
        return Presentation(outcome.scores[own], ref, None if outcome.clean is None else outcome.clean[own],
                            ref_clean, shown, int(shown.sum()) + n_refs)

    def _save(self, t: Thread, codes, images, outcome: Presentation, reference_index) -> dict:
        record = save_generation(t, t.run, codes, images, outcome, save_images=self.config.save_images,
                                 reshow=self.config.unscored == "reshow", reference_index=reference_index,
                                 reference_names=None if self.reference is None else self.reference.names)
        t.log_lines.append(t.run.append_log(record))
        return record

    def run(self, *, progress: bool = True, should_stop: Callable[[], bool] | None = None,
            on_generation: Callable[[dict], None] | None = None) -> SessionSummary:
        """Run until every thread has ended, or ``should_stop()`` turns true (checked between
        generations); ``on_generation(record)`` after each saved generation."""
        from tqdm.auto import tqdm

        stopped = False
        try:
            with tqdm(total=self._length(), initial=self.generation, unit="gen", disable=not progress,
                      dynamic_ncols=True) as bar:
                while not self.done:
                    if should_stop is not None and should_stop():
                        stopped = True
                        break
                    record = self.step()
                    bests = [v["best"] for v in record["threads"].values() if v["best"] is not None]
                    bar.set_postfix(gen=record["generation"], live=len(record["threads"]),
                                    best=f"{max(bests):.3g}" if bests else "nan", refresh=False)
                    if on_generation is not None:
                        on_generation(record)
                    bar.update(1)
            return self.finish(stopped_early=stopped)
        finally:
            self.run_dir.lock.release()

    def _length(self) -> int | None:
        """Generations the longest thread runs (None when a thread runs to a budget)."""
        lengths = [t.generations for t in self.threads]
        return None if any(n is None for n in lengths) else max(lengths)

    def results(self) -> list[dict]:
        """One record per thread (``results.jsonl``): what it ran and what it reached."""
        out = []
        for t, c in zip(self.threads, self.config.thread):
            first = t.history[0]["best"] if t.history else math.nan
            refs = [h["reference_mean"] for h in t.history if h.get("reference_mean") is not None]
            cleans = [h["clean_best"] for h in t.history if h.get("clean_best") is not None]
            out.append({
                "name": t.name, "generator": c.generator.name, "optimizer": c.optimizer.name,
                "target": c.target[0] if len(c.target) == 1 else list(c.target), "seed": c.seed,
                "generations": t.generation, "evaluations": t.evaluations, "presented": t.presented,
                "initial_best": first, "final_best": t.best_score, "best_generation": t.best_generation,
                "improvement": t.best_score / first if first > 0 else None,
                "clean_best": max(cleans) if cleans else None,
                "reference_mean": float(np.mean(refs)) if refs else None, "stopped": t.stopped,
            })
        return out

    def finish(self, *, stopped_early: bool = False) -> SessionSummary:
        """Write every thread's trajectory, the session's plot and results, then summary.json
        (the completion mark, last)."""
        if self.generation == 0:
            raise RunDirError(f"session {self.run_dir.path} has no finished generation to summarise")
        from xdream.images.plots import plot_threads, plot_trajectory

        self.run_dir.lock.acquire()
        results = self.results()
        for t, r in zip(self.threads, results):
            if t.history:
                plot_trajectory(t.history, t.run.path / "trajectory.png",
                                title=f"{t.name}: {r['optimizer']} on {r['generator']} -> {r['target']}")
        plot_threads({t.name: t.history for t in self.threads}, self.run_dir.path / "trajectory.png",
                     title=f"session of {len(self.threads)} threads")
        lines = "".join(json.dumps(json_safe(r), allow_nan=False) + "\n" for r in results)
        atomic_write(self.run_dir.path / RESULTS, lines.encode())
        summary = SessionSummary(self.run_dir.path, self.generation, self.evaluations, self.presented, stopped_early,
                                 results)
        self.run_dir.write_json(SUMMARY, {
            "status": "stopped" if stopped_early else "finished", "stopped_early": stopped_early,
            "generations": self.generation, "evaluations": self.evaluations, "presented": self.presented,
            "threads": results, "config": self.config.to_dict(), "components": self.components})
        return summary

    def close(self) -> None:
        try:
            self.responder.close()
        finally:
            self.run_dir.lock.release()


# -- building ----------------------------------------------------------------------------------
def build_responder(config: SessionConfig) -> Responder:
    """The session's one responder: the ``[responder]`` table's plugin made to record every
    thread's target (:meth:`Responder.for_units`), or built as the table says when it records
    a fixed set (a rig); without a table, the responder that accepts the threads' targets."""
    units = list(dict.fromkeys(u for t in config.thread for u in t.target))
    if config.responder is not None:
        name, options = config.responder.name, dict(config.responder.options)
    else:
        names = {registry.responder_for_target(u) for u in units}
        if len(names) > 1:
            raise ConfigError(f"the threads' targets need different responders ({', '.join(sorted(names))}); a "
                              "session has one: give targets of one kind, or a [responder] table")
        name, options = names.pop(), {}
    cls = registry.load("responder", name)
    made = cls.for_units(units, {k: v for k, v in options.items() if k != "target"}, device=config.device)
    if made is not None:
        return made
    return registry.create("responder", name, options, device=config.device)


def thread_columns(responder: Responder, thread: str, targets: list[str]) -> list[int]:
    """The columns of ``responder.respond_units`` that thread ``thread``'s targets name."""
    labels = list(responder.unit_labels())
    missing = [u for u in targets if u not in labels]
    if missing:
        noun = responder.unit_noun
        shown = ", ".join(labels[:12]) + (f", ... ({len(labels)} in all)" if len(labels) > 12 else "")
        raise ConfigError(f"thread {thread!r}: {noun} {missing[0]!r} is not recorded by responder "
                          f"{responder.name!r}; its {noun}s: {shown}")
    return [labels.index(u) for u in targets]


def _plugin_key(plugin) -> str:
    return json.dumps(plugin.to_dict(), sort_keys=True, default=str)


# -- resume checks -----------------------------------------------------------------------------
def _fixed(key: str) -> bool:
    return key == "seed" or (key.startswith("thread.") and key.split(".", 2)[-1] in FIXED)


def _check_config(run: RunDir, state: dict, data: dict, allow: tuple[str, ...]) -> None:
    changes = config_changes(comparable(state["config"]), comparable(data))
    for key in allow:
        if _fixed(key):
            raise ConfigError(f"--allow-changed {key}: {key} cannot change on resume (the checkpoint holds that "
                              "thread's state); start a new run instead")
    refused = {k: v for k, v in changes.items()
               if not any(k == a or k.startswith(a + ".") for a in allow)}
    if refused:
        raise changed_config_error(run.path, refused, {k: "the checkpoint holds that thread's state"
                                                       for k in refused if _fixed(k)})


def _check_components(run: RunDir, then: dict, now: dict, allow: tuple[str, ...]) -> None:
    for kind in ("responder", "generators"):
        if kind in allow or then[kind] == now[kind]:
            continue
        raise RunDirError(f"the {kind} of {run.path} differ from the ones its checkpoint records; resume with the "
                          f"run's own {kind}, or pass --allow-changed {kind} to continue anyway")


def _refuse_without_checkpoint(run: RunDir, threads: list[RunDir]) -> None:
    """No checkpoint: start over only if no generation beyond the first in flight exists."""
    later = any(g > 0 for r in threads for g in r.finished_generations())
    log = run.path / LOG
    lines = [line for line in log.read_bytes().split(b"\n") if line.strip()] if log.is_file() else []
    if later or len(lines) > 1:
        raise RunDirError(f"{run.path} holds finished generations but no checkpoint ({run.path / 'checkpoint.pkl'} "
                          f"is missing), so it cannot continue; restore the checkpoint, or start over with "
                          f"xdream evolve --resume {run.path} --restart (the old generations are moved aside)")
