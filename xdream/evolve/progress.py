"""What a run's progress bar shows after each generation: numbers that each mean one thing.

A session's threads may evolve for different units (a layer's 64 channels, or two neurons), and
the largest of their scores compares one unit's activation with another's. So the bar shows the
best score of the generation only over threads on one target; with several targets it names each
thread's best (up to :data:`MAX_NAMED` threads) or counts the threads whose best so far beats
their own first generation's best.
"""

from __future__ import annotations

import math

MAX_NAMED = 4  # threads whose best the bar names one by one


def progress_postfix(record: dict, threads: list) -> dict[str, str]:
    """The tqdm postfix after the generation ``record`` (a run's log record) of ``threads``
    (:class:`xdream.evolve.experiment.Thread`: ``name``, ``columns``, ``history``, ``best_score``)."""
    postfix = {"gen": str(record["generation"])}
    if "threads" not in record:  # one thread
        postfix["best"] = _short(record["best"])
        return postfix
    bests = {name: v["best"] for name, v in record["threads"].items()}
    if len({tuple(t.columns or ()) for t in threads}) == 1:  # one target: the highest score means something
        scored = [b for b in bests.values() if b is not None and math.isfinite(b)]
        postfix["best"] = _short(max(scored)) if scored else "nan"
    elif len(threads) <= MAX_NAMED:
        postfix.update({name: _short(best) for name, best in bests.items()})
    else:
        improved = sum(_improved(t) for t in threads)
        postfix["improved"] = f"{improved}/{len(threads)} threads"
    return postfix


def _improved(thread) -> bool:
    first = thread.history[0].get("best") if thread.history else None
    return first is not None and math.isfinite(first) and thread.best_score > first


def _short(value) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{value:.3g}"
