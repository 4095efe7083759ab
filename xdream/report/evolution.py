"""``xdream report RUN_DIR``: one self-contained HTML page (images embedded as base64) plus
PNG figures, for an evolution run, a gradient run, a comparison or a characterisation
(:mod:`xdream.report.characterise`). An evolution started from an image shows that image and
its reconstruction; one started from a characterisation (``--init-from-characterisation``) also
the unit's verdicts and tuning plot, with a link to its row in the characterisation's report.

While an evolution is still running (no ``summary.json`` yet) the page carries a
``<meta http-equiv="refresh">``, so a browser keeps showing the current generation;
``xdream report RUN_DIR --watch`` rewrites it after every new generation until the run ends.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import time
from pathlib import Path

from xdream.core.errors import RunDirError
from xdream.report.plots import TRAJECTORY_LINES, plot_trajectory
from xdream.runs.rundir import LOG, SUMMARY, RunDir, atomic_write

REPORT = "report.html"
REFRESH_SECONDS = 5

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%;image-rendering:pixelated}
.grid{display:flex;flex-wrap:wrap;gap:1em}.grid figure{margin:0}.grid img{min-width:96px}figcaption{font-size:.85em;color:#555}
.status{padding:.4em .8em;background:#eef;display:inline-block;border-radius:4px}
"""
# Counts the embedded images that decoded, so a headless browser can check the page.
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
"""


class Html(str):
    """Markup that :func:`table_html` puts into a cell as it is (everything else is escaped)."""


def image_html(png: Path | bytes, alt: str) -> str:
    """An ``<img>`` with the PNG (a file or its bytes) embedded as base64."""
    data = base64.b64encode(png if isinstance(png, bytes) else png.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def figure_html(path: Path, caption: str) -> str:
    if not path.is_file():
        return ""
    return f"<figure>{image_html(path, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def table_html(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, Html) else html.escape(str(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, body: str, refresh: bool) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{meta}<title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body><h1>{html.escape(title)}</h1>{body}"
            f"<footer><p><small>written {time.strftime('%Y-%m-%d %H:%M:%S')} by xdream report</small></p></footer>"
            "</body></html>\n")


def fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v)


# -- pages ---------------------------------------------------------------------------------------------
def _evolution(path: Path) -> tuple[str, str, bool]:
    run = RunDir.open(path)
    records = run.read_log()
    summary = json.loads((path / SUMMARY).read_text()) if (path / SUMMARY).is_file() else None
    config = (path / "config.toml").read_text()
    running = summary is None
    references = any("reference_mean" in r for r in records)
    if records:
        plot_trajectory([{k: r[k] for k, _, _ in TRAJECTORY_LINES if r.get(k) is not None} for r in records],
                        path / "trajectory.png", title=path.name)
    last = records[-1]["generation"] if records else None
    status = (f"running: generation {last} done, {records[-1]['evaluations']} evaluations; this page refreshes every "
              f"{REFRESH_SECONDS} s" if running and records else "running: no generation finished yet" if running
              else f"finished: {summary['generations']} generations, {summary['evaluations']} evaluations, best "
                   f"{fmt(summary['final_best'])} (generation {summary['best_generation']})")
    body = [f'<p class="status">{html.escape(status)}</p>', '<div class="grid">',
            figure_html(path / "best.png", "best image so far"),
            figure_html(path / "trajectory.png", "best and mean score per generation"
                    + (", natural references' mean" if references else ""))]
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
    from xdream.characterise.outputs import params_text
    from xdream.report.characterise import anchor

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


def _gradient(path: Path) -> tuple[str, str, bool]:
    data = json.loads((path / "gradient.json").read_text())
    target = data["responder"].get("target", "")
    rows = [[data["method"], target, data["objective"], data["steps"], f"{data['seconds']:.1f}", fmt(data["best"])]]
    body = [table_html(["method", "target", "objective", "steps", "wall time (s)", "best activation"], rows),
            '<div class="grid">', figure_html(path / "montage.png", "final images, best first"),
            figure_html(path / "trajectory.png", "activation of the best image during the ascent"), "</div>",
            f"<h2>Settings</h2><pre>{html.escape(json.dumps(data['settings'], indent=1))}</pre>"]
    return f"xdream gradient ({data['method']}): {path.name}", "".join(body), False


def _compare(path: Path) -> tuple[str, str, bool]:
    data = json.loads((path / "compare.json").read_text())
    methods = data["methods"]
    rows = [[m["method"], fmt(m["best"]), f"{m['ratio']:.2f}" if m["ratio"] is not None else "n/a",
             f"{m['cost']} {m['cost_unit']}", f"{m['seconds']:.1f}"] for m in methods]
    winner = max(methods, key=lambda m: m["best"])
    body = [f"<p>Target <b>{html.escape(data['responder']['target'])}</b>; every image re-scored with the same "
            f"responder, no transforms or noise. Highest: <b>{html.escape(winner['method'])}</b> "
            f"({fmt(winner['best'])}).</p>",
            table_html(["method", "activation", "ratio to best natural", "evaluations / steps", "wall time (s)"], rows),
            figure_html(path / "trajectories.png", "best activation so far per method (log x)"),
            "<h2>Best images per method</h2><div class='grid'>"]
    for m in methods:
        scores = ", ".join(fmt(s) for s in m["top_scores"][:8])
        body.append(figure_html(path / m["montage"], f"{m['method']}: {scores}"))
    body.append("</div>")
    names = data.get("natural_top_names") or []
    if names:
        body.append(f"<p>Best natural images: {html.escape(', '.join(names))}</p>")
    links = [m["folder"] for m in methods if m.get("folder")]
    if links:
        body.append("<p>Run folders: " + ", ".join(f'<a href="{html.escape(f)}/report.html">{html.escape(f)}</a>'
                                                   for f in links) + "</p>")
    return f"xdream compare: {path.name}", "".join(body), False


def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN_DIR/report.html`` (and its PNG figures) and return its path."""
    path = Path(run_dir)
    if (path / "compare.json").is_file():
        page = _compare(path)
        for m in json.loads((path / "compare.json").read_text())["methods"]:
            if m.get("folder") and (path / m["folder"]).is_dir():
                write_report(path / m["folder"])
    elif (path / "gradient.json").is_file():
        page = _gradient(path)
    elif (path / "classification.csv").is_file() and (path / SUMMARY).is_file():  # xdream characterise
        from xdream.report.characterise import page as characterisation_page

        page = characterisation_page(path)
    elif (path / "config.toml").is_file() and ((path / LOG).is_file() or (path / "generations").is_dir()):
        page = _evolution(path)
    else:
        raise RunDirError(f"{path} is not an xdream run, gradient, comparison or characterisation folder (no "
                          f"config.toml, gradient.json, compare.json or classification.csv)")
    title, body, refresh = page
    out = path / REPORT
    atomic_write(out, _page(title, body, refresh).encode())
    return out


def watch(run_dir: str | Path, interval: float = 2.0, should_stop=lambda: False) -> Path:
    """Rewrite the report whenever the run's log grows, until the run writes its summary."""
    path = Path(run_dir)
    seen = None
    while True:
        size = (path / LOG).stat().st_size if (path / LOG).is_file() else -1
        if size != seen:
            write_report(path)
            seen = size
        if (path / SUMMARY).is_file() or should_stop():
            return write_report(path)
        time.sleep(interval)
