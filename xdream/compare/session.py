"""``xdream compare --from-session RUN``: the comparison table of a session's threads, from what
the session recorded; nothing is run or shown again.

Each chosen thread is one method (its generator and optimiser); the natural reference images
the session showed with its generations are the natural row of each target (a session scores
them on every thread's target, so there is one natural row per distinct target, and a thread's
ratio is to the best natural image on its own target). The activation of a thread is the best
recorded score of the best images of its generations, the noise-free score where noise was
simulated (the images the optimiser ranked first by their noisy scores); it is not re-scored,
because a session's responder may be an animal on a rig, and a CNN session's recorded scores
already are its responder's. The wall time of a thread is that of the session's generations it
took part in, shared with the threads shown in the same responder calls. The folder gets the
files of :func:`xdream.compare.comparison.write_comparison`, its montages being the recorded
best image of a thread's best generations and the best natural images.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from xdream.compare.comparison import MethodResult, write_comparison
from xdream.config import to_toml
from xdream.core.errors import ConfigError, RunDirError
from xdream.images.io import load_image
from xdream.images.natural import load_reference
from xdream.runs.rundir import RunDir
from xdream.runs.session import SessionState, ThreadState

ACTIVATION = "recorded best (noise-free where noise was simulated), not re-scored"
TOP = 8  # best images per thread in its montage


def compare_session(run: str | Path, output: str | Path | None = None, threads: list[str] | None = None,
                    top: int = TOP) -> tuple[RunDir, list[MethodResult]]:
    """Write the comparison of ``threads`` (default: all) of the session in ``run`` into the new
    folder ``output``; returns it and the table's rows (threads, then one natural row per target).
    Everything is checked before the folder is made."""
    state = SessionState.read(run)
    chosen = [state.thread(name) for name in dict.fromkeys(threads)] if threads else state.threads
    empty = [t.name for t in chosen if not t.generations]
    if empty:
        raise RunDirError(f"thread {empty[0]!r} of session {state.path} has no finished generation to compare")
    results, tops = [], {}
    for t in chosen:
        result, images = _thread_result(t, state, top)
        results.append(result)
        tops[result.method] = images
    targets = list(dict.fromkeys(t.target_text for t in chosen))
    naturals = {}  # target -> (its natural row, the reference names best first)
    for text in targets:
        owner = next(t for t in chosen if t.target_text == text)
        natural = _natural_result(owner, label="natural images" + (f" on {text}" if len(targets) > 1 else ""))
        if natural is not None:
            naturals[text] = natural
    for r, t in zip(results, chosen):
        natural = naturals.get(t.target_text)
        r.ratio = r.best / natural[0].best if natural is not None and natural[0].best > 0 else math.nan
    for natural, _ in naturals.values():
        natural.ratio = 1.0 if natural.best > 0 else math.nan
        results.append(natural)
    output = output or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-compare"
    out = RunDir.create(output, to_toml({"kind": "compare", "from_session": str(state.path),
                                         "threads": [t.name for t in chosen]}), subdirs=(), kind="compare")
    try:
        tops.update(_natural_images(state, naturals))
        write_comparison(
            out, results, tops, title=" ; ".join(targets),
            hlines={("best natural image" + (f" ({text})" if len(targets) > 1 else "")): n.best
                    for text, (n, _) in naturals.items()},
            record={"settings": {"from_session": str(state.path), "threads": [t.name for t in chosen], "top": top},
                    "session": str(state.path.resolve()), "activation": ACTIVATION,
                    "responder": {"target": " ; ".join(targets)},
                    "natural_top_names": [n for _, top_names in naturals.values() for n in top_names]},
            xlabel="images scored", activation=f"activation ({ACTIVATION})")
    finally:
        out.lock.release()
    return out, results


def _thread_result(t: ThreadState, state: SessionState, top: int) -> tuple[MethodResult, torch.Tensor]:
    """A thread's row and the recorded best images of its best generations, best first."""
    ranked = []  # (activation, generation)
    for g, record in enumerate(t.records):
        if "best_index" not in record:
            continue
        score = record["best"]
        if state.noise:
            clean = t.run.load_arrays(g).get("clean_scores")
            score = float(clean[record["best_index"]]) if clean is not None else score
        ranked.append((score, g))
    ranked.sort(key=lambda x: (-x[0], x[1]))
    ranked = ranked[:top]
    if not ranked:
        raise RunDirError(f"thread {t.name!r} of session {state.path} has no image with a response to compare")
    missing = [g for _, g in ranked if not t.run.image_file("best", g).is_file()]
    if missing:
        raise RunDirError(f"{t.run.image_file('best', missing[0])} is missing (session run with save_images = "
                          f"\"none\", or the file was deleted); compare needs each generation's best image")
    images = torch.stack([load_image(t.run.image_file("best", g)) for _, g in ranked])
    best_so_far = np.fmax.accumulate([b if math.isfinite(b) else -np.inf for b in t.bests])
    trajectory = [(r["evaluations"], float(b)) for r, b in zip(t.records, best_so_far)]
    seconds = sum(sum(r.get("timings", {}).values()) for r in state.records if t.name in r.get("threads", {}))
    method = f"{t.name} ({t.generator} + {t.optimizer})"
    result = MethodResult(method, "thread", float(ranked[0][0]), t.evaluations, "evaluations", seconds, trajectory,
                          [s for s, _ in ranked], folder=None)
    return result, images


def _natural_result(t: ThreadState, label: str) -> tuple[MethodResult, list[str]] | None:
    """The natural reference images scored on ``t``'s target: their best score each (an image
    is shown in several generations), best first; None if the session showed none."""
    best: dict[str, float] = {}
    for r in t.records:
        for name, score in zip(r.get("reference_names", []), r.get("reference_scores", [])):
            if score is not None and math.isfinite(score):
                best[name] = max(score, best.get(name, -math.inf))
    if not best:
        return None
    ranked = sorted(best.items(), key=lambda x: -x[1])
    shown = sum(len(r.get("reference_names", [])) for r in t.records)
    result = MethodResult(label, "natural", ranked[0][1], shown, "images", 0.0, [], [s for _, s in ranked])
    return result, [n for n, _ in ranked]


def _natural_images(state: SessionState, naturals: dict) -> dict[str, torch.Tensor]:
    """The best natural images of each natural row, read from the session's reference set (left
    out where that set can no longer be read: its table row stays)."""
    if not naturals:
        return {}
    folder = state.config.get("reference", {}).get("folder")
    try:
        names, images = load_reference(folder, size=128, crops=False)
    except (ConfigError, OSError):
        return {}
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for natural, ranked in naturals.values():
        rows = [index[n] for n in ranked[:TOP] if n in index]
        if rows:
            out[natural.method] = images[rows]
    return out
