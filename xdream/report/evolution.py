"""The page of an evolution run (:class:`xdream.runs.rundir.RunState`): one thread, or a session
of several side by side.

One thread: status, best image, trajectory, recent generations and where the run started (an
image, or a characterised unit's preferred stimulus, see :mod:`xdream.evolve.start`). Several
threads: every thread's best score per generation on one plot with the natural references scored
on its target; the comparison table (one row per thread, sortable in the browser); a paired
comparison of every two threads evolving for the same target (generator A vs generator B on one
neuron, as in Ponce et al. 2019, Cell 177:999); and the best image of each thread per generation.
Both end with the config.

Everything is computed from the threads' own logs, so the page is right while the run goes and
after a resume. While no ``summary.json`` is written (a resume removes an earlier one) and a
writer holds the run's lock, the page refreshes itself in the browser; a run with neither (killed,
or ended by an error) says so. The page writes nothing but ``report.html``: a running run's
trajectory is drawn into the page, and the run's own ``trajectory.png`` is never rewritten, so a
report can be written beside the run's writer.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

import numpy as np

from xdream.characterise.outputs import params_text
from xdream.images.plots import plot_threads, plot_trajectory
from xdream.report.characterise import anchor
from xdream.report.html import REFRESH_SECONDS, REPORT, Html, figure_html, fixed, fmt, image_html, table_html
from xdream.runs.rundir import RunState, ThreadState

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
    state = RunState.read(path)
    body = _one_thread(state) if state.single else _threads(state)
    body.append(f"<h2>Config</h2><pre>{html.escape((path / 'config.toml').read_text())}</pre>")
    return f"xdream {'evolution' if state.single else 'session'}: {path.name}", "".join(body), state.running


def _status(state: RunState) -> str:
    n, summary = len(state.threads), state.summary
    if state.single:
        done = (f"generation {state.generation - 1} done, {state.evaluations} evaluations" if state.records
                else "no generation finished")
    else:
        ended = sum(t.stopped is not None for t in state.threads)
        done = (f"generation {state.generation - 1} done, {n} threads ({ended} ended), {state.evaluations} "
                f"evaluations" if state.records else f"{n} threads, no generation finished yet")
    if state.abandoned:
        return f"not running and not ended ({done}; killed, or ended by an error): xdream evolve --resume {state.path}"
    if state.running:
        return f"running: {done}" + (f"; this page refreshes every {REFRESH_SECONDS} s" if state.records else " yet")
    status = "stopped before its end" if summary.get("stopped_early") else "finished"
    if state.single:
        return (f"{status}: {summary['generations']} generations, {summary['evaluations']} evaluations, best "
                f"{fmt(summary['final_best'])} (generation {summary['best_generation']})")
    return (f"{status}: {summary['generations']} generations, {n} threads, {summary['evaluations']} evaluations "
            f"({summary['presented']} images shown)")


def _trajectory(state: RunState, caption: str) -> str:
    """The run's own trajectory.png once it ended; drawn into the page while it goes."""
    own = state.path / "trajectory.png"
    if state.summary is not None and own.is_file():
        return figure_html(own, caption)
    if not state.records:
        return figure_html(own, caption) if state.single else ""
    if state.single:
        png = plot_trajectory(state.threads[0].history(), None, title=state.path.name)
    else:
        png = plot_threads({t.name: t.history() for t in state.threads}, None,
                           title=f"{state.path.name}: {len(state.threads)} threads")
    return figure_html(png, caption)


# -- one thread -------------------------------------------------------------------------------------
MAX_TABLE_ROWS = 20  # generations listed in the table (spread over the run, first and last included)


