"""The page of a gradient-ascent run (``xdream gradient``)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from xdream.report.html import figure_html, fmt, table_html

#: For folders written before gradient.json said what its numbers measure.
EARLIER_MEANINGS = {"objective_meaning": "the value the ascent maximised",
                    "activation_meaning": "the final images re-scored by the target unit"}


def page(path: Path) -> tuple[str, str, bool]:
    data = json.loads((path / "gradient.json").read_text())
    target = data["responder"].get("target", "")
    final = data.get("final_objective")
    meaning = lambda key: data.get(key, EARLIER_MEANINGS[key])  # noqa: E731
    rows = [[data["method"], target, data["objective"], data["steps"], f"{data['seconds']:.1f}",
             "n/a" if final is None else fmt(final), fmt(data["best"])]]
    body = [table_html(["method", "target", "objective", "steps", "wall time (s)", "objective at the last step",
                        "unit activation of the best final image"], rows),
            f"<p>Objective at the last step: {html.escape(meaning('objective_meaning'))}. Unit activation of "
            f"the best final image: {html.escape(meaning('activation_meaning'))}. They measure different "
            "things: compare an evolution's scores with the unit activation.</p>",
            '<div class="grid">', figure_html(path / "montage.png", "final images, best first (by unit activation)"),
            figure_html(path / "trajectory.png", "per step: the objective and the unit activation of the best "
                        "image (each as said above)"), "</div>",
            f"<h2>Settings</h2><pre>{html.escape(json.dumps(data['settings'], indent=1))}</pre>"]
    return f"xdream gradient ({data['method']}): {path.name}", "".join(body), False
