"""Showing one generation to the responder: the evolved images and the natural reference
images in one batch (on a rig: one request, one block of trials), then, with the run's
``unscored = "reshow"`` policy, the evolved images that came back unscored shown again.

Unscored means NaN: no valid trial (a partial reply cut off at the rig's deadline, aborted
trials, a dropped channel). Under ``reshow`` the unscored evolved images, and only those, go
to the responder again as a further batch of the *same* generation, up to ``reshow_attempts``
times, each attempt showing only what is still unscored; an image is never shown again once it
has a score. Only then is the optimiser told, so ask/tell stays one call each per generation
and a resumed run repeats nothing. Images still unscored after the last attempt stay NaN and
the optimiser's own NaN policy acts (as it does at once under ``nan-policy``). Reference
images are never re-shown: they track the cell, they do not steer the search.

Every image carries an id for the responder (on a rig: the protocol's image id):
``g{generation}-{i}`` for evolved image ``i`` (the same id when it is re-shown) and
``g{generation}-ref{k}`` for image ``k`` of the reference set; in a session (below) evolved
image ``i`` of thread ``NAME`` is ``g{generation}-NAME-{i}``.

Several threads (a session) share one call: :class:`SessionResponder` scores each image on
its own thread's columns of the responder's units, and :func:`interleaving` shuffles the
batch from the seed and the generation number (Ponce et al. 2019, Cell 177:999: two
evolutions interleaved in the same trial blocks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xdream.core.responder import NoiseModel, Responder

INTERLEAVE = 0x1E1EAF  # the seed-sequence key of the interleaving order (any fixed number)
REFERENCE_NOISE = 0x2EFE2E  # the seed-sequence key of a session's reference-image noise (any fixed number)


@dataclass
class Presentation:
    """The scores of one generation and how often each evolved image was shown."""

    scores: np.ndarray  # float64 [B]: the evolved images' scores after any re-shows (NaN: unscored)
    reference_scores: np.ndarray  # float64 [N]
    clean: np.ndarray | None  # noise-free evolved scores when the responder simulates noise
    reference_clean: np.ndarray | None
    shown: np.ndarray  # int [B]: in how many batches each evolved image was shown (1 + its re-shows)
    presented: int  # images sent in all batches: evolved, reference and re-shown

    @property
    def reshown(self) -> int:
        """Re-shows of this generation (0 under ``nan-policy``)."""
        return int(self.shown.sum()) - len(self.shown)


def image_ids(generation: int, n_evolved: int, reference_index=()) -> list[str]:
    """The ids of a generation's batch: evolved images first, then reference images."""
    return [f"g{generation}-{i}" for i in range(n_evolved)] + [f"g{generation}-ref{int(k)}" for k in reference_index]


def present(responder: Responder, images: torch.Tensor, *, run_dir: Path, generation: int,
            reference_images: torch.Tensor | None = None, reference_index=(),
            reshow_attempts: int = 0, ids: list[str] | None = None, order: np.ndarray | None = None) -> Presentation:
    """Score ``images`` (and ``reference_images``, same batch) with ``responder``; re-show the
    evolved images still unscored up to ``reshow_attempts`` times. ``ids`` replaces the
    default image ids (evolved, then reference); ``order`` (a permutation of the batch) is the
    order the first batch is shown in (a session interleaves its threads so); the scores come
    back in the images' own order either way."""
    n = len(images)
    batch = images if reference_images is None or not len(reference_images) else torch.cat([images, reference_images])
    ids = image_ids(generation, n, reference_index) if ids is None else ids
    if order is None:
        scores, clean = _respond(responder, batch, ids, run_dir, generation)
    else:
        shown_scores, shown_clean = _respond(responder, batch[torch.as_tensor(order, device=batch.device)],
                                             [ids[i] for i in order], run_dir, generation)
        back = np.argsort(order)  # the inverse permutation: shown position of each image
        scores, clean = shown_scores[back], None if shown_clean is None else shown_clean[back]
    evolved, evolved_clean = scores[:n].copy(), None if clean is None else clean[:n].copy()
    shown, presented = np.ones(n, dtype=np.int64), len(batch)
    for _ in range(reshow_attempts):
        missing = np.flatnonzero(~np.isfinite(evolved))
        if not len(missing):
            break
        again, again_clean = _respond(responder, images[torch.as_tensor(missing, device=images.device)],
                                      [ids[i] for i in missing], run_dir, generation)
        shown[missing] += 1
        presented += len(missing)
        scored = np.isfinite(again)
        evolved[missing[scored]] = again[scored]
        if evolved_clean is not None and again_clean is not None:
            evolved_clean[missing[scored]] = again_clean[scored]
    return Presentation(evolved, scores[n:], evolved_clean, None if clean is None else clean[n:], shown, presented)


