"""Experiment configuration: one validated object built from TOML, CLI overrides or Python.

A config file looks like::

    seed = 0
    generations = 40
    [generator]
    name = "dcgan-faces"
    [responder]
    name = "torch-unit"
    target = "efficientnet_lite0:_blocks.10:27"
    [optimizer]
    name = "genetic"
    population = 20
    [noise]              # optional: simulated trial-to-trial noise on any responder
    name = "gaussian"
    level = 0.2
    [reference]          # optional: natural reference images shown in every generation
    folder = "photos"    # default: scikit-image's photographs
    per_generation = 2

A config with ``[[thread]]`` tables is a session of several evolution threads sharing the one
responder (Ponce et al. 2019); a config without them is one thread made from the top-level
tables. Per ``[[thread]]``::

    [[thread]]
    name = "faces"          # [A-Za-z0-9_.-], not starting with ".": its folder RUN/threads/faces/
    generator = "dcgan-faces"                 # default: the top-level [generator]
    optimizer = { name = "cmaes" }            # default: the top-level [optimizer]
    target = ["ch1", "ch2"]                   # a unit or rig channel, or a list (averaged)
    seed = 3                                  # default: from the run's seed and the name only
    generations = 30                          # or budget; default: the run's (a budget is split)
    patience = 10                             # stop after 10 generations without a new best

In a session ``[responder]`` may be left out (chosen from the threads' targets) and the
``init_*`` keys are refused (inversion starts are per one-thread run).

Each plugin table holds ``name`` plus the plugin's own options, validated against the
plugin's constructor. ``[reference]`` is the one table that is not a plugin (see
:class:`ReferenceConfig`). Unknown keys and wrong types are one-line :class:`ConfigError` s.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xdream.config.defaults import defaults
from xdream.core import registry
from xdream.core.errors import ConfigError, choices_text
from xdream.core.seeding import check_seed

# Framework-provided constructor arguments per plugin kind (not user options).
PROVIDED = {
    "generator": ("device",),
    "responder": ("device",),
    "optimizer": ("dim", "rng", "sampler", "init", "budget"),
    "noise": (),
}

SCALARS = {  # top-level key -> (type, default, description)
    "seed": (int, 0, "master seed; every random stream derives from it"),
    "generations": (int, 60, "number of generations (give generations or budget, not both)"),
    "budget": (int, None, "total evaluations instead of generations (the last generation is trimmed to fit)"),
    "output": (str, None, "run directory (default runs/<time>-<generator>-<optimizer>)"),
    "device": (str, "cpu", "torch device for generator and responder"),
    "threads": (int, None, "torch intra-op threads, 1..1024 (the xdream command's default: one per core, or "
                           "OMP_NUM_THREADS); the count used is recorded, so a resumed run reuses it"),
    "init_image": (str, None, "image file whose code (found by gradient inversion) starts the optimiser"),
    "init_characterisation": (str, None, "characterisation run whose preferred stimulus for the unit (its code, by "
                                         "gradient inversion) starts the optimiser"),
    "init_unit": (str, None, "unit of init_characterisation (default: its only unit, or the responder's target)"),
    "init_sweep": (str, None, "sweep of init_characterisation whose preferred stimulus is used (default: the sweep "
                              "that drove the unit most)"),
    "save_images": (str, "all", "per-generation PNGs: all (best + montage), best, or none (only best.png); a "
                                "session of more than 8 threads defaults to best (montages are most of a run's bytes)"),
    "unscored": (str, "nan-policy", "images with no valid response: nan-policy (the optimiser's NaN policy acts) "
                 "or reshow (shown again in the same generation before the optimiser is told)"),
    "reshow_attempts": (int, 1, "with unscored = reshow: how many more times an unscored image may be shown"),
    "deterministic": (bool, True, "on CUDA: deterministic cuDNN and torch algorithms, TF32 off, a fixed cuBLAS "
                                  "workspace, so a run and its resume repeat bit for bit (xdream.core.device); no "
                                  "effect on the CPU"),
    "python_objects": (str, None, "written by a run started from Python with its own generator and/or responder "
                                  "object, which its table does not describe: such a config runs only with those "
                                  "objects passed again (Experiment(config, responder=...))"),
}
SAVE_IMAGES = ("all", "best", "none")
#: Sessions of more threads than this save only each generation's best image unless told
#: otherwise: a 17-image montage is about 140 KB a thread and generation, so 64 threads x 40
#: generations with montages write about 0.4 GB (README, "Several evolutions in one session").
MANY_THREADS = 8
UNSCORED = ("nan-policy", "reshow")
PYTHON_OBJECTS = ("generator", "responder", "generator,responder")
CHOICES = {"save_images": SAVE_IMAGES, "unscored": UNSCORED, "python_objects": PYTHON_OBJECTS}  # string keys with a fixed set of values
MAX_RESHOW_ATTEMPTS = 10
#: torch intra-op threads a config may ask for: far above any machine's cores, far below the
#: counts (about 100,000) at which torch's pool ends the process (std::bad_alloc or a segfault)
MAX_TORCH_THREADS = 1024
PLUGINS = ("generator", "responder", "optimizer", "noise")
TABLES = ("reference",)  # tables that are not plugins
THREAD_KEYS = ("name", "target", "generator", "optimizer", "seed", "generations", "budget", "patience")
#: Top-level keys of a one-thread run that a session does not take (inversion starts are per run).
NOT_IN_SESSION = ("init_image", "init_characterisation", "init_unit", "init_sweep")
THREAD_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,31}$")  # a plain folder name: never ".", ".." or "a/b"
MAX_THREADS = 4096


@dataclass
class ReferenceConfig:
    """Natural reference images shown and scored with every generation, never told to the
    optimiser: ``per_generation`` of them, cycled in a fixed order through the readable images
    of ``folder`` (None: the photographs bundled with scikit-image); 0 turns them off."""

    folder: str | None = None
    per_generation: int = 2

    @classmethod
    def from_value(cls, value) -> "ReferenceConfig":
        if not isinstance(value, dict):
            raise ConfigError(f"config [reference] must be a table with folder and per_generation, got {value!r}")
        unknown = sorted(set(value) - {"folder", "per_generation"})
        if unknown:
            raise ConfigError(f"unknown config key 'reference.{unknown[0]}'; valid: folder, per_generation")
        folder, n = value.get("folder"), value.get("per_generation", cls.per_generation)
        if folder is not None:
            if not isinstance(folder, str):
                raise ConfigError(f"config key 'reference.folder' must be a folder path (str), got {folder!r}")
            if not Path(folder).expanduser().is_dir():
                raise ConfigError(f"reference.folder {folder!r} is not a folder; give a folder of images, or leave "
                                  "it out for scikit-image's photographs")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ConfigError(f"config key 'reference.per_generation' must be an integer >= 0 (0: no reference "
                              f"images), got {n!r}")
        return cls(folder, n)

    def to_dict(self) -> dict:
        return {"per_generation": self.per_generation, **({} if self.folder is None else {"folder": self.folder})}


@dataclass
class PluginConfig:
    """A plugin by registered name with its options."""

    name: str
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, **self.options}


def is_session(data: dict) -> bool:
    """Whether a parsed config holds ``[[thread]]`` tables."""
    return "thread" in data


@dataclass
class ThreadConfig:
    """One evolution thread: its generator, optimiser, target columns, seed and length."""

    name: str
    target: list[str]
    generator: PluginConfig
    optimizer: PluginConfig
    seed: int
    generations: int | None = None
    budget: int | None = None
    patience: int | None = None

    def to_dict(self) -> dict:
        lengths = {key: getattr(self, key) for key in ("generations", "budget", "patience")}
        return {"name": self.name, "target": self.target[0] if len(self.target) == 1 else list(self.target),
                "generator": self.generator.to_dict(), "optimizer": self.optimizer.to_dict(), "seed": self.seed,
                **{key: value for key, value in lengths.items() if value is not None}}


def _default(kind: str) -> PluginConfig:
    """The plugin table ``kind`` of the default job (``[evolve.KIND]`` in the defaults table)."""
    table = defaults("evolve")[kind]
    return PluginConfig(table.pop("name"), table)


@dataclass
class ExperimentConfig:
    """One validated run of one or more threads; the plugin tables default to the defaults
    table's job. ``thread`` is None for a config without ``[[thread]]`` tables (one thread made
    from the top-level tables); in a session ``responder`` may be None and
    ``defaults`` holds the top-level generator/optimizer tables as given."""

    generator: PluginConfig = field(default_factory=lambda: _default("generator"))
    responder: PluginConfig | None = field(default_factory=lambda: _default("responder"))
    optimizer: PluginConfig = field(default_factory=lambda: _default("optimizer"))
    noise: PluginConfig | None = None
    seed: int = 0
    generations: int = 60
    budget: int | None = None
    output: str | None = None
    device: str = "cpu"
    threads: int | None = None
    init_image: str | None = None
    init_characterisation: str | None = None
    init_unit: str | None = None
    init_sweep: str | None = None
    save_images: str = "all"
    unscored: str = "nan-policy"
    reshow_attempts: int = 1
    deterministic: bool = True
    python_objects: str | None = None
    reference: ReferenceConfig | None = None
    thread: list[ThreadConfig] | None = None
    defaults: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentConfig":
        """Validate a plain dict (as parsed from TOML) into a config."""
        data = copy.deepcopy(data)
        if is_session(data):
            return cls._session(data)
        unknown = set(data) - set(SCALARS) - set(PLUGINS) - set(TABLES)
        if unknown:
            key = sorted(unknown)[0]
            raise ConfigError(f"unknown config key {key!r}; valid: {choices_text([*SCALARS, *PLUGINS, *TABLES])}")
        kwargs = {}
        for key, (typ, _default, _doc) in SCALARS.items():
            if key in data:
                value = data[key]
                if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
                    raise ConfigError(f"config key {key!r} must be {typ.__name__}, got {value!r}")
                if typ is str and not value.strip():  # an unset variable: never the default in disguise
                    raise ConfigError(f"config key {key!r} is empty; give a value, or leave the key out for its "
                                      "default")
                kwargs[key] = value
        for key in ("generations", "budget", "threads"):
            if key in kwargs and kwargs[key] < 1:
                raise ConfigError(f"config key {key!r} must be >= 1, got {kwargs[key]}")
        if kwargs.get("threads", 1) > MAX_TORCH_THREADS:
            raise ConfigError(f"config key 'threads' must be <= {MAX_TORCH_THREADS} (torch threads; the default is one "
                              f"per core), got {kwargs['threads']}")
        if "generations" in kwargs and "budget" in kwargs:
            raise ConfigError(f"generations ({kwargs['generations']}) and budget ({kwargs['budget']}) are mutually "
                              "exclusive: a run has a number of generations or a budget of evaluations; give one")
        check_seed(kwargs.get("seed", 0), "config key 'seed'")
        for key, choices in CHOICES.items():
            if key in kwargs and kwargs[key] not in choices:
                raise ConfigError(f"config key {key!r} must be one of {choices_text(choices)}, got {kwargs[key]!r}")
        if not 1 <= kwargs.get("reshow_attempts", 1) <= MAX_RESHOW_ATTEMPTS:
            raise ConfigError(f"config key 'reshow_attempts' must be 1..{MAX_RESHOW_ATTEMPTS}, "
                              f"got {kwargs['reshow_attempts']}")
        if "reference" in data:
            kwargs["reference"] = ReferenceConfig.from_value(data["reference"])
        _check_init(kwargs)
        for kind in PLUGINS:
            if kind in data:
                kwargs[kind] = _plugin(kind, data[kind])
        config = cls(**kwargs)
        config.validate_options()
        return config

    @classmethod
    def _session(cls, data: dict) -> "ExperimentConfig":
        threads = data.pop("thread")
        for key in NOT_IN_SESSION:
            if key in data:
                raise ConfigError(f"config key {key!r} starts a one-thread run; a session of [[thread]] tables "
                                  "cannot take it (start each thread from its generator's initial code)")
        defaults = {k: data.pop(k) for k in ("generator", "optimizer") if k in data}
        responder = _responder(data.pop("responder")) if "responder" in data else None
        shared = cls.from_dict(data)  # the shared settings, validated as a one-thread run's
        if not isinstance(threads, list) or not threads or not all(isinstance(t, dict) for t in threads):
            raise ConfigError("config 'thread' must be [[thread]] tables (at least one), each with a name and a "
                              f"target; got {threads!r}"[:200])
        if len(threads) > MAX_THREADS:
            raise ConfigError(f"a session holds at most {MAX_THREADS} threads, got {len(threads)}")
        seen: set[str] = set()
        parsed = [_thread(t, i, defaults, shared, seen) for i, t in enumerate(threads)]
        if shared.budget is not None and shared.budget < len(_sharing(parsed)):
            raise ConfigError(f"budget {shared.budget} is split among {len(_sharing(parsed))} threads: give at "
                              "least one evaluation per thread")
        many = {} if "save_images" in data or len(parsed) <= MANY_THREADS else {"save_images": "best"}
        return dataclasses.replace(shared, responder=responder, thread=parsed, defaults=defaults, **many)

    def thread_length(self, index: int) -> tuple[int | None, int | None]:
        """``(generations, budget)`` of thread ``index``: its own, else the run's (a session
        budget split evenly among the threads without a length of their own, the remainder one
        evaluation each to the first of them: 10 among 4 threads is 3, 3, 2, 2)."""
        if self.thread is None:
            return (None, self.budget) if self.budget is not None else (self.generations, None)
        t = self.thread[index]
        if t.generations is not None or t.budget is not None:
            return t.generations, t.budget
        if self.budget is not None:
            shared = _sharing(self.thread)
            share, extra = divmod(self.budget, len(shared))
            return None, share + (1 if shared.index(index) < extra else 0)
        return self.generations, None

    def validate_options(self) -> None:
        """Check every plugin name and option against the registry."""
        for kind in PLUGINS:
            plugin = getattr(self, kind)
            if plugin is not None:
                cls = registry.load(kind, plugin.name)
                registry.check_options(kind, plugin.name, cls, plugin.options, PROVIDED[kind])

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in SCALARS if getattr(self, k) is not None}
        if self.budget is not None:
            out.pop("generations")
        for kind in PLUGINS if self.thread is None else ("responder", "noise"):  # a session's: as given
            if getattr(self, kind) is not None:
                out[kind] = getattr(self, kind).to_dict()
        if self.reference is not None:
            out["reference"] = self.reference.to_dict()
        if self.thread is not None:
            out.update(copy.deepcopy(self.defaults))
            out["thread"] = [t.to_dict() for t in self.thread]
        return out


def check_device(device: str) -> None:
    """A torch device name that exists on this machine, or a one-line ConfigError (checked
    before any model is built)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {device!r}; valid: cpu, cuda, cuda:N, mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: no CUDA GPU is available to torch here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                              f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {device!r} is not supported; valid: cpu, cuda, cuda:N, mps")


