"""The evolution page: status, best image, trajectory, recent generations, config; and where the
run started (an image, or a characterised unit's preferred stimulus, see :mod:`xdream.evolve.start`).

While the run is going (no ``summary.json`` yet: a resume removes an earlier one; and a writer
holds the run's lock) the page refreshes itself in the browser; a run with neither (killed, or
ended by an error) says so. The page writes nothing else into the run: a running run's
trajectory is drawn into the page, and the run's own ``trajectory.png`` (titled by the run) is
never rewritten, so a report can be written beside the run's writer.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from xdream.characterise.outputs import params_text
from xdream.images.plots import TRAJECTORY_LINES, plot_trajectory
from xdream.report.characterise import anchor
from xdream.report.html import REFRESH_SECONDS, REPORT, figure_html, fmt, image_html, table_html
from xdream.runs.lock import is_written
from xdream.runs.rundir import SUMMARY, RunDir


def page(path: Path) -> tuple[str, str, bool]:
    run = RunDir.open(path, lock=False)
    records = run.read_log()
    summary = json.loads((path / SUMMARY).read_text()) if (path / SUMMARY).is_file() else None
    config = (path / "config.toml").read_text()
    running = summary is None and is_written(path)
    abandoned = summary is None and not running  # killed, or ended by an error: no writer, no end
    references = any("reference_mean" in r for r in records)
    caption = "best and mean score per generation" + (", natural references' mean" if references else "")
    if records and (summary is None or not (path / "trajectory.png").is_file()):
        png = plot_trajectory([{k: r[k] for k, _, _ in TRAJECTORY_LINES if r.get(k) is not None} for r in records],
                              None, title=path.name)
        trajectory = f"<figure>{image_html(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"
    else:
        trajectory = figure_html(path / "trajectory.png", caption)
    last = records[-1]["generation"] if records else None
    ended = "stopped before its end" if summary and summary.get("stopped_early") else "finished"
    done = f"generation {last} done, {records[-1]['evaluations']} evaluations" if records else "no generation finished"
    if abandoned:
        status = f"not running and not ended ({done}; killed, or ended by an error): xdream evolve --resume {path}"
    elif running:
        status = f"running: {done}" + (f"; this page refreshes every {REFRESH_SECONDS} s" if records else " yet")
    else:
        status = (f"{ended}: {summary['generations']} generations, {summary['evaluations']} evaluations, best "
                  f"{fmt(summary['final_best'])} (generation {summary['best_generation']})")
    body = [f'<p class="status">{html.escape(status)}</p>', '<div class="grid">',
            figure_html(path / "best.png", "best image so far"), trajectory]
    if last is not None:
        body.append(figure_html(run.image_file("montage", last), f"generation {last}: all images"))
    body.append("</div>" + _start(path) + "<h2>Best image of recent generations</h2><div class='grid'>")
    for r in records[-12:]:
        body.append(figure_html(run.image_file("best", r["generation"]), f"gen {r['generation']}: {fmt(r['best'])}"))
    body.append("</div><h2>Generations</h2>")
    header = ["generation", "evaluations", "best", "mean", "no response"]
    rows = [[r["generation"], r["evaluations"], fmt(r["best"]), fmt(r["mean"]), r.get("n_nan", 0)] for r in records[-20:]]
    if any(r.get("reshown") for r in records):
        header.append("re-shown")
        for row, r in zip(rows, records[-20:]):
            row.append(r.get("reshown", 0))
    if references:
        header += ["reference mean", "reference images"]
        for row, r in zip(rows, records[-20:]):
            mean = r.get("reference_mean")
            row += ["-" if mean is None else fmt(mean), ", ".join(r.get("reference_names", []))]
    body.append(table_html(header, rows))
    body.append(f"<h2>Config</h2><pre>{html.escape(config)}</pre>")
    return f"xdream evolution: {path.name}", "".join(body), running


def _start(path: Path) -> str:
    """Where the run started (``init.json``, see :mod:`xdream.evolve.start`): the image that was
    inverted and its reconstruction; for a characterisation start also the unit's verdicts, its
    tuning plot and a link to the characterisation's report row of the unit."""
    if not (path / "init.json").is_file():
        return ""
    init = json.loads((path / "init.json").read_text())
    figures = [figure_html(path / "init_target.png", "start image (at the generator's size)"),
               figure_html(path / "init_reconstruction.png", f"its code's image (pixel MSE {fmt(init['inversion_mse'])})")]
    if init["source"] != "characterisation":
        return (f"<h2>Start</h2><p>From the code of the image {html.escape(init['path'])} (gradient inversion).</p>"
                f"<div class='grid'>{''.join(figures)}</div>")

    stimulus, char = init["stimulus"], Path(init["resolved"])
    target = char / REPORT
    href = Path(os.path.relpath(target, path.resolve())).as_posix() + f"#{anchor(init['unit'])}"
    link = (f'<a href="{html.escape(href)}">its characterisation report</a>' if target.is_file()
            else f"its characterisation report (write it with <code>xdream report {html.escape(init['path'])}</code>)")
    classes = ", ".join(f"{sweep} {label}" for sweep, label in init["classes"].items())
    double = {True: "; double opponent", False: "; not double opponent"}.get(init["double_opponent"], "")
    rows = [[init["unit"], init["group"], classes + double, f"{stimulus['sweep']}: {params_text(stimulus)}",
             fmt(init["response"]), fmt(init["baseline"])]]
    figures.append(figure_html(path / "init_unit_plot.png", f"{init['unit']}: tuning in the characterisation"))
    return (f"<h2>Start: the unit's preferred parametric stimulus</h2><p>From the characterisation run "
            f"{html.escape(init['path'])}; see {link}.</p>"
            + table_html(["unit", "characterised in", "classes", "preferred stimulus", "response", "baseline"], rows)
            + f"<div class='grid'>{''.join(figures)}</div>")
