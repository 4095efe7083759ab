"""Writing one generation of one evolution (a run, or a thread of a session): its arrays, its
images and its log record, in that order (the caller appends the record and checkpoints)."""

from __future__ import annotations

import math

import numpy as np
import torch

from xdream.evolve.presentation import Presentation
from xdream.images.io import montage, save_png
from xdream.runs.rundir import RunDir

#: Per-generation values kept for the trajectory plot (and in the checkpoint).
HISTORY_KEYS = ("best", "mean", "clean_best", "reference_mean")


def write_generation(run: RunDir, generation: int, codes: np.ndarray, images: torch.Tensor, outcome: Presentation,
                     *, evaluations: int, presented: int, best_score: float, save_images: str, reshow: bool,
                     reference_names: list[str] | None = None, reference_index: np.ndarray | None = None
                     ) -> tuple[dict, str]:
    """Write generation ``generation`` into ``run`` (``gen_NNNN.npz``, best and montage PNGs,
    ``best.png`` when it beats ``best_score``); returns its log record and the npz's SHA-256.
    ``evaluations``/``presented`` are the totals before this generation."""
    g, scores, clean = generation, outcome.scores, outcome.clean
    arrays = {"codes": codes.astype(np.float32), "scores": scores}
    if clean is not None:
        arrays["clean_scores"] = clean
    if reshow:
        arrays["shown"] = outcome.shown
    if reference_names is not None:
        arrays.update(reference_scores=outcome.reference_scores, reference_index=reference_index)
        if outcome.reference_clean is not None:
            arrays["reference_clean_scores"] = outcome.reference_clean
    digest = run.save_arrays(g, **arrays)
    finite = np.isfinite(scores)
    record = {
        "generation": g,
        "evaluations": evaluations + len(scores),
        "presented": presented + outcome.presented,
        "scores": scores.tolist(),
        "best": float(scores[finite].max()) if finite.any() else math.nan,
        "mean": float(scores[finite].mean()) if finite.any() else math.nan,
        "n_nan": int((~finite).sum()),
        "reshown": outcome.reshown,
    }
    if clean is not None:
        record["clean_best"] = float(np.nanmax(clean)) if np.isfinite(clean).any() else math.nan
    if reference_names is not None:
        ref = outcome.reference_scores
        record["reference_names"] = [reference_names[k] for k in reference_index]
        record["reference_scores"] = ref.tolist()
        record["reference_mean"] = float(np.nanmean(ref)) if np.isfinite(ref).any() else math.nan
    if finite.any():
        best = int(np.flatnonzero(finite)[np.argmax(scores[finite])])
        record["best_index"] = best
        if save_images != "none":
            save_png(images[best], run.image_file("best", g))
        if record["best"] > best_score:
            save_png(images[best], run.path / "best.png")
    if save_images == "all":
        save_png(montage(images), run.image_file("montage", g))
    return record, digest


def history_entry(record: dict) -> dict:
    """What the trajectory plot keeps of a generation's record."""
    return {k: record[k] for k in HISTORY_KEYS if k in record}


def save_generation(progress, run: RunDir, codes: np.ndarray, images: torch.Tensor, outcome: Presentation, *,
                    save_images: str, reshow: bool, reference_names: list[str] | None = None,
                    reference_index: np.ndarray | None = None) -> dict:
    """Write ``progress``'s next generation (:func:`write_generation`) and count it in
    ``progress`` (a run or a session's thread: its ``generation``, ``evaluations``,
    ``presented``, ``best_score``, ``best_generation``, ``history`` and ``digests``); returns
    the log record."""
    record, digest = write_generation(
        run, progress.generation, codes, images, outcome, evaluations=progress.evaluations,
        presented=progress.presented, best_score=progress.best_score, save_images=save_images, reshow=reshow,
        reference_names=reference_names, reference_index=reference_index)
    progress.digests.append(digest)
    if "best_index" in record and record["best"] > progress.best_score:
        progress.best_score, progress.best_generation = record["best"], progress.generation
    progress.history.append(history_entry(record))
    progress.generation += 1
    progress.evaluations += len(outcome.scores)
    progress.presented += outcome.presented
    return record