def _check_init(kwargs: dict) -> None:
    """One start at most; ``init_unit`` / ``init_sweep`` only refine ``init_characterisation``."""
    if "init_image" in kwargs and "init_characterisation" in kwargs:
        raise ConfigError(f"init_image ({kwargs['init_image']!r}) and init_characterisation "
                          f"({kwargs['init_characterisation']!r}) are mutually exclusive; give one")
    for key in ("init_unit", "init_sweep"):
        if key in kwargs and "init_characterisation" not in kwargs:
            raise ConfigError(f"{key} = {kwargs[key]!r} needs init_characterisation (--init-from-characterisation RUN)")


def _plugin(kind: str, value) -> PluginConfig:
    if isinstance(value, str):
        return PluginConfig(value)
    if not isinstance(value, dict):
        raise ConfigError(f"config [{kind}] must be a table with a 'name', got {value!r}")
    options = dict(value)
    name = options.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(
            f"config [{kind}] needs name = one of: {choices_text(registry.available(kind))}"
        )
    return PluginConfig(name, options)


def set_dotted(data: dict, dotted: str, value) -> None:
    """Apply an override such as ``optimizer.population = 40`` to a config dict. A missing
    ``[reference]`` table is created (a missing plugin table needs its name first)."""
    *tables, key = dotted.split(".")
    if len(tables) > 1 or (tables and tables[0] not in PLUGINS + TABLES):
        raise ConfigError(
            f"cannot set {dotted!r}: use KEY or TABLE.KEY with TABLE one of {', '.join(PLUGINS + TABLES)}"
        )
    target = data
    if tables:
        table = data.get(tables[0])
        if table is None and tables[0] in TABLES:
            table = data[tables[0]] = {}
        if table is None:
            raise ConfigError(f"cannot set {dotted!r}: the config has no [{tables[0]}] table")
        if isinstance(table, str) and tables[0] in PLUGINS:
            table = data[tables[0]] = {"name": table}
        if not isinstance(table, dict):
            raise ConfigError(f"cannot set {dotted!r}: config [{tables[0]}] must be a table, got {table!r}")
        target = table
    target[key] = value


