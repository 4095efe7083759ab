"""Folders written by earlier versions of xdream (committed under tests/fixtures/layouts, see its
README) still resume, report and compare, through the command line only: a one-thread run, a
session of two threads, a ``--units`` layer job and a session of a sweep.

Each is copied into tmp_path (the ``layout_copy`` fixture), extended by one generation (``generations`` raised in its
config.toml, resumed with ``--allow-changed generations``, as docs/runs.md says), then reported
and compared from what it recorded (the sweep is first run again: it skips its complete runs).
The generations it had are kept byte for byte, and the resumed run has the codes and scores of
the same job run without a stop.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from xdream.cli import main

#: layout -> (the run folder inside it, its threads; () for a one-thread run)
FOLDERS = {
    "run": (".", ()),
    "session": (".", ("ga", "rs")),
    "units": (".", ("unit3", "unit5")),
    "sweep": ("runs/optimizer=ga__seed=0", ("a", "b")),
}


def _logs(run: Path, threads) -> dict[str, list[str]]:
    """Each thread's log lines (the run's own for a one-thread run)."""
    folders = {t: run / "threads" / t for t in threads} or {"": run}
    return {t: (f / "log.jsonl").read_text().splitlines() for t, f in folders.items()}


def _generation_files(run: Path) -> dict[str, bytes]:
    return {str(f.relative_to(run)): f.read_bytes() for f in sorted(run.rglob("gen_*.npz"))}


@pytest.mark.parametrize("layout", FOLDERS)
def test_an_earlier_layout_resumes_reports_and_compares(layout, layout_copy, tmp_path, monkeypatch, capsys):
    folder, threads = FOLDERS[layout]
    run = (layout_copy(layout) / folder).resolve()
    monkeypatch.chdir(tmp_path)
    before_logs, before_files = _logs(run, threads), _generation_files(run)
    assert all(len(lines) == 2 for lines in before_logs.values()), "the fixture has 2 generations"

    if layout == "sweep":  # the sweep run again: every run is complete, nothing runs
        sweep_file = Path(__file__).parents[2] / "fixtures" / "layouts" / "sweep.toml"
        assert main(["sweep", str(sweep_file), "--output", str(tmp_path / layout), "--backend", "process"]) == 0
        assert "2 runs, 2 complete (skipped), 0 to run" in capsys.readouterr().err

    config = run / "config.toml"
    config.write_text(config.read_text().replace("\ngenerations = 2\n", "\ngenerations = 3\n", 1))
    (tmp_path / "job.toml").write_text(config.read_text())  # the same job, run without a stop below
    assert main(["evolve", "--resume", str(run), "--allow-changed", "generations", "--quiet"]) == 0, \
        capsys.readouterr().err
    after_logs = _logs(run, threads)
    for name, lines in after_logs.items():
        assert lines[:2] == before_logs[name], f"thread {name!r}: the resume changed a finished generation"
        assert [json.loads(line)["generation"] for line in lines] == [0, 1, 2]
    after_files = _generation_files(run)
    assert {k: after_files[k] for k in before_files} == before_files
    assert len(after_files) == len(before_files) * 3 // 2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["generations"] == 3

    # the resumed run is the run that never stopped: same codes and scores, generation by generation
    assert main(["evolve", str(tmp_path / "job.toml"), "--output", str(tmp_path / "fresh"), "--quiet"]) == 0
    fresh = _generation_files(tmp_path / "fresh")
    assert sorted(fresh) == sorted(after_files)
    for name, data in fresh.items():
        with np.load(io.BytesIO(data)) as a, np.load(io.BytesIO(after_files[name])) as b:
            for key in ("codes", "scores"):
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")

    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "finished: 3 generations" in page
    for name in threads:
        assert f"<td>{name}</td>" in page

    assert main(["compare", "--from-session", str(run), "--output", "cmp"]) == 0, capsys.readouterr().err
    methods = json.loads((tmp_path / "cmp" / "compare.json").read_text())["methods"]
    assert [m["method"].split(" ")[0] for m in methods] == list(threads or [run.name])
    assert all(m["cost"] == 3 * 4 and m["best"] == max(m["top_scores"]) for m in methods)
    assert (tmp_path / "cmp" / "report.html").is_file()
