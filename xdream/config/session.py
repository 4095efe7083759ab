"""Session configuration: several evolution threads in one run, one responder for all.

A session config is an experiment config with ``[[thread]]`` tables::

    seed = 0
    generations = 30                 # each thread's length unless it sets its own
    [responder]                      # the session's one responder (here a rig; for CNN units it
    name = "zmq"                     # may be left out: chosen from the threads' targets)
    target = "tcp://127.0.0.1:5555"
    repeats = 2
    [optimizer]                      # default for threads without an [thread.optimizer] table
    name = "genetic"

    [[thread]]
    name = "faces"                   # [A-Za-z0-9_.-], unique: its folder RUN/threads/faces/
    generator = "dcgan-faces"
    target = "ch0"                   # a unit spec or rig channel, or a list of them (averaged)

    [[thread]]
    name = "fourier"
    generator = "fourier"
    optimizer = { name = "cmaes" }
    target = ["ch1", "ch2"]
    patience = 10                    # stop after 10 generations without a new best

Per thread: ``name``, ``target`` (required), ``generator`` and ``optimizer`` (default: the
top-level tables), ``seed`` (default: derived from the session seed and the thread's name, so
adding or changing another thread never changes it), ``generations`` or ``budget`` (default:
the session's ``generations``; a session ``budget`` is split evenly among the threads without
a length of their own) and
``patience``. The top-level ``threads`` key is torch's thread count, as in any run.
"""

from __future__ import annotations

import copy
import re
import zlib
from dataclasses import dataclass, field

import numpy as np

from xdream.config.experiment import PROVIDED, SCALARS, ExperimentConfig, PluginConfig, ReferenceConfig, _default, _plugin
from xdream.core import registry
from xdream.core.errors import ConfigError, choices_text

THREAD_KEYS = ("name", "target", "generator", "optimizer", "seed", "generations", "budget", "patience")
#: Top-level keys of a one-thread run that a session does not take (inversion starts are per run).
NOT_IN_SESSION = ("init_image", "init_characterisation", "init_unit", "init_sweep")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
MAX_THREADS = 4096


def is_session(data: dict) -> bool:
    """Whether a parsed config holds ``[[thread]]`` tables."""
    return "thread" in data


def thread_seed(seed: int, name: str) -> int:
    """A thread's default seed: a function of the session seed and the thread's name only."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0])


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
        out = {"name": self.name, "target": self.target[0] if len(self.target) == 1 else list(self.target),
               "generator": self.generator.to_dict(), "optimizer": self.optimizer.to_dict(), "seed": self.seed}
        for key in ("generations", "budget", "patience"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass
class SessionConfig:
    """A validated session: the shared settings and its threads (in the config's order)."""

    thread: list[ThreadConfig]
    responder: PluginConfig | None = None
    noise: PluginConfig | None = None
    reference: ReferenceConfig | None = None
    seed: int = 0
    generations: int = 60
    budget: int | None = None
    output: str | None = None
    device: str = "cpu"
    threads: int | None = None
    save_images: str = "all"
    unscored: str = "nan-policy"
    reshow_attempts: int = 1
    defaults: dict = field(default_factory=dict)  # the top-level generator/optimizer tables, as given

    @classmethod
    def from_dict(cls, data: dict) -> "SessionConfig":
        data = copy.deepcopy(data)
        threads = data.pop("thread")
        for key in NOT_IN_SESSION:
            if key in data:
                raise ConfigError(f"config key {key!r} starts a one-thread run; a session of [[thread]] tables "
                                  "cannot take it (start each thread from its generator's initial code)")
        defaults = {k: data.pop(k) for k in ("generator", "optimizer") if k in data}
        responder = _responder(data.pop("responder")) if "responder" in data else None
        shared = ExperimentConfig.from_dict(data)  # the shared settings, validated as a one-thread run's
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
        return cls(thread=parsed, responder=responder, noise=shared.noise,
                   reference=shared.reference, seed=shared.seed, generations=shared.generations,
                   budget=shared.budget, output=shared.output, device=shared.device, threads=shared.threads,
                   save_images=shared.save_images, unscored=shared.unscored,
                   reshow_attempts=shared.reshow_attempts, defaults=defaults)

    def thread_length(self, index: int) -> tuple[int | None, int | None]:
        """``(generations, budget)`` of thread ``index``: its own, else the session's (a session
        budget split evenly among the threads without a length of their own, the remainder to
        the first of them)."""
        t = self.thread[index]
        if t.generations is not None or t.budget is not None:
            return t.generations, t.budget
        if self.budget is not None:
            shared = _sharing(self.thread)
            share, extra = divmod(self.budget, len(shared))
            return None, share + (1 if shared.index(index) < extra else 0)
        return self.generations, None

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in SCALARS if hasattr(self, k) and getattr(self, k) is not None}
        if self.budget is not None:
            out.pop("generations", None)
        for kind in ("responder", "noise"):
            if getattr(self, kind) is not None:
                out[kind] = getattr(self, kind).to_dict()
        if self.reference is not None:
            out["reference"] = self.reference.to_dict()
        out.update(copy.deepcopy(self.defaults))
        out["thread"] = [t.to_dict() for t in self.thread]
        return out


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
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"[[thread]] {index} needs name = 1-32 characters of A-Z a-z 0-9 _ . -, got {name!r}")
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
    seed = thread_seed(shared.seed, name) if ints["seed"] is None else ints["seed"]
    return ThreadConfig(name, targets, plugins["generator"], plugins["optimizer"], seed,
                        ints["generations"], ints["budget"], ints["patience"])
