"""The closed evolution loop: one class for a run of one thread or a session of several.

One generation: every live thread asks its optimiser for codes and decodes them; the images,
with the generation's natural reference images appended (config ``[reference]``), go to the
responder as **one** batch, and under ``unscored = "reshow"`` the unscored ones go again
(:mod:`xdream.evolve.presentation`); each optimiser is told only its own images' scores; then
each thread's codes, scores, best image and montage are written, a log line appended and the
checkpoint replaced. Everything random derives from the config's seeds, so a resumed run
continues bit-identically.

A config without ``[[thread]]`` tables is one thread made from the top-level tables: its
responder is used as it is (any responder, or your own object through the Python API), it may
start from an inverted image (``init_image``, ``init_characterisation``), and its folder is the
one users know. With ``[[thread]]`` tables (Ponce et al. 2019, Cell 177:999; Xiao & Kreiman
2020, PLoS Comput Biol 16:e1007973) each thread has its own generator, optimiser, seed and
target (columns of the responder's ``respond_units``); their images go out in an order shuffled
from the seed and the generation number, and each thread draws simulated noise for its images
from its own stream (a natural reference image gets one response per target, shared by the
threads on it: :class:`~xdream.evolve.presentation.SessionResponder`). The run folder of either
is described in :mod:`xdream.runs.rundir`.

``evaluations`` counts the evolved images told to the optimisers (a budget's last generation is
trimmed, its remaining codes told as unscored); ``presented`` counts every image sent to the
responder (references and re-shows included), the number that costs time on a rig.

A resume (:meth:`Experiment.resume`) proves what it continues from (the checkpoint, config,
components, logs and generation files) before it changes anything; a mismatch is a one-line
:class:`RunDirError`. A change let through with ``--allow-changed`` is recorded (generation,
key, old, new) in the checkpoint, ``run.json`` and ``summary.json``, while ``config.toml``
keeps the config the run started with.
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

from xdream.config import ExperimentConfig, read_toml, to_toml
from xdream.config.experiment import check_device, comparable
from xdream.core import registry
from xdream.core.device import (DECODE_CHUNK, bytes_per_image, check_memory, decode_chunk, free_memory,
                                use_determinism)
from xdream.core.errors import ConfigError, RunDirError
from xdream.core.generator import Generator
from xdream.core.optimizer import Optimizer
from xdream.core.responder import NoisyResponder, Responder
from xdream.core.seeding import derive_rngs
from xdream.core.threads import use_threads
from xdream.evolve.build import build_optimizer, build_responder, thread_columns
from xdream.evolve.presentation import Presentation, SessionResponder, interleaving, present
from xdream.evolve.record import save_generation
from xdream.evolve.reference import ReferenceCycle
from xdream.runs.fingerprint import changed_config_error, component_record, config_changes, config_fingerprint
from xdream.runs.rundir import (
    CONFIG, LOG, RESULTS, SESSION_KIND, SUMMARY, THREADS_DIR, RunDir, atomic_write, evolution_kind, json_safe,
    new_run_path,
)

#: Config keys a resume can never take changed (``--allow-changed`` refuses them too), per thread.
FIXED_ON_RESUME = {"seed": "the run's random state is in its checkpoint",
                   "optimizer.name": "the checkpoint holds the state of the run's optimiser",
                   "generator.name": "the checkpoint's codes are in the run's generator's latent space"}
TIMINGS = ("ask", "decode", "respond", "tell", "save")
CHANGE_NOTE = "# Changed on resume at generation "  # config.toml's note of each --allow-changed change


@dataclass
class Thread:
    """One evolution thread's components and progress (a one-thread run's ``name`` is None and
    its folder is the run's)."""

    name: str | None
    generator: Generator
    optimizer: Optimizer
    columns: list[int] | None
    run: RunDir | None
    noise_rng: np.random.Generator
    generations: int | None
    budget: int | None
    patience: int | None
    generation: int = 0
    evaluations: int = 0
    presented: int = 0
    best_score: float = -math.inf
    best_generation: int = -1
    history: list = dataclasses.field(default_factory=list)  # per generation: best, mean (clean best, reference mean)
    log_lines: list = dataclasses.field(default_factory=list)  # its log as written (a resume checks it)
    digests: list = dataclasses.field(default_factory=list)  # SHA-256 of each generation's file

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
        """How many of ``n`` asked codes this generation may evaluate (all, without a budget)."""
        return n if self.budget is None else max(1, min(n, self.budget - self.evaluations))

    def state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "noise_rng": self.noise_rng.bit_generator.state,
                **{k: getattr(self, k) for k in self.STATE}}

    def restore(self, saved: dict, run_path: Path) -> None:
        try:
            self.optimizer.load_state_dict(saved["optimizer"])
        except (KeyError, ValueError, TypeError) as e:
            whose = "its optimiser" if self.name is None else f"thread {self.name!r}'s optimiser"
            raise RunDirError(f"the checkpoint of {run_path} does not fit {whose} ({type(e).__name__}: {e}); "
                              "restore config.toml") from None
        self.noise_rng.bit_generator.state = saved["noise_rng"]
        for key in self.STATE:
            setattr(self, key, saved.get(key, saved["evaluations"]) if key == "presented" else saved[key])