def _one_thread(state: RunState) -> list[str]:
    path, thread, records = state.path, state.threads[0], state.records
    references = any("reference_mean" in r for r in records)
    caption = "best and mean score per generation" + (", natural references' mean" if references else "")
    body = [f'<p class="status">{html.escape(_status(state))}</p>', '<div class="grid">',
            figure_html(path / "best.png", best_caption(state)), _trajectory(state, caption)]
    if records:
        last = records[-1]["generation"]
        body.append(figure_html(thread.run.image_file("montage", last), f"generation {last}: all images"))
    shown = [records[i] for i in grid_columns(len(records))]
    body.append("</div>" + _start(path) + "<h2>Best image per generation</h2>" + _spread_note(len(shown), len(records))
                + "<div class='grid'>")
    for r in shown:
        body.append(figure_html(thread.run.image_file("best", r["generation"]),
                                f"best of generation {r['generation']}: {fmt(r['best'])}"))
    listed = [records[i] for i in grid_columns(len(records), MAX_TABLE_ROWS)]
    body.append("</div><h2>Generations</h2>" + _spread_note(len(listed), len(records)))
    header = ["generation", "evaluations", "best of the generation", "mean of the generation", "no response"]
    rows = [[r["generation"], r["evaluations"], fmt(r["best"]), fmt(r["mean"]), r.get("n_nan", 0)] for r in listed]
    if any(r.get("reshown") for r in records):
        header.append("re-shown")
        for row, r in zip(rows, listed):
            row.append(r.get("reshown", 0))
    if references:
        header += ["reference mean", "reference images"]
        for row, r in zip(rows, listed):
            mean = r.get("reference_mean")
            row += ["-" if mean is None else fmt(mean), ", ".join(r.get("reference_names", []))]
    if state.noise:  # as a session's page: the noisy scores the optimiser was told, and the noise-free best
        header.append("best (noise-free)")
        for row, r in zip(rows, listed):
            row.append("n/a" if r.get("clean_best") is None else fmt(r["clean_best"]))
    body.append(table_html(header, rows))
    if state.noise:
        body.append("<p>With simulated noise, the best, mean and reference scores (and the best image's score "
                    "above) are noisy responses, as the optimiser was told them; best (noise-free): the highest "
                    "noise-free score of the generation's images.</p>")
    return body


def best_caption(state: RunState) -> str:
    """What ``best.png`` shows: the best image of an ended run, the best so far of one that goes
    on (or was killed), with the generation and score it came from."""
    scored = [r for r in state.records if r.get("best") is not None and math.isfinite(r["best"])]
    if state.summary is not None:
        summary = state.summary
        return (f"best image of the run (generation {summary['best_generation']}, score "
                f"{fmt(summary['final_best'])})")
    if not scored:
        return "best image so far"
    best = max(scored, key=lambda r: r["best"])
    return f"best image so far (generation {best['generation']}, score {fmt(best['best'])})"


def _spread_note(shown: int, generations: int) -> str:
    return (f"<p>{shown} of {generations} generations shown: the first, the last and evenly spread between.</p>"
            if shown < generations else "")


def _start(path: Path) -> str:
    """Where the run started (``init.json``, see :mod:`xdream.evolve.start`): the image that was
    inverted and its reconstruction; for a characterisation start also the unit's verdicts, its
    tuning plot and a link to the characterisation's report row of the unit."""
    if not (path / "init.json").is_file():
        return ""
    init = json.loads((path / "init.json").read_text())
    figures = [figure_html(path / "init_target.png", "start image (at the generator's size)"),
               figure_html(path / "init_reconstruction.png", f"its code's image (pixel MSE {fmt(init['inversion_mse'])})")]
    failed = init.get("inversion_warning")  # written by xdream.evolve.start.save_start
    warning = f'<p class="warning">\u26a0 {html.escape(failed)}</p>' if failed else ""
    if init["source"] != "characterisation":
        return (f"<h2>Start</h2><p>From the code of the image {html.escape(init['path'])} (gradient inversion).</p>"
                f"{warning}<div class='grid'>{''.join(figures)}</div>")

    stimulus, char = init["stimulus"], Path(init["resolved"])
    target = char / REPORT
    href = Path(os.path.relpath(target, path.resolve())).as_posix() + f"#{anchor(init['unit'])}"
    link = (f'<a href="{html.escape(href)}">its characterisation report</a>' if target.is_file()
            else f"its characterisation report (write it with <code>xdream report {html.escape(init['path'])}</code>)")
    classes = ", ".join(f"{sweep} {label}" for sweep, label in init["classes"].items())
    double = {True: "; double opponent", False: "; not double opponent"}.get(init["double_opponent"], "")
    rows = [[init["unit"], init["group"], classes + double, f"{stimulus['sweep']}: {params_text(stimulus)}",
             fmt(init["response"]), fmt(init["baseline"])]]
    warning += "".join(f'<p class="warning">\u26a0 the preferred stimulus: {html.escape(n)}</p>'
                       for n in init.get("notes", []))
    figures.append(figure_html(path / "init_unit_plot.png", f"{init['unit']}: tuning in the characterisation"))
    return (f"<h2>Start: the unit's preferred parametric stimulus</h2><p>From the characterisation run "
            f"{html.escape(init['path'])}; see {link}.</p>" + warning
            + table_html(["unit", "characterised in", "classes", "preferred stimulus", "response", "baseline"], rows)
            + f"<div class='grid'>{''.join(figures)}</div>")


