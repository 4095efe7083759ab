"""Building a run's optimiser for its generator: the one place the loop (one thread or a
session of several) turns an ``[optimizer]`` table into an :class:`~xdream.core.optimizer.Optimizer`."""

from __future__ import annotations

import numpy as np

from xdream.config.experiment import PluginConfig
from xdream.core import registry
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