@dataclass
class Summary:
    """What a finished (or stopped) run reached, per thread (the records of results.jsonl)."""

    run_dir: Path
    generations: int
    evaluations: int
    presented: int
    stopped_early: bool
    threads: list[dict]
    session: bool = False  # several threads ([[thread]] tables), or one

    @property
    def initial_best(self) -> float:
        return self.threads[0]["initial_best"]

    @property
    def final_best(self) -> float:
        return self.threads[0]["final_best"]

    @property
    def best_generation(self) -> int:
        return self.threads[0]["best_generation"]

    @property
    def improvement(self) -> float:
        """A one-thread run's final best over its first generation's best (NaN when that is not positive)."""
        return self.final_best / self.initial_best if self.initial_best > 0 else math.nan

    def lines(self) -> list[str]:
        status = f"stopped before its end; resume with: xdream evolve --resume {self.run_dir}" \
            if self.stopped_early else "finished"
        if not self.session:
            ratio = f" ({self.improvement:.2f}x)" if math.isfinite(self.improvement) else ""
            shown = f" ({self.presented} images shown)" if self.presented != self.evaluations else ""
            return [f"{status}: {self.generations} generations, {self.evaluations} evaluations{shown}",
                    f"best score: first generation {self.initial_best:.4g} -> final {self.final_best:.4g}{ratio}"
                    f" (generation {self.best_generation})",
                    f"results: {self.run_dir}  (best.png, images/, trajectory.png, log.jsonl, summary.json)"]
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


