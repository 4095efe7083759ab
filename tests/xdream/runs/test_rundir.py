"""A run folder read back as it is on disk (:class:`xdream.runs.rundir.RunState`)."""

from __future__ import annotations

import json
import re

import pytest

from xdream.cli import main
from xdream.core.errors import RunDirError
from xdream.runs.rundir import RunState


def test_a_session_without_run_json_is_read_as_a_session(layout_copy, capsys):
    """run.json is not what tells a session from a one-thread run (docs/runs.md; a resume reads
    config.toml's [[thread]] tables): the report reads the session's threads, not one thread."""
    run = layout_copy("session")
    (run / "run.json").unlink()
    state = RunState.read(run)
    assert [t.name for t in state.threads] == ["ga", "rs"] and not state.single
    assert [len(t.records) for t in state.threads] == [2, 2]
    assert main(["report", str(run)]) == 0, capsys.readouterr().err
    page = (run / "report.html").read_text()
    assert "<td>ga</td>" in page and "<td>rs</td>" in page


@pytest.mark.parametrize("text", ['{"status": "fini', "[]", "\xff"])
def test_a_damaged_summary_is_one_line(layout_copy, capsys, text):
    """summary.json cut, edited into something else or not text: one line naming it, as for a
    damaged config.toml or log line, from the reader and from the command."""
    run = layout_copy("run")
    (run / "summary.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(RunDirError, match=rf"^cannot read {re.escape(str(run / 'summary.json'))}: "):
        RunState.read(run)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "summary.json" in err[0], err


def test_a_restart_drops_the_changes_of_the_run_it_discards(layout_copy, tmp_path, monkeypatch, capsys):
    """--restart starts the run over from config.toml: the --allow-changed changes run.json
    recorded were the discarded run's (its summary in discarded-*/ keeps them), so the
    restarted run's config is not announced as that of a run changed on resume, and
    config.toml loses its notes of those changes."""
    run = layout_copy("run").resolve()
    monkeypatch.chdir(tmp_path)
    config = run / "config.toml"
    config.write_text(config.read_text().replace("\ngenerations = 2\n", "\ngenerations = 3\n", 1))
    assert main(["evolve", "--resume", str(run), "--allow-changed", "generations", "--quiet"]) == 0
    assert json.loads((run / "run.json").read_text())["changes"][0]["key"] == "generations"
    assert main(["evolve", "--resume", str(run), "--restart", "--quiet"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert "changes" not in info and info["kind"] == "evolution"
    assert "# Changed on resume" not in config.read_text() and "generations = 2\n" in config.read_text()
    (aside,) = run.glob("discarded-*")
    assert json.loads((aside / "summary.json").read_text())["changes"][0]["key"] == "generations"
    capsys.readouterr()
    assert main(["evolve", str(config), "--output", str(tmp_path / "again"), "--quiet"]) == 0
    assert "changed on resume" not in capsys.readouterr().err
