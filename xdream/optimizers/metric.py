"""The metric tensor of a generator's image space and its top eigenvectors, computed once.

Wang & Ponce ("A geometric analysis of deep generative image models and its applications",
ICLR 2021; code: github.com/Animadversio/GAN-Geometry) pull an image distance back to the
latent space: the metric ``H(z) = d^2/dz'^2 D^2(G(z), G(z'))`` at ``z' = z``. For the squared
pixel distance that is exactly ``2 J^T J`` with ``J = dG/dz``; here ``H = J^T J``, averaged over
a few codes (they found the geometry nearly the same everywhere in the space: "homogeneity").
Its spectrum falls fast: a few of the d directions change the image, the rest barely do.

Nothing d x d or pixels x d is ever formed. ``H V`` for a block of vectors is one batched
forward-mode product ``J V`` (``torch.func.jvp``) and one reverse-mode product ``J^T (J V)``
(``torch.func.vjp``); the top eigenpairs come from randomized subspace iteration with a
Rayleigh-Ritz step (Halko, Martinsson & Tropp, SIAM Review 2011, Algorithms 4.4 and 5.3),
block power iteration that suits batched products better than one-vector Lanczos. The trace
``tr H`` is exact when the block spans the space, else the part outside the block is estimated
with deflated Hutchinson probes (Hutch++, Meyer et al., SOSA 2021), so the fraction of the
trace the kept eigenvectors capture is reported. All randomness comes from the given numpy
Generator: one seed gives the same basis.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from xdream.core.errors import ConfigError

Decode = Callable[[torch.Tensor], torch.Tensor]
"""A differentiable decode: codes float32 ``[B, d]`` -> images ``[B, 3, H, W]``."""


@dataclass(frozen=True)
class MetricEigenbasis:
    """Top eigenvectors of the generator's metric and what computing them took."""

    basis: np.ndarray
    """``[d, k]`` float32, orthonormal columns, by decreasing eigenvalue."""
    eigenvalues: np.ndarray
    """``[k]`` float64, decreasing."""
    trace: float
    """``tr H`` (exact when ``trace_exact``, else an unbiased estimate)."""
    trace_exact: bool
    seconds: float
    points: int
    """Codes the metric was averaged over."""
    products: int
    """Metric-vector products computed (per code)."""

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    @property
    def captured(self) -> float:
        """Fraction of ``tr H`` in the kept eigenvectors (1 for a metric that is zero)."""
        return float(min(1.0, self.eigenvalues.sum() / self.trace)) if self.trace > 0 else 1.0

    def report(self) -> dict:
        """Plain values for logs and state dicts."""
        return {"rank": self.rank, "captured": self.captured, "trace": self.trace, "trace_exact": self.trace_exact,
                "seconds": self.seconds, "points": self.points, "products": self.products}

    def state(self) -> dict:
        return {**self.report(), "basis": self.basis.copy(), "eigenvalues": self.eigenvalues.copy()}

    @classmethod
    def from_state(cls, state: dict) -> "MetricEigenbasis":
        return cls(np.array(state["basis"], dtype=np.float32), np.array(state["eigenvalues"], dtype=np.float64),
                   float(state["trace"]), bool(state["trace_exact"]), float(state["seconds"]),
                   int(state["points"]), int(state["products"]))


def check_differentiable(decode: Decode, dim: int, source: str, who: str) -> None:
    """A one-line ConfigError unless ``decode``'s images carry a gradient to the codes."""
    code = torch.zeros(1, dim, requires_grad=True)
    images = decode(code)
    if not isinstance(images, torch.Tensor) or images.grad_fn is None:
        raise ConfigError(f"optimizer {who} needs a differentiable generator; generator {source!r} decodes "
                          "without a gradient to the codes (choose another optimizer or generator)")


def metric_product(decode: Decode, points: torch.Tensor, vectors: np.ndarray, *, chunk: int = 64) -> np.ndarray:
    """``H V`` with ``H`` the metric ``J^T J`` averaged over ``points`` ``[S, d]``; ``vectors``
    ``[d, b]``; float64 ``[d, b]``. Rows go through the generator ``chunk`` codes at a time."""
    n_points, dim = points.shape
    tangents = torch.as_tensor(np.ascontiguousarray(vectors.T), dtype=torch.float32)
    out = torch.zeros(len(tangents), dim, dtype=torch.float64)
    for point in points:
        for start in range(0, len(tangents), chunk):
            v = tangents[start:start + chunk]
            codes = point.expand(len(v), dim).contiguous()
            with warnings.catch_warnings():  # torch's forward-mode AD scripts its decompositions once
                warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated", category=FutureWarning)
                _, jv = torch.func.jvp(decode, (codes,), (v,))
            _, pull = torch.func.vjp(decode, codes)
            (jtjv,) = pull(jv)
            out[start:start + chunk] += jtjv.detach().cpu().to(torch.float64)
    return (out / n_points).numpy().T


def metric_eigenbasis(decode: Decode, points: np.ndarray, rank: int, rng: np.random.Generator, *,
                      iterations: int = 3, oversample: int = 10, probes: int = 16,
                      chunk: int = 64) -> MetricEigenbasis:
    """The top ``rank`` eigenvectors of the metric averaged over ``points`` ``[S, d]``.

    ``iterations`` power steps on a block of ``rank + oversample`` vectors; when the ``d`` products
    of the whole space cost no more, those instead, and the result is exact; ``probes`` Hutchinson vectors estimate the trace
    outside the block."""
    start = time.perf_counter()
    points_t = torch.as_tensor(np.asarray(points, dtype=np.float32))
    dim = points_t.shape[1]
    if not 1 <= rank <= dim:
        raise ConfigError(f"metric rank must be in [1, {dim}], got {rank}")
    width = min(dim, rank + oversample)
    if dim <= (iterations + 1) * width:  # the whole space costs no more products: exact
        width = dim
    products = 0
    if width == dim:  # the block is the whole space: one product
        q = np.eye(dim)
    else:
        q, _ = np.linalg.qr(rng.standard_normal((dim, width)))
        for _ in range(iterations):
            q, _ = np.linalg.qr(metric_product(decode, points_t, q, chunk=chunk))
            products += width
    hq = metric_product(decode, points_t, q, chunk=chunk)
    products += width
    small = q.T @ hq
    values, vectors = np.linalg.eigh((small + small.T) / 2)
    order = np.argsort(values)[::-1]
    values = np.clip(values[order], 0.0, None)
    basis = q @ vectors[:, order[:rank]]
    trace = float(values.sum())
    exact = width == dim
    if not exact and probes > 0:
        g = rng.choice([-1.0, 1.0], size=(dim, probes))
        g -= q @ (q.T @ g)  # deflated: only the part of H outside the block
        trace += float(np.einsum("ij,ij->", g, metric_product(decode, points_t, g, chunk=chunk)) / probes)
        products += probes
    basis, _ = np.linalg.qr(basis)  # re-orthonormalise in float64 before the float32 copy
    return MetricEigenbasis(basis.astype(np.float32), values[:rank].astype(np.float64), trace, exact,
                            time.perf_counter() - start, len(points_t), products)
