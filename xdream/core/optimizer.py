"""The Optimizer interface: ask for codes, tell their scores, maximise.

Every optimiser draws all its randomness from the ``numpy.random.Generator`` it is given, so
one seed fixes a run; :meth:`Optimizer.state_dict` captures everything (the RNG included)
needed to continue bit-identically after :meth:`Optimizer.load_state_dict` on a fresh instance.

**The base class owns ask/tell.** The public :meth:`~Optimizer.ask` and
:meth:`~Optimizer.tell` are implemented here, once: ``ask`` keeps the codes it hands out as
pending; ``tell`` refuses codes that were not asked (no pending ask, another shape, other
values) with a one-line ``ValueError`` and changes nothing then, turns the scores into float64
``[n]``, and advances ``generation``; ``state_dict`` holds that bookkeeping (the pending codes
too, so a checkpoint taken between ask and tell resumes exactly). A subclass writes the
algorithm only, in four hooks:

- ``_ask() -> codes``: the next codes ``[population, dim]``; float32, or float64 when the
  algorithm wants its own samples back at full precision (``ask`` hands out a float32 copy
  and ``_tell`` receives the float64 original);
- ``_tell(codes, scores)``: update from the asked codes and float64 scores ``[n]`` (NaN =
  unscored); ``self.generation`` is still the generation of these codes (it advances after);
- ``_state() -> dict`` and ``_load_state(state)``: the algorithm's own state as plain
  numpy/python values (copies: a state dict is a snapshot), merged into the one flat
  ``state_dict``; keys ``generation``, ``rng`` and ``pending`` belong to the base.

An optimiser whose update is defined for codes the caller changed after ``ask`` (clipped or
repaired, as pycma's ``tell`` allows) sets ``accepts_repaired_codes = True``: ``tell`` then
checks the shape only, and ``_tell`` receives the codes as told.

Every optimiser sets ``population`` (samples per generation) in its constructor; the
:class:`~xdream.evolve.experiment.Experiment` reads it to turn a run given in generations into
an evaluation budget.

NaN scores mean "no valid response". Each optimiser states what it does with them in
``nan_policy``:

- ``"carry-over"``: an unscored individual is kept unchanged in the next generation and is
  never a parent (XDREAM's genetic algorithm).
- ``"rank-last"``: an unscored sample ranks below every scored one, so it enters the new mean
  only when fewer samples are scored than the strategy selects (its ``mu`` best; then the unscored
  fill the selection as the worst scores would, and pull the search towards themselves); a
  generation with no scored sample leaves the state unchanged.
- ``"ignore"``: scores never change what the optimiser asks (random search, the floor).
- ``"rank-last-unmodelled"``: as ``"rank-last"`` in the strategy's own update, and an unscored
  sample is left out of the optimiser's model of the responses (a missing response says
  nothing about the neuron); the keys of ``model_state_keys`` hold that model's state.

**Generator geometry (a capability).** An optimiser that searches in the generator's own
geometry (e.g. the top eigenvectors of its image-space metric, computed once by autograd) sets
``uses_generator_geometry = True`` and implements :meth:`Optimizer.attach_generator`;
:func:`xdream.evolve.build.build_optimizer` then calls it once, right after construction, with
the generator's differentiable decode (torch codes ``[B, d]`` -> images) and the generator's
name. The optimiser refuses a decode without a gradient there (one-line ``ConfigError``), does
its precomputation with its own RNG (lazily, so a resumed run restores it from its state dict
instead of recomputing it), keeps the result in ``_state`` and reports it apart from its
ask/tell cost. Without a call (built by hand) it must still work, falling back plainly. Every
other optimiser ignores the generator (the default, ``False``).

Schedules that depend on the run length read ``self.budget`` (evaluations) when they ask. The
:class:`~xdream.evolve.experiment.Experiment` passes the config's ``budget``; for a run given in
generations it sets ``budget = generations * population`` right after construction (the
population may depend on the dimension, so it is known only then).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, ClassVar

import numpy as np

from xdream.core.errors import ConfigError

if TYPE_CHECKING:
    import torch

Sampler = Callable[[int, np.random.Generator], np.ndarray]


class Optimizer(ABC):
    """Base class: owns ask/tell and their bookkeeping; subclasses implement ``_ask``,
    ``_tell`` and, for state of their own, ``_state``/``_load_state`` (see the module doc)."""

    name: ClassVar[str] = "optimizer"
    nan_policy: ClassVar[str]
    accepts_repaired_codes: ClassVar[bool] = False
    uses_generator_geometry: ClassVar[bool] = False
    presets: ClassVar[dict[str, dict]] = {}
    """For a plugin with a ``preset`` option: each preset's name -> the option values it sets (a
    sweep's ``[base]`` options never override them, :mod:`xdream.sweep.grid`)."""
    population: int
    """Codes per generation; every subclass sets it in its constructor."""

    def __init__(
        self,
        dim: int,
        rng: np.random.Generator,
        *,
        sampler: Sampler | None = None,
        init: np.ndarray | None = None,
        budget: int | None = None,
    ):
        """``dim``: search dimension; ``rng``: the only source of randomness; ``sampler``: draws
        initial codes (the generator's ``sample``; N(0, 1) if omitted); ``init``: optional
        starting codes ``[k, dim]``; ``budget``: the run's evaluation budget, for schedules."""
        if dim < 1:
            raise ConfigError(f"optimizer dimension must be >= 1, got {dim}")
        self.dim = int(dim)
        self.rng = rng
        self.sampler = sampler or (lambda n, r: r.standard_normal((n, self.dim)).astype(np.float32))
        self.init = None if init is None else self._check_init(init, self.dim)
        self.budget = budget
        self.generation = 0
        self._pending: np.ndarray | None = None  # the codes of the last ask, until told

    def attach_generator(self, decode: Callable[["torch.Tensor"], "torch.Tensor"], *, source: str) -> None:
        """Take the generator's differentiable ``decode`` (called by the builder once, after
        construction, when ``uses_generator_geometry``; see the module doc). ``source``: the
        generator's name, for messages."""
        raise NotImplementedError(f"optimizer {self.name!r} does not use the generator's geometry")

    @staticmethod
    def _check_init(init, dim: int) -> np.ndarray:
        """``init`` as float32 ``[k, dim]``: one flat code ``[dim]``, or ``[k, *shape]`` with
        ``prod(shape) == dim``; anything else (which a bare reshape might accept) is an error."""
        init = np.asarray(init, dtype=np.float32)
        width = init.size if init.ndim == 1 else int(np.prod(init.shape[1:]))
        if init.ndim == 0 or init.size == 0 or width != dim:
            raise ConfigError(f"optimizer init codes must be [k, {dim}], got shape {init.shape}")
        return init.reshape(-1, dim)

    def _check_population(self, population: int | None) -> None:
        """Every optimiser needs at least two samples per generation (None: its own default)."""
        if population is not None and population < 2:
            raise ConfigError(f"{self.name} population must be >= 2, got {population}")

    def _check_positive(self, **values: float | None) -> None:
        """Step sizes, rates and temperatures: finite and > 0 (None: the optimiser's default)."""
        for key, value in values.items():
            if value is not None and not (math.isfinite(value) and value > 0):  # NaN fails too
                raise ConfigError(f"{self.name} {key} must be a finite number > 0, got {value}")

    def _check_strategy(self, population: int | None, sigma0: float, *, min_dim: int = 1) -> None:
        """The options every Gaussian evolution strategy shares: its population, a step size
        ``sigma0`` > 0, and a search of at least ``min_dim`` dimensions."""
        self._check_population(population)
        self._check_positive(sigma0=sigma0)
        if self.dim < min_dim:
            raise ConfigError(f"{self.name} needs dimension >= {min_dim}, got {self.dim}")

    def start_mean(self) -> np.ndarray:
        """Where a strategy's search starts: the origin, or the mean of the ``init`` codes (float64)."""
        return np.zeros(self.dim) if self.init is None else self.init.astype(np.float64).mean(axis=0)

    def ask(self) -> np.ndarray:
        """Codes to evaluate next, float32 ``[population, dim]``; asking again replaces them."""
        self._pending = np.array(self._ask())
        return self._pending.astype(np.float32)

    def tell(self, codes: np.ndarray, scores: np.ndarray) -> None:
        """Report scores (higher is better; NaN = unscored) for the codes from :meth:`ask`."""
        codes, scores = self._check_tell(codes, scores)
        asked, self._pending = self._pending, None
        same = np.array_equal(codes, asked.astype(np.float32))
        self._tell(asked if same else codes, scores)
        self.generation += 1

    def _check_tell(self, codes, scores) -> tuple[np.ndarray, np.ndarray]:
        """Told codes as float32 and scores as float64 ``[n]``; a one-line ``ValueError`` for
        a tell without a pending ask or codes other than the asked ones."""
        if self._pending is None:
            raise ValueError(f"{self.name} tell() called without a pending ask()")
        expected = self._pending.astype(np.float32)
        codes = np.asarray(codes, dtype=np.float32)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if codes.shape != expected.shape:
            raise ValueError(f"{self.name} tell() got codes of shape {codes.shape}, asked {expected.shape}")
        if scores.shape != (len(codes),):
            raise ValueError(f"{self.name} tell() got {scores.shape[0]} scores for {len(codes)} codes")
        if not self.accepts_repaired_codes and not np.array_equal(codes, expected):
            changed = int(np.sum(np.any(codes != expected, axis=1)))
            raise ValueError(f"{self.name} tell() got {changed} of {len(codes)} codes other than the ones asked")
        return codes, scores

    @abstractmethod
    def _ask(self) -> np.ndarray:
        """The algorithm's next codes ``[population, dim]`` (float32, or float64 to get them
        back at full precision in :meth:`_tell`)."""

    @abstractmethod
    def _tell(self, codes: np.ndarray, scores: np.ndarray) -> None:
        """Update from the asked ``codes`` and their float64 ``scores`` ``[n]`` (checked)."""

    def _state(self) -> dict:
        """The algorithm's own state (copies), merged into :meth:`state_dict`."""
        return {}

    def _load_state(self, state: dict) -> None:
        """Restore what :meth:`_state` saved; the base state is already loaded."""

    def state_dict(self) -> dict:
        """Everything needed to continue exactly; plain numpy/python values and bytes."""
        pending = None if self._pending is None else self._pending.copy()
        return {"generation": self.generation, "rng": self.rng.bit_generator.state, "pending": pending,
                **self._state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (also one saved before ``pending`` was recorded)."""
        self.generation = state["generation"]
        self.rng.bit_generator.state = state["rng"]
        pending = state.get("pending")
        self._pending = None if pending is None else np.array(pending)
        self._load_state(state)

    def initial_population(self, n: int) -> np.ndarray:
        """``n`` starting codes: the ``init`` rows first, the rest from the sampler."""
        rows = [] if self.init is None else [self.init[:n]]
        missing = n - (0 if self.init is None else len(rows[0]))
        if missing > 0:
            rows.append(np.asarray(self.sampler(missing, self.rng), dtype=np.float32).reshape(missing, self.dim))
        return np.concatenate(rows, axis=0)