# -- several threads -------------------------------------------------------------------------------
def _threads(state: RunState) -> list[str]:
    n = len(state.threads)
    references = any(t.best_reference is not None for t in state.threads)
    caption = ("best score per generation, one colour per thread" + (
        "; dash-dot: the natural references' mean on its target" if references else "")
        + (f" (no legend for {n} threads)" if n > LEGEND_THREADS else "")
        + ("; the threads' targets differ: a score compares only with those of the same target"
           if len({t.target_text for t in state.threads}) > 1 else ""))
    body = [f'<p class="status">{html.escape(_status(state))}</p>', _trajectory(state, caption),
            "<h2>Threads</h2>", _table(state)]
    pairs = state.pairs()
    if pairs:
        body += ["<h2>Paired comparison (same target)</h2>", f"<p>{html.escape(PAIRED_TEXT)}</p>",
                 table_html(["A", "B", "target", "generations paired", "A higher", "mean d", "median d",
                             "Wilcoxon p"], [_paired_row(a, b) for a, b in pairs[:MAX_PAIRS]])]
        if len(pairs) > MAX_PAIRS:
            body.append(f"<p>{MAX_PAIRS} of {len(pairs)} pairs shown.</p>")
    return body + ["<h2>Best image per generation</h2>", _grid(state.threads)]


TABLE_HEADER = ["thread", "generator", "optimiser", "target", "generations", "evaluations", "first best",
                "final best", "improvement", "best natural ref.", "final best / ref.", "stopped"]


def _table(state: RunState) -> str:
    noise = any(t.clean_best is not None for t in state.threads)
    prefix = target_prefix([t.target_text for t in state.threads])
    header = TABLE_HEADER[:8] + (["best (noise-free)"] if noise else []) + TABLE_HEADER[8:]
    rows = []
    for t in state.threads:
        stopped = t.stopped or ("live" if state.running else "no")
        reference = "n/a" if t.best_reference is None else \
            Html(f"{fmt(t.best_reference)}<br><small>{html.escape(t.best_reference_name)}</small>")
        row = [t.name, t.generator, t.optimizer, t.target_text.replace(prefix, ""), t.generations, t.evaluations,
               fmt(t.first_best), fmt(t.final_best)]
        if noise:
            row.append(fmt(t.clean_best) if t.clean_best is not None else "n/a")
        row += [fixed(t.improvement), reference, fixed(t.reference_ratio), stopped]
        rows.append(row)
    shared = f"<p>Every target starts with {html.escape(prefix)} (left out below).</p>" if prefix else ""
    note = ("<p>Click a column head to sort. First best: generation 0's best; final best: the best of any "
            "generation; improvement: final / first (where first &gt; 0); best natural ref.: the highest score of "
            "a natural reference image on the thread's target so far (its name below)."
            + (" With simulated noise, first best, final best and the natural references are noisy responses, as "
               "the optimisers were told them; best (noise-free): the highest noise-free score of any image the "
               "thread evaluated." if noise else "") + "</p>")
    return shared + f'<div style="overflow-x:auto">{table_html(header, rows, "sortable")}</div>' + note


def target_prefix(targets: list[str]) -> str:
    """What every target starts with up to a ``:`` (``MODEL:LAYER:`` of a layer's units), or ""."""
    if len(targets) < 2:
        return ""
    common = os.path.commonprefix(targets)
    return common[: common.rfind(":") + 1] if ":" in common else ""


def paired_p(d: np.ndarray) -> float | None:
    """The two-sided Wilcoxon signed-rank p of the differences (None with no nonzero difference)."""
    from scipy.stats import wilcoxon

    if not np.any(d != 0):
        return None
    return float(wilcoxon(d).pvalue)


def _paired_row(a: ThreadState, b: ThreadState) -> list:
    """A's best minus B's best, per generation both ran with a response, and what they say."""
    n = min(a.generations, b.generations)
    d = np.array(a.bests[:n]) - np.array(b.bests[:n])
    d = d[np.isfinite(d)]
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
    note = "<p>Under each image: its score, the best of its thread's generation.</p>" + (
        "" if len(shown) == len(threads) else
        f"<p>The {len(shown)} threads of {len(threads)} with the highest final best.</p>")
    if len(columns) < generations:
        note += f"<p>{len(columns)} of {generations} generations shown, spread over the run.</p>"
    return note + table_html(["thread", *(f"gen {g}" for g in columns)], rows, "thumbs")