class Experiment:
    """An evolution run of one or more threads, built from one validated config.

    ``responder`` may be passed as an object (Python API: your own ``nn.Module`` through
    ``TorchUnit.from_module``; for a session, one recording every thread's target, its
    ``unit_labels()`` naming them), and for a one-thread run ``generator`` too; otherwise they
    are built from the config (a session without ``[responder]`` gets the responder that
    accepts its threads' targets, :meth:`Responder.for_units`). The run records what it
    actually used (:func:`xdream.runs.fingerprint.component_record`), and a resume without the
    same objects is refused. Everything is validated, the models loaded and a rig connected
    before anything is written; the run directory's write lock is held from construction until
    :meth:`close` (or the end of :meth:`run`). A construction that fails (a refused resume
    included) releases the lock and closes the responder, as :meth:`close` does.

    The config's ``threads`` sets torch's intra-op threads (process-wide) before anything is
    built; left out, the process's current count is kept and recorded. Either way numpy's BLAS
    gets one thread (:func:`~xdream.core.threads.use_threads`), as a resume or a rerun of the
    recorded config gives it.
    """

    def __init__(self, config: ExperimentConfig, *, generator: Generator | None = None,
                 responder: Responder | None = None, run_dir: str | Path | None = None, progress: bool = False,
                 _resume: RunDir | None = None, _state: dict | None = None, _allow_changed: tuple[str, ...] = (),
                 _changes: list[dict] | None = None, _repair: bool = False):
        if config.threads is None:
            config = dataclasses.replace(config, threads=torch.get_num_threads())
        use_threads(config.threads)  # numpy's BLAS gets one thread either way, as a resume of the run gives it
        self.config = config
        self.session = config.thread is not None
        if generator is not None and self.session:
            raise ConfigError("a session builds each thread's generator from its [[thread]] table; pass generator= "
                              "to a run without [[thread]] tables")
        self.custom = [k for k, v in (("generator", generator), ("responder", responder)) if v is not None]
        if _state is not None:
            _check_custom(_resume, _state, self.custom)
        _check_python_objects(config, self.custom)
        if _resume is None:  # the mark in config.toml: which tables do not describe what ran
            config = self.config = dataclasses.replace(config, python_objects=",".join(self.custom) or None)
        check_device(config.device)
        use_determinism(config.device, config.deterministic)  # before any model reaches the device
        self._decode_chunks: dict[int, int] = {}
        generators = self._generators(generator)
        if _state is not None:  # before the responder connects: the checkpoint's codes must fit the generators
            _check_latent(_resume, _state, config, generators)
        self.image_size = max(g.image_size for g in generators.values())
        # Reference images are read and counted before the responder connects or anything is written.
        self.reference = None if config.reference is None else ReferenceCycle.load(config.reference, self.image_size)
        inner = responder or (build_responder(config) if self.session else registry.create(
            "responder", config.responder.name, config.responder.options, device=config.device))
        try:
            self._build(config, generators, inner, _resume, _state, _allow_changed, progress)
            self._open(config, run_dir, _resume, _state, _changes, _repair)
        except BaseException:  # the responder is closed as close() closes it (a rig's connection too)
            inner.close()
            raise

    def _open(self, config, run_dir, resume, state, changes, repair) -> None:
        """The run's folder: a resumed one's progress restored (and checked), or a new one
        created (its lock released again if what follows fails)."""
        self.generation = self.presented = self.checkpointed = 0
        self.log_lines: list[str] = [] if self.session else self.threads[0].log_lines
        self.changes: list[dict] = list(changes or [])
        self._unrecorded = False  # this resume's --allow-changed changes, not yet in run.json and config.toml
        self._started = None if state is None else state.get("started_config") or state["config"]
        if resume is not None:
            self.run_dir = resume
            self._attach_threads()
            if state is not None:
                self._restore(state, repair)
            else:  # no generation finished (or --restart): start afresh in the run's folder
                self._rewind()
                self._save_start()
        else:
            path = run_dir or config.output or new_run_path(
                "session" if self.session else f"{config.generator.name}-{config.optimizer.name}")
            toml = to_toml({**config.to_dict(), "output": str(path)})
            self.run_dir = RunDir.create(path, _custom_note(self.custom, self.components) + toml,
                                         **({"subdirs": (THREADS_DIR,), "kind": SESSION_KIND} if self.session else {}))
            try:
                self._attach_threads()
                self._save_start()
            except BaseException:
                self.run_dir.lock.release()
                raise

    def _generators(self, given: Generator | None) -> dict[str, Generator]:
        """One generator object per distinct generator table (threads with the same table share it)."""
        out = {}
        for table in [self.config.generator] if not self.session else [t.generator for t in self.config.thread]:
            key = _plugin_key(table)
            if key not in out:
                out[key] = given or registry.create("generator", table.name, table.options, device=self.config.device)
        return out

    def _build(self, config, generators, inner, resume, state, allow, progress) -> None:
        """The threads, their optimisers and the responder they share (components checked
        against a resumed run's checkpoint first)."""
        if self.session:
            columns = [thread_columns(inner, t.name, t.target) for t in config.thread]
            self.components = {"responder": component_record(inner),
                               "generators": {k: component_record(g) for k, g in generators.items()}}
        else:
            self.components = {"generator": component_record(*generators.values()), "responder": component_record(inner)}
        if state is not None:
            _check_components(resume, state["components"], self.components, allow)
        noise = None if config.noise is None else registry.create("noise", config.noise.name, config.noise.options)
        self.start = self.inversion = None
        self.threads = []
        for index, t in enumerate(config.thread or [None]):  # None: the one thread of the top-level tables
            own = config if t is None else t  # its seed, generator and optimizer tables
            rngs, generator = derive_rngs(own.seed), generators[_plugin_key(own.generator)]
            population = own.optimizer.options.get("population")
            if isinstance(population, int):  # before the optimiser builds its first population
                _check_memory(population, generator.image_size, config.save_images)
            if t is None and state is None:  # a new one-thread run may start from an inverted image
                from xdream.evolve.start import invert_start

                self.start, self.inversion = invert_start(config, generator, inner, rngs["inversion"],
                                                          progress=progress) or (None, None)
            generations, budget = config.thread_length(index)
            optimizer = build_optimizer(own.optimizer, generator, rngs["optimizer"], budget=budget,
                                        generations=generations or 0,
                                        init=None if self.inversion is None else self.inversion.code)
            self.threads.append(Thread(None if t is None else t.name, generator, optimizer,
                                       None if t is None else columns[index], None, rngs["noise"], generations,
                                       budget, None if t is None else t.patience))
        if self.session:
            self.responder = SessionResponder(inner, columns, noise, [t.noise_rng for t in self.threads],
                                              seed=config.seed)
        else:
            self.responder = inner if noise is None else NoisyResponder(inner, noise, self.threads[0].noise_rng)

    def _attach_threads(self) -> None:
        for t in self.threads:
            if t.name is None:
                t.run = self.run_dir
                continue
            t.run = RunDir(self.run_dir.path / THREADS_DIR / t.name)
            for sub in ("generations", "images"):
                (t.run.path / sub).mkdir(parents=True, exist_ok=True)

    def _save_start(self) -> None:
        if self.inversion is not None:
            from xdream.evolve.start import save_start

            save_start(self.run_dir, self.start, self.inversion)

    # -- a one-thread run's progress, under the names the Python API has always had ----------------
    generator = property(lambda self: self.threads[0].generator)
    optimizer = property(lambda self: self.threads[0].optimizer)
    best_score = property(lambda self: self.threads[0].best_score)
    best_generation = property(lambda self: self.threads[0].best_generation)
    history = property(lambda self: self.threads[0].history)
    digests = property(lambda self: self.threads[0].digests)

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
        extend a run, ``thread.NAME.optimizer.mutation_rate`` in a session), every log and
        generation file against the checkpoint's copy and digests (``repair``: rebuild the logs
        from the checkpoint's copy, once every other check passed). Without a checkpoint, a run
        whose later generations exist is refused; ``restart`` moves everything but the config
        into ``RUN/discarded-<time>/`` and starts over. Temp files of a killed write are removed
        only once every check passed."""
        evolution_kind(Path(path))
        run = RunDir.open(path)
        try:
            data = read_toml(run.path / CONFIG)
            config = ExperimentConfig.from_dict(data)
            threads = [run] if config.thread is None else \
                [RunDir(run.path / THREADS_DIR / t.name) for t in config.thread]
            if restart:
                run.set_aside(**({"subdirs": (THREADS_DIR,)} if config.thread is not None else {}))
                _drop_change_notes(run)
                return cls(config, _resume=run, **components)
            state = run.load_checkpoint()
            if state is None:
                _refuse_without_checkpoint(run, threads)
                return cls(config, _resume=run, **components)
            if ("threads" in state) != (config.thread is not None):
                raise RunDirError(f"the checkpoint of {run.path} is {'a session' if 'threads' in state else 'a one-thread run'}"
                                  f"'s, but its {CONFIG} {'has no' if 'threads' in state else 'has'} [[thread]] tables; "
                                  f"restore the run's own {CONFIG}")
            config, changes = _check_config(run, state, data, tuple(allow_changed))
            saved = state["threads"] if "threads" in state else {None: state}
            names = [None] if config.thread is None else [t.name for t in config.thread]
            if repair:  # only logs whose generation files all match the checkpoint are rebuilt (by _restore)
                for r, name in zip(threads, names):
                    r.verify([], saved[name]["digests"])
            else:
                if "threads" in state:
                    run.verify(state["log_lines"], [])
                for r, name in zip(threads, names):
                    r.verify(saved[name]["log_lines"], saved[name]["digests"])
            return cls(config, _resume=run, _state=state, _allow_changed=tuple(allow_changed), _changes=changes,
                       _repair=repair, **components)
        except BaseException:
            run.lock.release()
            raise

    def _restore(self, state: dict, repair: bool = False) -> None:
        saved = state["threads"] if self.session else {None: state}
        for t in self.threads:
            t.restore(saved[t.name], self.run_dir.path)
        progress = state if self.session else vars(self.threads[0])  # a one-thread run's is its thread's
        self.generation, self.presented, self.log_lines = (progress["generation"], progress["presented"],
                                                           progress["log_lines"])
        self.checkpointed = self.generation
        new = self.changes[len(state.get("changes", [])):]  # this resume's: recorded with the next checkpoint
        then, now = state.get("reference_names") or [], [] if self.reference is None else self.reference.names
        if then != now and not any(c["key"].startswith("reference.") for c in new):
            # the cycle would show other images than the run did, and no allowed change asked for them
            change = f"{len(then)} images then, {len(now)} now" if len(then) != len(now) else "other file names"
            raise RunDirError(f"the reference images of {self.run_dir.path} changed since the run started "
                              f"({change}); restore the folder to resume")
        self._unrecorded = bool(new)
        if repair:  # the logs from the checkpoint's copy, only now that every check has passed
            for t in self.threads:
                t.run.repair_log(t.log_lines)
            if self.session:
                self.run_dir.repair_log(self.log_lines)
        self._rewind()
        if not self.done:  # the completion mark of an earlier end no longer holds
            self.run_dir.remove(SUMMARY)

    def _rewind(self) -> None:
        """Drop whatever is newer than the checkpoint (the generation in flight at a crash) and
        the temp files of a killed write (only now: every check has passed)."""
        folders = [(self.run_dir, self.generation, self.log_lines)]
        folders += [(t.run, t.generation, t.log_lines) for t in self.threads if t.run is not self.run_dir]
        for run, generation, lines in folders:
            run.clean_temp_files()
            run.rewind(generation, lines)

    def _checkpoint(self) -> None:
        config = self.config.to_dict()
        state = {"config": config, "config_fingerprint": config_fingerprint(comparable(config) if self.session
                                                                              else config),
                 "components": self.components, "custom": self.custom, "changes": self.changes,
                 "started_config": self._started or self.config.to_dict(),  # before any --allow-changed
                 "reference_names": None if self.reference is None else self.reference.names}
        if self.session:
            state.update(kind=SESSION_KIND, generation=self.generation, presented=self.presented, log_lines=self.log_lines,
                         threads={t.name: t.state() for t in self.threads})
        else:
            state.update(self.threads[0].state())
        self.run_dir.save_checkpoint(state)
        self.checkpointed = self.generation
        if self._unrecorded:  # once a checkpoint holds them; config.toml stays the config the run started with
            self.run_dir.record_changes(self.changes, _custom_note(self.custom, self.components)
                                        + _started_toml(self.run_dir, self._started, self.changes),
                                        SESSION_KIND if self.session else "evolution")
            self._unrecorded = False

    # -- the loop -----------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return all(t.stopped is not None for t in self.threads)

    @property
    def evaluations(self) -> int:
        return sum(t.evaluations for t in self.threads)

    def _decode(self, generator: Generator, codes: np.ndarray) -> torch.Tensor:
        """``codes`` decoded in chunks: the generator's memory per image against the device's free
        memory at the run's first decode (CUDA), else :data:`DECODE_CHUNK` codes."""
        chunk = self._decode_chunks.get(id(generator))
        if chunk is None:
            chunk = self._decode_chunks[id(generator)] = decode_chunk(
                bytes_per_image(generator, self.config.device), free_memory(self.config.device), DECODE_CHUNK)
        return torch.cat([generator.decode(codes[i:i + chunk]) for i in range(0, len(codes), chunk)])

    def step(self) -> dict:
        """One generation of every live thread, in one responder call; returns its log record
        (a one-thread run's generation record, or the session's)."""
        if self.done:  # what run() would call finished
            why = " / ".join(sorted({t.stopped for t in self.threads}))
            raise RunDirError(f"run {self.run_dir.path} has finished: {self.generation} generations, "
                              f"{self.evaluations} evaluations (stopped: {why}); step() has no generation left to "
                              f"run (to extend the run, raise its {why} in config.toml and resume it with "
                              "--allow-changed KEY)")
        self.run_dir.lock.acquire()  # again, if run() released it at the end
        g, clock = self.generation, [time.perf_counter()]
        live = [t for t in self.threads if t.stopped is None]
        asked = {t.name: t.optimizer.ask() for t in live}
        codes = {t.name: asked[t.name][: t.remaining(len(asked[t.name]))] for t in live}  # a budget's last is trimmed
        clock.append(time.perf_counter())
        with torch.no_grad():
            images = {t.name: self._decode(t.generator, codes[t.name]) for t in live}
        clock.append(time.perf_counter())
        outcomes, session_record = self._present(g, live, codes, images)
        clock.append(time.perf_counter())
        for t in live:
            told, n = outcomes[t.name].scores, len(codes[t.name])
            if n < len(asked[t.name]):  # never shown: unscored for the optimiser
                told = np.concatenate([told, np.full(len(asked[t.name]) - n, np.nan)])
            t.optimizer.tell(asked[t.name], told)
        clock.append(time.perf_counter())
        reference_names = None if self.reference is None else self.reference.names
        records = {t.name: save_generation(t, codes[t.name], images[t.name], outcomes[t.name],
                                           save_images=self.config.save_images,
                                           reshow=self.config.unscored == "reshow",
                                           reference_index=self._reference_index,
                                           reference_names=reference_names) for t in live}
        clock.append(time.perf_counter())
        timings = {name: clock[i + 1] - clock[i] for i, name in enumerate(TIMINGS)}
        for t in live:
            if not self.session:
                records[t.name]["timings"] = timings
            t.log_lines.append(t.run.append_log(records[t.name]))
        if self.session:
            self.generation += 1
            self.presented += session_record.pop("_presented")
            session_record.update(
                presented=self.presented,
                threads={t.name: {k: records[t.name].get(k) for k in ("best", "mean", "evaluations", "reference_mean")}
                         for t in live},
                stopped={t.name: t.stopped for t in self.threads if t.stopped is not None}, timings=timings)
            self.log_lines.append(self.run_dir.append_log(session_record))
        else:
            self.generation, self.presented = self.threads[0].generation, self.threads[0].presented
        self._checkpoint()
        return session_record if self.session else records[None]

    def _present(self, g: int, live: list[Thread], codes: dict, images: dict) -> tuple[dict, dict | None]:
        """Show the generation (one call): each live thread's share of the outcome, and the
        start of a session's record (order shown)."""
        self._reference_index, reference_images = np.zeros(0, dtype=np.int64), None
        reshow = self.config.reshow_attempts if self.config.unscored == "reshow" else 0
        if not self.session:
            if self.reference is not None:
                self._reference_index, reference_images = self.reference.batch(g, images[None])
            outcome = present(self.responder, images[None], run_dir=self.run_dir.path, generation=g,
                              reference_images=reference_images, reference_index=self._reference_index,
                              reshow_attempts=reshow)
            return {None: outcome}, None
        shown = torch.cat([self._resized(images[t.name]) for t in live])
        owners = {f"g{g}-{t.name}-{i}": (index, i) for index, t in enumerate(self.threads) if t in live
                  for i in range(len(codes[t.name]))}
        if self.reference is not None:
            self._reference_index, reference_images = self.reference.batch(g, shown)
            owners.update({f"g{g}-ref{int(k)}": (None, int(k)) for k in self._reference_index})
        ids = list(owners)
        self.responder.owners, self.responder.reference_rows = owners, {}
        order = interleaving(self.config.seed, g, len(ids))
        outcome = present(self.responder, shown, run_dir=self.run_dir.path, generation=g,
                          reference_images=reference_images, reference_index=self._reference_index,
                          reshow_attempts=reshow, ids=ids, order=order)
        outcomes, start = {}, 0
        for t in live:
            n = len(codes[t.name])
            outcomes[t.name] = self._thread_outcome(t, outcome, slice(start, start + n), ids[len(outcome.scores):])
            start += n
        return outcomes, {"generation": g, "presented": None, "shown": outcome.presented,
                          "order": [ids[i] for i in order], "_presented": outcome.presented}

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
        shown = outcome.shown[own]
        return Presentation(outcome.scores[own], ref, None if outcome.clean is None else outcome.clean[own],
                            ref_clean, shown, int(shown.sum()) + len(reference_ids))

    def run(self, *, progress: bool = True, should_stop: Callable[[], bool] | None = None,
            on_generation: Callable[[dict], None] | None = None) -> Summary:
        """Run until every thread has reached its generations, budget or patience, or until
        ``should_stop()`` turns true (checked between generations, so nothing is lost);
        ``on_generation(record)`` is called after each saved generation (e.g. a live report)."""
        from tqdm.auto import tqdm

        from xdream.evolve.progress import progress_postfix

        by_evaluations = not self.session and self.config.budget is not None
        lengths = [t.generations for t in self.threads]  # the longest thread's (none when one runs to a budget)
        total = self.config.budget if by_evaluations else None if None in lengths else max(lengths)
        stopped = False
        try:
            with tqdm(total=total, initial=self.evaluations if by_evaluations else self.generation,
                      unit="eval" if by_evaluations else "gen", disable=not progress, dynamic_ncols=True) as bar:
                while not self.done:
                    if should_stop is not None and should_stop():
                        stopped = True
                        break
                    record = self.step()
                    bar.set_postfix(progress_postfix(record, self.threads), refresh=False)
                    if on_generation is not None:
                        on_generation(record)
                    bar.update(len(record["scores"]) if by_evaluations else 1)
            return self.finish(stopped_early=stopped)
        finally:
            self.run_dir.lock.release()

    def results(self) -> list[dict]:
        """One record per thread (a session's ``results.jsonl``): what it ran and what it reached."""
        out = []
        for index, t in enumerate(self.threads):
            c = self.config.thread[index] if self.session else None
            first = t.history[0]["best"] if t.history else math.nan
            refs = [h["reference_mean"] for h in t.history if math.isfinite(h.get("reference_mean", math.nan))]
            cleans = [h["clean_best"] for h in t.history if math.isfinite(h.get("clean_best", math.nan))]
            target = self.components["responder"].get("target") if c is None else \
                (c.target[0] if len(c.target) == 1 else list(c.target))
            out.append({
                "name": t.name, "generator": (c or self.config).generator.name,
                "optimizer": (c or self.config).optimizer.name, "target": target, "seed": (c or self.config).seed,
                "generations": t.generation, "evaluations": t.evaluations, "presented": t.presented,
                "initial_best": first, "final_best": t.best_score, "best_generation": t.best_generation,
                "improvement": t.best_score / first if first > 0 else None,
                "clean_best": max(cleans) if cleans else None,
                "reference_mean": float(np.mean(refs)) if refs else None, "stopped": t.stopped,
            })
        return out

    def finish(self, *, stopped_early: bool = False) -> Summary:
        """Write the trajectory plots (and a session's results.jsonl), then summary.json (the
        completion mark: written last, so a run that has it has everything); return the summary."""
        if self.generation == 0:
            raise RunDirError(f"run {self.run_dir.path} has no finished generation to summarise")
        from xdream.images.plots import plot_threads, plot_trajectory

        self.run_dir.lock.acquire()
        results = self.results()
        summary = Summary(self.run_dir.path, self.generation, self.evaluations, self.presented, stopped_early,
                          results, self.session)
        status = {"status": "stopped" if stopped_early else "finished"}
        changes = {"changes": self.changes} if self.changes else {}
        if not self.session:
            record = self.components["responder"]  # what ran: a custom module under its own name
            title = f"{self.config.optimizer.name} on {self.components['generator'].get('name')} -> " \
                    f"{record.get('target') or record.get('name')}"
            plot_trajectory(self.history, self.run_dir.path / "trajectory.png", title=title)
            self.run_dir.write_json(SUMMARY, {
                **status, **{k: getattr(summary, k) for k in ("generations", "evaluations", "presented",
                                                              "initial_best", "final_best", "best_generation",
                                                              "stopped_early")},
                "improvement": summary.improvement, **{k: results[0][k] for k in ("clean_best", "reference_mean")},
                "config": self.config.to_dict(),
                "components": self.components, "custom_components": self.custom, **changes})
            return summary
        for t, r in zip(self.threads, results):
            if t.history:
                plot_trajectory(t.history, t.run.path / "trajectory.png",
                                title=f"{t.name}: {r['optimizer']} on {r['generator']} -> {r['target']}")
        plot_threads({t.name: t.history for t in self.threads}, self.run_dir.path / "trajectory.png",
                     title=f"session of {len(self.threads)} threads")
        lines = "".join(json.dumps(json_safe(r), allow_nan=False) + "\n" for r in results)
        atomic_write(self.run_dir.path / RESULTS, lines.encode())
        self.run_dir.write_json(SUMMARY, {
            **status, "stopped_early": stopped_early, "generations": self.generation,
            "evaluations": self.evaluations, "presented": self.presented, "threads": results,
            "config": self.config.to_dict(), "components": self.components, **changes})
        return summary

    def close(self) -> None:
        try:
            self.responder.close()
        finally:
            self.run_dir.lock.release()


