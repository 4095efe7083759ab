"""Writing ``RUN_DIR/report.html``: the page of the run's recorded kind, and ``--watch``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from xdream.core.errors import RunDirError
from xdream.report import characterise, compare, evolution, gradient
from xdream.report.html import REPORT, page
from xdream.runs.lock import is_written, writer_since
from xdream.runs.rundir import LOG, SUMMARY, RunDir, atomic_write

#: The page of each run kind (recorded by :meth:`RunDir.create` in ``run.json``).
PAGES = {"evolution": evolution.page, "gradient": gradient.page, "compare": compare.page,
         "characterise": characterise.page, "session": evolution.page}
#: The kinds whose page writes report.html only, so it is written beside the run's writer (no lock).
LIVE = ("evolution", "session")
#: The file a run of each kind writes when it has finished, and its page reads.
RESULTS = {"gradient": "gradient.json", "compare": "compare.json", "characterise": SUMMARY}
CLOCK_SLACK = 0.05  # s: file times come from the kernel's coarse clock, a few ms behind time.time()


def run_kind(path: Path) -> str:
    """The run's recorded kind (or its legacy kind), or a one-line RunDirError."""
    kind = RunDir.kind_of(path)
    if kind not in PAGES:
        raise RunDirError(f"{path} is not an xdream run, session, gradient, comparison or characterisation folder "
                          f"(no run.json, config.toml, gradient.json, compare.json or classification.csv)")
    return kind


def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN_DIR/report.html`` (and, for a characterisation, its PNG figures that are missing)
    and return its path; a comparison's report also writes the reports of its evolution runs."""
    path = Path(run_dir)
    kind = run_kind(path)
    result = RESULTS.get(kind)
    if result is not None and not (path / result).is_file():
        raise RunDirError(f"{kind} run {path} has not finished (no {result}): it was killed or ended by an error, "
                          f"or is still running; for a page, run xdream {kind} again")
    if kind == "compare":
        for m in json.loads((path / "compare.json").read_text())["methods"]:
            if m.get("folder") and (path / m["folder"]).is_dir():
                write_report(path / m["folder"])
    title, body, refresh = PAGES[kind](path)
    out = path / REPORT
    atomic_write(out, page(title, body, refresh).encode())
    return out


def ended(path: Path) -> bool:
    """Whether the run has ended: its summary is written and no live writer took the run's lock
    after it (a resume that has not yet removed the old summary is still a running run)."""
    if not (path / SUMMARY).is_file():
        return False
    since = writer_since(path)
    return since is None or since <= (path / SUMMARY).stat().st_mtime + CLOCK_SLACK


def watch(run_dir: str | Path, interval: float = 2.0, should_stop=lambda: False) -> Path:
    """Rewrite the report whenever the run's log grows, until the run writes its summary or no
    writer holds it any more (killed, or ended by an error)."""
    path = Path(run_dir)
    seen = None
    while True:
        size = (path / LOG).stat().st_size if (path / LOG).is_file() else -1
        if size != seen:
            write_report(path)
            seen = size
        if ended(path) or not is_written(path) or should_stop():
            return write_report(path)
        time.sleep(interval)
