"""Sweep files: a grid of experiment settings expanded into independent, named runs.

A sweep file (TOML)::

    output = "runs/my-sweep"        # the sweep directory (one run directory per grid point)
    [base]                          # an ordinary experiment config, shared by every run
    budget = 3000
    generator = "fourier"
    responder = { name = "torch-unit", input_size = 128 }
    [grid]                          # axes; the runs are their Cartesian product
    target = ["efficientnet_lite0:_blocks.4:0", "efficientnet_lite0:_blocks.10:0"]
    optimizer = ["genetic", { name = "genetic", preset = "wang-ponce", label = "ga-wp" }, "sphere-cma"]
    seed = [0, 1]
    noise = [0, 0.2, 0.5]           # multiplicative Gaussian level (0: none), or a [noise] table

Axes: ``target`` (``responder.target``), ``optimizer`` and ``generator`` (a name or a table
with ``name``, options and an optional ``label`` for run names), ``seed``, ``noise``. Every
run's config is validated before anything is written, so a bad grid fails on one line.

A ``[base]`` with ``[[base.thread]]`` tables makes every grid point a session of several
threads (:mod:`xdream.config.experiment`): ``optimizer`` and ``generator`` then set the default of
the threads without a table of their own, ``seed`` and ``noise`` the session's; ``target``
does not apply (each thread names its own).

**How ``[base]`` combines with a grid arm** (a ``generator`` or ``optimizer`` value, a ``noise``
table or level): the arm's plugin gets, each overriding the one before, its own defaults, the
options of ``[base.KIND]`` (whichever plugin that names), the values of the arm's ``preset``
(when it names one) and the arm's own options. So a base option reaches every arm, and a preset
is never overridden by the base: with ``[base.optimizer] name = "genetic", population = 20`` and
the arms ``"genetic"``, ``{name = "genetic", preset = "wang-ponce"}`` and ``"sphere-cma"``, the
populations are 20, 40 (the preset's) and 20. A base option an arm's plugin does not take is
refused on one line (set it in the arms that take it); a noise level of 0 means no noise.

``results.jsonl`` and ``sweep.json`` hold each axis value typed as the grid gave it (``"seed":
0``, ``"noise": 0.2``, the full ``target`` with its model); a generator or optimiser arm is its
label. Run names keep the model (``target=resnet18-layer1-0``), and every target's channel is
checked against its layer (the model built without weights) before any run starts.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from dataclasses import dataclass

from xdream.config import PROVIDED, ExperimentConfig, defaults, is_session, read_toml
from xdream.core import registry
from xdream.core.errors import ConfigError, choices_text

AXES = ("target", "generator", "optimizer", "noise", "seed")
TOP_KEYS = ("output", "base", "grid")


@dataclass(frozen=True)
class RunSpec:
    """One grid point: its run name, its axis values (typed: ``seed`` an int, ``target`` the full
    spec, a plugin arm its label) and its config dict (validated by :func:`check_values`)."""

    name: str
    labels: dict
    config: dict


def load_sweep(path) -> tuple[str | None, list[RunSpec]]:
    """Parse, expand and check a sweep file: ``(output, runs)``."""
    data = read_toml(path)
    runs = expand(data)
    check_values(runs)
    return data.get("output"), runs


def expand(data: dict) -> list[RunSpec]:
    """Expand a parsed sweep file into runs (grid order: axes as in :data:`AXES`); their configs
    are validated by :func:`check_values`."""
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"unknown sweep key {unknown[0]!r}; valid: {choices_text(TOP_KEYS)}")
    if "output" in data and not isinstance(data["output"], str):
        raise ConfigError(f"sweep output must be a string path, got {data['output']!r}")
    base = data.get("base", {})
    grid = data.get("grid")
    if not isinstance(base, dict):
        raise ConfigError(f"sweep [base] must be a table, got {base!r}")
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"a sweep needs a [grid] table with at least one axis of: {choices_text(AXES)}")
    for key, values in grid.items():
        if key not in AXES:
            raise ConfigError(f"unknown sweep grid axis {key!r}; valid: {choices_text(AXES)}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep grid axis {key!r} must be a non-empty list, got {values!r}")
    axes = [key for key in AXES if key in grid]
    if is_session(base) and "target" in axes:
        raise ConfigError("sweep grid axis 'target' needs a one-thread [base]; a session's [[base.thread]] tables "
                          "name their own targets")
    points = [[_point(key, value) for value in grid[key]] for key in axes]
    runs, names = [], set()
    for combo in itertools.product(*points):
        config = copy.deepcopy(base)
        config.pop("output", None)
        labels = {}
        for key, (label, apply) in zip(axes, combo):
            apply(config)
            labels[key] = label
        name = "__".join(f"{key}={_slug(label)}" for key, label in labels.items())  # a target keeps its model
        if name in names:
            raise ConfigError(f"sweep grid gives two runs named {name!r}; give the axis values distinct labels")
        names.add(name)
        runs.append(RunSpec(name, labels, config))
    return runs


def check_values(runs: list[RunSpec]) -> None:
    """Validate each distinct config (:func:`_shape`) and build each distinct generator/optimiser
    pair and noise model once, so option *values* (ranges, presets) fail on one line before any
    run starts, and check every target against its responder (:meth:`Responder.check_targets`:
    a CNN unit's channel against its layer, the model built without weights: loading every
    network's weights would cost minutes)."""
    import numpy as np

    built: dict[str, object] = {}
    checked: set[str] = set()
    shapes = {_shape(run.config): run.config for run in runs}
    for raw in shapes.values():
        config = ExperimentConfig.from_dict(raw)
        pairs = [(t.generator, t.optimizer) for t in config.thread] if config.thread is not None else \
            [(config.generator, config.optimizer)]
        for generator_config, optimizer_config in pairs:
            key = repr(generator_config)
            if key not in built:
                built[key] = registry.create("generator", generator_config.name, generator_config.options,
                                             device="cpu")
            generator = built[key]
            pair = repr((key, optimizer_config, config.budget))
            if pair not in checked:
                checked.add(pair)
                registry.create("optimizer", optimizer_config.name, optimizer_config.options,
                                dim=generator.latent_dim, rng=np.random.default_rng(0), sampler=generator.sample,
                                budget=config.budget)
        if config.noise is not None and repr(config.noise) not in checked:
            checked.add(repr(config.noise))
            registry.create("noise", config.noise.name, config.noise.options)
    distinct = {json.dumps([run.config.get("responder"), run.config.get("thread")], sort_keys=True, default=repr): run
                for run in runs}  # a 14,700-run grid has a few hundred targets
    _check_targets([ExperimentConfig.from_dict(run.config) for run in distinct.values()])


def _check_targets(configs: list[ExperimentConfig]) -> None:
    """Every distinct target of ``configs``, checked once per responder and options."""
    groups: dict[str, tuple[str, dict, set]] = {}
    for config in configs:
        responder = config.responder
        if responder is None:
            continue
        options = {k: v for k, v in responder.options.items() if k not in ("target", "targets")}
        specs = [t for thread in config.thread for t in thread.target] if config.thread is not None else \
            [responder.options.get("target")]
        key = json.dumps([responder.name, options], sort_keys=True, default=repr)
        groups.setdefault(key, (responder.name, options, set()))[2].update(s for s in specs if isinstance(s, str))
    for name, options, specs in groups.values():
        registry.load("responder", name).check_targets(sorted(specs), options)


def _shape(config: dict) -> str:
    """A config with its seed and responder target left out: runs of one shape validate alike
    (seeds are checked as integers and target strings by their run), so each shape is checked
    once; a 14,700-run grid has a few dozen shapes."""
    rest = {k: v for k, v in config.items() if k != "seed"}
    if isinstance(rest.get("responder"), dict):
        rest["responder"] = {k: v for k, v in rest["responder"].items() if k != "target"}
    return json.dumps(rest, sort_keys=True, default=repr)


def _point(axis: str, value):
    """``(label, apply)`` for one axis value; ``apply`` sets it in a config dict."""
    if axis == "seed":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"sweep grid seed values must be integers, got {value!r}")
        return value, lambda c: c.__setitem__("seed", value)
    if axis == "target":
        if not isinstance(value, str):
            raise ConfigError(f"sweep grid target values must be strings MODEL:LAYER:CHANNEL, got {value!r}")
        return value, lambda c: _table(c, "responder").__setitem__("target", value)
    if axis == "noise" and isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"sweep grid noise level must be >= 0, got {value!r}")
        if value == 0:
            return value, lambda c: c.pop("noise", None)
        noise = defaults("sweep")["noise"]  # the noise model a bare level means
        _, apply = _plugin_point(axis, {"name": noise, "level": float(value)})
        return value, apply
    return _plugin_point(axis, value)