# -- resume checks -------------------------------------------------------------------------------
def _check_custom(run: RunDir, state: dict, given: list[str]) -> None:
    """A run started with custom component objects resumes only with objects again."""
    for kind in state.get("custom", []):
        if kind not in given:
            record = state["components"][kind]
            what = record.get("target") or record.get("name")
            raise RunDirError(f"run {run.path} was started through the Python API with its own {kind} "
                              f"({record['class']} {what}); resume it with the same object: "
                              f"Experiment.resume({str(run.path)!r}, {kind}=...)")


def _check_python_objects(config: ExperimentConfig, given: list[str]) -> None:
    """A config saved by a run that was given its own component objects (its ``python_objects``
    mark) runs only with such objects again: its tables do not describe what that run used."""
    for kind in (config.python_objects or "").split(","):
        if kind and kind not in given:
            flag = "--generator NAME or " if kind == "generator" else \
                "--target MODEL:LAYER:CHANNEL or " if config.thread is None else ""  # a session's are in [[thread]]
            raise ConfigError(f"this config is from a run started from Python with its own {kind} object "
                              f"(python_objects = {config.python_objects!r}), which its [{kind}] table does not "
                              f"describe: pass the object again (Experiment(config, {kind}=...)), or name the {kind} "
                              f"to use ({flag}--set {kind}.KEY=VALUE)")


