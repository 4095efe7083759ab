"""Objectives to maximise, combinable with ``+``, ``-``, unary ``-`` and scalar ``*`` / ``/``
(lucent style): ``channel("_blocks.6", 3) - 1e-3 * total_variation()``.

An objective is a function of the activations of named layers (see
:meth:`xdream.gradient.target.ModelTarget.activations`) returning one scalar; ``batch=i``
restricts it to image ``i`` of a batched parameterisation (else it is the batch mean).
Every objective here is *maximised*; the regularisers (TV, L1, blur) are penalties, so they
are subtracted. ``diversity`` is the negative of Lucid's Gram-similarity penalty, so it too is
added: ``channel(...) + 1e2 * diversity(...)``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

Activations = dict[str, torch.Tensor]


class Objective:
    """A scalar function of layer activations, with the layers it needs."""

    def __init__(self, fn: Callable[[Activations], torch.Tensor], layers: tuple[str, ...], name: str):
        self.fn, self.layers, self.name = fn, tuple(dict.fromkeys(layers)), name

    def __call__(self, acts: Activations) -> torch.Tensor:
        return self.fn(acts)

    def __add__(self, other):
        if isinstance(other, (int, float)):
            return Objective(lambda a: self(a) + other, self.layers, f"{self.name} + {other:g}")
        return Objective(lambda a: self(a) + other(a), self.layers + other.layers, f"{self.name} + {other.name}")

    __radd__ = __add__

    def __neg__(self):
        return Objective(lambda a: -self(a), self.layers, f"-({self.name})")

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, k):
        if not isinstance(k, (int, float)):
            return NotImplemented
        return Objective(lambda a: k * self(a), self.layers, f"{k:g} * {self.name}")

    __rmul__ = __mul__

    def __truediv__(self, k):
        if not isinstance(k, (int, float)):
            return NotImplemented
        return self * (1.0 / k)

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _pick(t: torch.Tensor, batch: int | None) -> torch.Tensor:
    return t if batch is None else t[batch : batch + 1]


def _where(batch) -> str:
    return "" if batch is None else f"[batch {batch}]"


def neuron(layer: str, channel: int, y: int | None = None, x: int | None = None, batch: int | None = None) -> Objective:
    """One unit: channel ``channel`` at ``(y, x)``, by default the feature map's centre
    (``H // 2, W // 2``, as Lucid); on a ``[B, C]`` layer the channel itself."""

    def fn(a):
        t = _pick(a[layer], batch)[:, channel]
        if t.ndim == 1:
            return t.mean()
        h, w = t.shape[-2:]
        return t[:, h // 2 if y is None else y, w // 2 if x is None else x].mean()

    pos = "" if y is None else f"@{y},{x}"
    return Objective(fn, (layer,), f"neuron({layer}:{channel}{pos}){_where(batch)}")


def channel(layer: str, channel: int, batch: int | None = None) -> Objective:
    """Mean activation of one channel over the feature map (Lucid's ``channel``)."""
    return Objective(lambda a: _pick(a[layer], batch)[:, channel].mean(), (layer,), f"channel({layer}:{channel}){_where(batch)}")


def layer(layer: str, batch: int | None = None) -> Objective:
    """DeepDream: the mean squared activation of a whole layer."""
    return Objective(lambda a: _pick(a[layer], batch).pow(2).mean(), (layer,), f"layer({layer}){_where(batch)}")


deepdream = layer


def class_logit(index: int, layer: str = "logits", batch: int | None = None) -> Objective:
    """The (pre-softmax) logit of class ``index``."""
    return Objective(lambda a: _pick(a[layer], batch)[:, index].mean(), (layer,), f"class_logit({index}){_where(batch)}")


def direction(layer: str, vector, cossim_pow: float = 0.0, batch: int | None = None) -> Objective:
    """Lucid's ``direction``: the dot product of each position's channel vector with
    ``vector``, averaged over positions, times ``cos(angle) ** cossim_pow``."""
    vec = torch.as_tensor(np.asarray(vector, dtype=np.float32))

    def fn(a):
        t = _pick(a[layer], batch)
        v = vec.to(t.device).view(1, -1, *([1] * (t.ndim - 2)))
        dot = (t * v).sum(1)
        if cossim_pow == 0:
            return dot.mean()
        cos = dot / (t.norm(dim=1) * v.norm() + 1e-6)
        return (dot * cos.clamp(min=0.1) ** cossim_pow).mean()

    return Objective(fn, (layer,), f"direction({layer}){_where(batch)}")


def diversity(layer: str) -> Objective:
    """Minus the mean cosine similarity between the Gram matrices of different images of the
    batch (Lucid's diversity penalty, negated): higher means more varied images."""

    def fn(a):
        t = a[layer]
        n = len(t)
        flat = t.reshape(n, t.shape[1], -1)
        grams = F.normalize((flat @ flat.transpose(1, 2)).reshape(n, -1), dim=1, eps=1e-10)
        sim = grams @ grams.T
        return -(sim.sum() - sim.diagonal().sum()) / n

    return Objective(fn, (layer,), f"diversity({layer})")


def total_variation(layer: str = "input") -> Objective:
    """Total variation (sum of absolute neighbour differences, per image, batch mean): a penalty."""

    def fn(a):
        t = a[layer]
        dy = (t[..., 1:, :] - t[..., :-1, :]).abs().flatten(1).sum(1)
        dx = (t[..., :, 1:] - t[..., :, :-1]).abs().flatten(1).sum(1)
        return (dy + dx).mean()

    return Objective(fn, (layer,), f"tv({layer})")


def l1(layer: str = "input", constant: float = 0.0) -> Objective:
    """L1 distance from ``constant`` (summed per image, batch mean): a penalty."""
    return Objective(lambda a: (a[layer] - constant).abs().flatten(1).sum(1).mean(), (layer,), f"l1({layer})")


def blur(layer: str = "input") -> Objective:
    """Lucid's ``blur_input_each_step`` (lucid/optvis/objectives.py, and lucent's port):
    ``0.5 * sum((x - stop_grad(blur(x)))^2)``, a penalty whose gradient pulls each step towards
    a blurred copy. Lucid's blur: a 3x3 kernel of 0.5 with 1 at the centre, zero-padded and
    divided by the kernel's weight inside the image. Summed per image, averaged over the batch
    (as :func:`total_variation` and :func:`l1`)."""

    def fn(a):
        t = a[layer]
        c = t.shape[1]
        kernel = t.new_full((c, 1, 3, 3), 0.5)
        kernel[:, :, 1, 1] = 1.0
        x = t.detach()
        blurred = F.conv2d(x, kernel, padding=1, groups=c) / F.conv2d(torch.ones_like(x), kernel, padding=1, groups=c)
        return 0.5 * (t - blurred).pow(2).flatten(1).sum(1).mean()

    return Objective(fn, (layer,), f"blur({layer})")