def _plugin_point(kind: str, value):
    """``(label, apply)`` for one value of the plugin axis ``kind`` (a name or a table)."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ConfigError(f"sweep grid {kind} values must be names or tables with a name, got {value!r}")
    table = dict(value)
    label = table.pop("label", None)
    if label is None:
        label = table["name"] + "".join(f"-{k}={v}" for k, v in table.items() if k != "name")
    if not isinstance(label, str) or not label:
        raise ConfigError(f"sweep grid {kind} label must be a non-empty string, got {label!r}")

    # once per arm, not per run: entry points are slow to scan and signatures slow to read
    cls = registry.load(kind, table["name"])
    taken = registry.user_options(cls, PROVIDED[kind])

    def apply(config):
        config[kind] = combine(kind, _table(config, kind), table, label, cls, taken)

    return label, apply


def combine(kind: str, base: dict, arm: dict, label: str, cls: type, taken: dict) -> dict:
    """An arm's plugin table from ``[base.KIND]`` and the arm's own table (the rule in the module
    docstring): base options, then the arm's preset's values, then the arm's own options; a base
    option the arm's plugin (``cls``, its user options ``taken``) does not take is refused on one line."""
    shared = {k: v for k, v in base.items() if k != "name" and k not in arm}
    if "preset" in arm:  # the preset's values win over the base's
        set_by_preset = getattr(cls, "presets", {}).get(arm["preset"], {})
        shared = {k: v for k, v in shared.items() if k not in set_by_preset}
    for key in shared:
        if key not in taken:
            raise ConfigError(
                f"sweep [base.{kind}] option {key!r} is not an option of {kind} {arm['name']!r} (grid arm "
                f"{label!r}; its options: {choices_text(sorted(taken)) or '(none)'}); set it in the grid arms that take it")
    return {"name": arm["name"], **shared, **{k: v for k, v in arm.items() if k != "name"}}


def _table(config: dict, kind: str) -> dict:
    table = config.get(kind)
    if isinstance(table, str):
        table = config[kind] = {"name": table}
    elif table is None:
        table = config[kind] = {"name": defaults("evolve")[kind]["name"]} if kind != "noise" else {}
    return table


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", str(text)).strip("-") or "x"
