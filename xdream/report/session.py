"""The page of a session of several evolution threads (:mod:`xdream.evolve.session`).

Threads side by side: every thread's best score per generation on one plot with the natural
references scored on its target; the comparison table (one row per thread, sortable in the
browser); a paired comparison of every two threads evolving for the same target (generator A
vs generator B on one neuron, as in Ponce et al. 2019, Cell 177:999); and the best image of
each thread per generation. Everything is computed from the threads' own logs
(:class:`xdream.runs.session.SessionState`), so the page is right while the session runs and
after a resume; while no summary is written and a writer holds the lock it refreshes itself, and
with neither (killed, or ended by an error) it says so. As the evolution page, it writes nothing but ``report.html``: the session's own
``trajectory.png`` is never rewritten (a running session's plot is drawn into the page).
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

import numpy as np

from xdream.images.plots import plot_threads
from xdream.report.html import REFRESH_SECONDS, Html, figure_html, fmt, image_html, table_html
from xdream.runs.session import SessionState, ThreadState

MAX_GRID_THREADS = 16  # rows of the image grid (the threads with the highest final best)
MAX_GRID_COLUMNS = 12  # generations shown per row (spread over the run, the last one included)
MAX_PAIRS = 20  # paired comparisons listed
LEGEND_THREADS = 10  # the combined plot has a legend up to this many threads (xdream.images.plots)
PAIRED_TEXT = (
    "Two threads evolving for the same target, compared generation by generation: d = best score of A's "
    "generation g minus best of B's generation g (the images of both were shown in the same responder call), "
    "over the generations both ran. The test is scipy's Wilcoxon signed-rank test of d (two-sided). Generations "
    "of one evolution are not independent samples (each builds on the one before), so read p as a description of "
    "this session, not as a test over neurons or sessions.")


def page(path: Path) -> tuple[str, str, bool]:
    session = SessionState.read(path)
    threads = session.threads
    body = [f'<p class="status">{html.escape(_status(session))}</p>', _trajectory(session),
            "<h2>Threads</h2>", _table(session)]
    pairs = session.pairs()
    if pairs:
        body += ["<h2>Paired comparison (same target)</h2>", f"<p>{html.escape(PAIRED_TEXT)}</p>",
                 table_html(["A", "B", "target", "generations paired", "A higher", "mean d", "median d",
                             "Wilcoxon p"], [_paired_row(a, b) for a, b in pairs[:MAX_PAIRS]])]
        if len(pairs) > MAX_PAIRS:
            body.append(f"<p>{MAX_PAIRS} of {len(pairs)} pairs shown.</p>")
    body += ["<h2>Best image per generation</h2>", _grid(threads)]
    body.append(f"<h2>Config</h2><pre>{html.escape((path / 'config.toml').read_text())}</pre>")
    return f"xdream session: {path.name}", "".join(body), session.running


def _status(session: SessionState) -> str:
    n = len(session.threads)
    ended = sum(t.stopped is not None for t in session.threads)
    done = (f"generation {session.generation - 1} done, {n} threads ({ended} ended), {session.evaluations} "
            f"evaluations" if session.records else f"{n} threads, no generation finished yet")
    if session.abandoned:
        return f"not running and not ended ({done}; killed, or ended by an error): xdream evolve --resume {session.path}"
    if session.running:
        return f"running: {done}; this page refreshes every {REFRESH_SECONDS} s"
    summary = session.summary
    status = "stopped before its end" if summary.get("stopped_early") else "finished"
    return (f"{status}: {summary['generations']} generations, {n} threads, {summary['evaluations']} evaluations "
            f"({summary['presented']} images shown)")


def _trajectory(session: SessionState) -> str:
    n = len(session.threads)
    references = any(t.best_reference is not None for t in session.threads)
    caption = ("best score per generation, one colour per thread" + (
        "; dash-dot: the natural references' mean on its target" if references else "")
        + (f" (no legend for {n} threads)" if n > LEGEND_THREADS else ""))
    own = session.path / "trajectory.png"
    if session.summary is None or not own.is_file():
        if not session.records:
            return ""
        png = plot_threads({t.name: t.history() for t in session.threads}, None,
                           title=f"{session.path.name}: {n} threads")
        return f"<figure>{image_html(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"
    return figure_html(own, caption)


TABLE_HEADER = ["thread", "generator", "optimiser", "target", "generations", "evaluations", "first best",
                "final best", "improvement", "best natural ref.", "final best / ref.", "stopped"]


def _table(session: SessionState) -> str:
    noise = any(t.clean_best is not None for t in session.threads)
    prefix = target_prefix([t.target_text for t in session.threads])
    header = TABLE_HEADER[:8] + (["best (noise-free)"] if noise else []) + TABLE_HEADER[8:]
    rows = []
    for t in session.threads:
        stopped = t.stopped or ("live" if session.running else "no")
        reference = "n/a" if t.best_reference is None else \
            Html(f"{fmt(t.best_reference)}<br><small>{html.escape(t.best_reference_name)}</small>")
        row = [t.name, t.generator, t.optimizer, t.target_text.replace(prefix, ""), t.generations, t.evaluations,
               fmt(t.first_best), fmt(t.final_best)]
        if noise:
            row.append(fmt(t.clean_best) if t.clean_best is not None else "n/a")
        row += [_ratio(t.improvement), reference, _ratio(t.reference_ratio), stopped]
        rows.append(row)
    shared = f"<p>Every target starts with {html.escape(prefix)} (left out below).</p>" if prefix else ""
    note = ("<p>Click a column head to sort. First best: generation 0's best; final best: the best of any "
            "generation; improvement: final / first (where first &gt; 0); best natural ref.: the highest score of "
            "a natural reference image on the thread's target so far (its name below).</p>")
    return shared + f'<div style="overflow-x:auto">{table_html(header, rows, "sortable")}</div>' + note


def target_prefix(targets: list[str]) -> str:
    """What every target starts with up to a ``:`` (``MODEL:LAYER:`` of a layer's units), or ""."""
    if len(targets) < 2:
        return ""
    common = os.path.commonprefix(targets)
    return common[: common.rfind(":") + 1] if ":" in common else ""


def _ratio(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f}"


def paired_differences(a: ThreadState, b: ThreadState) -> np.ndarray:
    """Per generation both ran with a response: A's best minus B's best."""
    n = min(a.generations, b.generations)
    d = np.array(a.bests[:n]) - np.array(b.bests[:n])
    return d[np.isfinite(d)]


def paired_p(d: np.ndarray) -> float | None:
    """The two-sided Wilcoxon signed-rank p of the differences (None with no nonzero difference)."""
    from scipy.stats import wilcoxon

    if not np.any(d != 0):
        return None
    return float(wilcoxon(d).pvalue)


def _paired_row(a: ThreadState, b: ThreadState) -> list:
    d = paired_differences(a, b)
    p = paired_p(d)
    higher = f"{int((d > 0).sum())} of {len(d)}" + (f" ({int((d == 0).sum())} ties)" if (d == 0).any() else "")
    return [a.name, b.name, a.target_text, len(d), higher, fmt(float(d.mean())) if len(d) else "n/a",
            fmt(float(np.median(d))) if len(d) else "n/a", "n/a" if p is None else f"{p:.3g}"]


def grid_columns(generations: int, limit: int | None = None) -> list[int]:
    """At most ``limit`` (default :data:`MAX_GRID_COLUMNS`) generations spread over
    ``range(generations)``, first and last included."""
    limit = MAX_GRID_COLUMNS if limit is None else limit
    if generations <= limit:
        return list(range(generations))
    return sorted({int(round(g)) for g in np.linspace(0, generations - 1, limit)})


def _grid(threads: list[ThreadState]) -> str:
    shown = sorted(threads, key=lambda t: -t.final_best if math.isfinite(t.final_best) else math.inf)
    shown = shown[:MAX_GRID_THREADS] if len(threads) > MAX_GRID_THREADS else threads
    generations = max((t.generations for t in threads), default=0)
    if not generations:
        return "<p>No generation finished yet.</p>"
    columns = grid_columns(generations)
    rows = []
    for t in shown:
        row = [Html(f"{html.escape(t.name)}<br><small>{html.escape(t.generator)} + {html.escape(t.optimizer)}"
                    "</small>")]
        for g in columns:
            image = t.run.image_file("best", g)
            if g < t.generations and image.is_file():
                score = fmt(t.bests[g])
                row.append(Html(f"{image_html(image, f'{t.name} generation {g}: {score}')}<br><small>{score}</small>"))
            else:
                row.append("")
        rows.append(row)
    note = ("" if len(shown) == len(threads) else
            f"<p>The {len(shown)} threads of {len(threads)} with the highest final best.</p>")
    if len(columns) < generations:
        note += f"<p>{len(columns)} of {generations} generations shown, spread over the run.</p>"
    return note + table_html(["thread", *(f"gen {g}" for g in columns)], rows, "thumbs")