def _sharing(threads: list[ThreadConfig]) -> list[int]:
    """The threads that share the session's length (no generations or budget of their own)."""
    return [i for i, t in enumerate(threads) if t.generations is None and t.budget is None] or [0]


def comparable(config: dict) -> dict:
    """A session config dict with its threads keyed by name (dotted keys such as
    ``thread.faces.optimizer.mutation_rate`` for :func:`xdream.runs.fingerprint.config_changes`)."""
    out = {k: v for k, v in config.items() if k != "thread"}
    out["thread"] = {t["name"]: {k: v for k, v in t.items() if k != "name"} for t in config.get("thread", [])}
    return out


def _responder(value) -> PluginConfig:
    """The session's ``[responder]`` table: a known name and known option names (options a
    responder fills from the threads' targets, such as a CNN unit's ``target``, may be left out)."""
    plugin = _plugin("responder", value)
    allowed = registry.user_options(registry.load("responder", plugin.name), PROVIDED["responder"])
    unknown = sorted(set(plugin.options) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} for responder {plugin.name!r}; "
                          f"valid: {choices_text(sorted(allowed))}")
    return plugin


def _thread(table: dict, index: int, defaults: dict, shared: ExperimentConfig, seen: set) -> ThreadConfig:
    unknown = sorted(set(table) - set(THREAD_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in [[thread]] {index}; valid: {choices_text(THREAD_KEYS)}")
    name = table.get("name")
    if not isinstance(name, str) or not THREAD_NAME.match(name):
        raise ConfigError(f"[[thread]] {index} needs name = a plain folder name: 1-32 characters of A-Z a-z "
                          f"0-9 _ . -, not starting with '.' (so never '.' or '..'), got {name!r}")
    if name in seen:
        raise ConfigError(f"two threads are named {name!r}; thread names must be unique (each has its folder "
                          f"RUN/threads/{name}/)")
    seen.add(name)
    target = table.get("target")
    targets = [target] if isinstance(target, str) else target
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise ConfigError(f"thread {name!r} needs target = a unit or channel name, or a list of them (averaged); "
                          f"got {target!r}")
    if len(set(targets)) != len(targets):
        raise ConfigError(f"thread {name!r} names target {targets!r} with a repeat; name each unit once")
    plugins = {}
    for kind in ("generator", "optimizer"):
        value = table.get(kind, defaults.get(kind))
        plugins[kind] = _default(kind) if value is None else _plugin(kind, value)
        cls = registry.load(kind, plugins[kind].name)
        registry.check_options(kind, plugins[kind].name, cls, plugins[kind].options, PROVIDED[kind])
    ints = {}
    for key, low in (("seed", 0), ("generations", 1), ("budget", 1), ("patience", 1)):
        value = table.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise ConfigError(f"thread {name!r}: {key} must be an integer >= {low}, got {value!r}")
        ints[key] = value
    if ints["generations"] is not None and ints["budget"] is not None:
        raise ConfigError(f"thread {name!r}: generations ({ints['generations']}) and budget ({ints['budget']}) are "
                          "mutually exclusive; give one")
    if ints["seed"] is None:  # the default: a function of the session seed and the thread's name only
        ints["seed"] = int(np.random.SeedSequence([shared.seed, zlib.crc32(name.encode())]).generate_state(1)[0])
    return ThreadConfig(name, targets, plugins["generator"], plugins["optimizer"], ints["seed"],
                        ints["generations"], ints["budget"], ints["patience"])