def _as_recorded(then, now) -> bool:
    """Whether a component ``now`` is the one recorded ``then``. Keys the record lacks are not
    compared: an earlier xdream described its components with fewer keys (``describe()`` grows);
    what the component holds is compared all the same (``weights_sha256``)."""
    if isinstance(then, dict) and isinstance(now, dict):
        return all(_as_recorded(value, now.get(key)) for key, value in then.items())
    if isinstance(then, list) and isinstance(now, list):
        return len(then) == len(now) and all(map(_as_recorded, then, now))
    return then == now


def _check_components(run: RunDir, then: dict, now: dict, allow: tuple[str, ...]) -> None:
    for kind in now:
        if kind in allow or _as_recorded(then.get(kind), now[kind]):
            continue
        if kind == "generators":
            raise RunDirError(f"the generators of {run.path} differ from the ones its checkpoint records; resume "
                              "with the run's own generators, or pass --allow-changed generators to continue anyway")
        old, new = then.get(kind) or {}, now[kind]
        keys = sorted(k for k in (set(old) or set(new)) if not _as_recorded(old.get(k), new.get(k)))
        shown = "; ".join(f"{k} {old.get(k)!r} then, {new.get(k)!r} now" for k in keys[:2])
        raise RunDirError(f"the {kind} of {run.path} differs from the one its checkpoint records ({shown}); "
                          f"resume with the run's own {kind}, or pass --allow-changed {kind} to continue anyway")


