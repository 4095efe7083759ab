"""Writing one generation of one evolution (a run, or a thread of a session): its arrays, its
images and its log record, in that order (the caller appends the record and checkpoints)."""

from __future__ import annotations

import math

import numpy as np
import torch

from xdream.evolve.presentation import Presentation
from xdream.images.io import montage, save_png
from xdream.runs.rundir import HISTORY_KEYS


def save_generation(thread, codes: np.ndarray, images: torch.Tensor, outcome: Presentation, *, save_images: str,
                    reshow: bool, reference_names: list[str] | None = None,
                    reference_index: np.ndarray | None = None) -> dict:
    """Write ``thread``'s next generation into its folder ``thread.run`` (``gen_NNNN.npz``, best
    and montage PNGs, ``best.png`` when it beats the thread's best so far) and count it in the
    thread (its ``generation``, ``evaluations``, ``presented``, ``best_score``,
    ``best_generation``, ``history`` and ``digests``); returns the log record."""
    run, g, scores, clean = thread.run, thread.generation, outcome.scores, outcome.clean
    arrays = {"codes": codes.astype(np.float32), "scores": scores}
    if clean is not None:
        arrays["clean_scores"] = clean
    if reshow:
        arrays["shown"] = outcome.shown
    if reference_names is not None:
        arrays.update(reference_scores=outcome.reference_scores, reference_index=reference_index)
        if outcome.reference_clean is not None:
            arrays["reference_clean_scores"] = outcome.reference_clean
    thread.digests.append(run.save_arrays(g, **arrays))
    finite = np.isfinite(scores)
    record = {
        "generation": g,
        "evaluations": thread.evaluations + len(scores),
        "presented": thread.presented + outcome.presented,
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
        if record["best"] > thread.best_score:
            save_png(images[best], run.path / "best.png")
            thread.best_score, thread.best_generation = record["best"], g
    if save_images == "all":
        save_png(montage(images), run.image_file("montage", g))
    thread.history.append({k: record[k] for k in HISTORY_KEYS if k in record})
    thread.generation += 1
    thread.evaluations += len(scores)
    thread.presented += outcome.presented
    return record
