"""The Optimizer interface: ask for codes, tell their scores, maximise.

Every optimiser draws all its randomness from the ``numpy.random.Generator`` it is given, so
one seed fixes a run; :meth:`state_dict` captures everything (the RNG included) needed to
continue bit-identically after :meth:`load_state_dict` on a fresh instance.

NaN scores mean "no valid response". Each optimiser states what it does with them in
``nan_policy``:

- ``"carry-over"``: an unscored individual is kept unchanged in the next generation and is
  never a parent (XDREAM's genetic algorithm).
- ``"rank-last"``: an unscored sample ranks below every scored one, so it never pulls the
  search towards itself; a generation with no scored sample leaves the state unchanged.
- ``"ignore"``: scores never change what the optimiser asks (random search, the floor).

Schedules that depend on the run length read ``self.budget`` (evaluations) when they ask. The
:class:`~xdream.evolve.experiment.Experiment` passes the config's ``budget``; for a run given in
generations it sets ``budget = generations * population`` right after construction (the
population may depend on the dimension, so it is known only then).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable, ClassVar

import numpy as np

from xdream.core.errors import ConfigError

Sampler = Callable[[int, np.random.Generator], np.ndarray]


def standard_normal_sampler(n: int, rng: np.random.Generator, dim: int) -> np.ndarray:
    return rng.standard_normal((n, dim)).astype(np.float32)


class Optimizer(ABC):
    """Base class. Subclasses implement ask/tell and extend the state dict with their own."""

    name: ClassVar[str] = "optimizer"
    nan_policy: ClassVar[str]

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
        self.sampler = sampler or (lambda n, r: standard_normal_sampler(n, r, self.dim))
        self.init = None if init is None else self._check_init(init, self.dim)
        self.budget = budget
        self.generation = 0

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

    @abstractmethod
    def ask(self) -> np.ndarray:
        """Codes to evaluate next, float32 ``[n, dim]``."""

    @abstractmethod
    def tell(self, codes: np.ndarray, scores: np.ndarray) -> None:
        """Report scores (higher is better; NaN = unscored) for the codes from :meth:`ask`."""

    def state_dict(self) -> dict:
        """Everything needed to continue exactly; plain numpy/python values and bytes."""
        return {"generation": self.generation, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.generation = state["generation"]
        self.rng.bit_generator.state = state["rng"]

    def _check_tell(self, codes, scores, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes = np.asarray(codes, dtype=np.float32)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if codes.shape != expected.shape:
            raise ValueError(f"tell() got codes of shape {codes.shape}, asked {expected.shape}")
        if scores.shape != (len(codes),):
            raise ValueError(f"tell() got {scores.shape[0]} scores for {len(codes)} codes")
        return codes, scores

    def initial_population(self, n: int) -> np.ndarray:
        """``n`` starting codes: the ``init`` rows first, the rest from the sampler."""
        rows = [] if self.init is None else [self.init[:n]]
        missing = n - (0 if self.init is None else len(rows[0]))
        if missing > 0:
            rows.append(np.asarray(self.sampler(missing, self.rng), dtype=np.float32).reshape(missing, self.dim))
        return np.concatenate(rows, axis=0)