def _check_latent(run: RunDir, state: dict, config: ExperimentConfig, generators: dict) -> None:
    """Each thread's generator searches the space of the checkpoint's codes (its last generation
    file's): an allowed change of a generator's table may alter its latent dimension (a pixel
    generator's ``size``), and the optimiser's state is in the old space."""
    saved = state["threads"] if "threads" in state else {None: state}
    for t in config.thread or [None]:
        name = None if t is None else t.name
        done = (saved.get(name) or {}).get("generation", 0)
        if not done:
            continue
        folder = run if t is None else RunDir(run.path / THREADS_DIR / name)
        with np.load(folder.generation_file(done - 1)) as data:
            then = data["codes"].shape[-1]
        now = generators[_plugin_key((config if t is None else t).generator)].latent_dim
        if then != now:
            whose = "its generator" if name is None else f"thread {name!r}'s generator"
            raise RunDirError(f"run {run.path} evolved codes of {then} dimensions, but {whose} now has a latent "
                              f"space of {now}: the checkpoint's optimiser state is in the old space, so the run "
                              "cannot continue with this generator; start a new run with it instead")


def _key_path(key: str, threads) -> list[str]:
    """Dotted config key ``key`` as its path of tables: a session thread's key is split at the
    thread's name (one of ``threads``), which may hold dots (``thread.v4.b.seed``: ``v4.b``'s seed)."""
    name = max((n for n in threads if f"{key}.".startswith(f"thread.{n}.")), key=len, default=None)
    return key.split(".") if name is None else ["thread", name, *filter(None, key[len(f"thread.{name}"):].split("."))]


