"""The page of a comparison (``xdream compare``): the table, trajectories and best images per method."""

from __future__ import annotations

import html
import json
from pathlib import Path

from xdream.report.html import figure_html, fmt, table_html


def page(path: Path) -> tuple[str, str, bool]:
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
