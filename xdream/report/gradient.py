"""The page of a gradient-ascent run (``xdream gradient``)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from xdream.report.html import figure_html, fmt, table_html


def page(path: Path) -> tuple[str, str, bool]:
    data = json.loads((path / "gradient.json").read_text())
    target = data["responder"].get("target", "")
    rows = [[data["method"], target, data["objective"], data["steps"], f"{data['seconds']:.1f}", fmt(data["best"])]]
    body = [table_html(["method", "target", "objective", "steps", "wall time (s)", "best activation"], rows),
            '<div class="grid">', figure_html(path / "montage.png", "final images, best first"),
            figure_html(path / "trajectory.png", "activation of the best image during the ascent"), "</div>",
            f"<h2>Settings</h2><pre>{html.escape(json.dumps(data['settings'], indent=1))}</pre>"]
    return f"xdream gradient ({data['method']}): {path.name}", "".join(body), False