def _fixed(key: str, threads=()) -> str | None:
    """Why config key ``key`` can never change on resume (None: it may, with --allow-changed)."""
    path = _key_path(key, threads)
    return FIXED_ON_RESUME.get(".".join(path[2:] if path[0] == "thread" and len(path) > 2 else path))


def _check_config(run: RunDir, state: dict, data: dict, allow: tuple[str, ...]) -> tuple[ExperimentConfig, list]:
    """config.toml against the checkpoint: a change is refused unless allowed. config.toml
    holds the config the run started with, so a change is what differs from that; it is laid
    over the config in effect (the checkpoint's). Returns the config to continue with and the
    run's changes (earlier ones and these: generation, key, old, new)."""
    session = "threads" in state
    view = comparable if session else (lambda c: c)
    effective, started, now = view(state["config"]), view(state.get("started_config") or state["config"]), view(data)
    names = [*effective.get("thread", {}), *now.get("thread", {})]
    wanted = json.loads(json.dumps(effective))
    for key, (_, new) in config_changes(started, now).items():
        _set_dotted(wanted, _key_path(key, names), new)
    changes = config_changes(effective, wanted)
    for key in allow:
        if _fixed(key, names):
            raise ConfigError(f"--allow-changed {key}: {key} cannot change on resume ({_fixed(key, names)}); "
                              "start a new run instead")
    allowed = [_key_path(a, names) for a in allow]
    refused = {k: v for k, v in changes.items()  # a fixed key stays refused under its allowed table
               if _fixed(k, names) or not any(_key_path(k, names)[:len(a)] == a for a in allowed)}
    if refused:
        raise changed_config_error(run.path, refused, {k: _fixed(k, names) for k in refused if _fixed(k, names)})
    recorded = list(state.get("changes", [])) + [{"generation": state["generation"], "key": k, "old": old, "new": new}
                                                 for k, (old, new) in changes.items()]
    if not recorded:  # never changed: the config is config.toml as it is
        return ExperimentConfig.from_dict(data), recorded
    if session:
        wanted["thread"] = [{"name": name, **table} for name, table in wanted["thread"].items()]
    if "output" in data:
        wanted["output"] = data["output"]
    return ExperimentConfig.from_dict(wanted), recorded


