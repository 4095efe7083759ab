"""GeometryCMA: diagonal CMA-ES in the top eigenspace of the generator's image-space metric.

Wang & Ponce ("A geometric analysis of deep generative image models and its applications",
ICLR 2021; code: github.com/Animadversio/GAN-Geometry) showed that the metric ``H = J^T J`` of
a generator's image space (``J = d image / d code``) is strongly anisotropic and much the same
everywhere in the latent space: few directions change the image, and restricting gradient-free
search (CMA-ES) to the top eigenvectors of ``H`` keeps its performance with far fewer
dimensions. The neuron is a black box, but the generator is known and differentiable, so
``H``'s top eigenvectors are computed once, by autograd (:mod:`xdream.optimizers.metric`).

Search: codes ``x = origin + U y`` with ``U`` the ``[d, rank]`` eigenbasis and ``y`` sampled
by pycma's diagonal CMA-ES (sep-CMA, Ros & Hansen, PPSN 2008; the wrapper of
:mod:`xdream.optimizers.cmaes`) from ``N(0, sigma0^2 I)``: the code's component outside the
eigenspace stays the origin's (zero, or the mean of ``init``), so every sample lies in the
``rank``-dimensional subspace and CMA adapts at the speed of its smaller dimension.

Precomputation: at the first ask, the metric averaged over ``points`` codes (the ``init`` rows
first, then the generator's prior) and its top ``rank`` eigenvectors (``iterations`` block power
steps). It draws from the optimiser's RNG, is kept in the state dict (a resume restores it, it
is never recomputed) and is reported apart from ask/tell by :meth:`GeometryCMA.geometry_report`
(seconds, rank, fraction of the metric's trace captured). Built without a generator (by hand,
not through :func:`xdream.evolve.build.build_optimizer`) it has no geometry and falls back
plainly to diagonal CMA-ES in the full space; a generator whose decode carries no gradient is
refused with a one-line ``ConfigError`` when the optimiser is built. Cost per generation:
O(lambda * d * rank) for the map, plus pycma's diagonal update in ``rank`` dimensions.

The precomputation costs one forward-mode and one reverse-mode pass of the generator per
metric-vector product: about ``points x min(d, (iterations + 1) x (rank + 10))`` of them.
Measured on a loaded 2-core CPU (``experiments/bench_loop.py`` part (f)): Fourier d = 918 at
128 px 15 s, DCGAN faces 8 s (exact, d = 100); DeePSiM fc6 (d = 4096, 256 px) about 1.3 s per
product, so on a CPU give it ``rank = 64, points = 1, iterations = 1`` (164 products, ~4 min)
or a GPU (``device = "cuda"``). The default ``rank = 256`` is what the geometry screen of
``experiments/optimizer_benchmark`` favoured on the Fourier generator.
"""

from __future__ import annotations

import pickle

import numpy as np
import torch

from xdream.core.errors import ConfigError
from xdream.core.optimizer import Optimizer
from xdream.optimizers.cmaes import cma_strategy, load_strategy, tell_strategy
from xdream.optimizers.metric import Decode, MetricEigenbasis, check_differentiable, metric_eigenbasis


class GeometryCMA(Optimizer):
    name = "geometry-cma"
    nan_policy = "rank-last"
    uses_generator_geometry = True

    def __init__(
        self,
        dim,
        rng,
        *,
        population: int = 20,
        rank: int = 256,
        sigma0: float = 1.0,
        points: int = 2,
        iterations: int = 3,
        sampler=None,
        init=None,
        budget=None,
    ):
        super().__init__(dim, rng, sampler=sampler, init=init, budget=budget)
        self._check_strategy(population, sigma0, min_dim=2)
        for key, value, low in (("rank", rank, 1), ("points", points, 1), ("iterations", iterations, 0)):
            if value < low:
                raise ConfigError(f"{self.name} {key} must be an integer >= {low}, got {value}")
        self.population, self.sigma0 = int(population), float(sigma0)
        self.rank, self.points, self.iterations = min(int(rank), self.dim), int(points), int(iterations)
        self.origin = self.start_mean()
        self._decode: Decode | None = None
        self.metric: MetricEigenbasis | None = None  # known after the first ask (or a loaded state)
        self.es = None  # pycma's strategy in the eigen-coordinates, made with the basis
        self._asked: np.ndarray | None = None  # the eigen-coordinates of the pending codes
        self._basis_rows: torch.Tensor | None = None  # the basis as torch rows [rank, d] (derived, not state)

    def attach_generator(self, decode: Decode, *, source: str) -> None:
        check_differentiable(decode, self.dim, source, repr(self.name))
        self._decode = decode

    def _start(self) -> None:
        """The eigenbasis (when a generator is attached) and the strategy, once."""
        if self._decode is not None:
            points = self.initial_population(self.points)
            self.metric = metric_eigenbasis(self._decode, points, self.rank, self.rng, iterations=self.iterations)
        width = self.dim if self.metric is None else self.metric.rank
        self.es = cma_strategy(np.zeros(width), self.sigma0, self.rng, population=self.population, diagonal=True)

    def geometry_report(self) -> dict | None:
        """The precomputation (rank, fraction of the trace captured, seconds, ...); None before
        the first ask; ``{"rank": d, "captured": None}`` without a generator (full space)."""
        if self.es is None:
            return None
        return {"rank": self.dim, "captured": None} if self.metric is None else self.metric.report()

    def _to_codes(self, y: np.ndarray) -> np.ndarray:
        """``origin + U y`` as float32. The product runs in torch: numpy's multi-threaded BLAS
        waits for a time slice per call on a loaded machine (~25 ms at d = 4096 instead of 0.4)."""
        if self.metric is None:
            return (self.origin + y).astype(np.float32)
        if self._basis_rows is None:
            self._basis_rows = torch.as_tensor(np.ascontiguousarray(self.metric.basis.T))
        codes = torch.as_tensor(y, dtype=torch.float32) @ self._basis_rows
        return codes.numpy() + self.origin.astype(np.float32)

    def _ask(self) -> np.ndarray:
        if self.es is None:
            self._start()
        self._asked = np.asarray(self.es.ask(), dtype=np.float64)
        return self._to_codes(self._asked)

    def _tell(self, codes, scores) -> None:
        asked, self._asked = self._asked, None
        tell_strategy(self.es, asked, scores)

    def _state(self) -> dict:
        return {
            "es": None if self.es is None else pickle.dumps(self.es),
            "metric": None if self.metric is None else self.metric.state(),
            "asked": None if self._asked is None else self._asked.copy(),
        }

    def _load_state(self, state: dict) -> None:
        self.es = None if state["es"] is None else load_strategy(state["es"], self.rng)
        self.metric = None if state["metric"] is None else MetricEigenbasis.from_state(state["metric"])
        self._asked = None if state["asked"] is None else np.array(state["asked"], dtype=np.float64)
        self._basis_rows = None