def _respond(responder: Responder, images: torch.Tensor, ids: list[str], run_dir: Path,
             generation: int) -> tuple[np.ndarray, np.ndarray | None]:
    """One batch: scores and (for a noise-simulating responder) the noise-free scores."""
    responder.prepare(run_dir, generation, image_ids=ids)
    scores = np.asarray(responder.respond(images), dtype=np.float64).reshape(-1)
    if scores.shape != (len(images),):
        raise ValueError(f"responder {responder.name!r} returned {scores.size} scores for {len(images)} images")
    clean = responder.last_clean
    return scores, None if clean is None else np.asarray(clean, dtype=np.float64).reshape(-1).copy()


def interleaving(seed: int, generation: int, n: int) -> np.ndarray:
    """The order generation ``generation``'s ``n`` images are shown in: a permutation drawn from
    the session seed and the generation number only (no state to checkpoint)."""
    return np.random.default_rng(np.random.SeedSequence([seed, INTERLEAVE, generation])).permutation(n)


class SessionResponder(Responder):
    """The session's responder seen image by image: an evolved image scores the mean of its
    thread's columns of ``inner.respond_units`` (NaN if one is NaN); a reference image is
    scored on every thread's columns (:attr:`reference_rows`) and returns NaN here. With a
    noise model each thread's own images get noise from that thread's own stream, drawn in the
    order of its images' indices (never in the shuffled order), so a thread's codes do not
    depend on the other threads. A reference image is one presentation: it gets one noisy
    response per target, shared by every thread on that target, drawn from a stream keyed by
    the presentation (session ``seed``, generation, reference index) and the target's columns,
    never from a thread's stream (as one trial of one neuron gives one response, whichever
    evolution it is scored for)."""

    name = "session"

    def __init__(self, inner: Responder, columns: list[list[int]], noise: NoiseModel | None,
                 noise_rngs: list[np.random.Generator], seed: int = 0):
        self.inner, self.columns, self.noise, self.noise_rngs = inner, columns, noise, noise_rngs
        self.seed = seed
        self.owners: dict[str, tuple[int | None, int]] = {}  # image id -> (thread, index) or (None, reference k)
        self.reference_rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # id -> (scores [T], clean [T])
        self._ids: list[str] = []
        self._generation = 0
        self.last_clean = None

    def prepare(self, run_dir: Path, generation: int, image_ids: list[str] | None = None) -> None:
        self._ids, self._generation = list(image_ids), generation
        self.inner.prepare(run_dir, generation, image_ids)

    def respond(self, images: torch.Tensor) -> np.ndarray:
        full = np.asarray(self.inner.respond_units(images), dtype=np.float64)
        if full.ndim != 2 or len(full) != len(images):
            raise ValueError(f"responder {self.inner.name!r} returned {list(full.shape)} from respond_units for "
                             f"{len(images)} images; expected [{len(images)}, units]")
        scores, clean = np.full(len(images), math.nan), np.full(len(images), math.nan)
        owners = [self.owners[i] for i in self._ids]
        references = sorted((k, row) for row, (t, k) in enumerate(owners) if t is None)
        ref_scores = np.full((len(references), len(self.columns)), math.nan)
        ref_clean = ref_scores.copy()
        by_target: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        for t, cols in enumerate(self.columns):
            rows = [row for _, row in sorted((k, row) for row, (owner, k) in enumerate(owners) if owner == t)]
            if rows:
                clean[rows] = full[rows][:, cols].mean(axis=1)
                scores[rows] = self._noisy(clean[rows], t)
            if references:
                if tuple(cols) not in by_target:  # one response per presentation and target
                    target_clean = full[[row for _, row in references]][:, cols].mean(axis=1)
                    by_target[tuple(cols)] = self._reference_noisy(target_clean, [k for k, _ in references], cols), \
                        target_clean
                ref_scores[:, t], ref_clean[:, t] = by_target[tuple(cols)]
        for j, (_, row) in enumerate(references):
            self.reference_rows[self._ids[row]] = (ref_scores[j], ref_clean[j])
        self.last_clean = clean if self.noise is not None else None
        return scores

    def _noisy(self, clean: np.ndarray, thread: int) -> np.ndarray:
        if self.noise is None:
            return clean.copy()
        return np.asarray(self.noise(clean, self.noise_rngs[thread]), dtype=np.float64)

    def _reference_noisy(self, clean: np.ndarray, references: list[int], columns: list[int]) -> np.ndarray:
        """Reference images' responses on one target: each presentation's noise from its own
        stream, keyed by the session seed, the generation, the reference index and the target's
        columns (no state to checkpoint; the threads' streams are not touched)."""
        if self.noise is None:
            return clean.copy()
        return np.array([float(np.asarray(self.noise(clean[j:j + 1], np.random.default_rng(np.random.SeedSequence(
            [self.seed, REFERENCE_NOISE, self._generation, k, len(columns), *columns]))), dtype=np.float64)[0])
            for j, k in enumerate(references)])

    def close(self) -> None:
        self.inner.close()
