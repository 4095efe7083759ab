"""The page of a comparison (``xdream compare``): the table, trajectories and best images per method."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from xdream.report.html import REPORT, figure_html, fixed, fmt, table_html


def page(path: Path) -> tuple[str, str, bool]:
    data = json.loads((path / "compare.json").read_text())
    methods = data["methods"]
    targets = list(dict.fromkeys(m.get("target") for m in methods))
    several = len(targets) > 1
    rows = [[m["method"], fmt(m["best"]), fixed(m["ratio"]), f"{m['cost']} {m['cost_unit']}", f"{m['seconds']:.1f}"]
            + ([m.get("target")] if several else []) for m in methods]
    scoring = data.get("activation", "every image re-scored with the same responder, no transforms or noise")
    source = ""
    if data.get("session"):  # xdream compare --from-session: the threads of one session
        href = Path(os.path.relpath(Path(data["session"]) / REPORT, path.resolve())).as_posix()
        source = (f"<p>The threads of the session <a href=\"{html.escape(href)}\">{html.escape(data['session'])}"
                  "</a> (write its page with <code>xdream report</code>); nothing was run again.</p>")
    body = [source, _highest(data, methods, targets, scoring),
            table_html(["method", "activation", "ratio to best natural", "evaluations / steps", "wall time (s)"]
                       + (["target"] if several else []), rows),
            figure_html(path / "trajectories.png", "best activation so far per method (log x)"
                        + ("; the methods' targets differ: compare a curve only with those of its target" if several
                           else "")),
            "<h2>Best images per method</h2><div class='grid'>"]
    for m in methods:
        scores = ", ".join(fmt(s) for s in m["top_scores"][:8])
        if m.get("montage"):
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


def _highest(data: dict, methods: list[dict], targets: list, scoring: str) -> str:
    """The target and the highest method; where the methods ran on different targets (threads of
    a session on different neurons), the highest of each target, and no ranking across them: one
    unit's activation says nothing about another's."""
    if len(targets) == 1:
        winner = max(methods, key=lambda m: m["best"])
        return (f"<p>Target <b>{html.escape(data['responder']['target'])}</b>; activation: {html.escape(scoring)}. "
                f"Highest: <b>{html.escape(winner['method'])}</b> ({fmt(winner['best'])}).</p>")
    lines = []
    for target in targets:
        winner = max((m for m in methods if m.get("target") == target), key=lambda m: m["best"])
        lines.append(f"<li>on <b>{html.escape(str(target))}</b>: highest <b>{html.escape(winner['method'])}</b> "
                     f"({fmt(winner['best'])})</li>")
    return (f"<p>{len(targets)} different targets; activation: {html.escape(scoring)}. Activations of different "
            "targets are not comparable, so the methods are ranked only within their target:</p>"
            f"<ul>{''.join(lines)}</ul>")
