"""The Responder interface: images in, one score per image out.

A responder is anything that turns images into responses: a unit of a local CNN, or a neuron
recorded on a rig. The experiment loop cannot tell them apart. ``NaN`` means no valid response
(an aborted trial, a lost message); optimisers have an explicit policy for it.

Capabilities. Beyond :meth:`Responder.respond`, the rest of xdream asks a responder for what
it can do, never for its name. Each capability has a default meaning "not available here":

================================  ==================================================  ===========================
capability                        what it is for                                      default
================================  ==================================================  ===========================
``accepts_target(spec)``          (classmethod) picks the responder for a target      False
                                  spec such as ``MODEL:LAYER:CHANNEL``
                                  (``xdream characterise``, ``gradient``, ``compare``)
``list_layers(model, weights)``   (classmethod) the layers a target may name, with    None (knows no models)
                                  output shapes (``xdream layers MODEL``)
``check_targets(specs, ...)``     (classmethod) a one-line error for a target it      nothing checked
                                  cannot record, cheaply, before a sweep's first run
                                  (``xdream sweep``)
``input_size``                    the image size the responder reads natively         None (any size)
``describe()``                    what is recorded, for run records and reports       ``{"name": name}``
``feature_target()``              a differentiable model and objective for gradient   None (gradient ascent
                                  ascent (:mod:`xdream.gradient`)                     cannot run on it)
``respond_units`` / ``unit_labels``  every unit recorded at once ``[B, U]``           one unit: ``respond``
``for_units(units, options, dev)``  (classmethod) one instance recording several      None (cannot)
                                  targets at once, for a session of several threads
                                  (:mod:`xdream.evolve.experiment`)
``unit_noun``                     what a column of ``respond_units`` is called in     ``"unit"``
                                  messages (a rig: ``"channel"``)
``last_clean``                    noise-free scores of the last call, when the        None
                                  responder adds simulated noise
``prepare(run_dir, g, ids)``      called before each batch (rigs keep records there)  nothing
``weights_files``                 published files it loads (``xdream weights``)       ``()``: none
``example(workdir, seed)``        (classmethod) a cheap instance for the contract     ``cls()``
                                  tests (``test_responder_contract.py``)
================================  ==================================================  ===========================
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch


class Responder(ABC):
    """Base class for responders; subclasses implement :meth:`respond` (and may declare the
    capabilities in the module docstring).

    ``weights_files``: the published files the plugin loads, declared on the class as on
    :class:`~xdream.core.generator.Generator` (listed, downloaded and verified by ``xdream
    weights``). Default: none. :meth:`example` gives the contract tests an instance."""

    name: str = "responder"
    weights_files: tuple = ()  # of xdream.weights.entry.WeightsEntry (the core imports nothing else)
    #: The image size (px) the responder reads natively; None: any size.
    input_size: int | None = None
    #: Noise-free scores of the last :meth:`respond` when the responder simulates noise; else None.
    last_clean: np.ndarray | None = None
    #: What one column of :meth:`respond_units` is called in messages ("unit", "channel").
    unit_noun: str = "unit"

    @classmethod
    def accepts_target(cls, spec: str) -> bool:
        """Whether ``spec`` (e.g. ``MODEL:LAYER:CHANNEL``) is a target this responder records,
        checked from the text alone (no model is loaded)."""
        return False

    @classmethod
    def list_layers(cls, model: str, weights: str | Path | None = None) -> list[tuple[str, tuple[int, ...]]] | None:
        """The layers of ``model`` a target may name, with output shapes; None when this
        responder knows no models."""
        return None

    @classmethod
    def check_targets(cls, specs: list[str], options: dict) -> None:
        """Raise a one-line ConfigError for the first of ``specs`` that names no unit this
        responder could record with ``options`` (the config's ``[responder]`` table without its
        name and target), as cheaply as possible (no weights loaded): a sweep checks all its
        targets before any run starts. Default: nothing to check (a rig's channels are known
        only once it answers)."""

    @classmethod
    def for_units(cls, units: list[str], options: dict, device: str = "cpu") -> "Responder | None":
        """One instance that records every target in ``units`` (e.g. ``MODEL:LAYER:CHANNEL``
        specs) in one call, its :meth:`unit_labels` being ``units`` in this order, built with the
        user's ``options`` (the config's ``[responder]`` table without its name); None when this
        responder records a fixed set of its own (a rig's channels: the session then picks among
        :meth:`unit_labels`). Used by sessions of several threads (:mod:`xdream.evolve.experiment`)."""
        return None

    def describe(self) -> dict:
        """What is recorded, for run records and reports (plain JSON values)."""
        return {"name": self.name}

    def feature_target(self):
        """A :class:`xdream.gradient.ModelTarget` (differentiable model, preprocessing and
        objective) for gradient ascent, or None when the responder has none (a rig)."""
        return None

    @classmethod
    def example(cls, workdir: Path, seed: int = 0) -> "Responder":
        """A small, cheap, working instance for the contract tests, which run it for every
        registered responder (``tests/responders/test_responder_contract.py``), so a new plugin
        is tested without a test file of its own. ``workdir`` is an empty folder the instance may
        use (logs, keys); ``seed`` seeds any randomness it has, so two examples made with the same
        seed give the same scores for the same images. Anything it starts (a server, a thread)
        is stopped by its :meth:`close`. Default: the class with no options; a plugin whose
        constructor needs options (a target, an endpoint) overrides this."""
        return cls()

    @abstractmethod
    def respond(self, images: torch.Tensor) -> np.ndarray:
        """Scores float64 ``[B]`` for images ``[B, 3, H, W]`` in [0, 1]."""

    def prepare(self, run_dir: Path, generation: int, image_ids: list[str] | None = None) -> None:
        """Called by the experiment before each :meth:`respond` of a generation: the run
        directory (remote responders keep their trial records there), the generation number and
        one id per image of the coming batch (``g3-0``, ``g3-ref5``: see
        :mod:`xdream.evolve.presentation`), which a rig uses as its image ids. An image re-shown later
        in the generation keeps its id. Ignored by local responders."""

    def respond_units(self, images: torch.Tensor) -> np.ndarray:
        """Responses float64 ``[B, U]`` of every unit the responder records, for recordings of
        many units at once (a whole CNN layer, an electrode array); one unit by default."""
        return np.asarray(self.respond(images), dtype=np.float64)[:, None]

    def unit_labels(self) -> list[str]:
        """One name per column of :meth:`respond_units`."""
        return [self.name]

    def close(self) -> None:
        """Release sockets, files or models; idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NoiseModel(ABC):
    """Turns noise-free scores into noisy observations, drawing only from the given RNG.

    Noise models simulate trial-to-trial variability of recorded neurons on top of any
    responder (see :class:`NoisyResponder`)."""

    name: str = "noise"

    @classmethod
    def example(cls) -> "NoiseModel":
        """A typical instance for the contract tests (``tests/responders/test_noise_contract.py``
        runs them for every registered noise model). Default: the class with no options."""
        return cls()

    @abstractmethod
    def __call__(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy float64 scores of the same shape; NaN stays NaN."""


class NoisyResponder(Responder):
    """Wraps any responder with a noise model; keeps the noise-free scores of the last call
    in :attr:`last_clean` so runs can record the true activation next to the noisy one."""

    def __init__(self, inner: Responder, noise: NoiseModel, rng: np.random.Generator):
        self.inner, self.noise, self.rng = inner, noise, rng
        self.name = f"{inner.name}+{noise.name}"
        self.input_size = inner.input_size
        self.last_clean: np.ndarray | None = None

    def respond(self, images: torch.Tensor) -> np.ndarray:
        return self._noisy(self.inner.respond(images))

    def prepare(self, run_dir: Path, generation: int, image_ids: list[str] | None = None) -> None:
        self.inner.prepare(run_dir, generation, image_ids)

    def respond_units(self, images: torch.Tensor) -> np.ndarray:
        return self._noisy(self.inner.respond_units(images))

    def _noisy(self, scores) -> np.ndarray:
        self.last_clean = np.asarray(scores, dtype=np.float64)
        return np.asarray(self.noise(self.last_clean, self.rng), dtype=np.float64)

    def unit_labels(self) -> list[str]:
        return self.inner.unit_labels()

    def describe(self) -> dict:
        return {**self.inner.describe(), "noise": self.noise.name}

    def feature_target(self):
        return self.inner.feature_target()

    def close(self) -> None:
        self.inner.close()
