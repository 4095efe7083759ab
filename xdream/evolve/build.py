"""Building a run's optimiser for its generator: the one place the loop (one thread or a
session of several) turns an ``[optimizer]`` table into an :class:`~xdream.core.optimizer.Optimizer`;
and a session's one responder for every thread's targets, with each thread's columns of it."""

from __future__ import annotations

import numpy as np

from xdream.config.experiment import ExperimentConfig, PluginConfig
from xdream.core import registry
from xdream.core.errors import ConfigError
from xdream.core.responder import Responder
from xdream.core.generator import Generator
from xdream.core.optimizer import Optimizer


def build_optimizer(plugin: PluginConfig, generator: Generator, rng: np.random.Generator, *,
                    budget: int | None, generations: int, init: np.ndarray | None = None) -> Optimizer:
    """The optimiser of ``plugin`` in ``generator``'s latent space, drawing from ``rng``,
    started at ``init`` (default: the generator's initial code). ``budget`` (evaluations) is
    what its schedules see; a run given in generations has ``generations x population``. An
    optimiser that ``uses_generator_geometry`` gets the generator's decode here (once)."""
    optimizer: Optimizer = registry.create(
        "optimizer", plugin.name, plugin.options, dim=generator.latent_dim, rng=rng, sampler=generator.sample,
        budget=budget, init=generator.initial_code() if init is None else init)
    if optimizer.uses_generator_geometry:
        optimizer.attach_generator(generator.decode, source=generator.name)
    if budget is None:
        optimizer.budget = generations * int(optimizer.population)
    return optimizer


def build_responder(config: ExperimentConfig) -> Responder:
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