def _set_dotted(tree: dict, path: list[str], value) -> None:
    *tables, last = path
    for part in tables:
        tree = tree.setdefault(part, {})
    if value is None:
        tree.pop(last, None)
    else:
        tree[last] = value


def _started_toml(run: RunDir, started: dict, changes: list[dict]) -> str:
    """config.toml as the run started (``started``), with a note of what changed since (and when)."""
    output = read_toml(run.path / CONFIG).get("output")
    note = "".join(f"{CHANGE_NOTE}{c['generation']}: {c['key']} {c['old']!r} -> {c['new']!r}\n" for c in changes)
    return ("# This is the config the run started with; `xdream evolve` of it repeats that run.\n" + note
            + to_toml({**started, **({"output": output} if output else {})}))


def _drop_change_notes(run: RunDir) -> None:
    """config.toml without the notes of changes on resume: they were the run a restart discards."""
    text = (run.path / CONFIG).read_text()
    kept = "".join(line for line in text.splitlines(keepends=True) if not line.startswith(CHANGE_NOTE))
    if kept != text:
        atomic_write(run.path / CONFIG, kept.encode())


def _refuse_without_checkpoint(run: RunDir, threads: list[RunDir]) -> None:
    """No checkpoint: start over only if nothing beyond the first generation in flight exists."""
    later = any(g > 0 for r in threads for g in r.finished_generations())
    log = run.path / LOG
    lines = [line for line in log.read_bytes().split(b"\n") if line.strip()] if log.is_file() else []
    if later or len(lines) > 1:
        raise RunDirError(f"{run.path} holds finished generations but no checkpoint ({run.path / 'checkpoint.pkl'} "
                          f"is missing), so it cannot continue; restore the checkpoint, or start over with "
                          f"xdream evolve --resume {run.path} --restart (the old generations are moved aside)")


# -- building ------------------------------------------------------------------------------------
def _plugin_key(plugin) -> str:
    return json.dumps(plugin.to_dict(), sort_keys=True, default=str)


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


def _check_memory(population: int, image_size: int, save_images: str) -> None:
    """Refuse a population whose images alone would not fit in memory (decoding is chunked,
    but the responder, the montage and the saved generation see them all at once)."""
    per_image = 3 * image_size * image_size * 4 * (3 if save_images == "all" else 2)
    check_memory(f"population {population}", population, per_image, f"one generation's {image_size} px images",
                 "use a smaller population (at most about {fits})")
