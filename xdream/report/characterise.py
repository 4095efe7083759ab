"""The characterisation page of ``xdream report RUN_DIR`` (one self-contained HTML page).

Sections: the layer summary (table and bar figure), the stimulus strip, one table row per
unit (class per sweep, double opponent, preferred and least preferred stimulus as a thumbnail
with its parameters and mean response), and the units' tuning plots (hue curve against the
baseline, orientation x frequency map). Figures the run did not write (``--no-unit-plots``, a
deleted file) are drawn again from ``responses.npz`` with the run's own plotting code.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from xdream.images.io import png_bytes
from xdream.report.html import Html, figure_html, fixed, fmt, image_html, table_html
from xdream.characterise.load import CharacterisationRun
from xdream.characterise.outputs import (SUMMARY_COLUMNS, params_text, plot_layer_summary, plot_unit, safe_name,
                                         write_stimulus_strip)
from xdream.characterise.protocol import render_described

MAX_PLOTS = 48  # tuning plots embedded per page (a whole layer can have hundreds of units)
THUMBNAIL = 48  # px of the preferred / least preferred stimulus in the unit table


def anchor(unit: str) -> str:
    """The id of a unit's table row: ``report.html#unit-<name>`` links to it."""
    return f"unit-{safe_name(unit)}"


def page(path: Path) -> tuple[str, str, bool]:
    """(title, body, refresh) of a characterisation run's report."""
    run = CharacterisationRun.open(path)
    units = run.units
    shown = [u["unit"] for u in units[:MAX_PLOTS]]
    _draw_missing(run, shown)
    layers = table_html(["layer", "units", *(k.replace("_", " ") for k, _ in SUMMARY_COLUMNS)],
                        [[r["group"], r["units"], *(fixed(r[k]) for k, _ in SUMMARY_COLUMNS)]
                         for r in run.summary["layers"]], "sortable")  # smaller type, sorts on a click
    body = [f'<p class="status">{html.escape(_status(run))}</p>', "<h2>Layer summary</h2>",
            f'<div style="overflow-x:auto">{layers}</div>',  # a wide table scrolls instead of leaving the page
            '<div class="grid">', figure_html(path / "layer_summary.png", "fraction of units per class and layer"),
            figure_html(path / "stimuli.png", "the stimuli: examples of every sweep, one row each"), "</div>",
            "<h2>Units</h2>", f'<div style="overflow-x:auto">{_unit_table(units)}</div>', "<h2>Tuning curves</h2>",
            "<p>Hue tuning (mean &plusmn; sd per hue) against the baseline line; gratings as an orientation "
            "&times; frequency map of the response at the best phase (baseline = white).</p><div class='grid'>"]
    body += [figure_html(run.unit_plot(u), u) for u in shown]
    body.append("</div>")
    if len(units) > len(shown):
        body.append(f"<p>{len(units) - len(shown)} more units: their plots are in {html.escape(str(path / 'plots'))} "
                    f"when the run drew them.</p>")
    body.append(f"<h2>Config</h2><pre>{html.escape((path / 'config.toml').read_text())}</pre>")
    return f"xdream characterisation: {path.name}", "".join(body), False


def _status(run: CharacterisationRun) -> str:
    protocol, timings = run.summary["protocol"], run.summary.get("timings", {})
    shown = sum(t["presentations"] for t in timings.values())
    noise = run.config.get("noise")
    units, targets = len(run.units), len(run.summary["layers"])
    return (f"{units} unit{'s' * (units != 1)} in {targets} target{'s' * (targets != 1)}; preset {protocol['preset']}, "
            f"{shown} presentations in all; classification {run.config.get('method', 'auto')}"
            + (f", noise {noise['name']}" if noise else ""))


def _unit_table(units: list[dict]) -> str:
    sweeps = list(dict.fromkeys(s for u in units for s in u["sweeps"]))
    rows = []
    for u in units:
        verdicts = u["sweeps"]
        finite = [s for s in verdicts if verdicts[s]["max"] is not None]
        best = max(finite, key=lambda s: verdicts[s]["max"], default=None)
        worst = min(finite, key=lambda s: verdicts[s]["min"], default=None)
        double = "" if u["double_opponent"] is None else "yes" if u["double_opponent"] else "no"
        rows.append([Html(f'<span id="{anchor(u["unit"])}">{html.escape(u["unit"])}</span>'), fmt(u["baseline"]),
                     *(_verdict(verdicts[s], shown_with_stimulus=s == best) if s in verdicts else "" for s in sweeps),
                     double,
                     _stimulus(verdicts[best]["preferred"], verdicts[best]["max"], verdicts[best].get("notes", []))
                     if best else "",
                     _stimulus(verdicts[worst]["least_preferred"], verdicts[worst]["min"]) if worst else ""])
    return table_html(["unit", "baseline", *sweeps, "double opponent", "preferred stimulus", "least preferred"], rows)


def _verdict(verdict: dict, shown_with_stimulus: bool) -> Html:
    """A sweep's class, with the notes on its preferred stimulus unless that stimulus (and so its
    notes) is the row's preferred one."""
    notes = [] if shown_with_stimulus else verdict.get("notes", [])
    return Html(html.escape(verdict["label"]) + _notes_html([f"its preferred stimulus: {n}" for n in notes]))


def _notes_html(notes: list[str]) -> str:
    return "".join(f'<br><small class="note">\u26a0 {html.escape(n)}</small>' for n in notes)


def _stimulus(described: dict, response: float, notes: list[str] = ()) -> Html:
    """A thumbnail of the stimulus with its sweep, parameters and mean response, and the notes
    that qualify a preference (ties, the edge of the tested range; xdream.characterise.record)."""
    text = f"{described['sweep']}: {params_text(described)} \u2192 {fmt(response)}"
    thumbnail = image_html(png_bytes(render_described(described, THUMBNAIL)), text)
    return Html(f"{thumbnail}<br><small>{html.escape(text)}</small>{_notes_html(notes)}")


def _draw_missing(run: CharacterisationRun, shown: list[str]) -> None:
    """Draw the stimulus strip, the layer summary and the shown units' plots if absent."""
    if not (run.path / "stimuli.png").is_file():
        write_stimulus_strip(run.path / "stimuli.png", run.protocol().table())
    if not (run.path / "layer_summary.png").is_file():
        layers = [{k: math.nan if v is None else v for k, v in r.items()} for r in run.summary["layers"]]
        plot_layer_summary(run.path / "layer_summary.png", layers)
    missing = {u for u in shown if not run.unit_plot(u).is_file()}
    if not missing:
        return
    (run.path / "plots").mkdir(exist_ok=True)
    for recording, results in run.recordings().values():
        for i, result in enumerate(results):
            if result.unit in missing:
                plot_unit(run.unit_plot(result.unit), recording, i, result)
                missing.discard(result.unit)
